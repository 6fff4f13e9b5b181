"""Operator flows: after a bulk import, retry failed embeddings, recompute jobs, housekeeping.

Each one only orders steps; the refresh steps are ``flows.refresh.refresh``. Like the refresh,
each flow is ``async def`` around synchronous steps (:func:`flows.refresh.steps`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field, StringConstraints

from flows.refresh import Mode, refresh, steps, writer_slot
from jobsim.ids import key_from_display
from jobsim.settings import Settings
from tasks.admin import delete_old_runs, reset_failed_attempts, reset_stale_processing
from tasks.run_state import writer_lease

JobId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                         pattern=r"^[A-Za-z0-9_.:\-]+$")]
Count = Annotated[int, Field(ge=0)]


@flow(name="refresh-after-import")
async def refresh_after_import(
    import_id: Annotated[str, StringConstraints(min_length=1, max_length=200)],
    source: str = "",
    file: str = "",
    rows: Count = 0,
    inserted: Count = 0,
    updated: Count = 0,
    rejected: Count = 0,
) -> dict:
    """Incremental refresh started by a ``jobsim.import.completed`` event (its payload = the
    parameters): the imported rows carry a fresh ``updatedAt``, so the watermark finds them."""
    context = {"import_id": import_id, "source": source, "file": file, "rows": rows,
               "inserted": inserted, "updated": updated, "rejected": rejected}
    return {**steps(refresh, Settings(), "incremental", context=context), "import": context}


@flow(name="retry-failed-embeddings")
async def retry_failed_embeddings(job_ids: list[JobId] | None = None, mode: Mode = "incremental") -> dict:
    """Give failed (not rejected) embeddings a fresh set of attempts, then refresh.

    ``job_ids`` limits the reset to those jobs; none = every failed job.
    """
    return steps(_retry_failed, job_ids, mode)


def _retry_failed(job_ids: list[str] | None, mode: Mode) -> dict:
    settings = Settings()
    keys = [key_from_display(i) for i in job_ids] if job_ids is not None else None
    with writer_slot(settings), writer_lease(settings, str(flow_run.id or uuid.uuid4())):
        reset = reset_failed_attempts(settings, keys)
    return {**refresh(settings, mode, job_ids=keys, context={"reset_failed": reset}), "reset_failed": reset}


@flow(name="recompute-jobs")
async def recompute_jobs(job_ids: list[JobId] | None = None, include_requests: bool = True) -> dict:
    """Re-check the given jobs (and those the read side asked for) whatever the watermark,
    then recompute and write every list that changed."""
    context = {"job_ids": len(job_ids or []), "include_requests": include_requests}
    keys = [key_from_display(i) for i in job_ids or []]
    return steps(refresh, Settings(), "incremental", job_ids=keys, context=context, serve_requests=include_requests)


@flow(name="housekeeping")
async def housekeeping(
    stale_processing_minutes: Annotated[int, Field(ge=1)] | None = None,
    keep_runs_days: Annotated[int, Field(ge=1)] | None = None,
) -> dict[str, Any]:
    """Stale ``processing`` states back to pending; old run records deleted.

    Unset parameters take ``JOBSIM_OPS__STALE_PROCESSING_MINUTES`` / ``JOBSIM_OPS__KEEP_RUNS_DAYS``.
    """
    return steps(_housekeeping, stale_processing_minutes, keep_runs_days)


def _housekeeping(stale_processing_minutes: int | None, keep_runs_days: int | None) -> dict[str, Any]:
    settings = Settings()
    minutes = stale_processing_minutes or settings.ops.stale_processing_minutes
    days = keep_runs_days or settings.ops.keep_runs_days
    with writer_slot(settings), writer_lease(settings, str(flow_run.id or uuid.uuid4())):  # never under a refresh
        stale = reset_stale_processing(settings, minutes)
        deleted = delete_old_runs(settings, days)
    return {"stale_processing_reset": stale, "run_records_deleted": deleted}
