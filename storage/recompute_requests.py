"""Repository of the ``recompute_requests`` collection: jobs whose list went stale.

The read side's only write. One document per job (``_id`` = the job's ``_id``), so
repeated requests for the same job collapse into one; the pipeline reads and clears them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.database import Database

from storage.ids import to_key as job_key


class RecomputeRequestsRepository:
    def __init__(self, db: Database, collection: str = "recompute_requests") -> None:
        self.collection = db.get_collection(collection)

    def request(self, mongo_id: Any, reason: str, live: int, stored: int, now: datetime) -> None:
        """Record (or refresh) a request to recompute one job's list."""
        self.collection.update_one(
            {"_id": mongo_id},
            {
                "$set": {"reason": reason, "liveNeighbours": live, "storedNeighbours": stored},
                "$max": {"requestedAt": now},
                "$setOnInsert": {"firstRequestedAt": now},
                "$inc": {"count": 1},
            },
            upsert=True,
        )

    def pending(self, limit: int = 10_000) -> dict[str, datetime]:
        """Job key → latest request time, oldest first."""
        cursor = self.collection.find({}, {"requestedAt": 1}).sort("requestedAt", 1).limit(limit)
        return {job_key(doc["_id"]): doc.get("requestedAt") for doc in cursor}

    def clear_before(self, cutoff: datetime) -> int:
        """Drop requests made before ``cutoff`` (a run that started at ``cutoff`` served them)."""
        return self.collection.delete_many({"requestedAt": {"$lt": cutoff}}).deleted_count
