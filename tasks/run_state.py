"""Run records and the watermark."""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import get_run_logger, task

from jobsim.settings import Settings
from jobsim.stages.lease import WriterLease
from jobsim.stages.runs import finish_run as finish, start_run as start
from jobsim.summary import RunInfo, RunSummary
from storage import repositories
from tasks.common import IO_TASK


@task(name="start-run", **IO_TASK)
def start_run(settings: Settings, run_id: str, mode: str) -> RunInfo:
    run = start(repositories(settings).state, run_id, mode, datetime.now(timezone.utc))
    get_run_logger().info("run %s (%s), pulling changes since %s", run_id, mode, run.since or "the beginning")
    return run


@task(name="finish-run", **IO_TASK)
def finish_run(settings: Settings, run: RunInfo, summary: RunSummary) -> None:
    """Record the summary, then advance the watermark to this run's start (less the overlap)."""
    finish(repositories(settings).state, run, summary, datetime.now(timezone.utc), settings.watermark_overlap_s)


def writer_lease(settings: Settings, owner: str) -> WriterLease:
    """The database's writer lease for this run (a context manager; held from the first read
    to the last write)."""
    ops = settings.ops
    return WriterLease(repositories(settings).state, owner, ops.writer_lease_s, ops.writer_wait_s)
