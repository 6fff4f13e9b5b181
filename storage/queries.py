"""The contract's rules (:mod:`jobsim.contract`) as MongoDB queries.

Each query matches exactly the documents the rule accepts, except the pull's, whose union
holds them (the reader applies the rule); ``tests/test_queries.py`` checks them against the
rules on edge-case documents through the real server.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from jobsim.contract import ACTIVE, CHECK_FIELDS, PULL_FIELDS, UNSETTLED

PULL_PROJECTION = {name: 1 for name in PULL_FIELDS}
CHECK_PROJECTION = {name: 1 for name in CHECK_FIELDS}


def active_filter(now: datetime) -> dict[str, Any]:
    """:func:`jobsim.contract.is_active`: status "active", not deleted, expiresAt absent,
    null or a date after ``now`` (a non-date expiresAt never matches)."""
    return {
        "status": ACTIVE,
        "isDeleted": {"$ne": True},
        "$or": [{"expiresAt": None}, {"expiresAt": {"$gt": now}}],
    }


def pull_queries(since: datetime | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """:func:`jobsim.contract.needs_check` as single-field queries, each answered from one
    index (``updatedAt``, ``embedding.status``: :func:`pull_indexes`; SecantusDB scans the
    collection for any query with a second predicate or a negation, MongoDB for an ``$or``
    with one unindexed branch). Returns the queries whose every match is pulled (changed
    since ``since``, no ``updatedAt``) and the query on the embedding state whose matches
    the rule then sorts (it also returns settled failures and unsettled jobs not shown)."""
    if since is None:
        return [{}], None
    return ([{"updatedAt": {"$gte": since}}, {"updatedAt": None}],
            {"embedding.status": {"$in": [None, *UNSETTLED, "failed"]}})


def pull_indexes() -> list[str]:
    """The single-field indexes :func:`pull_queries` are answered from."""
    return ["updatedAt", "embedding.status"]


def listing_filter(now: datetime, closed_days: int) -> dict[str, Any]:
    """:func:`jobsim.contract.listing_role` is not None: active, or closed/expired less than
    ``closed_days`` ago (not deleted)."""
    since = now - timedelta(days=closed_days)
    return {"isDeleted": {"$ne": True}, "$or": [
        {"status": ACTIVE, "$or": [{"expiresAt": None}, {"expiresAt": {"$gt": since}}]},
        {"status": "closed", "updatedAt": {"$gte": since}},
    ]}
