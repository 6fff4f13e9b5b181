"""Inverted lists searched as dense GEMM blocks: the numeric core of the ANN pass.

Pure arrays in, arrays out. Rows are assigned to ``nlist`` lists by spherical k-means
centroids trained on a sample (numpy GEMM); each row *probes* its ``nprobe`` best lists
(by centroid score, its own list first). For every list ``b``, the rows probing it are
multiplied with the list's members in one GEMM and the block is offered to those rows'
heaps (:mod:`jobsim.heaps`); then every kept pair is rescored canonically and each list
certified (:mod:`jobsim.rescoring`), exactly as in the exact pass. So a row's result is
the **exact** top-k of the union of its probed lists (self excluded by index, order
score desc / index asc); only the probing is approximate, and the recall of a probe
count can be computed from list membership alone (:func:`probed_recall`).
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from jobsim.heaps import heap_view, new_heaps, push_dense, push_rows, reorder
from jobsim.rescoring import cpu_count, error_bound, finish, order_rows, rescore

log = logging.getLogger(__name__)

QUERY_CHUNK = 2048  # query rows per GEMM against one list


@dataclass
class Lists:
    """Rows grouped by list: members of list ``b`` = ``order[offsets[b]:offsets[b + 1]]``
    (ascending rows); ``home[i]`` = row i's list."""

    home: np.ndarray  # (n,) int32
    order: np.ndarray  # (n,) int64
    offsets: np.ndarray  # (nlist + 1,) int64
    pos: np.ndarray  # (n,) int64: row i is members(home[i])[pos[i]]

    def members(self, b: int) -> np.ndarray:
        return self.order[self.offsets[b] : self.offsets[b + 1]]

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)


