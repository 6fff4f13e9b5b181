"""Test helpers that build real state in the local MongoDB."""

from __future__ import annotations

from datetime import datetime, timezone

from jobsim.settings import Settings
from jobsim.synthetic import generate_jobs
from storage import imports


def seed_jobs(settings: Settings, n: int, seed: int = 3) -> int:
    """Insert ``n`` synthetic postings through the import path; returns how many were inserted."""
    jobs = imports(settings)
    jobs.ensure_indexes()
    inserted, _ = jobs.upsert_imported(generate_jobs(n, seed=seed), datetime.now(timezone.utc))
    return inserted


def task_run_names(flow_run_id: str) -> list[str]:
    """Names (without the run suffix) of the task runs of one flow run, from the Prefect API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [r.name.rsplit("-", 1)[0] for r in runs]
