"""The ANN search: probed lists as dense GEMM blocks, canonical rescoring, reverse merge.

Pure arrays in, arrays out. Candidates are scored in a search space ``y`` (the vectors
themselves, or their projection on a PCA basis, :func:`jobsim.ivf.pca_basis`): first
every list against itself (each row's own list fills its heap), then for every list
``b`` the rows probing it at a later rank, in one GEMM against its members, offered to
those rows' heaps through a vectorised threshold filter (:mod:`jobsim.heaps`). Each row
keeps its ``keep`` best candidates; they are rescored canonically with the full
vectors (:func:`jobsim.rescoring.rescore`, the exact pass's scores bit for bit) and
ordered (score desc, index asc). Like the exact pass's blocks, every block of probing
rows × list members feeds the heaps of both (scores are symmetric): a row's candidates
are its probed lists' members *and* the rows probing its list, at no extra score.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from jobsim.heaps import new_heaps, push_sparse, reorder
from jobsim.ivf import Lists
from jobsim.rescoring import cpu_count, finish_rows

log = logging.getLogger(__name__)

QUERY_CHUNK = 1024  # probing rows per GEMM against one list
RANK_STAGES = ((1, 2), (2, 4), (4, 8), (8, 1 << 30))  # probe ranks searched together


def probe_pairs(probes: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(list, row, rank) of the probes of ranks ``first``..``last - 1``, grouped by list
    (rows ascending)."""
    width = max(0, min(last, probes.shape[1]) - first)
    lists = probes[:, first : first + width].ravel().astype(np.int64)
    by_list = np.argsort(lists, kind="stable")
    rows, ranks = np.divmod(by_list, max(1, width))
    return lists[by_list], rows, ranks + first


def search_cost(probes: np.ndarray, lists: Lists, nprobe: int) -> int:
    """Scores the search computes: Σ over probes of the probed list's size."""
    return int(lists.sizes[probes[:, :nprobe]].sum())


def _select_own(g: np.ndarray, ids: np.ndarray, c0: int, heaps: tuple[np.ndarray, np.ndarray]) -> None:
    """Rows ``ids[c0:]`` of a list's own block ``g`` (self excluded): their best ``keep``
    candidates by a partial sort, written in ascending order (a valid min-heap)."""
    scores, indices = heaps
    keep, m = scores.shape[1], len(ids)
    lowest = -np.finfo(np.float32).max
    g[np.arange(len(g)), np.arange(c0, c0 + len(g))] = lowest  # self, by index: never a candidate
    top = np.argpartition(g, m - keep, axis=1)[:, m - keep :] if m > keep else np.argsort(g, axis=1)
    sc = np.take_along_axis(g, top, axis=1)
    up = np.argsort(sc, axis=1)
    sc, cand = np.take_along_axis(sc, up, axis=1), ids[np.take_along_axis(top, up, axis=1)]
    cand[sc == lowest] = -1
    rows = ids[c0 : c0 + len(g)]
    scores[rows, keep - sc.shape[1] :], indices[rows, keep - sc.shape[1] :] = sc, cand  # first slots stay empty


def _own_lists(y: np.ndarray, lists: Lists, part: np.ndarray, heaps: tuple[np.ndarray, np.ndarray]) -> None:
    """Lists ``part``: each one's members against each other, in blocks of 512 rows."""
    for b in part.tolist():
        ids = lists.members(b)
        if len(ids) < 2:
            continue
        yb = y[ids]
        for c0 in range(0, len(ids), 256):
            _select_own(yb[c0 : c0 + 256] @ yb.T, ids, c0, heaps)


def _push_rows(g: np.ndarray, heaps: tuple[np.ndarray, np.ndarray], rows: np.ndarray, cols: np.ndarray) -> None:
    """Scores ``g`` (rows × cols) above the rows' thresholds into the rows' heaps."""
    scores, indices = heaps
    r, c = np.divmod(np.flatnonzero(g > scores[rows, :1]), g.shape[1])
    push_sparse(scores, indices, rows[r], cols[c], g[r, c])


def _push_cols(
    g: np.ndarray, heaps: tuple[np.ndarray, np.ndarray], rows: np.ndarray, cols: np.ndarray,
    mutual: tuple[np.ndarray, np.ndarray],
) -> None:
    """Scores ``g`` (rows × cols) above the columns' thresholds into the columns' heaps,
    except pairs the column's own probes cover too (``mutual`` = later probes of every
    row, list of every row): those reach it from its own block, and a pair is offered
    to a heap once."""
    scores, indices = heaps
    r, c = np.divmod(np.flatnonzero(g > scores[cols, 0][None, :]), g.shape[1])
    later, home = mutual
    own = (later[cols[c]] == home[rows[r]][:, None]).any(axis=1)
    r, c = r[~own], c[~own]
    order = np.argsort(c, kind="stable")
    r, c = r[order], c[order]
    push_sparse(scores, indices, cols[c], rows[r], g[r, c])


