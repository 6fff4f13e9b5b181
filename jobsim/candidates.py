"""The incremental neighbour state's record: every active row's cosine candidate list.

Kept apart from the search code (no faiss here), so the local cache in ``storage/`` can
read and write it without loading the search.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass
class CandidateState:
    """Cosine candidate lists of the corpus rows (:mod:`jobsim.corpus`), rows in id order:
    base rows ``[0, base)`` (the candidates) first, then query rows."""

    ids: np.ndarray  # (n,) object row ids ("b:<hash>" / "q:<hash>"), sorted
    fingerprints: np.ndarray  # (n,) uint64, blake2b of each vector's bytes
    scores: np.ndarray  # (n, M) float32, -inf = empty
    cand: np.ndarray  # (n, M) int64 row indices, -1 = empty
    depth: np.ndarray  # (n,) int32, leading entries known exact
    dims: int
    exact: bool
    base: int  # rows [0, base) are candidates

    def __len__(self) -> int:
        return len(self.ids)


def fingerprints(vectors: np.ndarray) -> np.ndarray:
    """A 64-bit digest per row (blake2b): identifies a vector's exact bytes."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    digests = b"".join(hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in x)
    return np.frombuffer(digests, dtype="<u8").copy()
