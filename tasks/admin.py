"""Admin actions as tasks: reset failed or stale jobs, old run records, recompute requests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from prefect import get_run_logger, task

from jobsim.settings import Settings
from storage import repositories
from tasks.common import IO_TASK


@task(name="reset-failed-attempts", **IO_TASK)
def reset_failed_attempts(settings: Settings, job_ids: list[str] | None = None) -> int:
    """Failed (not rejected) embeddings back to pending with zero attempts (``job_ids`` = keys)."""
    count = repositories(settings).jobs.reset_failed_attempts(job_ids)
    get_run_logger().info("reset %d failed embeddings to pending", count)
    return count


@task(name="reset-stale-processing", **IO_TASK)
def reset_stale_processing(settings: Settings, older_than_minutes: int) -> int:
    cutoff = datetime.now(timezone.utc) - timedelta(minutes=older_than_minutes)
    count = repositories(settings).jobs.reset_stale_processing(cutoff)
    get_run_logger().info("%d jobs stuck in processing since before %s back to pending", count,
                          cutoff.isoformat(timespec="seconds"))
    return count


@task(name="delete-old-runs", **IO_TASK)
def delete_old_runs(settings: Settings, older_than_days: int) -> int:
    cutoff = datetime.now(timezone.utc) - timedelta(days=older_than_days)
    count = repositories(settings).state.delete_runs_before(cutoff)
    get_run_logger().info("deleted %d run records started before %s", count, cutoff.date())
    return count


@task(name="pending-recompute-requests", **IO_TASK)
def pending_recompute_requests(settings: Settings) -> list[str]:
    """Keys of the jobs the read side asked to recompute (oldest request first)."""
    pending = list(repositories(settings).requests.pending())
    get_run_logger().info("%d recompute requests pending", len(pending))
    return pending


@task(name="clear-recompute-requests", **IO_TASK)
def clear_recompute_requests(settings: Settings, served_at: datetime) -> int:
    """Drop the requests made before ``served_at`` (the start of the run that served them)."""
    return repositories(settings).requests.clear_before(served_at)
