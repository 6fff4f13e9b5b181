"""Repository of the ``pipeline_state`` collection: watermark and run records."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bson.binary import Binary
from pymongo import DESCENDING, ReturnDocument, WriteConcern
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

WATERMARK_ID = "watermark:similarity-refresh"
LEASE_PREFIX = "lease:"
SNAPSHOT_ID = "write-back"
EMBEDDER_PREFIX = "embedder:"


class StateRepository:
    def __init__(self, db: Database, collection: str = "pipeline_state") -> None:
        self.collection = db.get_collection(collection, write_concern=WriteConcern(w=1, j=True))

    def watermark(self) -> datetime | None:
        doc = self.collection.find_one({"_id": WATERMARK_ID})
        return doc.get("value") if doc else None

    def set_watermark(self, value: datetime, run_id: str) -> None:
        """Move the watermark forward (never back)."""
        current = self.watermark()
        if current is not None and current >= value:
            return
        self.collection.update_one(
            {"_id": WATERMARK_ID}, {"$set": {"value": value, "runId": run_id}}, upsert=True
        )

    def start_run(self, run_id: str, mode: str, started_at: datetime, params: dict[str, Any]) -> None:
        self.collection.replace_one(
            {"_id": f"run:{run_id}"},
            {"kind": "run", "runId": run_id, "mode": mode, "status": "running",
             "startedAt": started_at, "params": params},
            upsert=True,
        )

    def finish_run(self, run_id: str, status: str, finished_at: datetime, summary: dict[str, Any]) -> None:
        self.collection.update_one(
            {"_id": f"run:{run_id}"},
            {"$set": {"status": status, "finishedAt": finished_at, "summary": summary}},
        )

    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        cursor = self.collection.find({"kind": "run"}).sort("startedAt", DESCENDING).limit(limit)
        return list(cursor)

    def delete_runs_before(self, cutoff: datetime) -> int:
        """Delete run records started before ``cutoff`` (the watermark is never touched)."""
        return self.collection.delete_many({"kind": "run", "startedAt": {"$lt": cutoff}}).deleted_count

    # -- the writer lease: one writing run at a time, whatever launched it ---------------------
    def acquire_lease(self, name: str, owner: str, now: datetime, ttl: timedelta) -> dict[str, Any] | None:
        """Take the lease (free, expired, or already ours) atomically; None when another
        owner holds it. Returns the lease document."""
        try:
            return self.collection.find_one_and_update(
                {"_id": LEASE_PREFIX + name, "$or": [{"expiresAt": {"$lt": now}}, {"owner": owner}]},
                {"$set": {"owner": owner, "heartbeatAt": now, "expiresAt": now + ttl},
                 "$setOnInsert": {"acquiredAt": now}},
                upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:  # held by someone else and not expired
            return None

    def renew_lease(self, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        """Push the lease's expiry; False when it is no longer ours (it expired and was taken)."""
        result = self.collection.update_one({"_id": LEASE_PREFIX + name, "owner": owner},
                                            {"$set": {"heartbeatAt": now, "expiresAt": now + ttl}})
        return result.matched_count == 1

    def release_lease(self, name: str, owner: str) -> None:
        self.collection.delete_one({"_id": LEASE_PREFIX + name, "owner": owner})

    def lease(self, name: str) -> dict[str, Any] | None:
        return self.collection.find_one({"_id": LEASE_PREFIX + name})

    def mark_crashed(self, except_run: str, now: datetime) -> int:
        """Run records still "running" other than ``except_run`` (whose run holds the lease:
        the others' processes died) become "crashed"."""
        return self.collection.update_many(
            {"kind": "run", "status": "running", "runId": {"$ne": except_run}},
            {"$set": {"status": "crashed", "finishedAt": now}}).modified_count

    # -- which write-back the database reflects (the local snapshot is valid only for it) ------
    def mark_write_back(self, run_id: str, phase: str) -> None:
        """``phase`` "writing" before a run's first list write, "written" after its last; a
        journaled write, so once "written" is acknowledged the lists before it are durable too."""
        self.collection.update_one({"_id": SNAPSHOT_ID}, {"$set": {"runId": run_id, "phase": phase}}, upsert=True)

    def written_by(self) -> str | None:
        """The run whose write-back completed last, None while one is in progress (or none was)."""
        doc = self.collection.find_one({"_id": SNAPSHOT_ID})
        return doc.get("runId") if doc and doc.get("phase") == "written" else None

    # -- the corpus-fitted embedder's model (a few MB: one document) ----------------------------
    def embedder_model(self, name: str) -> bytes | None:
        doc = self.collection.find_one({"_id": EMBEDDER_PREFIX + name}, {"data": 1})
        return bytes(doc["data"]) if doc and isinstance(doc.get("data"), bytes) else None

    def save_embedder_model(self, name: str, version: str, data: bytes, now: datetime, texts: int) -> None:
        self.collection.replace_one({"_id": EMBEDDER_PREFIX + name},
                                    {"version": version, "data": Binary(data), "fittedAt": now, "texts": texts},
                                    upsert=True)
