"""The neighbour stage as plain functions: active set, all-pairs top-k lists, diff.

Pure: arrays and frames in, arrays and dicts out (I/O stays in ``storage/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from jobsim.neighbours import exact_topk
from jobsim.scoring import Context, encode, rerank
from jobsim.settings import NeighbourSettings

if TYPE_CHECKING:
    from storage.embeddings import VectorSet

Neighbours = tuple[tuple[str, float], ...]


@dataclass
class ActiveSet:
    """Active vectors with their context, rows aligned."""

    ids: np.ndarray
    vectors: np.ndarray
    context: Context


def active_set(vectors: VectorSet, context: pl.DataFrame) -> ActiveSet:
    """Join stored vectors with active jobs on (id, contentHash): stale vectors never count."""
    stored = pl.DataFrame({"id": vectors.ids.tolist(), "contentHash": vectors.hashes.tolist(),
                           "row": np.arange(len(vectors), dtype=np.int64)},
                          schema={"id": pl.String, "contentHash": pl.String, "row": pl.Int64})
    joined = context.join(stored, on=["id", "contentHash"], how="inner").sort("id")
    rows = joined["row"].to_numpy()
    return ActiveSet(
        ids=np.array(joined["id"].to_list(), dtype=object),
        vectors=np.ascontiguousarray(vectors.vectors[rows]),
        context=Context(
            category=encode(joined["category"].to_list()),
            level=joined["level"].to_numpy().astype(np.int8),
            city=encode(joined["city"].to_list()),
            remote=joined["remote"].to_numpy(),
        ),
    )


def compute_lists(active: ActiveSet, settings: NeighbourSettings) -> dict[str, Neighbours]:
    """Top-k similar jobs of every active job: exact cosine candidates, then the seed's rerank."""
    n = len(active.ids)
    candidates = min(settings.candidates, max(n - 1, 0))
    cosine, cand = exact_topk(active.vectors, candidates, settings.memory_budget_mb << 20)
    scores, idx = rerank(cosine, cand, active.context, settings.k,
                         settings.cosine_weight, settings.min_score)
    lists: dict[str, Neighbours] = {}
    for row in range(n):
        keep = idx[row] >= 0
        lists[active.ids[row]] = tuple(
            zip(active.ids[idx[row][keep]].tolist(), scores[row][keep].astype(float).round(2).tolist())
        )
    return lists


def diff_lists(
    new: dict[str, Neighbours], stored: dict[str, Neighbours]
) -> tuple[dict[str, Neighbours], int]:
    """Lists to write (changed ids or scores; stored non-empty lists of jobs no longer
    active become empty) and how many were unchanged."""
    changes: dict[str, Neighbours] = {}
    unchanged = 0
    for job_id, items in new.items():
        if stored.get(job_id, ()) == items:
            unchanged += 1
        else:
            changes[job_id] = items
    for job_id in stored.keys() - new.keys():
        changes[job_id] = ()
    return changes, unchanged


