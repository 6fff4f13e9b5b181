"""Running top-k selection on faiss's C++ heaps (the SWIG internals, in one place).

A top-k state is two arrays, ``scores`` (m, keep) float32 and ``indices`` (m, keep)
int64, viewed by faiss as a ``float_minheap_array_t`` (no copies): each row is a
min-heap whose top (column 0) is the row's current k-th best score. Scores offered to
a row are pushed only when strictly above its top, in C++ (faiss's ``addn*`` loops, one
comparison per score, parallel over rows with OpenMP).

Pushes come in three shapes:

* :func:`push_dense`: a score block whose rows are consecutive heaps and whose columns
  are consecutive candidates, or any candidate ids shared by every row (and
  :func:`push_top`, the same for heaps that are still empty, :func:`push_filtered`,
  the same once the heaps hold a threshold);
* :func:`push_rows`: a score block whose rows are an arbitrary subset of the heaps;
* :func:`push_columns`: a score block offered to the heaps of its *columns*
  (``s(i, j) = s(j, i)``): the few scores above each column's top are found with one
  vectorised comparison and pushed grouped by column (:func:`push_sparse`).

:func:`offer_block` chooses among them for one block of a symmetric or cross search.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import faiss
import numpy as np

from jobsim.segments import grouped_order, spans, width_classes, within

log = logging.getLogger(__name__)

LIVE_FRACTION = 0.5  # below this share of rows (columns) with a hit, only those are compared
TOP_CELLS = 1 << 18  # scores partially sorted at a time by push_top (1 MB)
LIVE_CELLS = 1 << 20  # scores of the live rows (columns) copied and compared at a time (4 MB; copied whole, up
# to half a 4,096² block per thread, they took the exact pass at text 100k x 512 to 496 / 493 MB)
HEAP_SLOT_BYTES = np.dtype(np.float32).itemsize + np.dtype(np.int64).itemsize  # a score and its id, as new_heaps
SPARE = 16  # heap slots kept beyond k: the margin that certifies the canonical top-k (measured on
# real text vectors: 4 spare slots left 2.2% of the lists uncertified, 16 leave 0.75%)


def heap_view(scores: np.ndarray, indices: np.ndarray) -> faiss.float_minheap_array_t:
    """A faiss heap array over the rows of ``scores``/``indices`` (C-contiguous, no copy)."""
    heap = faiss.float_minheap_array_t()
    heap.k, heap.nh = int(scores.shape[1]), int(scores.shape[0])
    heap.val, heap.ids = faiss.swig_ptr(scores), faiss.swig_ptr(indices)
    return heap


def new_heaps(m: int, candidates: int, kk: int, spare: int = SPARE) -> tuple[np.ndarray, np.ndarray]:
    """Empty heaps for ``m`` queries keeping ``kk`` of ``candidates`` results plus up to
    ``spare`` more (the margin the canonical rescoring certifies the top ``kk`` with)."""
    keep = max(1, min(kk + spare, candidates))
    scores = np.empty((m, keep), dtype=np.float32)
    indices = np.empty((m, keep), dtype=np.int64)
    heap_view(scores, indices).heapify()
    return scores, indices


def compact_ids(indices: np.ndarray, n: int) -> np.ndarray:
    """Ids among ``n`` candidates as int32 when they fit: half the memory of int64 (the
    finishes hold the heaps' ids and their lists at once; the ANN search's heap entries)."""
    return indices.astype(np.int32) if n < 2**31 else indices


def reorder(scores: np.ndarray, indices: np.ndarray) -> None:
    """Heaps → rows sorted by descending score (in place)."""
    heap_view(scores, indices).reorder()


def push_dense(
    block: np.ndarray, scores: np.ndarray, indices: np.ndarray, r0: int, c0: int = 0,
    ids: np.ndarray | None = None,
) -> None:
    """Offer the (rows × cols) ``block`` to heaps ``r0 + i``; candidate of column ``j`` =
    ``c0 + j``, or ``ids[j]`` when ``ids`` is given (the same ids for every row)."""
    block = np.ascontiguousarray(block, dtype=np.float32)
    nr, nc = block.shape
    if nr == 0 or nc == 0:
        return
    heap = heap_view(scores[r0 : r0 + nr], indices[r0 : r0 + nr])
    if ids is None:
        heap.addn(nc, faiss.swig_ptr(block), c0, 0, nr)
    else:
        col_ids = np.ascontiguousarray(ids, dtype=np.int64)
        heap.addn_with_ids(nc, faiss.swig_ptr(block), faiss.swig_ptr(col_ids), 0, 0, nr)


def push_top(block: np.ndarray, scores: np.ndarray, indices: np.ndarray, r0: int, c0: int = 0) -> None:
    """:func:`push_dense` for heaps that are still empty: each heap is first filled with
    placeholders (id -1) just below its row's ``keep``-th best score (a partial sort of the
    values), so the C++ loop pushes only the row's ``keep`` best — the same heaps as
    offering the block to empty ones, which push many of a row's scores one by one
    (measured on a 625 × 1,250 block of text vectors: 2.8 ms against 4.4 ms). Rows go in
    chunks of ``TOP_CELLS`` scores (the partial sort's temporaries); heaps that are not
    empty take the block as :func:`push_dense` does."""
    nr, nc = block.shape
    keep = scores.shape[1]
    if nc <= keep or not (indices[r0 : r0 + nr] == -1).all():
        push_dense(block, scores, indices, r0, c0)
        return
    lowest = -np.finfo(np.float32).max  # an empty slot's value
    step = max(1, TOP_CELLS // nc)
    for a in range(0, nr, step):
        part = np.ascontiguousarray(block[a : a + step], dtype=np.float32)
        kth = np.partition(part, nc - keep, axis=1)[:, nc - keep]
        heaps = slice(r0 + a, r0 + a + len(part))
        scores[heaps] = np.maximum(np.nextafter(kth, np.float32(-np.inf)), lowest)[:, None]
        heap_view(scores[heaps], indices[heaps]).addn(nc, faiss.swig_ptr(part), c0, 0, len(part))


def push_rows(
    block: np.ndarray, scores: np.ndarray, indices: np.ndarray, rows: np.ndarray, ids: np.ndarray
) -> None:
    """Offer row ``s`` of ``block`` to heap ``rows[s]`` (distinct rows), candidates ``ids``."""
    block = np.ascontiguousarray(block, dtype=np.float32)
    nr, nc = block.shape
    if nr == 0 or nc == 0:
        return
    subset = np.ascontiguousarray(rows, dtype=np.int64)
    col_ids = np.ascontiguousarray(ids, dtype=np.int64)
    heap_view(scores, indices).addn_query_subset_with_ids(
        nr, faiss.swig_ptr(subset), nc, faiss.swig_ptr(block), faiss.swig_ptr(col_ids), 0)


def push_sparse(
    scores: np.ndarray, indices: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray
) -> None:
    """Push entries (row, col, value), ``rows`` ascending, into the rows' heaps.

    Rows are grouped by how many entries they have (widths rounded up to powers of two),
    so each group is one padded (rows × width) push with little padding (-inf, never
    pushed)."""
    if len(rows) == 0:
        return
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    counts = np.diff(np.r_[starts, len(rows)])
    for group, width in width_classes(counts):
        g_starts, g_counts = starts[group], counts[group]
        slot = within(g_counts)
        src = spans(g_starts, g_counts)
        which = np.repeat(np.arange(len(group)), g_counts)
        vals = np.full((len(group), width), -np.inf, dtype=np.float32)
        ids = np.zeros((len(group), width), dtype=np.int64)
        vals[which, slot], ids[which, slot] = values[src], cols[src]
        subset = np.ascontiguousarray(rows[g_starts], dtype=np.int64)  # alive during the call
        heap_view(scores, indices).addn_query_subset_with_ids(
            len(group), faiss.swig_ptr(subset), width, faiss.swig_ptr(vals), faiss.swig_ptr(ids), width)


def _distinct(sorted_keys: np.ndarray) -> int:
    return int(np.count_nonzero(sorted_keys[1:] != sorted_keys[:-1])) + 1 if len(sorted_keys) else 0


def push_filtered(
    block: np.ndarray, scores: np.ndarray, indices: np.ndarray, r0: int, c0: int, prefilter: bool = True
) -> float:
    """:func:`push_dense` for heaps that already hold a threshold: one vectorised
    comparison against each row's top finds the few scores worth pushing (measured
    2-3× cheaper per score than the C++ comparison loop of ``addn``). With ``prefilter``
    only rows whose maximum beats their top are compared (worth it when few do, see
    :data:`LIVE_FRACTION`). Returns the share of rows that had a score to push."""
    nr, nc = block.shape
    if nr == 0 or nc == 0:
        return 0.0
    thr = scores[r0 : r0 + nr, 0]
    if prefilter:
        live = np.flatnonzero(block.max(axis=1) > thr)
        if len(live) == 0:
            return 0.0
        if len(live) < LIVE_FRACTION * nr:
            step, rs, cs = max(1, LIVE_CELLS // nc), [], []
            for a in range(0, len(live), step):
                part = live[a : a + step]
                pr, pc = np.divmod(np.flatnonzero(block[part] > thr[part, None]), nc)
                rs.append(part[pr])
                cs.append(pc)
            r, c = np.concatenate(rs), np.concatenate(cs)
            push_sparse(scores, indices, r0 + r, c0 + c, block[r, c])
            return len(live) / nr
    r, c = np.divmod(np.flatnonzero(block > thr[:, None]), nc)
    push_sparse(scores, indices, r0 + r, c0 + c, block[r, c])
    return _distinct(r) / nr


def push_columns(
    block: np.ndarray, scores: np.ndarray, indices: np.ndarray, r0: int, c0: int, prefilter: bool = True
) -> float:
    """Offer ``block`` (rows ``r0 + i`` × columns ``c0 + j``) to the heaps of its columns:
    one comparison in memory order against the columns' tops (with ``prefilter``, on the
    columns whose maximum beats it) finds the few scores above them, pushed grouped by
    column (candidate = ``r0 + i``). Returns the share of columns that had one."""
    nr, nc = block.shape
    if nr == 0 or nc == 0:
        return 0.0
    thr = scores[c0 : c0 + nc, 0]
    r = c = None
    if prefilter:
        live = np.flatnonzero(block.max(axis=0) > thr)
        if len(live) < LIVE_FRACTION * nc:
            step, top = max(1, LIVE_CELLS // max(1, len(live))), thr[live][None, :]
            hits = [np.divmod(np.flatnonzero(block[a : a + step, live] > top), len(live)) for a in range(0, nr, step)]
            r = np.concatenate([h[0] + a for h, a in zip(hits, range(0, nr, step))])
            c = live[np.concatenate([h[1] for h in hits])]
    if r is None:
        r, c = np.divmod(np.flatnonzero(block > thr[None, :]), nc)
    order = grouped_order(c)  # keeps rows ascending within a column
    r, c = r[order], c[order]
    push_sparse(scores, indices, c0 + c, r0 + r, block[r, c])
    return _distinct(c) / nc


def offer_block(
    pool: ThreadPoolExecutor, blk: np.ndarray, rows: tuple[np.ndarray, np.ndarray, int],
    cols: tuple[np.ndarray, np.ndarray, int] | None, rows_first: bool = False, cols_first: bool = False,
    live: list[float] | None = None, whole: bool = False,
) -> None:
    """Offer one GEMM block of a symmetric or cross search to the heaps of its rows
    (``rows`` = scores, indices, first row) and of its columns (None: a diagonal block,
    whose rows' heaps are its columns'). Heaps that are still empty (``*_first``, and a
    diagonal block's) take each row's best (:func:`push_top`). Otherwise, with ``whole``
    (blocks small enough to stay in cache), every score goes through the C++ comparison
    loop (the columns' side as a transposed copy); without, only the scores above the
    heaps' thresholds are offered, with a max-prefilter while the previous block had hits
    in few rows (columns): ``live`` = [rows, columns] share, updated. Each side is cut in
    halves over the pool's threads (disjoint heaps)."""
    (rs, ri, r0) = rows
    nr, nc = blk.shape
    hr, hc = (nr + 1) // 2, (nc + 1) // 2
    live = live if live is not None else [0.0, 0.0]
    if cols is None or rows_first:
        push_r = push_top
    elif whole:
        push_r = push_dense
    else:
        push_r = partial(push_filtered, prefilter=live[0] < LIVE_FRACTION)
    row_jobs = [pool.submit(push_r, blk[a:z], rs, ri, r0 + a, cols[2] if cols else r0)
                for a, z in ((0, hr), (hr, nr)) if z > a]
    col_jobs = []
    if cols is not None:
        cs, ci, c0 = cols
        if cols_first or whole:  # the columns' heaps take the transposed block
            push_t = push_top if cols_first else push_dense
            push_c = lambda part, a: push_t(part.T, cs, ci, c0 + a, r0)
        else:
            pre = live[1] < LIVE_FRACTION
            push_c = lambda part, a: push_columns(part, cs, ci, r0, c0 + a, pre)
        col_jobs = [pool.submit(push_c, blk[:, a:z], a) for a, z in ((0, hc), (hc, nc)) if z > a]
    shares = [[job.result() for job in jobs] for jobs in (row_jobs, col_jobs)]
    for side, got in enumerate(shares):
        if got and all(isinstance(v, float) for v in got):
            live[side] = float(np.mean(got))
