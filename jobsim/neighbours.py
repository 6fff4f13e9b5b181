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

Results follow one total order, **score descending, then index ascending**, in every path
(blocks of any size, shards, incremental updates). A GEMM's value for one pair changes in
the last bits with the shape of the call, so the heaps (which keep ``SPARE`` extra slots)
only *select* candidates; every kept pair is then rescored on its own (:func:`rescore`),
and a row's list is certified exact when its k-th rescored score beats the best score any
left-out candidate could have (the heap's smallest GEMM score plus the float32 error bound);
the rare rows that fail are recomputed exhaustively. So the same pair has the same score
everywhere, and duplicate postings (equal vectors) tie exactly and resolve by index. A row
never matches itself: the self entry is masked by index, so duplicates remain neighbours.
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


SPARE = 4  # heap slots kept beyond k: the margin that certifies the canonical top-k
UNIT_ROUNDOFF = 2.0**-24  # float32


def rescore(queries: np.ndarray, base: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Canonical scores: ``queries[i] · base[idx[i, j]]`` (-inf where ``idx`` is -1), each
    pair computed on its own by faiss's ``fvec_inner_product``.

    A GEMM's result for one pair changes in the last bits with the shape of the call,
    so scores found by blocks of different sizes (or shards) are rescored this way: the
    same pair then has the same score in every path, bit for bit, and equal vectors
    (duplicate postings) have exactly equal scores.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    b = np.ascontiguousarray(base, dtype=np.float32)
    ids = np.ascontiguousarray(np.where(idx < 0, 0, idx), dtype=np.int64)
    out = np.empty(ids.shape, dtype=np.float32)
    if ids.size:
        faiss.fvec_inner_products_by_idx(faiss.swig_ptr(out), faiss.swig_ptr(q), faiss.swig_ptr(b),
                                         faiss.swig_ptr(ids), q.shape[1], q.shape[0], ids.shape[1])
    out[idx < 0] = -np.inf
    return out


def error_bound(queries: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Per query, a bound on |GEMM score − canonical score| for any pair: each float32
    dot product of length d is within γ_d·|q|·|b| of the exact value (any summation
    order), γ_d = d·u / (1 − d·u)."""
    d = queries.shape[1]
    gamma = d * UNIT_ROUNDOFF / (1 - d * UNIT_ROUNDOFF)
    bmax = float(np.sqrt(np.einsum("ij,ij->i", base, base).max())) if len(base) else 0.0
    return (2 * gamma * np.sqrt(np.einsum("ij,ij->i", queries, queries)) * bmax).astype(np.float32)


def _exhaustive_rows(
    queries: np.ndarray, base: np.ndarray, self_cols: np.ndarray | None, kk: int, budget: int
) -> tuple[np.ndarray, np.ndarray]:
    """Canonical top-``kk`` of ``queries`` against all of ``base`` (the fallback for rows
    whose heap could not certify its list): GEMM scores select every column that can
    be in the canonical top-``kk`` (within twice the error bound of the ``kk``-th GEMM
    score), and only those are rescored."""
    n = base.shape[0]
    eps = error_bound(queries, base)
    out_s = np.empty((len(queries), kk), dtype=np.float32)
    out_i = np.empty((len(queries), kk), dtype=np.int64)
    step = block_rows_for(n, budget // 3)
    for b0 in range(0, len(queries), step):
        g = queries[b0 : b0 + step] @ base.T
        if self_cols is not None:
            g[np.arange(len(g)), self_cols[b0 : b0 + step]] = -np.inf
        kth = np.partition(g, n - kk, axis=1)[:, n - kk]
        rows, cols = np.nonzero(g >= (kth - 2 * eps[b0 : b0 + step])[:, None])
        counts = np.bincount(rows, minlength=len(g))
        cand = np.full((len(g), int(counts.max())), -1, dtype=np.int64)
        cand[rows, np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)] = cols
        sc = rescore(queries[b0 : b0 + step], base, cand)
        _order_rows(sc, cand)
        out_s[b0 : b0 + len(g)], out_i[b0 : b0 + len(g)] = sc[:, :kk], cand[:, :kk]
    return out_s, out_i


def _finish(
    queries: np.ndarray, base: np.ndarray, self_cols: np.ndarray | None,
    scores: np.ndarray, indices: np.ndarray, k: int, kk: int, candidates: int, budget: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Heaps of GEMM scores → the exact canonical top-``kk`` (order: canonical score desc,
    index asc), padded to ``k``.

    Kept candidates are rescored (:func:`rescore`). A candidate left out of a full heap
    has a GEMM score ≤ the heap's smallest, so a canonical score ≤ that + the error
    bound; rows whose ``kk``-th canonical score does not beat it strictly are
    recomputed by :func:`_exhaustive_rows` (rare: near-ties across the spare slots).
    """
    smallest = scores[:, -1].copy()  # heaps are reordered: descending GEMM scores
    canon = rescore(queries, base, indices)
    _order_rows(canon, indices)
    canon, indices = canon[:, :kk].copy(), indices[:, :kk].copy()
    if candidates > scores.shape[1]:  # some candidates were left out: certify
        unsafe = np.flatnonzero(~(canon[:, kk - 1] > smallest + error_bound(queries, base)))
        if len(unsafe):
            log.debug("%d rows recomputed exhaustively (near-ties at the k-th place)", len(unsafe))
            canon[unsafe], indices[unsafe] = _exhaustive_rows(
                queries[unsafe], base, None if self_cols is None else self_cols[unsafe], kk, budget)
    if k > kk:
        canon = np.pad(canon, ((0, 0), (0, k - kk)), constant_values=-np.inf)
        indices = np.pad(indices, ((0, 0), (0, k - kk)), constant_values=-1)
    return np.ascontiguousarray(canon), np.ascontiguousarray(indices)


def _empty(m: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((m, k), -np.inf, dtype=np.float32), np.full((m, k), -1, dtype=np.int64)


def _new_heaps(m: int, candidates: int, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """Heapified (scores, indices) for ``m`` queries keeping ``kk`` of ``candidates`` results
    plus up to ``SPARE`` more (the margin :func:`_finish` certifies the top ``kk`` with)."""
    keep = min(kk + SPARE, candidates)
    scores = np.empty((m, keep), dtype=np.float32)
    indices = np.empty((m, keep), dtype=np.int64)
    _heaps(scores, indices).heapify()
    return scores, indices


def _push_block(
    block: np.ndarray, scores: np.ndarray, indices: np.ndarray, r0: int, c0: int, dense: bool
) -> None:
    """Offer the (rows × cols) score ``block`` to the heaps of its rows (global rows
    ``r0 + i``, candidates ``c0 + j``): all of it when ``dense`` (the rows' first block),
    else only the few scores above each heap's current k-th (one vectorised comparison)."""
    nr, nc = block.shape
    if dense:
        block = np.ascontiguousarray(block)
        _heaps(scores[r0 : r0 + nr], indices[r0 : r0 + nr]).addn(nc, faiss.swig_ptr(block), c0, 0, nr)
        return
    hit = np.flatnonzero(block > scores[r0 : r0 + nr, :1])
    r, c = np.divmod(hit, nc)
    _add_sparse(scores, indices, r0 + r, c0 + c, block[r, c])


def _push_block_t(
    block: np.ndarray, scores: np.ndarray, indices: np.ndarray, r0: int, c0: int, dense: bool
) -> None:
    """:func:`_push_block` for the heaps of the block's *columns* (``s(i, j) = s(j, i)``):
    compared in memory order against the columns' thresholds, hits grouped by column."""
    nr, nc = block.shape
    if dense:
        _push_block(block.T, scores, indices, c0, r0, True)
        return
    hit = np.flatnonzero(block > scores[c0 : c0 + nc, 0][None, :])
    r, c = np.divmod(hit, nc)
    order = np.argsort(c, kind="stable")
    r, c = r[order], c[order]
    _add_sparse(scores, indices, c0 + c, r0 + r, block[r, c])


class _Progress:
    """Logs "done/total" every ``PROGRESS_EVERY_S`` seconds of a long search."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done = what, total, 0
        self.started = self.last = time.perf_counter()

    def step(self, n: int = 1) -> None:
        self.done += n
        if time.perf_counter() - self.last > PROGRESS_EVERY_S:
            self.last = time.perf_counter()
            log.info("%s: %d/%d, %.1f s", self.what, self.done, self.total, self.last - self.started)


def exact_topk(
    vectors: np.ndarray, k: int, memory_budget_bytes: int = 256 << 20, block: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``vectors``, the ``k`` largest inner products with the *other* rows.

    Returns ``(scores, indices)``, each (n, k), in the order (score desc, index asc);
    slots with no neighbour (n - 1 < k) hold index -1 and score -inf. ``block`` overrides
    the side of the square score blocks (:func:`square_block_for` by default).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = x.shape[0]
    kk = min(k, n - 1)
    if kk <= 0:
        return _empty(n, k)
    scores, indices = _new_heaps(n, n - 1, kk)
    b = block or square_block_for(n, memory_budget_bytes)
    starts = list(range(0, n, b))
    progress = _Progress(f"exact search ({n} rows), block", len(starts) * (len(starts) + 1) // 2)
    # diagonal blocks first: every heap gets b candidates, so its top (the k-th best so
    # far) is a useful threshold for the rest of the pass
    for i0 in starts:
        i1 = min(n, i0 + b)
        diag = x[i0:i1] @ x[i0:i1].T
        np.fill_diagonal(diag, -np.inf)  # self, by index
        _push_block(diag, scores, indices, i0, i0, dense=True)
        progress.step()
    buffer = np.empty((b, b), dtype=np.float32)
    for bi, i0 in enumerate(starts):
        i1 = min(n, i0 + b)
        for j0 in starts[bi + 1 :]:
            j1 = min(n, j0 + b)
            blk = buffer[: i1 - i0, : j1 - j0]
            np.matmul(x[i0:i1], x[j0:j1].T, out=blk)  # (bi, bj) GEMM, reused memory
            _push_block(blk, scores, indices, i0, j0, dense=False)
            _push_block_t(blk, scores, indices, i0, j0, dense=False)
            progress.step()
    _heaps(scores, indices).reorder()
    return _finish(x, x, np.arange(n), scores, indices, k, kk, n - 1, memory_budget_bytes)


def cross_topk(
    xa: np.ndarray, xb: np.ndarray, k: int, memory_budget_bytes: int = 256 << 20, block: int | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Exact top-``k`` of every row of ``xa`` among the rows of ``xb``, and of every row of
    ``xb`` among the rows of ``xa``, from one pass of (``block`` × ``block``) GEMMs.

    The two sets are disjoint rows (nothing to exclude); indices point into the *other*
    matrix. Same order and padding contract as :func:`exact_topk`. This is the
    off-diagonal part of :func:`exact_topk` for two shards of one matrix.
    """
    xa = np.ascontiguousarray(xa, dtype=np.float32)
    xb = np.ascontiguousarray(xb, dtype=np.float32)
    na, nb = xa.shape[0], xb.shape[0]
    ka, kb = min(k, nb), min(k, na)
    if ka <= 0 or kb <= 0:
        return _empty(na, k), _empty(nb, k)
    sa, ia = _new_heaps(na, nb, ka)
    sb, ib = _new_heaps(nb, na, kb)
    b = block or square_block_for(na + nb, memory_budget_bytes)
    buffer = np.empty((b, b), dtype=np.float32)
    progress = _Progress(f"cross search ({na} × {nb} rows), block", -(-na // b) * -(-nb // b))
    for i0 in range(0, na, b):
        i1 = min(na, i0 + b)
        for j0 in range(0, nb, b):
            j1 = min(nb, j0 + b)
            blk = buffer[: i1 - i0, : j1 - j0]
            np.matmul(xa[i0:i1], xb[j0:j1].T, out=blk)
            _push_block(blk, sa, ia, i0, j0, dense=j0 == 0)  # a row's first block fills its heap
            _push_block_t(blk, sb, ib, i0, j0, dense=i0 == 0)
            progress.step()
    _heaps(sa, ia).reorder()
    _heaps(sb, ib).reorder()
    return (
        _finish(xa, xb, None, sa, ia, k, ka, nb, memory_budget_bytes),
        _finish(xb, xa, None, sb, ib, k, kb, na, memory_budget_bytes),
    )


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
    scores, indices = _new_heaps(m, n - 1, kk)
    step = block_rows_for(n, memory_budget_bytes)
    progress = _Progress("exact row search, rows", m)
    for b0 in range(0, m, step):
        r = rows[b0 : b0 + step]
        block = x[r] @ x.T
        block[np.arange(len(r)), r] = -np.inf
        if on_block is not None:
            on_block(r, block)
        _heaps(scores[b0 : b0 + len(r)], indices[b0 : b0 + len(r)]).addn(n, faiss.swig_ptr(block), 0, 0, len(r))
        progress.step(len(r))
    _heaps(scores, indices).reorder()
    return _finish(x[rows], x, rows, scores, indices, k, kk, n - 1, memory_budget_bytes)


def merge_topk(
    scores_a: np.ndarray, idx_a: np.ndarray, scores_b: np.ndarray, idx_b: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``k`` of two candidate sets in the total order (index -1 = empty)."""
    s = np.concatenate([scores_a, scores_b], axis=1)
    i = np.concatenate([idx_a, idx_b], axis=1)
    s = np.where(i < 0, -np.inf, s).astype(np.float32)
    _order_rows(s, i)
    return np.ascontiguousarray(s[:, :k]), np.ascontiguousarray(i[:, :k])
