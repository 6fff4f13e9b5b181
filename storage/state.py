"""Repository of the ``pipeline_state`` collection: watermark and run records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING, WriteConcern
from pymongo.database import Database

WATERMARK_ID = "watermark:similarity-refresh"


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
