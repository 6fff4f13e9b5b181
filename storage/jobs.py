"""Repository of the ``jobs`` collection (the web app's postings), as the pipeline uses it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateOne, WriteConcern
from pymongo.errors import OperationFailure
from pymongo.database import Database

from jobsim.allocation import collector_paused
from jobsim.contract import holds_pipeline_list, needs_check
from jobsim.repositories import EmbeddedMark, JobList, WriteOutcome
from jobsim.snapshot import FIELDS as SNAPSHOT_FIELDS
from storage.ids import id_filters, to_key, to_mongo_id, to_mongo_ids
from storage.lists import read_job_list
from storage.queries import CHECK_PROJECTION, PULL_PROJECTION, active_filter, listing_filter, pull_indexes, pull_queries
from storage.writes import bulk_isolated

SNAPSHOT_PROJECTION = {name: 1 for name in SNAPSHOT_FIELDS if name != "embedding"} | {
    "embedding.status": 1, "embedding.contentHash": 1}

log = logging.getLogger(__name__)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _identity(value: Any) -> tuple[str, str]:
    """A hashable identity of any stored ``_id`` (a poison document's may be a document)."""
    return type(value).__name__, repr(value)


def _keyed(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    out = list(docs)
    for doc in out:
        doc["_id"] = to_key(doc["_id"])
    return out


def list_updates(lists: dict[str, JobList], now: datetime, job_count: int,
                 recompute_days: int) -> list[tuple[str, UpdateOne]]:
    """The write of each job's list, group and ``similarityMetadata`` (key, operation)."""
    metadata = {"lastComputed": now, "nextComputeAt": now + timedelta(days=recompute_days),
                "jobCountWhenComputed": job_count}
    ops = []
    with collector_paused():
        for key, job_list in lists.items():
            update: dict[str, Any] = {"$set": {
                "similarJobs": [{"jobId": to_mongo_id(n.job_id), "score": n.score, "cosine": n.cosine,
                                 "match": list(n.match), "computedAt": now} for n in job_list.items],
                "similarityMetadata": metadata,
            }}
            if job_list.group is None:
                update["$unset"] = {"duplicateGroup": ""}
            else:
                update["$set"]["duplicateGroup"] = to_mongo_id(job_list.group)
            ops.append((key, UpdateOne({"_id": to_mongo_id(key)}, update)))
    return ops


class JobsRepository:
    def __init__(self, db: Database, collection: str = "jobs", batch_size: int = 500) -> None:
        # Pipeline writes must survive a server crash: journaled write concern.
        self.collection = db.get_collection(collection, write_concern=WriteConcern(w=1, j=True))
        # The lists are made durable by the journaled "written" mark that follows them
        # (StateRepository.mark_write_back): one journal sync covers every earlier write to the
        # server, so their batches do not each wait for one. A crash before that mark leaves
        # "writing", and the next run then diffs against the database instead of its snapshot.
        # (On a sharded cluster the lists' shards sync on their own within commitIntervalMs.)
        self._lists = db.get_collection(collection, write_concern=WriteConcern(w=1))
        self.batch_size = batch_size

    # -- reads -------------------------------------------------------------
    def ensure_indexes(self) -> None:
        """The indexes the pull is answered from (a no-op when they exist). A user without
        the right to create them gets a warning: the pull still works, as a collection scan."""
        for field in pull_indexes():
            try:
                self.collection.create_index(field)
            except OperationFailure as exc:
                if exc.code != 13:  # Unauthorized
                    raise
                log.warning("cannot create the index on jobs.%s (%s): every pull scans the collection",
                            field, exc.details.get("errmsg") if exc.details else exc)

    def changed_since(self, since: datetime | None, max_attempts: int, now: datetime) -> list[dict[str, Any]]:
        """Raw documents to (re)check (``_id`` as a key), as :func:`needs_check` selects them:
        the changed ones straight from the ``updatedAt`` index; the never-checked and
        unsettled ones from the ``embedding.status`` index, first only the fields the rule
        reads, then in full those it keeps. A job matched by several queries comes once."""
        changed, by_state = pull_queries(since)
        docs: dict[Any, dict[str, Any]] = {}
        for query in changed:
            for doc in self.collection.find(query, PULL_PROJECTION, batch_size=2000):
                docs.setdefault(_identity(doc["_id"]), doc)
        if by_state is not None:
            states = self.collection.find(by_state, CHECK_PROJECTION, batch_size=5000)
            wanted = [d["_id"] for d in states
                      if _identity(d["_id"]) not in docs and needs_check(d, since, max_attempts, now)]
            for where in id_filters(wanted):
                for doc in self.collection.find(where, PULL_PROJECTION):
                    docs.setdefault(_identity(doc["_id"]), doc)
        return _keyed(d for d in docs.values() if needs_check(d, since, max_attempts, now))

    def by_ids(self, job_ids: list[str]) -> list[dict[str, Any]]:
        """Raw documents of the given jobs (to re-check them regardless of the watermark)."""
        docs: list[dict[str, Any]] = []
        for where in id_filters(to_mongo_ids(job_ids)):
            docs += self.collection.find(where, PULL_PROJECTION)
        return _keyed(docs)

    def listed_docs(self, now: datetime, closed_days: int) -> dict[str, dict[str, Any]]:
        """The fields the neighbour stage reads of every job with a completed embedding that
        gets a list (active, or closed less than ``closed_days`` ago)."""
        query = {**listing_filter(now, closed_days), "embedding.status": "completed"}
        return {to_key(doc["_id"]): doc for doc in self.collection.find(query, SNAPSHOT_PROJECTION, batch_size=5000)}

    def listing_docs(self, job_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        """The fields the neighbour stage reads of the given jobs (None: no such job any more)."""
        out: dict[str, dict[str, Any] | None] = dict.fromkeys(job_ids)
        for where in id_filters(to_mongo_ids(job_ids)):
            for doc in self.collection.find(where, SNAPSHOT_PROJECTION):
                out[to_key(doc["_id"])] = doc
        return out

    def stored_lists(self, job_ids: list[str] | None = None) -> dict[str, JobList | None]:
        """What the pipeline wrote on every job (or those of ``job_ids``) that has a list or a
        duplicate group (:func:`jobsim.contract.holds_pipeline_list`); None when it cannot be
        read (it is then rewritten or cleared)."""
        # all jobs: the server narrows to those with either field; by ids: the _id lookup
        # alone (an $or beside it made SecantusDB scan the collection: 147 lists in 5.2 s at
        # 10k jobs). Either way the same predicate decides.
        candidates = {"$or": [{"similarJobs": {"$exists": True}}, {"duplicateGroup": {"$exists": True}}]}
        out: dict[str, JobList | None] = {}
        for where in [candidates] if job_ids is None else id_filters(to_mongo_ids(job_ids)):
            for doc in self.collection.find(where, {"similarJobs": 1, "duplicateGroup": 1}, batch_size=5000):
                if holds_pipeline_list(doc):
                    out[to_key(doc["_id"])] = read_job_list(doc)
        return out

    def count_active(self, now: datetime) -> int:
        return self.collection.count_documents(active_filter(now))

    # -- writes: one document never fails the others (storage/writes.py) ----------------
    def _marks(self, states: dict[str, tuple[dict[str, Any], list[str]]]) -> WriteOutcome:
        """``{key: (fields of embedding to set, fields to unset)}``; a job whose ``embedding``
        is not a document gets the whole sub-document instead."""
        ops = [(key, UpdateOne({"_id": to_mongo_id(key)}, {
            "$set": {f"embedding.{k}": v for k, v in fields.items()},
            **({"$unset": {f"embedding.{k}": "" for k in unset}} if unset else {}),
        })) for key, (fields, unset) in states.items()]

        def whole(key: str) -> UpdateOne:
            return UpdateOne({"_id": to_mongo_id(key)}, {"$set": {"embedding": states[key][0]}})

        return bulk_isolated(self.collection, ops, self.batch_size, whole)

    def mark_pending(self, reasons: dict[str, str]) -> WriteOutcome:
        """Back to ``pending`` (a transient failure, ``{key: why}``): retried next run, no attempt spent."""
        return self._marks({key: ({"status": "pending", "error": why[:500]}, ["startedAt", "rejected"])
                            for key, why in reasons.items()})

    def mark_embedded(self, marks: Iterable[EmbeddedMark], model: str, now: datetime) -> WriteOutcome:
        return self._marks({m.job_id: (
            {"status": "completed", "model": model, "contentHash": m.content_hash, "generatedAt": now,
             "language": m.language, "attempts": 0},
            ["error", "rejected", "startedAt", "failedAt"]) for m in marks})

    def mark_failed(self, failures: dict[str, tuple[str, int]], now: datetime) -> WriteOutcome:
        """Embedding failed: keep the reason and the attempts now spent."""
        return self._marks({key: (
            {"status": "failed", "error": reason[:500], "failedAt": now, "attempts": attempts},
            ["rejected", "startedAt"]) for key, (reason, attempts) in failures.items()})

    def mark_rejected(self, rejections: dict[str, str], now: datetime) -> WriteOutcome:
        """Invalid document: record why (``{job key: message}``), so an operator can fix it."""
        return self._marks({key: (
            {"status": "failed", "rejected": True, "error": message[:500], "failedAt": now},
            ["startedAt"]) for key, message in rejections.items()})

    def write_lists(self, lists: dict[str, JobList], now: datetime, job_count: int,
                    recompute_days: int) -> WriteOutcome:
        """Replace ``similarJobs``, ``similarityMetadata`` and ``duplicateGroup`` of the given jobs
        (acknowledged, not journaled one by one: see ``_lists``)."""
        return bulk_isolated(self._lists, list_updates(lists, now, job_count, recompute_days), self.batch_size)

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
