"""Fan-out pieces: rate limits shared by parallel batches, batch splitting, runner choice,
and the thread runner embedding in several batches inside the real flow."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from jobsim.stages.embed import make_batches as embed_batches
from jobsim.stages.prepare import prepare
from jobsim.settings import EmbeddingSettings, ExecutionSettings
from jobsim.synthetic import generate_jobs
from tests.helpers import seed_jobs, task_run_names


def test_rate_limits_are_split_between_parallel_batches() -> None:
    cfg = EmbeddingSettings(requests_per_minute=3000, tokens_per_minute=1_000_000, concurrency=4)
    assert cfg.shared_by(1) is cfg
    half = cfg.shared_by(2)
    assert (half.requests_per_minute, half.tokens_per_minute, half.concurrency) == (1500, 500_000, 2)
    many = cfg.shared_by(10_000)  # never below what one request needs
    assert many.requests_per_minute == 1 and many.tokens_per_minute == 1000 and many.concurrency == 1
    assert many.model == cfg.model and many.dimensions == cfg.dimensions


def test_embed_batches_cover_every_job_once_in_order() -> None:
    now = datetime.now(timezone.utc)
    prepared = prepare(generate_jobs(300, seed=5, now=now), now, "m", 64)
    to_embed = list(range(0, len(prepared.jobs), 2))
    batches = embed_batches(prepared, to_embed, 40)
    assert [len(b.ids) for b in batches] == [40] * (len(to_embed) // 40) + (
        [len(to_embed) % 40] if len(to_embed) % 40 else [])
    assert [i for b in batches for i in b.ids] == [prepared.jobs[i].id for i in to_embed]
    assert [h for b in batches for h in b.hashes] == [prepared.hashes[i] for i in to_embed]
    assert all(len(b.texts) == len(b.languages) == len(b.ids) for b in batches)
    assert embed_batches(prepared, [], 40) == []


def test_task_runner_choice(tmp_path) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from tasks.runner import make_task_runner

    threads = make_task_runner(ExecutionSettings(workers=3))
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 3
    local = make_task_runner(ExecutionSettings(task_runner="dask", workers=2, dask_worker_memory_mb=512,
                                               dask_temporary_directory=str(tmp_path / "scratch")))
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert local.cluster_kwargs == {"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                    "dashboard_address": ":0", "local_directory": str(tmp_path / "scratch"),
                                    "memory_limit": "512MiB"}
    assert (tmp_path / "scratch").is_dir()
    remote = make_task_runner(ExecutionSettings(task_runner="dask", dask_address="tcp://10.0.0.5:8786"))
    assert remote.address == "tcp://10.0.0.5:8786" and not remote.cluster_kwargs


@pytest.mark.usefixtures("prefect_harness")
def test_thread_runner_embeds_in_batches(settings, db, monkeypatch) -> None:
    from flows.refresh import similarity_refresh
    seed_jobs(settings, 260)
    monkeypatch.setenv("JOBSIM_EXECUTION__EMBED_BATCH_JOBS", "100")
    summary = asyncio.run(similarity_refresh(mode="full"))
    assert summary["embedded"] == summary["valid"] > 200
    assert task_run_names(summary["run_id"]).count("embed-batch") == -(-summary["valid"] // 100)
    assert db.job_embeddings.count_documents({}) == summary["valid"]
    assert db.jobs.count_documents({"embedding.status": "completed"}) == summary["valid"]
