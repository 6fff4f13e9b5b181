"""Sharded exact top-k: split the rows into shards, search shard pairs, merge exactly.

Pure arrays in, arrays out. The all-pairs search of :func:`jobsim.neighbours.exact_topk`
is cut along shard boundaries: shard pair (a, a) is an all-pairs search inside shard a,
pair (a, b) with a < b is one :func:`~jobsim.neighbours.cross_topk` pass that serves the
rows of both shards (the scores are symmetric). A pair task holds two shards, never the
whole matrix; the S·(S+1)/2 pairs are independent, so they can run on different workers.

Each pair's lists are exact in the total order (score desc, index asc) and their scores
are canonical (every kept pair rescored on its own, :func:`jobsim.neighbours.rescore`), so
merging the per-pair lists of a row in that order gives exactly its global top-k: the
result is identical to :func:`exact_topk`, bit for bit. Shards start at multiples of the
unsharded pass's square block (whole blocks, no ragged GEMM edges inside a shard).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from jobsim.neighbours import cross_topk, exact_topk, merge_topk, square_block_for

Bounds = tuple[int, int]


def shard_bounds(n: int, dims: int, shard_budget_bytes: int, block: int, min_shards: int = 1) -> list[Bounds]:
    """Row ranges of the shards: each shard's vectors (rows × dims float32) fit the budget,
    there are at least ``min_shards`` when each keeps ≥ ``block`` rows, and every shard
    starts at a multiple of ``block``."""
    if n <= 0:
        return []
    by_budget = max(block, shard_budget_bytes // max(1, 4 * dims) // block * block)
    count = max(math.ceil(n / by_budget), min(min_shards, math.ceil(n / block)))
    rows = math.ceil(math.ceil(n / count) / block) * block
    return [(start, min(n, start + rows)) for start in range(0, n, rows)]


def min_shards_for(workers: int) -> int:
    """Fewest shards whose S·(S+1)/2 pair tasks give every worker two (for balance): more
    shards add merge work (each pair's lists are merged in the driver) and GEMM edges."""
    shards = 1
    while shards * (shards + 1) // 2 < 2 * workers:
        shards += 1
    return shards


def shard_pairs(bounds: list[Bounds]) -> list[tuple[int, int]]:
    """Every (a, b) with a ≤ b: the diagonal pairs first (they fill every row's list)."""
    s = len(bounds)
    return [(a, a) for a in range(s)] + [(a, b) for a in range(s) for b in range(a + 1, s)]


@dataclass
class PairTopK:
    """Top-k lists of the rows of shard ``a`` (and of shard ``b`` for a cross pair) within
    the pair, as global row indices (-1 = no neighbour)."""

    a: Bounds
    scores_a: np.ndarray
    idx_a: np.ndarray
    b: Bounds | None = None
    scores_b: np.ndarray | None = None
    idx_b: np.ndarray | None = None

    def sides(self) -> Iterable[tuple[Bounds, np.ndarray, np.ndarray]]:
        yield self.a, self.scores_a, self.idx_a
        if self.b is not None and self.scores_b is not None and self.idx_b is not None:
            yield self.b, self.scores_b, self.idx_b


def _globalise(idx: np.ndarray, offset: int) -> np.ndarray:
    return np.where(idx >= 0, idx + offset, -1)


def search_pair(
    xa: np.ndarray, a: Bounds, xb: np.ndarray | None, b: Bounds | None, k: int,
    memory_budget_bytes: int, block: int,
) -> PairTopK:
    """Exact top-``k`` within one shard pair; ``xb``/``b`` None = the diagonal pair (a, a)."""
    if xb is None or b is None:
        scores, idx = exact_topk(xa, k, memory_budget_bytes, block=block)
        return PairTopK(a=a, scores_a=scores, idx_a=_globalise(idx, a[0]))
    (sa, ia), (sb, ib) = cross_topk(xa, xb, k, memory_budget_bytes, block=block)
    return PairTopK(a=a, scores_a=sa, idx_a=_globalise(ia, b[0]),
                    b=b, scores_b=sb, idx_b=_globalise(ib, a[0]))


class TopKMerger:
    """Running exact merge of pair results into every row's global top-k."""

    def __init__(self, n: int, k: int) -> None:
        self.k = k
        self.scores = np.full((n, k), -np.inf, dtype=np.float32)
        self.idx = np.full((n, k), -1, dtype=np.int64)

    def add(self, part: PairTopK) -> None:
        for (lo, hi), s, i in part.sides():
            self.scores[lo:hi], self.idx[lo:hi] = merge_topk(self.scores[lo:hi], self.idx[lo:hi], s, i, self.k)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return self.scores, self.idx


def sharded_topk(
    vectors: np.ndarray, k: int, shard_budget_bytes: int, memory_budget_bytes: int = 256 << 20,
    min_shards: int = 1, run: Callable[..., Iterable[PairTopK]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_topk` computed shard pair by shard pair (identical result).

    ``run(search_pair, jobs)`` maps the pair searches (each job is a tuple of its
    arguments); the default runs them one after another in this process.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = x.shape[0]
    block = square_block_for(n, memory_budget_bytes)
    bounds = shard_bounds(n, x.shape[1], shard_budget_bytes, block, min_shards)
    jobs = [pair_args(x, bounds, a, b, k, memory_budget_bytes, block) for a, b in shard_pairs(bounds)]
    results = run(search_pair, jobs) if run else (search_pair(*job) for job in jobs)
    merger = TopKMerger(n, k)
    for part in results:
        merger.add(part)
    return merger.result()


def pair_args(
    x: np.ndarray, bounds: list[Bounds], a: int, b: int, k: int, memory_budget_bytes: int, block: int
) -> tuple:
    """Arguments of :func:`search_pair` for shard pair (a, b) of ``x`` (views, no copies)."""
    (a0, a1), (b0, b1) = bounds[a], bounds[b]
    if a == b:
        return x[a0:a1], bounds[a], None, None, k, memory_budget_bytes, block
    return x[a0:a1], bounds[a], x[b0:b1], bounds[b], k, memory_budget_bytes, block
