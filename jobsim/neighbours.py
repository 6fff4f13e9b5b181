"""Exact top-k inner-product search: all rows against all rows, or some rows against all.

Pure arrays in, arrays out (in the spirit of faiss ``contrib/exhaustive_search.py``):
numpy GEMM over blocks sized from a memory budget (numpy's BLAS, not the OpenBLAS
bundled with faiss-cpu, which is several times slower on some CPUs), the running top-k
kept in faiss's C++ heaps (:mod:`jobsim.heaps`), then every kept pair rescored on its own
and each list certified (:mod:`jobsim.rescoring`).

The all-pairs pass uses symmetry: only blocks (I, J) with I ≤ J are multiplied and each
block feeds the heaps of its rows *and* of its columns, on every core, so the GEMM work
is about half of ``2·N²·d``. Diagonal blocks go first (each row's best of them), so
every heap has a useful threshold before the off-diagonal blocks. Blocks of up to
:data:`CACHED_BLOCK` rows are offered whole (one C++ comparison per score); larger
passes take the rows in a locality order and offer only the scores above the heaps'
thresholds, found with one vectorised comparison (:func:`~jobsim.heaps.offer_block`).

Results follow one total order, **score descending, then index ascending**, in every
path (blocks of any size, shards, incremental updates): the scores are canonical
(:func:`rescore`) and certified against the float32 error bound. A row never matches
itself: the self entry is masked by index, so duplicate vectors remain neighbours.
Slots with no neighbour hold index -1 and score -inf.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from jobsim.heaps import compact_ids, new_heaps, offer_block, push_dense, reorder
from jobsim.identical import Twins, distinct_rows, expand_topk, identical_rows
from jobsim.ivf import locality_order
from jobsim.phases import PROGRESS_EVERY_S, PhaseClock, Progress
from jobsim.rescoring import (
    error_bound, exhaustive_rows, fill_unsafe, finish, finish_rows, order_rows, release_memory, rescore,
)

__all__ = [
    "PROGRESS_EVERY_S", "block_rows_for", "cross_topk", "error_bound", "exact_topk", "merge_topk",
    "order_rows", "rescore", "square_block_for", "topk_of_rows",
]

log = logging.getLogger(__name__)

MAX_SQUARE_BLOCK = 4096  # measured: 8192² blocks (256 MB) made the 100k pass ~25% slower
LOCALITY_MIN_BYTES = 16 << 20  # smaller matrices stay in the CPU cache: no locality order
CACHED_BLOCK = 2048  # passes with blocks up to this side compare every score in C++, in no locality order
# (measured on text vectors: 1,250² blocks at 10k × 512, selection 0.32 → 0.19 s; 2,500² at 20k, 0.2 s slower)
ROWS_BLOCK_BYTES = 128 << 20  # score block of a row search: larger ones cost fresh memory, no faster GEMMs


def block_rows_for(n: int, memory_budget_bytes: int) -> int:
    """Rows per score block so that one (rows × n) float32 block fits the budget."""
    return int(max(1, min(n, memory_budget_bytes // max(1, 4 * n))))


def square_block_for(n: int, memory_budget_bytes: int, min_blocks: int = 8) -> int:
    """Side of the (b × b) blocks of the symmetric pass: two blocks (the diagonal one and
    the reused off-diagonal buffer) plus masks fit the budget, b ≤ 4096 (cache-friendlier
    comparisons), and there are at least ``min_blocks`` blocks per side when that keeps
    them ≥ 512 rows (more blocks = more of the triangle skipped)."""
    by_budget = min(MAX_SQUARE_BLOCK, int(math.isqrt(max(1, memory_budget_bytes // 10))))
    by_count = max(512, -(-n // min_blocks))
    return max(1, min(n, by_budget, by_count))


def _empty(m: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((m, k), -np.inf, dtype=np.float32), np.full((m, k), -1, dtype=np.int64)


def _symmetric_pass(
    x: np.ndarray, perm: np.ndarray | None, b: int, scores: np.ndarray, indices: np.ndarray, clock: PhaseClock
) -> None:
    """Every pair once: diagonal blocks (whole), then the blocks above them. Rows are
    taken in the order ``perm`` (heap row and candidate ids are positions in it; rows
    of ``x`` not in ``perm`` are not searched)."""
    n = len(x) if perm is None else len(perm)

    def rows(a: int, z: int) -> np.ndarray:
        return x[a:z] if perm is None else x[perm[a:z]]

    starts = list(range(0, n, b))
    progress = Progress(f"exact search ({n} rows), block", len(starts) * (len(starts) + 1) // 2)
    buffer = np.empty((b, b), dtype=np.float32)  # every block's scores, one allocation
    live, whole = [0.0, 0.0], b <= CACHED_BLOCK
    with threadpool_limits(1, user_api="openmp"), ThreadPoolExecutor(2) as pool:
        for i0 in starts:  # diagonal blocks first: every heap gets a useful threshold
            xi = rows(i0, min(n, i0 + b))
            diag = buffer[: len(xi), : len(xi)]
            with clock("gemm"):
                np.matmul(xi, xi.T, out=diag)
            np.fill_diagonal(diag, -np.inf)  # self, by index
            with clock("select"):
                offer_block(pool, diag, (scores, indices, i0), None, whole=whole)
            progress.step()
        for bi, i0 in enumerate(starts):
            xi = rows(i0, min(n, i0 + b))
            for j0 in starts[bi + 1 :]:
                xj = rows(j0, min(n, j0 + b))
                blk = buffer[: len(xi), : len(xj)]
                with clock("gemm"):
                    np.matmul(xi, xj.T, out=blk)  # (bi, bj) GEMM, reused memory
                with clock("select"):
                    offer_block(pool, blk, (scores, indices, i0), (scores, indices, j0), live=live, whole=whole)
                progress.step()


def exact_topk(
    vectors: np.ndarray, k: int, memory_budget_bytes: int = 256 << 20, block: int | None = None,
    timings: dict[str, float] | None = None, twins: Twins | bool | None = True,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``vectors``, the ``k`` largest inner products with the *other* rows.

    Returns ``(scores, indices)``, each (n, k), in the order (score desc, index asc);
    slots with no neighbour (n - 1 < k) hold index -1 and score -inf. ``block`` overrides
    the side of the square score blocks (:func:`square_block_for` by default). Matrices
    larger than the CPU cache are searched in a :func:`~jobsim.ivf.locality_order` (the
    result does not depend on the order). Bit-identical rows are searched once
    (:mod:`jobsim.identical`, same result): ``twins`` = True finds them, None or False
    searches every row, a :class:`~jobsim.identical.Twins` is the groups already found.
    ``timings`` receives seconds per phase.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    clock = PhaseClock(timings)
    if twins is True:
        with clock("twins"):
            twins = identical_rows(x)
    if not isinstance(twins, Twins):
        return _distinct_topk(x, k, memory_budget_bytes, block, clock)
    su, iu = _distinct_topk(x, k, memory_budget_bytes, block, clock, twins)
    with clock("twins"):
        out = expand_topk(x, su, iu, twins, k)
    log.info("exact search: %d rows, %d distinct vectors", len(x), len(twins.first))
    return out


def _distinct_topk(
    x: np.ndarray, k: int, memory_budget_bytes: int, block: int | None, clock: PhaseClock, twins: Twins | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_topk` of the rows as they are (ties resolved by the certified finish),
    or with ``twins`` of the distinct vectors ``x[twins.first]`` (lists of vector numbers),
    read in place."""
    rows = None if twins is None else twins.first
    n = x.shape[0] if rows is None else len(rows)
    kk = min(k, n - 1)
    if kk <= 0:
        return _empty(n, k)
    b = block or square_block_for(n, memory_budget_bytes)
    with clock("order"):  # for the thresholds of the filtered blocks (cached ones compare every score)
        perm = locality_order(x, rows=rows) if n * x.shape[1] * 4 >= LOCALITY_MIN_BYTES and b > CACHED_BLOCK else None
    gather = perm if rows is None else (rows if perm is None else rows[perm])  # search position → row of x
    scores, indices = new_heaps(n, n - 1, kk)
    _symmetric_pass(x, gather, b, scores, indices, clock)
    release_memory()
    with clock("finish"):
        reorder(scores, indices)
        indices = compact_ids(indices, n)
        release_memory()
        # with twins: lists of the distinct vectors, by vector number
        out_s, out_i, unsafe = finish_rows(x, x, scores, indices, k, kk, n - 1 > scores.shape[1], order=perm,
                                           heaps_in_order=True, id_map=gather, query_map=rows,
                                           id_out=None if twins is None else twins.vector)
        del scores, indices  # before the fallback's score blocks
        release_memory()
        fill_unsafe(out_s, out_i, unsafe, kk, (lambda r: exhaustive_rows(x[r], x, r, kk, memory_budget_bytes))
                    if twins is None else (lambda r: distinct_rows(x, twins, r, kk, memory_budget_bytes)))
    log.info("exact search of %d × %d: %s; %d lists recomputed exhaustively", n, x.shape[1],
             ", ".join(f"{p} {s:.2f} s" for p, s in clock.spent.items()), len(unsafe))
    return out_s, out_i


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
    sa, ia = new_heaps(na, nb, ka)
    sb, ib = new_heaps(nb, na, kb)
    b = block or square_block_for(na + nb, memory_budget_bytes)
    buffer = np.empty((b, b), dtype=np.float32)
    progress = Progress(f"cross search ({na} × {nb} rows), block", -(-na // b) * -(-nb // b))
    live = [0.0, 0.0]
    with threadpool_limits(1, user_api="openmp"), ThreadPoolExecutor(2) as pool:
        for i0 in range(0, na, b):
            i1 = min(na, i0 + b)
            for j0 in range(0, nb, b):
                j1 = min(nb, j0 + b)
                blk = buffer[: i1 - i0, : j1 - j0]
                np.matmul(xa[i0:i1], xb[j0:j1].T, out=blk)
                offer_block(pool, blk, (sa, ia, i0), (sb, ib, j0), rows_first=j0 == 0, cols_first=i0 == 0, live=live,
                            whole=b <= CACHED_BLOCK)
                progress.step()
    del buffer
    reorder(sa, ia)
    reorder(sb, ib)
    return (
        finish(xa, xb, sa, ia, k, ka, nb > sa.shape[1],
               lambda rows: exhaustive_rows(xa[rows], xb, None, ka, memory_budget_bytes)),
        finish(xb, xa, sb, ib, k, kb, na > sb.shape[1],
               lambda rows: exhaustive_rows(xb[rows], xa, None, kb, memory_budget_bytes)),
    )


def topk_of_rows(
    vectors: np.ndarray,
    rows: np.ndarray,
    k: int,
    memory_budget_bytes: int = 256 << 20,
    on_block: Callable[[np.ndarray, np.ndarray], None] | None = None,
    skip: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of the given rows against all rows (self excluded by index; rows
    where the mask ``skip`` is True are never candidates, and are not among ``rows``).

    Same contract and order as :func:`exact_topk`, one output row per entry of ``rows``.
    ``on_block(block_rows, scores)`` sees every (rows × n) score block (self = -inf).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.asarray(rows, dtype=np.int64)
    n, m = x.shape[0], len(rows)
    others = n - 1 - (0 if skip is None else int(np.count_nonzero(skip)))
    kk = min(k, others)
    if kk <= 0 or m == 0:
        return _empty(m, k)
    scores, indices = new_heaps(m, others, kk)
    step = block_rows_for(n, min(memory_budget_bytes, ROWS_BLOCK_BYTES))
    buffer = np.empty((min(step, m), n), dtype=np.float32)  # one block, reused
    progress = Progress("exact row search, rows", m)
    for b0 in range(0, m, step):
        r = rows[b0 : b0 + step]
        block = np.matmul(x[r], x.T, out=buffer[: len(r)])
        block[np.arange(len(r)), r] = -np.inf
        if skip is not None:
            block[:, skip] = -np.inf
        if on_block is not None:
            on_block(r, block)
        push_dense(block, scores, indices, b0)
        progress.step(len(r))
    del buffer, block
    reorder(scores, indices)
    q = x[rows]
    return finish(q, x, scores, indices, k, kk, others > scores.shape[1],
                  lambda sub: exhaustive_rows(q[sub], x, rows[sub], kk, memory_budget_bytes, skip=skip))


def merge_topk(
    scores_a: np.ndarray, idx_a: np.ndarray, scores_b: np.ndarray, idx_b: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-``k`` of two candidate sets in the total order (index -1 = empty)."""
    s = np.concatenate([scores_a, scores_b], axis=1)
    i = np.concatenate([idx_a, idx_b], axis=1)
    s = np.where(i < 0, -np.inf, s).astype(np.float32)
    order_rows(s, i)
    return np.ascontiguousarray(s[:, :k]), np.ascontiguousarray(i[:, :k])
