"""Repository of the ``job_embeddings`` collection: one float32 vector per job."""

from __future__ import annotations

from datetime import datetime
from itertools import chain
from typing import Any

import numpy as np
from bson.binary import Binary
from pymongo import ReplaceOne, WriteConcern
from pymongo.database import Database

from jobsim.repositories import VectorSet
from storage.ids import id_filters, to_key, to_mongo_id, to_mongo_ids


class EmbeddingsRepository:
    def __init__(self, db: Database, collection: str = "job_embeddings", batch_size: int = 500) -> None:
        # Vectors cost money to recompute: journaled writes.
        self.collection = db.get_collection(collection, write_concern=WriteConcern(w=1, j=True))
        self.batch_size = batch_size

    def hashes(self, job_ids: list[str]) -> dict[str, str]:
        """Content hash of the stored vector of each given job that has one."""
        out: dict[str, str] = {}
        for where in id_filters(to_mongo_ids(job_ids)):
            for doc in self.collection.find(where, {"contentHash": 1}):
                content_hash = doc.get("contentHash")
                if isinstance(content_hash, str):
                    out[to_key(doc["_id"])] = content_hash
        return out

    def upsert(
        self, job_ids: list[str], hashes: list[str], vectors: np.ndarray, model: str, now: datetime
    ) -> int:
        """Store vectors (float32 little-endian BSON Binary), replacing older ones."""
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        dims = vectors.shape[1]
        ops = [
            ReplaceOne(
                {"_id": to_mongo_id(job_id)},
                {"model": model, "dims": dims, "contentHash": h,
                 "vector": Binary(vectors[row].tobytes()), "updatedAt": now},
                upsert=True,
            )
            for row, (job_id, h) in enumerate(zip(job_ids, hashes, strict=True))
        ]
        written = 0
        for start in range(0, len(ops), self.batch_size):
            result = self.collection.bulk_write(ops[start : start + self.batch_size], ordered=False)
            written += result.upserted_count + result.modified_count
        return written

    def load(self, model: str, dims: int, job_ids: list[str] | None = None) -> VectorSet:
        """Every stored vector of ``model``/``dims``, or those of ``job_ids`` (malformed entries
        are skipped)."""
        query: dict = {"model": model, "dims": dims}
        wheres = [query] if job_ids is None else [{**query, **where} for where in id_filters(to_mongo_ids(job_ids))]
        return self._read(chain.from_iterable(
            self.collection.find(where, {"contentHash": 1, "vector": 1}, batch_size=5000) for where in wheres), dims)

    @staticmethod
    def _read(cursor: Any, dims: int) -> VectorSet:
        ids, hashes, blobs = [], [], []
        expected = dims * 4
        for doc in cursor:
            blob = doc.get("vector")
            if isinstance(blob, bytes) and len(blob) == expected:
                ids.append(to_key(doc["_id"]))
                hashes.append(doc.get("contentHash") if isinstance(doc.get("contentHash"), str) else None)
                blobs.append(blob)
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dims)
        return VectorSet(
            ids=np.array(ids, dtype=object),
            hashes=np.array(hashes, dtype=object),
            vectors=np.ascontiguousarray(matrix, dtype=np.float32),
        )
