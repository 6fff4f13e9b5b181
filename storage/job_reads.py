"""Read-only repository of the ``jobs`` collection for the read side (API and exports).

It only ever reads, so the API's MongoDB user can be read-only on ``jobs``. Every id
reaching a query here has already been validated by the caller (``ObjectId`` or a
plain string), and the only other query values are taken from stored documents after
a type check, so no caller-supplied operator can reach MongoDB.

Stored lists are read leniently: a malformed entry (``score: "high"``, ``score: None``,
``jobId: {…}``) is skipped and the well-formed entries of the same list are still served.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pymongo
from bson import ObjectId
from pymongo import DESCENDING
from pymongo.database import Database

from jobsim.contract import is_active
from jobsim.repositories import MATCH_CODES
from storage.ids import to_key as job_key
from storage.queries import active_filter

# What a result card shows (the fields the seed's "Get Similar" selects), and the group.
CARD_PROJECTION = {
    "title": 1, "company": 1, "location": 1, "salary": 1, "category": 1, "createdAt": 1,
    "duplicateGroup": 1,
}
# What deciding whether a job is still shown needs.
ACTIVITY_PROJECTION = {"status": 1, "isDeleted": 1, "expiresAt": 1}
# What deciding between the semantic path and the fallback needs.
SUBJECT_PROJECTION = {
    **ACTIVITY_PROJECTION, "category": 1, "location": 1, "embedding.status": 1, "similarJobs": 1,
    "duplicateGroup": 1,
}


@dataclass(frozen=True)
class StoredEntry:
    """One well-formed ``similarJobs`` entry; ``cosine``/``match`` are None on old entries."""

    job_id: ObjectId | str
    score: float
    cosine: float | None = None
    match: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return job_key(self.job_id)


@dataclass(frozen=True)
class StoredList:
    """One job's stored neighbour list, in stored order (keys, see :mod:`jobsim.ids`)."""

    job_id: str
    items: tuple[StoredEntry, ...]
    computed_at: datetime | None
    open: bool = True  # the job itself is active (False: closed, expired, draft or deleted)
    deleted: bool = False


