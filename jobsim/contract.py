"""The job data contract's rules, each defined once.

What the web app shows ("active"), what a valid stored date is, which jobs a run must
(re)check, how context labels are compared, which fields the pipeline reads. Pure: plain
dicts in, answers out. ``storage/queries.py`` translates these rules into MongoDB queries
(tested equal on edge-case documents), the in-memory repositories apply them directly.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from jobsim.text import clean_text

EXPERIENCE_LEVELS = ("entry", "junior", "mid", "senior", "lead", "executive")
JOB_STATUSES = ("active", "closed", "draft")
ACTIVE = "active"
EMBEDDING_STATUSES = ("pending", "processing", "completed", "failed")
UNSETTLED = ("pending", "processing")  # embedding states a run must pick up again

# The fields a run reads from a job: validation, embedding text, context, de-duplication.
PULL_FIELDS = (
    "title", "description", "category", "tags", "requirements", "location", "experienceLevel",
    "status", "isDeleted", "expiresAt", "updatedAt", "createdAt", "company", "embedding",
)
# The fields :func:`needs_check` reads.
CHECK_FIELDS = ("status", "isDeleted", "expiresAt", "updatedAt", "embedding")


def as_date(value: Any) -> datetime | None:
    """A stored date as an aware UTC datetime; None when absent (missing or null).

    The contract's dates are BSON dates: anything else (an ISO string included, which a
    MongoDB range query would silently never match) raises ValueError with the reason.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    shown = repr(value)[:40] if isinstance(value, str) else type(value).__name__
    raise ValueError(f"must be a date, got {shown}")


def inactive_reason(doc: dict[str, Any], now: datetime) -> str | None:
    """Why the web app does not show this job, or None when it does.

    Shown = ``status`` is exactly "active", ``isDeleted`` is not true, and ``expiresAt``
    is absent, null or a date after ``now``. A non-date ``expiresAt`` is not shown either
    ("invalid expiresAt"); validation rejects such a job with the reason.
    """
    if doc.get("isDeleted") is True:
        return "deleted"
    status = doc.get("status")
    if status != ACTIVE:
        return f"status {status!r}"[:60]
    try:
        expires = as_date(doc.get("expiresAt"))
    except ValueError:
        return "invalid expiresAt"
    if expires is not None and expires <= now:
        return "expired"
    return None


def is_active(doc: dict[str, Any], now: datetime) -> bool:
    """Whether the web app shows this job at ``now`` (see :func:`inactive_reason`)."""
    return inactive_reason(doc, now) is None


def _date_or_none(value: Any) -> datetime | None:
    try:
        return as_date(value)
    except ValueError:
        return None


def listing_role(doc: dict[str, Any], now: datetime, closed_days: int) -> str | None:
    """Whether a job gets a similar-jobs list, and as what.

    "active": shown (:func:`is_active`); its list holds active jobs and it is listed itself.
    "closed": closed (status "closed", closed = its last edit) or expired, not deleted, and
    closed less than ``closed_days`` ago: its list holds active jobs (its page is still
    visited), and it is never listed. None: no list (deleted, draft, closed long ago,
    invalid dates).
    """
    reason = inactive_reason(doc, now)
    if reason is None:
        return ACTIVE
    since = now - timedelta(days=closed_days)
    if reason != "deleted" and doc.get("status") == "closed":
        updated = _date_or_none(doc.get("updatedAt"))
        return "closed" if updated is not None and updated >= since else None
    if reason == "expired":
        expires = _date_or_none(doc.get("expiresAt"))
        return "closed" if expires is not None and expires > since else None
    return None


def holds_pipeline_list(doc: dict[str, Any]) -> bool:
    """Whether the pipeline's list fields on a job say anything: a ``duplicateGroup``, or a
    ``similarJobs`` other than the empty list (whatever its type: a wrong one is read as
    unreadable, and so rewritten or cleared)."""
    return "duplicateGroup" in doc or ("similarJobs" in doc and doc["similarJobs"] != [])


def embedding_state(doc: dict[str, Any]) -> dict[str, Any]:
    """The job's ``embedding`` sub-document, or {} when it is missing or not a document."""
    state = doc.get("embedding")
    return state if isinstance(state, dict) else {}


def never_checked(doc: dict[str, Any]) -> bool:
    """No embedding status on the job (what MongoDB's ``{"embedding.status": null}`` finds
    outside arrays)."""
    state = doc.get("embedding")
    return not isinstance(state, list) and embedding_state(doc).get("status") is None


def needs_check(doc: dict[str, Any], since: datetime | None, max_attempts: int, now: datetime) -> bool:
    """Whether an incremental run pulls this job: changed since the watermark (or no
    ``updatedAt`` at all: such a job is re-checked every run), never checked (no
    ``embedding.status``: the field missing, null, a scalar, or a document without a
    status), or not settled (pending/processing while shown at ``now``, failed with attempts
    left). Each of these is found from an index. Waiting for their next edit (or the next
    full run, which re-checks every job): an unsettled job that is not shown (e.g. it
    expired while pending), a checked job whose ``updatedAt`` is not a date (finding it
    every run would take a collection scan), and an ``embedding`` that is an array."""
    if since is None:
        return True
    raw = doc.get("updatedAt")
    updated = _date_or_none(raw)
    if raw is None or (updated is not None and updated >= since) or never_checked(doc):
        return True
    state = embedding_state(doc)
    status = state.get("status")
    if status in UNSETTLED and is_active(doc, now):
        return True
    attempts = attempts_spent(state)
    return status == "failed" and state.get("rejected") is not True and attempts is not None \
        and attempts < max_attempts


def attempts_spent(state: dict[str, Any]) -> int | None:
    """``embedding.attempts`` as a count, or None when it is missing or not a finite number ≥ 0."""
    value = state.get("attempts")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return int(value)


def normalise_label(value: Any) -> str:
    """A context label (category, city) as compared for the context bonus: cleaned text,
    case-folded; "" when absent or not text."""
    return _normalised(value) if isinstance(value, str) else ""


@lru_cache(maxsize=1 << 16)
def _normalised(label: str) -> str:
    """Labels repeat across a board's postings: each distinct one is cleaned once."""
    return clean_text(label).casefold()


def level_rank(value: Any) -> int:
    """Ordinal of an experience level in :data:`EXPERIENCE_LEVELS`; -1 when unknown."""
    return EXPERIENCE_LEVELS.index(value) if isinstance(value, str) and value in EXPERIENCE_LEVELS else -1
