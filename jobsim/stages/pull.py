"""Pull: the jobs a run (re)checks."""

from __future__ import annotations

from typing import Any

from jobsim.repositories import JobsRepo
from jobsim.summary import RunInfo


def pull_changed(jobs: JobsRepo, run: RunInfo, max_attempts: int) -> list[dict[str, Any]]:
    """Raw documents changed since the run's watermark or not yet settled (all on a full run),
    found through the pull's indexes (created when missing)."""
    jobs.ensure_indexes()
    return jobs.changed_since(run.since, max_attempts, run.started_at)


def add_requested(jobs: JobsRepo, docs: list[dict[str, Any]], job_ids: list[str]) -> tuple[list[dict[str, Any]], int]:
    """``docs`` plus the requested jobs not already among them (re-checked whatever the
    watermark), and how many requested ids were not found."""
    have = {doc["_id"] for doc in docs}
    wanted = [i for i in dict.fromkeys(job_ids) if i not in have]
    extra = jobs.by_ids(wanted) if wanted else []
    return docs + extra, len(wanted) - len(extra)