def _normalise(c: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(c, axis=1, keepdims=True)
    return (c / np.where(norms > 0, norms, 1)).astype(np.float32)


def _list_sums(rows: np.ndarray, assign: np.ndarray, nlist: int, cells: int = 4 << 20) -> np.ndarray:
    """Σ of the rows of each list, as GEMMs of a one-hot matrix (≤ ``cells`` entries)."""
    sums = np.zeros((nlist, rows.shape[1]), dtype=np.float32)
    step = max(1, cells // nlist)
    for c0 in range(0, len(rows), step):
        part = assign[c0 : c0 + step]
        onehot = np.zeros((nlist, len(part)), dtype=np.float32)
        onehot[part, np.arange(len(part))] = 1
        sums += onehot @ rows[c0 : c0 + step]
    return sums


def train_centroids(
    x: np.ndarray, nlist: int, rng: np.random.Generator, per_list: int = 32, iters: int = 10
) -> np.ndarray:
    """Spherical k-means (inner product) on a sample of ``per_list · nlist`` rows:
    (nlist, d) unit centroids. Empty lists are re-seeded with random sample rows."""
    n = len(x)
    sample = x[np.sort(rng.choice(n, size=min(n, per_list * nlist), replace=False))]
    nlist = min(nlist, len(sample))
    centroids = _normalise(sample[rng.choice(len(sample), size=nlist, replace=False)])
    for _ in range(iters):
        assign = np.argmax(sample @ centroids.T, axis=1)
        sums = _list_sums(sample, assign, nlist)
        empty = np.flatnonzero(np.bincount(assign, minlength=nlist) == 0)
        sums[empty] = sample[rng.choice(len(sample), size=len(empty), replace=False)]
        centroids = _normalise(sums)
    return centroids


def probe_order(x: np.ndarray, centroids: np.ndarray, pmax: int, block: int = 8192) -> np.ndarray:
    """(n, pmax) int32: each row's ``pmax`` best lists, best first (a heap per row)."""
    n, nlist = len(x), len(centroids)
    pmax = min(pmax, nlist)
    vals = np.empty((n, pmax), dtype=np.float32)
    ids = np.empty((n, pmax), dtype=np.int64)
    heap_view(vals, ids).heapify()
    for b0 in range(0, n, block):
        push_dense(x[b0 : b0 + block] @ centroids.T, vals, ids, b0)
    reorder(vals, ids)
    return ids.astype(np.int32)


def locality_order(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """A row order that keeps similar rows together (by k-means list): blocks of it have
    near-final thresholds early, and rows next to each other share candidates."""
    n = len(x)
    centroids = train_centroids(x, default_nlist(n), np.random.default_rng(seed), iters=5)
    home = np.empty(n, dtype=np.int64)
    for b0 in range(0, n, 8192):
        home[b0 : b0 + 8192] = np.argmax(x[b0 : b0 + 8192] @ centroids.T, axis=1)
    return np.argsort(home, kind="stable")


def default_nlist(n: int) -> int:
    """√n lists (≈ √n rows each), a power of two between 16 and 4096."""
    return int(min(4096, max(16, 2 ** round(math.log2(max(1.0, math.sqrt(n)))))))


def make_lists(home: np.ndarray, nlist: int) -> Lists:
    order = np.argsort(home, kind="stable").astype(np.int64)
    offsets = np.zeros(nlist + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(home, minlength=nlist))
    pos = np.empty(len(home), dtype=np.int64)
    pos[order] = np.arange(len(home)) - np.repeat(offsets[:-1], np.diff(offsets))
    return Lists(home=home.astype(np.int32), order=order, offsets=offsets, pos=pos)


def probed_recall(probes: np.ndarray, lists: Lists, truth: np.ndarray, nprobe: int) -> np.ndarray:
    """Per row of ``truth`` (its exact top-10 ids, -1 = none), the fraction found when the
    row probes its first ``nprobe`` lists: a true neighbour is in the probed top-10 iff
    its list is probed (a subset keeps the order of the whole). ``probes`` = those rows'."""
    valid = truth >= 0
    home = lists.home[np.where(valid, truth, 0)]
    found = (home[:, :, None] == probes[:, None, :nprobe]).any(axis=2) & valid
    return found.sum(axis=1) / np.maximum(1, valid.sum(axis=1))


def probe_pairs(probes: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
    """(list, query) pairs of every probe, grouped by list (queries ascending)."""
    n = len(probes)
    lists = probes[:, :nprobe].ravel().astype(np.int64)
    queries = np.repeat(np.arange(n, dtype=np.int64), nprobe)
    by_list = np.argsort(lists, kind="stable")
    return lists[by_list], queries[by_list]


def search_cost(probes: np.ndarray, lists: Lists, nprobe: int) -> int:
    """Scores the search computes: Σ over probes of the probed list's size."""
    return int(lists.sizes[probes[:, :nprobe]].sum())


def _search_part(
    x: np.ndarray, lists: Lists, pl: np.ndarray, pq: np.ndarray, heaps: tuple[np.ndarray, np.ndarray]
) -> None:
    """GEMM + heap pushes of the (list, query) pairs ``pl``/``pq`` (grouped by list)."""
    bounds = np.flatnonzero(np.r_[True, pl[1:] != pl[:-1], True]) if len(pl) else np.zeros(1, np.int64)
    for s0, s1 in zip(bounds[:-1], bounds[1:]):
        b = int(pl[s0])
        ids = lists.members(b)
        if len(ids) == 0:
            continue
        xb = x[ids]
        for c0 in range(s0, s1, QUERY_CHUNK):
            q = pq[c0 : min(s1, c0 + QUERY_CHUNK)]
            g = x[q] @ xb.T
            own = np.flatnonzero(lists.home[q] == b)
            g[own, lists.pos[q[own]]] = -np.inf  # self, by index
            push_rows(g, *heaps, q, ids)


def ivf_search(
    x: np.ndarray, lists: Lists, probes: np.ndarray, nprobe: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of every row within its first ``nprobe`` lists (see module doc)."""
    n = len(x)
    kk = min(k, n - 1)
    if kk <= 0:
        return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)
    heaps = new_heaps(n, n, kk)
    pl, pq = probe_pairs(probes, nprobe)
    workers = cpu_count()
    part = pq % workers  # disjoint query rows per thread: no two threads share a heap
    with threadpool_limits(1), ThreadPoolExecutor(workers) as pool:
        jobs = [pool.submit(_search_part, x, lists, pl[part == t], pq[part == t], heaps)
                for t in range(workers)]
        for job in jobs:
            job.result()
    reorder(*heaps)

    def fallback(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return probed_exhaustive(x, lists, probes[rows, :nprobe], rows, kk)

    return finish(x, x, *heaps, k, kk, True, fallback, order=lists.order)


def probed_exhaustive(
    x: np.ndarray, lists: Lists, probes: np.ndarray, rows: np.ndarray, kk: int
) -> tuple[np.ndarray, np.ndarray]:
    """Canonical top-``kk`` of each of ``rows`` among the members of its probed lists
    (self excluded), one row at a time (the fallback: rare rows with near-ties)."""
    out_s = np.full((len(rows), kk), -np.inf, dtype=np.float32)
    out_i = np.full((len(rows), kk), -1, dtype=np.int64)
    eps = error_bound(x[rows], x)
    for r, (row, probe) in enumerate(zip(rows.tolist(), probes)):
        cand = np.concatenate([lists.members(int(b)) for b in probe])
        cand = cand[cand != row]
        if len(cand) == 0:
            continue
        g = x[cand] @ x[row]
        if len(cand) > kk:
            kth = np.partition(g, len(cand) - kk)[len(cand) - kk]
            cand = cand[g >= kth - 2 * eps[r]]
        canon = rescore(x[row : row + 1], x, cand[None, :])
        ids = cand[None, :].copy()
        order_rows(canon, ids)
        m = min(kk, ids.shape[1])
        out_s[r, :m], out_i[r, :m] = canon[0, :m], ids[0, :m]
    return out_s, out_i