def _probed_lists(
    pool: ThreadPoolExecutor, y: np.ndarray, lists: Lists, pl: np.ndarray, pr: np.ndarray,
    heaps: tuple[np.ndarray, np.ndarray], later: np.ndarray,
) -> None:
    """Rows ``pr`` against the members of lists ``pl`` (grouped by list), one GEMM per
    list and chunk of rows; each block feeds the heaps of its rows *and* of its columns
    (the list's members: scores are symmetric), halves of each on the worker threads
    (the probing rows are never members of the list: disjoint heaps)."""
    bounds = np.flatnonzero(np.r_[True, pl[1:] != pl[:-1], True]) if len(pl) else np.zeros(1, np.int64)
    for s0, s1 in zip(bounds[:-1], bounds[1:]):
        ids = lists.members(int(pl[s0]))
        if len(ids) == 0:
            continue
        yb = y[ids]
        for c0 in range(s0, s1, QUERY_CHUNK):
            q = pr[c0 : min(s1, c0 + QUERY_CHUNK)]
            g = y[q] @ yb.T
            hq, hc = (len(q) + 1) // 2, (len(ids) + 1) // 2
            jobs = [pool.submit(_push_rows, g[a:z], heaps, q[a:z], ids) for a, z in ((0, hq), (hq, len(q))) if z > a]
            jobs += [pool.submit(_push_cols, g[:, a:z], heaps, q, ids[a:z], (later, lists.home))
                     for a, z in ((0, hc), (hc, len(ids))) if z > a]
            for job in jobs:
                job.result()


def candidate_heaps(
    y: np.ndarray, lists: Lists, probes: np.ndarray, nprobe: int, keep: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``keep`` best candidates by ``y`` scores among the members of its first
    ``nprobe`` lists and the rows that probe its list (heaps, reordered), on every core."""
    n = len(y)
    heaps = new_heaps(n, n - 1, keep, 0)
    workers = cpu_count()
    later = np.ascontiguousarray(probes[:, 1:nprobe])
    with threadpool_limits(1), ThreadPoolExecutor(workers) as pool:  # small GEMMs: one thread each
        for job in [pool.submit(_own_lists, y, lists, np.arange(t, len(lists.sizes), workers), heaps)
                    for t in range(workers)]:
            job.result()
    with threadpool_limits(1, user_api="openmp"), ThreadPoolExecutor(workers) as pool:
        for first, last in RANK_STAGES:  # nearer lists first: thresholds tighten, fewer pushes later
            if first < nprobe:
                pl, pr, _ = probe_pairs(probes, first, min(last, nprobe))
                _probed_lists(pool, y, lists, pl, pr, heaps, later)
    reorder(*heaps)
    return heaps


def rescored_lists(
    x: np.ndarray, heaps: tuple[np.ndarray, np.ndarray], lists: Lists, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Canonical top-``k`` of each row's candidates (order score desc, index asc), rows
    done list by list (their candidates overlap: cache-friendly rescoring)."""
    kk = min(k, heaps[0].shape[1])
    out_s, out_i, _ = finish_rows(x, x, *heaps, k, kk, False, order=lists.order)
    return out_s, out_i


def probers(lists: Lists, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverted probes: for list ``a``, the rows probing it at a rank ≥ 1 are
    ``rows[offsets[a]:offsets[a + 1]]``, at ranks ``ranks[...]``."""
    pl, pr, ranks = probe_pairs(probes, 1, probes.shape[1])
    return pr, ranks, np.searchsorted(pl, np.arange(len(lists.sizes) + 1))


def sample_recall(
    y: np.ndarray, lists: Lists, probes: np.ndarray, rows: np.ndarray, truth: np.ndarray, keep: int,
    block: int = 64,
) -> np.ndarray:
    """(pmax, m): for every probe count p, each sample row's recall@10, simulating its
    search exactly: its candidates are the members of its first p lists and the rows
    probing its list at a rank < p (each at the lower of the two ranks); the true
    neighbours among its ``keep`` best by ``y`` score stay in its final top-10 (canonical
    rescoring cannot push a true top-10 neighbour out). Scores: one GEMM per row block."""
    pmax = probes.shape[1]
    inv_rows, inv_ranks, inv_off = probers(lists, probes)
    out = np.ones((pmax, len(rows)))
    p_axis = np.arange(1, pmax + 1)[:, None]
    for b0 in range(0, len(rows), block):
        g = y[rows[b0 : b0 + block]] @ y.T
        for i in range(b0, min(len(rows), b0 + block)):
            row, t = int(rows[i]), truth[i][truth[i] >= 0]
            if len(t) == 0:
                continue
            a = int(lists.home[row])
            cand = np.concatenate([lists.members(int(b)) for b in probes[row]] + [inv_rows[inv_off[a] : inv_off[a + 1]]])
            rank = np.concatenate([np.repeat(np.arange(pmax), lists.sizes[probes[row]]), inv_ranks[inv_off[a] : inv_off[a + 1]]])
            first = np.lexsort((rank, cand))
            cand, rank = cand[first], rank[first]
            uniq = np.r_[True, cand[1:] != cand[:-1]]  # each candidate at its lowest rank
            cand, rank = cand[uniq], rank[uniq]
            sc = g[i - b0, cand]
            hits = np.isin(cand, t)
            if not hits.any():
                out[:, i] = 0.0
                continue
            mine = (cand != row) & (sc >= sc[hits].min())  # only what ranks above a hit matters
            cand, rank, sc = cand[mine], rank[mine], sc[mine]
            order = np.lexsort((cand, -sc))
            cand, rank = cand[order], rank[order]
            where = np.flatnonzero(np.isin(cand, t))
            before = np.cumsum(rank[None, :] < p_axis, axis=1)[:, where]  # (pmax, hits)
            out[:, i] = ((rank[where][None, :] < p_axis) & (before <= keep)).sum(axis=1) / len(t)
    return out
