"""Canonical scores and the certified finish of every top-k search.

A GEMM's value for one pair changes in the last bits with the shape of the call, so the
heaps of a search only *select* candidates by GEMM score; every kept pair is then
rescored on its own (:func:`rescore`, faiss's ``fvec_inner_product``): the same pair has
the same score in every path (blocks of any size, shards, incremental updates, the
IVF pass), and equal vectors (duplicate postings) tie exactly and resolve by index.

A row's list is *certified* when its k-th canonical score beats the best canonical score
any candidate left out of its heap could have (the heap's smallest GEMM score plus the
float32 error bound, :func:`error_bound`); the rare rows that fail are recomputed by a
fallback (by default exhaustively against every candidate, :func:`exhaustive_rows`).
Results follow one total order: **score descending, then index ascending**.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from jobsim.segments import within

log = logging.getLogger(__name__)

UNIT_ROUNDOFF = 2.0**-24  # float32
FINISH_CHUNK = 2048  # rows rescored and ordered at a time (≈ 3.5 KB of temporaries per row)
FALLBACK_BLOCK = 24 << 20  # score block of the exhaustive fallback (≈ 2.3× this at its peak)

Fallback = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def release_memory() -> None:
    """Give freed heap memory back to the OS (glibc ``malloc_trim``; a no-op elsewhere):
    numpy temporaries freed by worker threads otherwise stay in their malloc arenas and
    count in the process's peak RSS."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def order_keys(scores: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """uint64 keys whose ascending order is (score desc, index asc), empty slots (-1) after
    the scores, NaN after them: the float32 score's bits mapped to an order-reversing
    uint32 (-0.0 as 0.0: they tie) above the index (float32 scores, indices < 2³² − 1)."""
    bits = (scores + np.float32(0)).view(np.int32)  # -0.0 + 0.0 = 0.0
    desc = bits >> 31  # 0 for a positive score, -1 for a negative one
    np.invert(desc, out=desc)
    desc &= 0x7FFFFFFF
    desc ^= bits  # positive: 0x7FFFFFFF - bits (larger first); negative: bits (more negative later)
    desc[np.isnan(scores)] = -1
    key = np.empty(scores.shape, dtype=np.uint64)
    halves = key.view(np.uint32).reshape(*scores.shape, 2)  # [low, high] (little-endian, order_rows checks)
    halves[..., 0], halves[..., 1] = indices, desc.view(np.uint32)  # -1 wraps to 0xFFFFFFFF: last
    return key


def order_rows(scores: np.ndarray, indices: np.ndarray) -> None:
    """Sort each row in place by (score desc, index asc); empty slots (-1) last. One
    uint64 key per entry (:func:`order_keys`); only the rows out of order are sorted (a
    finish's rows mostly are not: its heaps come sorted by GEMM score)."""
    if scores.size == 0:
        return
    if scores.dtype != np.float32 or sys.byteorder != "little" or int(indices.max()) >= 0xFFFFFFFF:
        order = np.lexsort((np.where(indices < 0, np.iinfo(np.int64).max, indices), -scores), axis=1)
        scores[:] = np.take_along_axis(scores, order, axis=1)
        indices[:] = np.take_along_axis(indices, order, axis=1)
        return
    key = order_keys(scores, indices)
    rows = np.flatnonzero((key[:, 1:] < key[:, :-1]).any(axis=1))
    if len(rows):
        order = np.argsort(key[rows], axis=1)
        scores[rows] = np.take_along_axis(scores[rows], order, axis=1)
        indices[rows] = np.take_along_axis(indices[rows], order, axis=1)


def rescore(queries: np.ndarray, base: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Canonical scores: ``queries[i] · base[idx[i, j]]`` (-inf where ``idx`` is -1), each
    pair computed on its own by faiss's ``fvec_inner_products_by_idx``."""
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


def canonical_top(
    queries: np.ndarray, base: np.ndarray, g: np.ndarray, cols: np.ndarray | None, eps: np.ndarray, kk: int
) -> tuple[np.ndarray, np.ndarray]:
    """Canonical top-``kk`` of each query from ``g``, its GEMM scores against the rows
    ``cols`` of ``base`` (all rows when None; -inf = not a candidate): every candidate
    within twice the error bound of the ``kk``-th GEMM score is rescored, so ties and
    near-ties resolve exactly. Rows with fewer candidates are padded (-inf / -1)."""
    m, c = g.shape
    out_s = np.full((m, kk), -np.inf, dtype=np.float32)
    out_i = np.full((m, kk), -1, dtype=np.int64)
    if m == 0 or c == 0:
        return out_s, out_i
    kth = np.partition(g, c - kk, axis=1)[:, c - kk] if c >= kk else np.full(m, -np.inf, np.float32)
    rows, pos = np.nonzero((g >= (kth - 2 * eps)[:, None]) & (g > -np.inf))
    if len(rows) == 0:
        return out_s, out_i
    counts = np.bincount(rows, minlength=m)
    cand = np.full((m, int(counts.max())), -1, dtype=np.int64)
    cand[rows, within(counts)] = pos if cols is None else cols[pos]
    sc = rescore(queries, base, cand)
    order_rows(sc, cand)
    w = min(kk, cand.shape[1])
    out_s[:, :w], out_i[:, :w] = sc[:, :w], cand[:, :w]
    return out_s, out_i


def exhaustive_rows(
    queries: np.ndarray, base: np.ndarray, self_cols: np.ndarray | None, kk: int, budget: int,
    skip: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Canonical top-``kk`` of ``queries`` against all of ``base`` (self excluded by index;
    rows where the mask ``skip`` is True are never candidates)."""
    n = base.shape[0]
    eps = error_bound(queries, base)
    out_s = np.empty((len(queries), kk), dtype=np.float32)
    out_i = np.empty((len(queries), kk), dtype=np.int64)
    step = int(max(1, min(len(queries), min(budget // 3, FALLBACK_BLOCK) // max(1, 4 * n))))
    for b0 in range(0, len(queries), step):
        g = queries[b0 : b0 + step] @ base.T
        if self_cols is not None:
            g[np.arange(len(g)), self_cols[b0 : b0 + step]] = -np.inf
        if skip is not None:
            g[:, skip] = -np.inf
        out_s[b0 : b0 + len(g)], out_i[b0 : b0 + len(g)] = canonical_top(
            queries[b0 : b0 + step], base, g, None, eps[b0 : b0 + step], kk)
    return out_s, out_i


def finish(
    queries: np.ndarray, base: np.ndarray, scores: np.ndarray, indices: np.ndarray,
    k: int, kk: int, certify: bool, fallback: Fallback, order: np.ndarray | None = None,
    heaps_in_order: bool = False, id_map: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`finish_rows` then the ``fallback`` for the rows it could not certify."""
    out_s, out_i, unsafe = finish_rows(queries, base, scores, indices, k, kk, certify, order,
                                       heaps_in_order, id_map)
    fill_unsafe(out_s, out_i, unsafe, kk, fallback)
    return out_s, out_i


def finish_rows(
    queries: np.ndarray, base: np.ndarray, scores: np.ndarray | None, indices: np.ndarray,
    k: int, kk: int, certify: bool, order: np.ndarray | None = None,
    heaps_in_order: bool = False, id_map: np.ndarray | None = None, query_map: np.ndarray | None = None,
    id_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reordered heaps of GEMM scores (``scores`` descending per row) → the canonical
    top-``kk`` of each query row, padded to ``k`` (-inf / -1), and the rows it could not
    certify: when ``certify`` (some candidates were left out of the heaps), rows whose
    ``kk``-th canonical score does not beat the heap's smallest GEMM score + the error
    bound strictly (their lists are to be recomputed, :func:`fill_unsafe`); ``scores`` are
    read only then.

    Query rows are processed in chunks on every core, in the given ``order`` (rows whose
    candidates overlap next to each other make the rescoring reads cache hits). Heap row
    ``i`` belongs to query ``i``, or to ``order[i]`` when ``heaps_in_order``; heap ids are
    rows of ``base``, or positions mapped to rows by ``id_map``; query ``i`` is
    ``queries[i]``, or ``queries[query_map[i]]`` (output rows follow ``i``); the lists hold
    rows of ``base``, or ``id_out[row]`` (a map that keeps their order). The heaps are
    consumed."""
    m = len(queries) if query_map is None else len(query_map)
    out_s = np.full((m, k), -np.inf, dtype=np.float32)
    out_i = np.full((m, k), -1, dtype=np.int64)
    eps = error_bound(queries, base) if certify else None

    def chunk(c0: int) -> np.ndarray:
        c1 = min(m, c0 + FINISH_CHUNK)
        rows = slice(c0, c1) if order is None else order[c0:c1]
        heap = slice(c0, c1) if heaps_in_order or order is None else rows
        idx = indices[heap]
        if id_map is not None:
            idx = np.where(idx >= 0, id_map[np.maximum(idx, 0)], -1)
        q = rows if query_map is None else query_map[rows]
        canon = rescore(queries[q], base, idx)
        order_rows(canon, idx)
        if id_out is not None:
            idx = np.where(idx >= 0, id_out[np.maximum(idx, 0)], -1)
        out_s[rows, :kk], out_i[rows, :kk] = canon[:, :kk], idx[:, :kk]
        if eps is None:
            return np.empty(0, dtype=np.int64)
        bad = np.flatnonzero(~(canon[:, kk - 1] > scores[heap, -1] + eps[q]))
        return c0 + bad if order is None else rows[bad]

    with threadpool_limits(1), ThreadPoolExecutor(cpu_count()) as pool:  # no nested OpenMP teams
        parts = list(pool.map(chunk, range(0, m, FINISH_CHUNK)))
    unsafe = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
    return out_s, out_i, unsafe


def fill_unsafe(out_s: np.ndarray, out_i: np.ndarray, unsafe: np.ndarray, kk: int, fallback: Fallback) -> None:
    """Recompute the lists of the ``unsafe`` rows with ``fallback`` (in place)."""
    if len(unsafe):
        log.debug("%d rows recomputed by the fallback (near-ties at the k-th place)", len(unsafe))
        out_s[unsafe, :kk], out_i[unsafe, :kk] = fallback(unsafe)
