"""Run records and the watermark."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prefect import get_run_logger, task

from jobsim.pipeline import RunInfo, RunSummary
from jobsim.settings import Settings
from storage import repositories
from tasks.common import IO_TASK


@task(name="start-run", **IO_TASK)
def start_run(settings: Settings, run_id: str, mode: str) -> RunInfo:
    state = repositories(settings.mongo).state
    started = datetime.now(timezone.utc)
    since = None if mode == "full" else state.watermark()
    state.start_run(run_id, mode, started, {"mode": mode})
    get_run_logger().info("run %s (%s), pulling changes since %s", run_id, mode, since or "the beginning")
    return RunInfo(run_id=run_id, mode=mode, started_at=started, since=since)


@task(name="finish-run", **IO_TASK)
def finish_run(settings: Settings, run: RunInfo, summary: RunSummary) -> None:
    """Record the summary, then advance the watermark to this run's start (less the overlap)."""
    state = repositories(settings.mongo).state
    state.finish_run(run.run_id, "completed", datetime.now(timezone.utc), summary.as_dict())
    state.set_watermark(run.started_at - timedelta(seconds=settings.watermark_overlap_s), run.run_id)
