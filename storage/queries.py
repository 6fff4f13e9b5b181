"""The contract's rules (:mod:`jobsim.contract`) as MongoDB queries.

Each query matches exactly the documents the rule accepts (``tests/test_queries.py`` checks
them against the rules on edge-case documents through the real server).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from jobsim.contract import ACTIVE, PULL_FIELDS, UNSETTLED

PULL_PROJECTION = {name: 1 for name in PULL_FIELDS}


def active_filter(now: datetime) -> dict[str, Any]:
    """:func:`jobsim.contract.is_active`: status "active", not deleted, expiresAt absent,
    null or a date after ``now`` (a non-date expiresAt never matches)."""
    return {
        "status": ACTIVE,
        "isDeleted": {"$ne": True},
        "$or": [{"expiresAt": None}, {"expiresAt": {"$gt": now}}],
    }


def needs_check_filter(since: datetime | None, max_attempts: int, now: datetime) -> dict[str, Any]:
    """:func:`jobsim.contract.needs_check`: changed since ``since``, never checked, or unsettled."""
    if since is None:
        return {}
    return {"$or": [
        {"updatedAt": {"$gte": since}},
        {"updatedAt": {"$not": {"$type": "date"}}},
        {"embedding": {"$not": {"$type": "object"}}},
        {"embedding.status": {"$in": list(UNSETTLED)}, **active_filter(now)},
        {"embedding.status": "failed", "embedding.rejected": {"$ne": True},
         "embedding.attempts": {"$gte": 0, "$lt": max_attempts}},
    ]}


def listing_filter(now: datetime, closed_days: int) -> dict[str, Any]:
    """:func:`jobsim.contract.listing_role` is not None: active, or closed/expired less than
    ``closed_days`` ago (not deleted)."""
    since = now - timedelta(days=closed_days)
    return {"isDeleted": {"$ne": True}, "$or": [
        {"status": ACTIVE, "$or": [{"expiresAt": None}, {"expiresAt": {"$gt": since}}]},
        {"status": "closed", "updatedAt": {"$gte": since}},
    ]}
