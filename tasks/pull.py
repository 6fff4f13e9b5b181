"""Pull the jobs that changed since the watermark and prepare their embedding text."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from jobsim.pipeline import Prepared, RunInfo, prepare, rejection_message
from jobsim.settings import Settings
from storage import repositories
from tasks.common import IO_TASK, PURE_TASK


@task(name="pull-changed-jobs", **IO_TASK)
def pull_changed_jobs(settings: Settings, run: RunInfo) -> list[dict[str, Any]]:
    docs = repositories(settings.mongo).jobs.changed_since(run.since, settings.embedding.max_attempts)
    get_run_logger().info("pulled %d changed jobs", len(docs))
    return docs


@task(name="prepare-jobs", **PURE_TASK)
def prepare_jobs(settings: Settings, docs: list[dict[str, Any]], run: RunInfo) -> Prepared:
    prepared = prepare(docs, run.started_at, settings.embedding.model, settings.embedding.dimensions)
    get_run_logger().info("%d valid, %d rejected, %d inactive", len(prepared.jobs),
                          len(prepared.rejected), sum(prepared.inactive.values()))
    return prepared


@task(name="record-rejections", **IO_TASK)
def record_rejections(settings: Settings, prepared: Prepared, run: RunInfo) -> int:
    """Write each rejected job's reasons onto the job, where operators and the app see it."""
    messages = {job_id: rejection_message(r) for job_id, r in prepared.rejections_to_record().items()}
    return repositories(settings.mongo).jobs.mark_rejected(messages, run.started_at)
