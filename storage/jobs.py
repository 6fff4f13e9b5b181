"""Repository of the ``jobs`` collection (the web app's postings), as the pipeline uses it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateOne, WriteConcern
from pymongo.database import Database

from jobsim.repositories import EmbeddedMark, JobContexts, Neighbours
from storage.ids import to_key, to_mongo_id, to_mongo_ids
from storage.lists import read_stored_list
from storage.queries import PULL_PROJECTION, active_filter, needs_check_filter

log = logging.getLogger(__name__)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _keyed(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out = list(docs)
    for doc in out:
        doc["_id"] = to_key(doc["_id"])
    return out


class JobsRepository:
    def __init__(self, db: Database, collection: str = "jobs", batch_size: int = 500) -> None:
        # Pipeline writes must survive a server crash: journaled write concern.
        self.collection = db.get_collection(collection, write_concern=WriteConcern(w=1, j=True))
        self.batch_size = batch_size

    # -- reads -------------------------------------------------------------
    def changed_since(self, since: datetime | None, max_attempts: int) -> list[dict[str, Any]]:
        """Raw documents to (re)check (``_id`` as a key): changed since ``since`` or unsettled."""
        return _keyed(self.collection.find(needs_check_filter(since, max_attempts), PULL_PROJECTION,
                                           batch_size=2000))

    def by_ids(self, job_ids: list[str]) -> list[dict[str, Any]]:
        """Raw documents of the given jobs (to re-check them regardless of the watermark)."""
        docs: list[dict[str, Any]] = []
        for chunk in chunks(job_ids, self.batch_size):
            docs += self.collection.find({"_id": {"$in": to_mongo_ids(chunk)}}, PULL_PROJECTION)
        return _keyed(docs)

    def active_context(self, now: datetime) -> JobContexts:
        """Key, contentHash and the raw context fields of every active, embedded job."""
        query = {**active_filter(now), "embedding.status": "completed"}
        projection = {"category": 1, "experienceLevel": 1, "location": 1, "embedding.contentHash": 1}
        out = JobContexts()
        for doc in self.collection.find(query, projection, batch_size=5000):
            out.append(to_key(doc["_id"]), doc)
        return out

    def stored_lists(self) -> dict[str, Neighbours | None]:
        """Every stored ``similarJobs`` that is not empty: (neighbour key, score) in stored
        order, or None when it cannot be read (it is then rewritten or cleared)."""
        cursor = self.collection.find({"similarJobs": {"$exists": True, "$ne": []}}, {"similarJobs": 1},
                                      batch_size=5000)
        return {to_key(doc["_id"]): read_stored_list(doc.get("similarJobs")) for doc in cursor}

    def count_active(self, now: datetime) -> int:
        return self.collection.count_documents(active_filter(now))

    # -- writes ------------------------------------------------------------
    def _bulk(self, ops: list[UpdateOne]) -> int:
        written = 0
        for chunk in chunks(ops, self.batch_size):
            written += self.collection.bulk_write(chunk, ordered=False).modified_count
        return written

    def _update_many(self, job_ids: list[str], update: dict[str, Any]) -> None:
        for chunk in chunks(job_ids, self.batch_size):
            self.collection.update_many({"_id": {"$in": to_mongo_ids(chunk)}}, update)

    def mark_processing(self, job_ids: list[str], now: datetime) -> None:
        self._update_many(job_ids, {"$set": {"embedding.status": "processing", "embedding.startedAt": now}})

    def mark_pending(self, job_ids: list[str]) -> None:
        """Back to ``pending`` (a transient failure): retried next run, no attempt spent."""
        self._update_many(job_ids, {"$set": {"embedding.status": "pending"}, "$unset": {"embedding.startedAt": ""}})

    def mark_embedded(self, marks: Iterable[EmbeddedMark], model: str, now: datetime) -> int:
        return self._bulk([
            UpdateOne({"_id": to_mongo_id(m.job_id)}, {
                "$set": {
                    "embedding.status": "completed", "embedding.model": model,
                    "embedding.contentHash": m.content_hash, "embedding.generatedAt": now,
                    "embedding.language": m.language, "embedding.attempts": 0,
                },
                "$unset": {"embedding.error": "", "embedding.rejected": "", "embedding.startedAt": ""},
            })
            for m in marks
        ])

    def mark_failed(self, failures: dict[str, tuple[str, int]], now: datetime) -> int:
        """Embedding failed: keep the reason and the attempts now spent."""
        return self._bulk([
            UpdateOne({"_id": to_mongo_id(job_id)}, {
                "$set": {"embedding.status": "failed", "embedding.error": reason[:500],
                         "embedding.failedAt": now, "embedding.attempts": attempts},
                "$unset": {"embedding.rejected": "", "embedding.startedAt": ""},
            })
            for job_id, (reason, attempts) in failures.items()
        ])

    def mark_rejected(self, rejections: dict[str, str], now: datetime) -> int:
        """Invalid document: record why (``{job key: message}``), so an operator can fix it."""
        return self._bulk([
            UpdateOne({"_id": to_mongo_id(job_id)}, {
                "$set": {"embedding.status": "failed", "embedding.rejected": True,
                         "embedding.error": message, "embedding.failedAt": now},
                "$unset": {"embedding.startedAt": ""},
            })
            for job_id, message in rejections.items()
        ])

    def write_lists(self, lists: dict[str, Neighbours], now: datetime, job_count: int, recompute_days: int) -> int:
        """Replace ``similarJobs`` and ``similarityMetadata`` of the given jobs."""
        metadata = {"lastComputed": now, "nextComputeAt": now + timedelta(days=recompute_days),
                    "jobCountWhenComputed": job_count}
        return self._bulk([
            UpdateOne({"_id": to_mongo_id(job_id)}, {"$set": {
                "similarJobs": [{"jobId": to_mongo_id(other), "score": score, "computedAt": now}
                                for other, score in items],
                "similarityMetadata": metadata,
            }})
            for job_id, items in lists.items()
        ])

    # -- admin (ops) ---------------------------------------------------------------
    def reset_failed_attempts(self, job_ids: list[str] | None = None) -> int:
        """Embedding failures (not rejections) back to pending with zero attempts."""
        query: dict[str, Any] = {"embedding.status": "failed", "embedding.rejected": {"$ne": True}}
        if job_ids is not None:
            query["_id"] = {"$in": to_mongo_ids(job_ids)}
        return self.collection.update_many(
            query, {"$set": {"embedding.status": "pending", "embedding.attempts": 0}},
        ).modified_count

    def reset_stale_processing(self, started_before: datetime) -> int:
        """``processing`` states left by a crashed run (started before the cutoff) to pending."""
        return self.collection.update_many(
            {"embedding.status": "processing", "$or": [
                {"embedding.startedAt": {"$lt": started_before}}, {"embedding.startedAt": None}]},
            {"$set": {"embedding.status": "pending"}, "$unset": {"embedding.startedAt": ""}},
        ).modified_count

    def failed_jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest failed or rejected jobs with their reasons (newest first)."""
        cursor = self.collection.find(
            {"embedding.status": "failed"},
            {"title": 1, "embedding.error": 1, "embedding.attempts": 1, "embedding.rejected": 1,
             "embedding.failedAt": 1},
        ).sort("embedding.failedAt", -1).limit(limit)
        out = []
        for doc in cursor:
            state = doc.get("embedding") if isinstance(doc.get("embedding"), dict) else {}
            out.append({"id": to_key(doc["_id"]), "title": doc.get("title"), "error": state.get("error"),
                        "attempts": state.get("attempts"), "rejected": state.get("rejected") is True,
                        "failedAt": state.get("failedAt")})
        return out
