"""Exact top-k inner-product search: all rows against all rows, or some rows against all.

Pure arrays in, arrays out (in the spirit of faiss ``contrib/exhaustive_search.py``):
numpy GEMM over blocks sized from a memory budget (numpy's BLAS is several times
faster than the OpenBLAS bundled with faiss-cpu on this CPU), the running top-k kept
in faiss's C++ heap (``float_minheap_array_t.addn``), which avoids a full sort.

The all-pairs pass uses symmetry: only blocks (I, J) with I ≤ J are multiplied and
each block feeds the heaps of its rows *and* (transposed) of its columns, so the GEMM
work is about half of ``2·N²·d``. Diagonal blocks go first; after them each heap's top
(its k-th best so far) filters the off-diagonal blocks, so only the few scores above it
(found with one vectorised comparison) are pushed into the heaps.

Results follow one total order, **score descending, then index ascending**, so ties
(duplicate postings have identical vectors) resolve the same way in every path: the
heaps keep one extra slot, and rows whose k-th and (k+1)-th scores are equal are
recomputed with a stable sort. A row never matches itself: the self entry is masked
by index, so duplicate postings (other ids, identical vectors) remain neighbours.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import faiss
import numpy as np

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 10.0


def block_rows_for(n: int, memory_budget_bytes: int) -> int:
    """Rows per score block so that one (rows × n) float32 block fits the budget."""
    return int(max(1, min(n, memory_budget_bytes // max(1, 4 * n))))


MAX_SQUARE_BLOCK = 4096  # measured: 8192² blocks (256 MB) made the 100k pass ~25% slower


def square_block_for(n: int, memory_budget_bytes: int, min_blocks: int = 8) -> int:
    """Side of the (b × b) blocks of the symmetric pass: two blocks (the diagonal one and
    the reused off-diagonal buffer) plus masks fit the budget, b ≤ 4096 (cache-friendlier
    comparisons), and there are at least ``min_blocks`` blocks per side when that keeps
    them ≥ 512 rows (more blocks = more of the triangle skipped)."""
    by_budget = min(MAX_SQUARE_BLOCK, int(math.isqrt(max(1, memory_budget_bytes // 10))))
    by_count = max(512, -(-n // min_blocks))
    return max(1, min(n, by_budget, by_count))


def _heaps(scores: np.ndarray, indices: np.ndarray) -> faiss.float_minheap_array_t:
    """A faiss heap array over the rows of ``scores``/``indices`` (views, not copies)."""
    heap = faiss.float_minheap_array_t()
    heap.k, heap.nh = int(scores.shape[1]), int(scores.shape[0])
    heap.val, heap.ids = faiss.swig_ptr(scores), faiss.swig_ptr(indices)
    return heap


def _add_sparse(
    scores: np.ndarray, indices: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray
) -> None:
    """Push (row, col, value) entries, grouped by ascending row, into the rows' heaps."""
    if len(rows) == 0:
        return
    urows, starts, counts = np.unique(rows, return_index=True, return_counts=True)
    width = int(counts.max())
    which = np.repeat(np.arange(len(urows)), counts)
    slot = np.arange(len(rows)) - np.repeat(starts, counts)
    vals = np.full((len(urows), width), -np.inf, dtype=np.float32)
    ids = np.zeros((len(urows), width), dtype=np.int64)
    vals[which, slot], ids[which, slot] = values, cols
    hs, hi = scores[urows], indices[urows]  # gathered heaps of the touched rows
    _heaps(hs, hi).addn_with_ids(width, faiss.swig_ptr(vals), faiss.swig_ptr(ids), width, 0, len(urows))
    scores[urows], indices[urows] = hs, hi


def _order_rows(scores: np.ndarray, indices: np.ndarray) -> None:
    """Sort each row in place by (score desc, index asc); empty slots (-1) last."""
    key_idx = np.where(indices < 0, np.iinfo(np.int64).max, indices)
    order = np.lexsort((key_idx, -scores), axis=1)
    scores[:] = np.take_along_axis(scores, order, axis=1)
    indices[:] = np.take_along_axis(indices, order, axis=1)


