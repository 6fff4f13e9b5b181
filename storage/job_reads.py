"""Read-only repository of the ``jobs`` collection for the read side (API and exports).

It only ever reads, so the API's MongoDB user can be read-only on ``jobs``. Every id
reaching a query here has already been validated by the caller (``ObjectId`` or a
plain string), and the only other query values are taken from stored documents after
a type check, so no caller-supplied operator can reach MongoDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from jobsim.contract import is_active
from storage.ids import to_key as job_key
from storage.queries import active_filter

# What a result card shows (the fields the seed's "Get Similar" selects).
CARD_PROJECTION = {
    "title": 1, "company": 1, "location": 1, "salary": 1, "category": 1, "createdAt": 1,
}
# What deciding whether a job is still shown needs.
ACTIVITY_PROJECTION = {"status": 1, "isDeleted": 1, "expiresAt": 1}
# What deciding between the semantic path and the fallback needs.
SUBJECT_PROJECTION = {
    "status": 1, "isDeleted": 1, "expiresAt": 1, "category": 1, "location": 1,
    "embedding.status": 1, "similarJobs": 1,
}


@dataclass(frozen=True)
class StoredList:
    """One job's stored neighbour list: (neighbour id, score) in stored order."""

    job_id: str
    items: tuple[tuple[str, float], ...]
    computed_at: datetime | None


def stored_items(raw: Any) -> list[tuple[Any, float]]:
    """Well-formed ``similarJobs`` entries as (raw jobId, score); malformed ones are skipped."""
    items: list[tuple[Any, float]] = []
    if not isinstance(raw, list):
        return items
    for item in raw:
        if not isinstance(item, dict):
            continue
        other, score = item.get("jobId"), item.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            continue
        if other is None or isinstance(other, (dict, list, bool)):
            continue
        items.append((other, float(score)))
    return items


class JobReadsRepository:
    def __init__(self, db: Database, collection: str = "jobs") -> None:
        self.collection = db.get_collection(collection)

    def ping(self) -> None:
        """Raise when the server is unreachable."""
        self.collection.database.command("ping")

    def subject(self, mongo_id: Any) -> dict[str, Any] | None:
        """The job asked about (only the fields the decision needs), or None."""
        return self.collection.find_one({"_id": mongo_id}, SUBJECT_PROJECTION)

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
        self, category: str | None, city: str | None, exclude: list[Any], now: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """Newest active jobs of the same category or the same city, ``exclude`` left out."""
        either = []
        if category:
            either.append({"category": category})
        if city:
            either.append({"location.city": city})
        if not either or limit <= 0:
            return []
        # active_filter has its own $or (expiry): combine both under $and.
        query = {"$and": [active_filter(now), {"$or": either}, {"_id": {"$nin": exclude}}]}
        cursor = self.collection.find(query, CARD_PROJECTION).sort(
            [("createdAt", DESCENDING), ("_id", DESCENDING)]
        ).limit(limit)
        return list(cursor)

    def active_ids(self, now: datetime) -> set[str]:
        """Keys of every job the web app shows now."""
        return {job_key(d["_id"]) for d in self.collection.find(active_filter(now), {"_id": 1}, batch_size=10_000)}

    def stored_lists(self, batch_size: int = 5000) -> Iterator[StoredList]:
        """Every job's stored neighbour list (non-empty ones only), streamed."""
        cursor = self.collection.find(
            {"similarJobs.0": {"$exists": True}},
            {"similarJobs": 1, "similarityMetadata.lastComputed": 1},
            batch_size=batch_size,
        )
        for doc in cursor:
            meta = doc.get("similarityMetadata")
            computed = meta.get("lastComputed") if isinstance(meta, dict) else None
            yield StoredList(
                job_id=job_key(doc["_id"]),
                items=tuple((job_key(o), s) for o, s in stored_items(doc.get("similarJobs"))),
                computed_at=computed if isinstance(computed, datetime) else None,
            )
