"""Repository of the ``jobs`` collection (the web app's postings)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from pymongo import UpdateOne, WriteConcern
from pymongo.database import Database

from jobsim.jobs import EXPERIENCE_LEVELS
from jobsim.similarity import Neighbours
from storage.mongo import job_key, to_mongo_id

log = logging.getLogger(__name__)

# Fields read for validation and text preparation (never the stored lists).
PULL_PROJECTION = {
    "title": 1, "description": 1, "category": 1, "tags": 1, "requirements": 1,
    "location": 1, "experienceLevel": 1, "status": 1, "isDeleted": 1, "expiresAt": 1,
    "updatedAt": 1, "embedding": 1,
}



@dataclass(frozen=True)
class EmbeddedMark:
    job_id: str
    content_hash: str
    language: str = "unknown"


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def active_filter(now: datetime) -> dict[str, Any]:
    """Jobs the web app shows: active, not deleted, not expired at ``now``."""
    return {
        "status": "active",
        "isDeleted": {"$ne": True},
        "$or": [{"expiresAt": None}, {"expiresAt": {"$gt": now}}],
    }


class JobsRepository:
    def __init__(self, db: Database, collection: str = "jobs", batch_size: int = 500) -> None:
        # Pipeline writes must survive a server crash: journaled write concern.
        self.collection = db.get_collection(collection, write_concern=WriteConcern(w=1, j=True))
        self.batch_size = batch_size

    # -- reads -------------------------------------------------------------
    def changed_since(self, since: datetime | None, max_attempts: int) -> list[dict[str, Any]]:
        """Raw documents to (re)check: changed since ``since`` or not yet settled."""
        if since is None:
            query: dict[str, Any] = {}
        else:
            query = {"$or": [
                {"updatedAt": {"$gte": since}},
                {"updatedAt": None},
                {"embedding": None},
                {"embedding.status": {"$in": ["pending", "processing"]}, "status": "active",
                 "isDeleted": {"$ne": True}},
                {"embedding.status": "failed", "embedding.rejected": {"$ne": True},
                 "embedding.attempts": {"$lt": max_attempts}},
            ]}
        docs = list(self.collection.find(query, PULL_PROJECTION, batch_size=2000))
        for doc in docs:
            doc["_id"] = job_key(doc["_id"])
        return docs

    def active_context(self, now: datetime) -> pl.DataFrame:
        """id, contentHash and the context fields of every active, embedded job."""
        query = {**active_filter(now), "embedding.status": "completed"}
        projection = {"category": 1, "experienceLevel": 1, "location": 1, "embedding.contentHash": 1}
        rows: dict[str, list[Any]] = {k: [] for k in ("id", "contentHash", "category", "level", "city", "remote")}
        for doc in self.collection.find(query, projection, batch_size=5000):
            location = doc.get("location") if isinstance(doc.get("location"), dict) else {}
            city = location.get("city")
            category = doc.get("category")
            level = doc.get("experienceLevel")
            rows["id"].append(job_key(doc["_id"]))
            rows["contentHash"].append((doc.get("embedding") or {}).get("contentHash"))
            rows["category"].append(category.strip().casefold() if isinstance(category, str) else None)
            rows["level"].append(EXPERIENCE_LEVELS.index(level) if level in EXPERIENCE_LEVELS else -1)
            rows["city"].append(city.strip().casefold() if isinstance(city, str) else None)
            rows["remote"].append(location.get("remote") is True)
        return pl.DataFrame(rows, schema={
            "id": pl.String, "contentHash": pl.String, "category": pl.String,
            "level": pl.Int8, "city": pl.String, "remote": pl.Boolean,
        })

    def stored_lists(self) -> dict[str, Neighbours]:
        """Every non-empty ``similarJobs`` list, as (jobId, score) tuples in stored order."""
        out: dict[str, Neighbours] = {}
        cursor = self.collection.find({"similarJobs.0": {"$exists": True}}, {"similarJobs": 1}, batch_size=5000)
        for doc in cursor:
            items = doc.get("similarJobs") or []
            out[job_key(doc["_id"])] = tuple(
                (job_key(item.get("jobId")), float(item.get("score", 0.0)))
                for item in items if isinstance(item, dict)
            )
        return out

    def count_active(self, now: datetime) -> int:
        return self.collection.count_documents(active_filter(now))

    # -- writes ------------------------------------------------------------
    def ensure_indexes(self) -> None:
        """Indexes the pipeline's queries need (kept few: each one slows every write)."""
        self.collection.create_index("updatedAt")
        self.collection.create_index(
            [("source", 1), ("externalId", 1)], unique=True,
            partialFilterExpression={"externalId": {"$exists": True}},
        )

    @staticmethod
    def _imported(doc: dict[str, Any], now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
        """The fields an import writes (``$set``) and those only a new posting gets
        (``$setOnInsert``): ``updatedAt = now`` so the next incremental run sees it."""
        fields = {k: v for k, v in doc.items() if k not in ("_id", "createdAt")}
        fields["updatedAt"] = now
        return fields, {"createdAt": doc.get("createdAt") or now,
                        "embedding": {"status": "pending", "attempts": 0}}

    def upsert_imported(self, docs: list[dict[str, Any]], now: datetime) -> tuple[int, int]:
        """Insert or update postings keyed by (``source``, ``externalId``).

        Sets ``updatedAt`` to ``now`` (so the next incremental run sees them) and
        ``createdAt``/``embedding.status=pending`` on insert. Returns (inserted, updated).
        """
        ops = []
        for doc in docs:
            fields, on_insert = self._imported(doc, now)
            ops.append(UpdateOne({"source": doc["source"], "externalId": doc["externalId"]},
                                 {"$set": fields, "$setOnInsert": on_insert}, upsert=True))
        inserted = updated = 0
        for chunk in _chunks(ops, self.batch_size):
            result = self.collection.bulk_write(chunk, ordered=False)
            inserted += result.upserted_count
            updated += result.modified_count
        return inserted, updated

    def insert_new(self, docs: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        """Insert postings known to be new, stored exactly as :meth:`upsert_imported` stores
        a new one, with ``insert_many`` (no per-document key lookup: bulk loads into an empty
        collection). A given ``_id`` is kept. Returns the stored documents, with ``_id``."""
        stored = []
        for doc in docs:
            fields, on_insert = self._imported(doc, now)
            stored.append({**({"_id": doc["_id"]} if "_id" in doc else {}), **fields, **on_insert})
        for chunk in _chunks(stored, self.batch_size):
            self.collection.insert_many(chunk, ordered=False)
        return stored

    def _bulk(self, ops: list[UpdateOne]) -> int:
        written = 0
        for chunk in _chunks(ops, self.batch_size):
            written += self.collection.bulk_write(chunk, ordered=False).modified_count
        return written

    def mark_processing(self, job_ids: list[str], now: datetime) -> None:
        for chunk in _chunks(job_ids, self.batch_size):
            self.collection.update_many(
                {"_id": {"$in": [to_mongo_id(i) for i in chunk]}},
                {"$set": {"embedding.status": "processing", "embedding.startedAt": now}},
            )

    def mark_pending(self, job_ids: list[str]) -> None:
        """Back to ``pending`` (a transient failure): retried next run, no attempt spent."""
        for chunk in _chunks(job_ids, self.batch_size):
            self.collection.update_many(
                {"_id": {"$in": [to_mongo_id(i) for i in chunk]}},
                {"$set": {"embedding.status": "pending"}, "$unset": {"embedding.startedAt": ""}},
            )

    def mark_embedded(self, marks: Iterable[EmbeddedMark], model: str, now: datetime) -> int:
        ops = [
            UpdateOne({"_id": to_mongo_id(m.job_id)}, {
                "$set": {
                    "embedding.status": "completed", "embedding.model": model,
                    "embedding.contentHash": m.content_hash, "embedding.generatedAt": now,
                    "embedding.language": m.language, "embedding.attempts": 0,
                },
                "$unset": {"embedding.error": "", "embedding.rejected": "", "embedding.startedAt": ""},
            })
            for m in marks
        ]
        return self._bulk(ops)

    def mark_failed(self, failures: dict[str, str], now: datetime) -> int:
        """Embedding failed: keep the reason, count the attempt."""
        ops = [
            UpdateOne({"_id": to_mongo_id(job_id)}, {
                "$set": {"embedding.status": "failed", "embedding.error": reason[:500],
                         "embedding.failedAt": now},
                "$inc": {"embedding.attempts": 1},
                "$unset": {"embedding.rejected": "", "embedding.startedAt": ""},
            })
            for job_id, reason in failures.items()
        ]
        return self._bulk(ops)

    def mark_rejected(self, rejections: dict[str, str], now: datetime) -> int:
        """Invalid document: record why (``{job id: message}``), so an operator can fix it."""
        ops = [
            UpdateOne({"_id": to_mongo_id(job_id)}, {
                "$set": {"embedding.status": "failed", "embedding.rejected": True,
                         "embedding.error": message, "embedding.failedAt": now},
                "$unset": {"embedding.startedAt": ""},
            })
            for job_id, message in rejections.items()
        ]
        return self._bulk(ops)

    def write_lists(
        self, lists: dict[str, Neighbours], now: datetime, job_count: int, recompute_days: int
    ) -> int:
        """Replace ``similarJobs`` and ``similarityMetadata`` of the given jobs."""
        metadata = {
            "lastComputed": now,
            "nextComputeAt": now + timedelta(days=recompute_days),
            "jobCountWhenComputed": job_count,
        }
        ops = [
            UpdateOne({"_id": to_mongo_id(job_id)}, {"$set": {
                "similarJobs": [
                    {"jobId": to_mongo_id(other), "score": score, "computedAt": now}
                    for other, score in items
                ],
                "similarityMetadata": metadata,
            }})
            for job_id, items in lists.items()
        ]
        return self._bulk(ops)

    # -- summaries (CLI) ---------------------------------------------------------
    def titles(self, job_ids: list[str]) -> dict[str, str]:
        """Titles of the given jobs (for printing examples)."""
        cursor = self.collection.find({"_id": {"$in": [to_mongo_id(i) for i in job_ids]}}, {"title": 1})
        return {job_key(doc["_id"]): str(doc.get("title", "")) for doc in cursor}

    def example_with_list(self) -> tuple[str, Neighbours] | None:
        """One job with a non-empty neighbour list (the most recently created)."""
        doc = self.collection.find_one(
            {"similarJobs.0": {"$exists": True}}, {"similarJobs": 1}, sort=[("createdAt", -1)]
        )
        if doc is None:
            return None
        items = tuple((job_key(i["jobId"]), float(i["score"])) for i in doc["similarJobs"])
        return job_key(doc["_id"]), items

    # -- admin (ops) ---------------------------------------------------------------
    def by_ids(self, job_ids: list[str]) -> list[dict[str, Any]]:
        """Raw documents of the given jobs (to re-check them regardless of the watermark)."""
        docs: list[dict[str, Any]] = []
        for chunk in _chunks(job_ids, self.batch_size):
            docs += self.collection.find({"_id": {"$in": [to_mongo_id(i) for i in chunk]}}, PULL_PROJECTION)
        for doc in docs:
            doc["_id"] = job_key(doc["_id"])
        return docs

    def reset_failed_attempts(self, job_ids: list[str] | None = None) -> int:
        """Embedding failures (not rejections) back to pending with zero attempts."""
        query: dict[str, Any] = {"embedding.status": "failed", "embedding.rejected": {"$ne": True}}
        if job_ids is not None:
            query["_id"] = {"$in": [to_mongo_id(i) for i in job_ids]}
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
            state = doc.get("embedding") or {}
            out.append({"id": job_key(doc["_id"]), "title": doc.get("title"), "error": state.get("error"),
                        "attempts": state.get("attempts"), "rejected": state.get("rejected") is True,
                        "failedAt": state.get("failedAt")})
        return out