def _unit(value: Any) -> float | None:
    """A finite number clamped to 0..1, or None (bools, strings, NaN are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return min(max(float(value), 0.0), 1.0)


def _match_codes(value: Any) -> tuple[str, ...] | None:
    """The known codes of a stored ``match`` list, in stored order, each once; None if absent."""
    if not isinstance(value, list):
        return None
    codes: list[str] = []
    for code in value:
        if isinstance(code, str) and code in MATCH_CODES and code not in codes:
            codes.append(code)
    return tuple(codes)


def parse_entry(item: Any) -> StoredEntry | None:
    """A stored entry, or None when it is malformed (no usable id or score)."""
    if not isinstance(item, dict):
        return None
    other, score = item.get("jobId"), _unit(item.get("score"))
    if score is None or not isinstance(other, (ObjectId, str)) or other == "":
        return None
    return StoredEntry(other, score, _unit(item.get("cosine")), _match_codes(item.get("match")))


def stored_entries(raw: Any) -> list[StoredEntry]:
    """The well-formed entries of a stored ``similarJobs`` value; malformed ones are skipped."""
    if not isinstance(raw, list):
        return []
    return [entry for entry in map(parse_entry, raw) if entry is not None]


def group_of(doc: dict[str, Any]) -> ObjectId | str | None:
    """The ``duplicateGroup`` of a job (its original posting's ``_id``), or None."""
    group = doc.get("duplicateGroup")
    return group if isinstance(group, (ObjectId, str)) and group != "" else None


class JobReadsRepository:
    def __init__(self, db: Database, collection: str = "jobs") -> None:
        self.collection = db.get_collection(collection)

    def ping(self, timeout_s: float | None = None) -> None:
        """Raise when the server is unreachable (within ``timeout_s`` when given)."""
        if timeout_s is None:
            self.collection.database.command("ping")
            return
        with pymongo.timeout(timeout_s):  # bounds server selection too (client-side timeout)
            self.collection.database.command("ping")

    def subject(self, candidates: Sequence[Any]) -> dict[str, Any] | None:
        """The job asked about (only the fields the decision needs), or None.

        ``candidates`` are the ``_id`` values the caller's id may mean, in preference order
        (an ObjectId before the string of the same hex): one query; the first one found that
        is not deleted wins (a deleted job is no job), else the first one found.
        """
        if not candidates:
            return None
        found = {job_key(d["_id"]): d for d in
                 self.collection.find({"_id": {"$in": list(candidates)}}, SUBJECT_PROJECTION)}
        ordered = [found[job_key(c)] for c in candidates if job_key(c) in found]
        live = [doc for doc in ordered if doc.get("isDeleted") is not True]
        return (live or ordered or [None])[0]

    def live_cards(self, mongo_ids: list[Any], now: datetime) -> dict[str, dict[str, Any]]:
        """Cards of those given jobs still active, not deleted, not expired — one ``$in`` query.

        The query is ``_id`` alone and the activity check runs here (:func:`is_active`, the
        same rule as ``active_filter``): SecantusDB only uses the ``_id`` index when ``_id``
        is the whole filter (with the status predicates added it scans the collection:
        ~115 ms instead of ~1.5 ms at 2k jobs); MongoDB does the same work either way.
        """
        if not mongo_ids:
            return {}
        projection = {**CARD_PROJECTION, **ACTIVITY_PROJECTION}
        docs = self.collection.find({"_id": {"$in": mongo_ids}}, projection)
        return {job_key(doc["_id"]): doc for doc in docs if is_active(doc, now)}

    def fallback_cards(
        self, category: str | None, city: str | None, exclude: list[Any], now: datetime, limit: int,
        group: ObjectId | str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest active jobs of the same category or the same city, ``exclude`` and the
        members of duplicate group ``group`` (the original included) left out."""
        either = []
        if category:
            either.append({"category": category})
        if city:
            either.append({"location.city": city})
        if not either or limit <= 0:
            return []
        excluded = [*exclude, group] if group is not None else list(exclude)
        # active_filter has its own $or (expiry): combine both under $and.
        clauses = [active_filter(now), {"$or": either}, {"_id": {"$nin": excluded}}]
        if group is not None:
            clauses.append({"duplicateGroup": {"$ne": group}})
        cursor = self.collection.find({"$and": clauses}, CARD_PROJECTION).sort(
            [("createdAt", DESCENDING), ("_id", DESCENDING)]
        ).limit(limit)
        return list(cursor)

    def active_ids(self, now: datetime) -> set[str]:
        """Keys of every job the web app shows now."""
        return {job_key(d["_id"]) for d in self.collection.find(active_filter(now), {"_id": 1}, batch_size=10_000)}

    def stored_lists(self, now: datetime, batch_size: int = 5000) -> Iterator[StoredList]:
        """Every job's stored neighbour list (non-empty ones only), streamed.

        Jobs whose ``_id`` is neither an ObjectId nor a string are skipped (the contract has
        no other id types; the pipeline never lists them)."""
        cursor = self.collection.find(
            {"similarJobs.0": {"$exists": True}},
            {"similarJobs": 1, "similarityMetadata.lastComputed": 1, **ACTIVITY_PROJECTION},
            batch_size=batch_size,
        )
        for doc in cursor:
            if not isinstance(doc["_id"], (ObjectId, str)):
                continue
            meta = doc.get("similarityMetadata")
            computed = meta.get("lastComputed") if isinstance(meta, dict) else None
            yield StoredList(
                job_id=job_key(doc["_id"]),
                items=tuple(stored_entries(doc.get("similarJobs"))),
                computed_at=computed if isinstance(computed, datetime) else None,
                open=is_active(doc, now),
                deleted=doc.get("isDeleted") is True,
            )
