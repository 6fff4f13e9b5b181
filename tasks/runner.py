"""The task runner the fan-out steps use: a thread pool, or Dask through prefect-dask."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from jobsim.settings import ExecutionSettings


def make_task_runner(cfg: ExecutionSettings) -> TaskRunner:
    """``thread``: a pool of ``workers`` threads. ``dask``: prefect-dask's ``DaskTaskRunner``
    on ``dask_address``, or on a temporary ``distributed.LocalCluster`` of ``workers``
    processes (created on the first submitted task, closed with the runner), with its
    dashboard on a free port and its scratch space in ``dask_temporary_directory``."""
    if cfg.task_runner == "thread":
        return ThreadPoolTaskRunner(max_workers=cfg.workers)
    from prefect_dask import DaskTaskRunner

    if cfg.dask_address:
        return DaskTaskRunner(address=cfg.dask_address)
    scratch = Path(cfg.dask_temporary_directory or Path(tempfile.gettempdir()) / "jobsim-dask")
    scratch.mkdir(parents=True, exist_ok=True)
    cluster: dict[str, Any] = {
        "n_workers": cfg.workers, "threads_per_worker": cfg.dask_threads_per_worker, "processes": True,
        "dashboard_address": ":0", "local_directory": str(scratch),
    }
    if cfg.dask_worker_memory_mb:
        cluster["memory_limit"] = f"{cfg.dask_worker_memory_mb}MiB"
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=cluster)