def _stable_rows(x: np.ndarray, rows: np.ndarray, kk: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``kk`` of the given rows with a full stable sort (the tie-exact fallback)."""
    n = x.shape[0]
    out_s = np.empty((len(rows), kk), dtype=np.float32)
    out_i = np.empty((len(rows), kk), dtype=np.int64)
    step = block_rows_for(n, budget // 3)
    for b0 in range(0, len(rows), step):
        r = rows[b0 : b0 + step]
        block = x[r] @ x.T
        block[np.arange(len(r)), r] = -np.inf
        order = np.argsort(-block, axis=1, kind="stable")[:, :kk]
        out_s[b0 : b0 + len(r)] = np.take_along_axis(block, order, axis=1)
        out_i[b0 : b0 + len(r)] = order
    return out_s, out_i


def _finish(
    x: np.ndarray, rows: np.ndarray, scores: np.ndarray, indices: np.ndarray, k: int, kk: int, budget: int
) -> tuple[np.ndarray, np.ndarray]:
    """Heaps (sorted by value) → exact top-``kk`` in the total order, padded to ``k``."""
    if scores.shape[1] > kk:  # the extra slot shows ties across the k-th boundary
        ties = np.flatnonzero(scores[:, kk - 1] == scores[:, kk])
        scores, indices = scores[:, :kk].copy(), indices[:, :kk].copy()
        if len(ties):
            scores[ties], indices[ties] = _stable_rows(x, rows[ties], kk, budget)
    _order_rows(scores, indices)
    if k > kk:
        scores = np.pad(scores, ((0, 0), (0, k - kk)), constant_values=-np.inf)
        indices = np.pad(indices, ((0, 0), (0, k - kk)), constant_values=-1)
    return np.ascontiguousarray(scores), np.ascontiguousarray(indices)


def _empty(m: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((m, k), -np.inf, dtype=np.float32), np.full((m, k), -1, dtype=np.int64)


def _new_heaps(m: int, n: int, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Heapified (scores, indices) for ``m`` queries over ``n`` rows keeping ``kk`` results
    (one spare slot when more rows exist, so ties at the k-th place resolve by index)."""
    keep = kk + 1 if kk < n - 1 else kk
    scores = np.empty((m, keep), dtype=np.float32)
    indices = np.empty((m, keep), dtype=np.int64)
    _heaps(scores, indices).heapify()
    return scores, indices


def exact_topk(
    vectors: np.ndarray, k: int, memory_budget_bytes: int = 256 << 20
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``vectors``, the ``k`` largest inner products with the *other* rows.

    Returns ``(scores, indices)``, each (n, k), in the order (score desc, index asc);
    slots with no neighbour (n - 1 < k) hold index -1 and score -inf.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = x.shape[0]
    kk = min(k, n - 1)
    if kk <= 0:
        return _empty(n, k)
    scores, indices = _new_heaps(n, n, kk)
    b = square_block_for(n, memory_budget_bytes)
    starts = list(range(0, n, b))
    pairs, done = len(starts) * (len(starts) + 1) // 2, 0
    started = last_log = time.perf_counter()
    # diagonal blocks first: every heap gets b candidates, so its top (the k-th best so
    # far) is a useful threshold for the rest of the pass
    for i0 in starts:
        i1 = min(n, i0 + b)
        block = x[i0:i1] @ x[i0:i1].T
        np.fill_diagonal(block, -np.inf)  # self, by index
        _heaps(scores[i0:i1], indices[i0:i1]).addn(i1 - i0, faiss.swig_ptr(block), i0, 0, i1 - i0)
        done += 1
    buffer = np.empty((b, b), dtype=np.float32)
    for i0 in starts:
        i1 = min(n, i0 + b)
        for j0 in starts[starts.index(i0) + 1 :]:
            j1 = min(n, j0 + b)
            block = buffer[: i1 - i0, : j1 - j0]
            np.matmul(x[i0:i1], x[j0:j1].T, out=block)  # (bi, bj) GEMM, reused memory
            # rows of I: only scores above their heap's current k-th can enter
            hit = np.flatnonzero(block > scores[i0:i1, :1])
            r, c = np.divmod(hit, j1 - j0)
            _add_sparse(scores, indices, i0 + r, j0 + c, block[r, c])
            # rows of J see the block transposed (s(i, j) = s(j, i)): compare in memory
            # order against the columns' thresholds, then group the few hits by column
            hit_t = np.flatnonzero(block > scores[j0:j1, 0][None, :])
            r, c = np.divmod(hit_t, j1 - j0)
            order = np.argsort(c, kind="stable")
            r, c = r[order], c[order]
            _add_sparse(scores, indices, j0 + c, i0 + r, block[r, c])
            done += 1
            if time.perf_counter() - last_log > PROGRESS_EVERY_S:
                last_log = time.perf_counter()
                log.info("exact search: block %d/%d (%d rows), %.1f s", done, pairs, n, last_log - started)
    _heaps(scores, indices).reorder()
    return _finish(x, np.arange(n), scores, indices, k, kk, memory_budget_bytes)


def topk_of_rows(
    vectors: np.ndarray,
    rows: np.ndarray,
    k: int,
    memory_budget_bytes: int = 256 << 20,
    on_block: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of the given rows against all rows (self excluded by index).

    Same contract and order as :func:`exact_topk`, one output row per entry of ``rows``.
    ``on_block(block_rows, scores)`` sees every (rows × n) score block (self = -inf).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.asarray(rows, dtype=np.int64)
    n, m = x.shape[0], len(rows)
    kk = min(k, n - 1)
    if kk <= 0 or m == 0:
        return _empty(m, k)
    scores, indices = _new_heaps(m, n, kk)
    step = block_rows_for(n, memory_budget_bytes)
    started = last_log = time.perf_counter()
    for b0 in range(0, m, step):
        r = rows[b0 : b0 + step]
        block = x[r] @ x.T
        block[np.arange(len(r)), r] = -np.inf
        if on_block is not None:
            on_block(r, block)
        _heaps(scores[b0 : b0 + len(r)], indices[b0 : b0 + len(r)]).addn(n, faiss.swig_ptr(block), 0, 0, len(r))
        if time.perf_counter() - last_log > PROGRESS_EVERY_S:
            last_log = time.perf_counter()
            log.info("exact row search: %d/%d rows, %.1f s", b0 + len(r), m, last_log - started)
    _heaps(scores, indices).reorder()
    return _finish(x, rows, scores, indices, k, kk, memory_budget_bytes)


def merge_topk(
    scores_a: np.ndarray, idx_a: np.ndarray, scores_b: np.ndarray, idx_b: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``k`` of two candidate sets in the total order (index -1 = empty)."""
    s = np.concatenate([scores_a, scores_b], axis=1)
    i = np.concatenate([idx_a, idx_b], axis=1)
    s = np.where(i < 0, -np.inf, s).astype(np.float32)
    _order_rows(s, i)
    return np.ascontiguousarray(s[:, :k]), np.ascontiguousarray(i[:, :k])
