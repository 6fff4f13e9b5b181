"""The ``jobs`` collection as the bulk import and the command line use it: upserts keyed by
(``source``, ``externalId``), indexes, and a few lookups for printed summaries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import UpdateOne, WriteConcern
from pymongo.errors import BulkWriteError
from pymongo.database import Database

from jobsim.repositories import Neighbours
from storage.ids import to_key, to_mongo_ids
from storage.jobs import chunks
from storage.lists import read_stored_list
from storage.queries import pull_indexes


class JobImportsRepository:
    def __init__(self, db: Database, collection: str = "jobs", batch_size: int = 500) -> None:
        self.collection = db.get_collection(collection, write_concern=WriteConcern(w=1, j=True))
        self.batch_size = batch_size

    def ensure_indexes(self) -> None:
        """Indexes the pipeline's queries need (kept few: each one slows every write)."""
        for field in pull_indexes():
            self.collection.create_index(field)
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

    def upsert_imported(self, docs: list[dict[str, Any]], now: datetime,
                        unset: tuple[str, ...] = ()) -> tuple[int, int]:
        """Insert or update postings keyed by (``source``, ``externalId``).

        Sets ``updatedAt`` to ``now`` (so the next incremental run sees them) and
        ``createdAt``/``embedding.status=pending`` on insert. Fields named in ``unset`` that a
        document does not carry are removed from the stored posting (``expiresAt`` for an
        import that ignores expiry dates: a re-import clears the stored one). Re-running the
        same import converges. Returns (inserted, updated).

        Per batch of ``batch_size``: one query finds the keys already stored, known postings
        are updated by ``_id`` and new ones inserted in bulk (a key lookup per upsert would
        scan the collection on servers that do not use the key index for it, e.g. SecantusDB).
        A key inserted meanwhile by someone else is upserted instead.
        """
        inserted = updated = 0
        for chunk in chunks(docs, self.batch_size):
            added, changed = self._write_batch(chunk, now, unset)
            inserted, updated = inserted + added, updated + changed
        return inserted, updated

    def _stored_ids(self, docs: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
        query = {"source": {"$in": sorted({d["source"] for d in docs})},
                 "externalId": {"$in": [d["externalId"] for d in docs]}}
        return {(d["source"], d["externalId"]): d["_id"]
                for d in self.collection.find(query, {"source": 1, "externalId": 1})}

    def _write_batch(self, docs: list[dict[str, Any]], now: datetime,
                     unset: tuple[str, ...]) -> tuple[int, int]:
        stored = self._stored_ids(docs)
        updates, new = [], []
        for doc in docs:
            fields, on_insert = self._imported(doc, now)
            cleared = {name: "" for name in unset if name not in doc}
            key = (doc["source"], doc["externalId"])
            if key in stored:
                update: dict[str, Any] = {"$set": fields, **({"$unset": cleared} if cleared else {})}
                updates.append(UpdateOne({"_id": stored[key]}, update))
            else:
                new.append({**fields, **on_insert})
        updated = self.collection.bulk_write(updates, ordered=False).modified_count if updates else 0
        inserted = 0
        if new:
            try:
                inserted = len(self.collection.insert_many(new, ordered=False).inserted_ids)
            except BulkWriteError as exc:
                inserted = exc.details.get("nInserted", 0)
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
                raced = [new[e["index"]] for e in exc.details["writeErrors"]]
                added, changed = self._upsert_by_key(raced, now, unset)
                inserted, updated = inserted + added, updated + changed
        return inserted, updated

    def _upsert_by_key(self, docs: list[dict[str, Any]], now: datetime,
                       unset: tuple[str, ...]) -> tuple[int, int]:
        ops = []
        for doc in docs:
            fields, on_insert = self._imported(doc, now)
            for name in on_insert:
                fields.pop(name, None)
            update: dict[str, Any] = {"$set": fields, "$setOnInsert": on_insert}
            cleared = {name: "" for name in unset if name not in doc}
            if cleared:
                update["$unset"] = cleared
            ops.append(UpdateOne({"source": doc["source"], "externalId": doc["externalId"]},
                                 update, upsert=True))
        result = self.collection.bulk_write(ops, ordered=False)
        return result.upserted_count, result.modified_count

    def insert_new(self, docs: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        """Insert postings known to be new, stored exactly as :meth:`upsert_imported` stores
        a new one, with ``insert_many`` (no per-document key lookup: bulk loads into an empty
        collection). A given ``_id`` is kept. Returns the stored documents, with ``_id``."""
        stored = []
        for doc in docs:
            fields, on_insert = self._imported(doc, now)
            stored.append({**({"_id": doc["_id"]} if "_id" in doc else {}), **fields, **on_insert})
        for chunk in chunks(stored, self.batch_size):
            self.collection.insert_many(chunk, ordered=False)
        return stored

    def titles(self, job_ids: list[str]) -> dict[str, str]:
        """Titles of the given jobs (for printing examples)."""
        cursor = self.collection.find({"_id": {"$in": to_mongo_ids(job_ids)}}, {"title": 1})
        return {to_key(doc["_id"]): str(doc.get("title", "")) for doc in cursor}

    def example_with_list(self) -> tuple[str, Neighbours] | None:
        """One job with a readable, non-empty neighbour list (the most recently created)."""
        cursor = self.collection.find({"similarJobs.0": {"$exists": True}}, {"similarJobs": 1}).sort(
            "createdAt", -1).limit(20)
        for doc in cursor:
            items = read_stored_list(doc.get("similarJobs"))
            if items:
                return to_key(doc["_id"]), items
        return None
