"""Pull the jobs a run re-checks and prepare their embedding text."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from jobsim.repositories import WriteOutcome
from jobsim.settings import Settings
from jobsim.stages.prepare import Prepared, prepare, record_rejections
from jobsim.stages.pull import add_requested, pull_changed
from jobsim.summary import RunInfo
from storage import repositories
from tasks.common import IO_TASK, PURE_TASK


@task(name="pull-changed-jobs", **IO_TASK)
def pull_changed_jobs(settings: Settings, run: RunInfo) -> list[dict[str, Any]]:
    docs = pull_changed(repositories(settings).jobs, run, settings.embedding.max_attempts)
    get_run_logger().info("pulled %d changed jobs", len(docs))
    return docs


@task(name="add-requested-jobs", **IO_TASK)
def add_requested_jobs(settings: Settings, docs: list[dict[str, Any]], job_ids: list[str]) -> list[dict[str, Any]]:
    """``docs`` plus the requested jobs not already among them (re-checked whatever the watermark)."""
    out, missing = add_requested(repositories(settings).jobs, docs, job_ids)
    get_run_logger().info("%d requested jobs added to the run%s", len(out) - len(docs),
                          f", {missing} not found" if missing else "")
    return out


@task(name="prepare-jobs", **PURE_TASK)
def prepare_jobs(settings: Settings, docs: list[dict[str, Any]], run: RunInfo) -> Prepared:
    prepared = prepare(docs, run.started_at, settings.embedding.model, settings.embedding.dimensions,
                       settings.neighbours.closed_list_days)
    get_run_logger().info("%d valid, %d rejected, %d inactive", len(prepared.jobs),
                          len(prepared.rejected), sum(prepared.inactive.values()))
    return prepared


@task(name="record-rejections", **IO_TASK)
def record_rejections_task(settings: Settings, prepared: Prepared, run: RunInfo) -> WriteOutcome:
    """Write each rejected job's reasons onto the job, where operators and the app see it."""
    return record_rejections(repositories(settings).jobs, prepared, run.started_at)
