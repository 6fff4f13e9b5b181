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

from jobsim.heaps import compact_ids, new_heaps, push_sparse, reorder
from jobsim.identical import Twins
from jobsim.ivf import Lists, gather
from jobsim.rescoring import cpu_count, finish_rows
from jobsim.segments import grouped_order

log = logging.getLogger(__name__)

QUERY_CELLS = 1 << 18  # scores per GEMM of probing rows against one list's members (1 MB)
WAVE, MAX_WAVE = 8, 64  # blocks (lists) scored on the worker threads between two pushes into the heaps
WAVE_ENTRIES = 1 << 18  # heap entries a wave aims at (2^19 took text 100k x 512 over its memory bound once
# the ANN searched all its rows, 507 / 493 MB, and was no faster)
RANK_STAGES = ((1, 2), (2, 4), (4, 8), (8, 1 << 30))  # probe ranks searched together

Above = list[tuple[np.ndarray, np.ndarray]]  # per sample row: positions scoring at least its lowest true neighbour,
# and their scores (what the recall simulation reads of the row, :func:`sample_recall`)


def probe_pairs(probes: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(list, row, rank) of the probes of ranks ``first``..``last - 1``, grouped by list
    (rows ascending)."""
    width = max(0, min(last, probes.shape[1]) - first)
    lists = probes[:, first : first + width].ravel()
    by_list = grouped_order(lists)
    rows, ranks = np.divmod(by_list, max(1, width))
    return lists[by_list].astype(np.int64), rows, ranks + first


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


def _own_lists(
    y: np.ndarray, rows: np.ndarray | None, lists: Lists, part: np.ndarray, heaps: tuple[np.ndarray, np.ndarray]
) -> None:
    """Lists ``part``: each one's members against each other, in blocks of 256 rows."""
    for b in part.tolist():
        ids = lists.members(b)
        if len(ids) < 2:
            continue
        yb = gather(y, rows, ids)
        for c0 in range(0, len(ids), 256):
            _select_own(yb[c0 : c0 + 256] @ yb.T, ids, c0, heaps)


def _covered(
    mutual: tuple[np.ndarray, np.ndarray, int], ids: np.ndarray, probing: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(members × the probing rows' distinct lists) bool: member ``ids[j]`` probes that list
    at a later rank (``mutual`` = later probes and list of every row, number of lists), and
    each probing row's column: the pairs a member's own probes cover. Lists are numbered
    by a table over all lists (no sort)."""
    later, home, nlist = mutual
    homes = home[probing]
    present = np.zeros(nlist, dtype=bool)
    present[homes] = True
    column = np.cumsum(present) - 1  # list -> its column, where present
    theirs = later[ids]
    member, rank = np.nonzero(present[theirs])
    covered = np.zeros((len(ids), int(column[-1]) + 1), dtype=bool)
    covered[member, column[theirs[member, rank]]] = True
    return covered, column[homes]


def _list_entries(
    y: np.ndarray, rows: np.ndarray | None, ids: np.ndarray, probing: np.ndarray, thresholds: np.ndarray,
    mutual: tuple[np.ndarray, np.ndarray, int],
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Heap entries (heap, candidate, score), in parts, of the rows ``probing`` against the list
    members ``ids`` (one GEMM per ``QUERY_CELLS`` scores): the scores above the rows' thresholds
    for the rows' heaps, and above the members' thresholds for the members' heaps, except
    pairs the member's own probes cover too (``mutual`` = later probes of every row, list
    of every row): those reach it from its own block, and a pair is offered to a heap once."""
    yb, parts = gather(y, rows, ids), []
    covered, home_of = _covered(mutual, ids, probing)
    ids, probing = compact_ids(ids, len(thresholds)), compact_ids(probing, len(thresholds))  # smaller entries
    step = max(16, QUERY_CELLS // max(1, len(ids)))  # rows per GEMM: temporaries of a bounded size
    members_top = thresholds[ids][None, :]  # no push runs during the job: fixed
    for c0 in range(0, len(probing), step):
        q = probing[c0 : c0 + step]
        g = gather(y, rows, q) @ yb.T
        r, c = np.divmod(np.flatnonzero(g > thresholds[q][:, None]), len(ids))
        r2, c2 = np.divmod(np.flatnonzero(g > members_top), len(ids))
        kept = ~covered[c2, home_of[c0 + r2]]
        r2, c2 = r2[kept], c2[kept]
        parts += [(q[r], ids[c], g[r, c]), (ids[c2], q[r2], g[r2, c2])]
    return parts  # concatenated once per wave


def _probed_lists(
    pool: ThreadPoolExecutor, workers: int, y: np.ndarray, rows: np.ndarray | None, lists: Lists, pl: np.ndarray,
    pr: np.ndarray, heaps: tuple[np.ndarray, np.ndarray], later: np.ndarray,
) -> None:
    """Rows ``pr`` against the members of lists ``pl`` (grouped by list), a wave of lists at
    a time: their blocks scored and filtered against the heaps' thresholds on the ``workers``
    threads of ``pool`` (each block feeds the heaps of its rows *and* of its columns, the list's
    members: scores are symmetric), then the wave's entries pushed in one call per range
    of heaps, the ranges side by side, while the next wave is scored. A wave has ``WAVE``
    to ``MAX_WAVE`` blocks, as many scores as the previous wave's entries per score say
    make ``WAVE_ENTRIES`` (few entries pass once the heaps fill: fewer, larger pushes; the
    entries' memory stays bounded whatever the lists' sizes). A threshold read during a
    push is the heap's top before or after it (faiss writes the top once), never above
    the final one: a filter can only let more through."""
    bounds = np.flatnonzero(np.r_[True, pl[1:] != pl[:-1], True]) if len(pl) else np.zeros(1, np.int64)
    sizes = lists.sizes
    blocks = [(int(pl[s0]), pr[s0:s1]) for s0, s1 in zip(bounds[:-1], bounds[1:]) if sizes[int(pl[s0])]]
    thresholds, mutual = heaps[0][:, 0], (later, lists.home, len(sizes))

    def submit(wave: list) -> list:
        return [pool.submit(_list_entries, y, rows, lists.members(b), q, thresholds, mutual) for b, q in wave]

    cells = np.cumsum([0] + [len(q) * int(sizes[b]) for b, q in blocks])  # scores before each block
    scoring, pushing, w0, w1 = submit(blocks[:WAVE]), [], 0, min(WAVE, len(blocks))
    while scoring:
        heap, cand, value = (np.concatenate(p) for p in zip(*[part for job in scoring for part in job.result()]))
        # the next wave: as many scores as make WAVE_ENTRIES at this wave's share of entries per score
        share = max(len(heap), 1) / max(int(cells[w1] - cells[w0]), 1)
        end = np.clip(np.searchsorted(cells, cells[w1] + WAVE_ENTRIES / share), w1 + WAVE, w1 + MAX_WAVE)
        w0, w1 = w1, int(min(end, len(blocks)))
        scoring = submit(blocks[w0:w1])  # scored while this wave is grouped and pushed
        order = grouped_order(heap)
        entries = (heap[order], cand[order], value[order])
        del heap, cand, value, order
        for job in pushing:  # a heap takes one wave at a time
            job.result()
        cuts = np.searchsorted(entries[0], np.arange(workers + 1) * len(heaps[0]) // workers).tolist()
        pushing = [pool.submit(push_sparse, *heaps, *(e[a:z] for e in entries)) for a, z in zip(cuts[:-1], cuts[1:])]
        del entries  # the threads' freed temporaries stay in their arenas for the next wave's (trimmed
        # after every wave, or every stage, they were faulted in again: 0.3-0.45 s of 3.4-4.1 at text 100k x 512)
    for job in pushing:
        job.result()


def candidate_heaps(
    y: np.ndarray, lists: Lists, probes: np.ndarray, nprobe: int, keep: int, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's (of ``y[rows]`` when given) ``keep`` best candidates by ``y`` scores among
    the members of its first ``nprobe`` lists and the rows that probe its list (heaps,
    reordered), on every core."""
    n = len(y) if rows is None else len(rows)
    heaps = new_heaps(n, n - 1, keep, 0)
    workers = cpu_count()
    later = np.ascontiguousarray(probes[:, 1:nprobe])
    with threadpool_limits(1), ThreadPoolExecutor(workers) as pool:  # small GEMMs: one thread each
        for job in [pool.submit(_own_lists, y, rows, lists, np.arange(t, len(lists.sizes), workers), heaps)
                    for t in range(workers)]:
            job.result()
    with threadpool_limits(1), ThreadPoolExecutor(workers) as pool:  # one GEMM per thread
        for first, last in RANK_STAGES:  # nearer lists first: thresholds tighten, fewer pushes later
            if first < nprobe:
                pl, pr, _ = probe_pairs(probes, first, min(last, nprobe))
                _probed_lists(pool, workers, y, rows, lists, pl, pr, heaps, later)
                del pl, pr
    reorder(*heaps)
    return heaps


def rescored_lists(
    x: np.ndarray, candidates: np.ndarray, lists: Lists, k: int, twins: Twins | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Canonical top-``k`` of each row's ``candidates`` (the heaps' indices, any integer
    type, -1 = none; order score desc, index asc), rows done list by list (their
    candidates overlap: cache-friendly rescoring). With ``twins``, the rows are the distinct
    vectors ``x[twins.first]`` and the indices vector numbers."""
    kk = min(k, candidates.shape[1])
    rows, number = (None, None) if twins is None else (twins.first, twins.vector)
    out_s, out_i, _ = finish_rows(x, x, None, candidates, k, kk, False, order=lists.order, id_map=rows,
                                  query_map=rows, id_out=number)
    return out_s, out_i


def probe_ranks(probes: np.ndarray, home: np.ndarray, row: int, cand: np.ndarray) -> np.ndarray:
    """The probe rank at which ``row``'s search meets each of ``cand`` (``probes.shape[1]`` =
    never): the lower of the rank of the candidate's list among the row's probes and the
    rank at which the candidate probes the row's list (a rank ≥ 1; both sides of a block)."""
    pmax = probes.shape[1]
    mine = home[cand][:, None] == probes[row][None, :]
    theirs = probes[cand, 1:] == home[row]
    rk = np.minimum(np.where(mine.any(axis=1), mine.argmax(axis=1), pmax),
                    np.where(theirs.any(axis=1), theirs.argmax(axis=1) + 1, pmax))
    rk[cand == row] = pmax  # never its own candidate
    return rk


def sample_recall(
    y: np.ndarray, lists: Lists, probes: np.ndarray, sample: np.ndarray, truth: np.ndarray,
    keeps: tuple[int, ...], block: int = 64, rows: np.ndarray | None = None,
    above: Above | None = None,
) -> np.ndarray:
    """(len(keeps), pmax, m): for every number of candidates kept and every probe count p,
    each sample row's recall@10, simulating its search exactly: its candidates are the
    members of its first p lists and the rows probing its list at a rank < p
    (:func:`probe_ranks`); the true neighbours among its ``keep`` best by ``y`` score stay
    in its final top-10 (canonical rescoring cannot push a true top-10 neighbour out).
    Only the candidates scoring at least its lowest found true neighbour can rank above
    one: those are the few looked at. Scores: one GEMM per row block (against all of
    ``y``; with ``rows``, the rows are ``y[rows]``), or ``above`` (per sample row, the
    positions scoring at least its lowest true neighbour and their scores, as
    :func:`jobsim.ann_truth.sample_truth` found them in this space)."""
    pmax, home = probes.shape[1], lists.home
    number = None
    if rows is not None:  # column of y -> position in rows (-1: not a row of the index)
        number = np.full(len(y), -1, dtype=np.int64)
        number[rows] = np.arange(len(rows))
    out = np.ones((len(keeps), pmax, len(sample)))
    p_axis = np.arange(1, pmax + 1)[:, None]
    keep_axis = np.asarray(keeps)[:, None, None]
    for b0 in range(0, len(sample), block):
        g = gather(y, rows, sample[b0 : b0 + block]) @ y.T if above is None else None
        for i in range(b0, min(len(sample), b0 + block)):
            row, t = int(sample[i]), truth[i][truth[i] >= 0]
            if len(t) == 0:
                continue
            hits = t[probe_ranks(probes, home, row, t) < pmax]
            if len(hits) == 0:
                out[:, :, i] = 0.0
                continue
            if g is None:
                cand, sc = above[i]
                pick = sc >= sc[np.isin(cand, hits)].min()
                cand, sc = cand[pick], sc[pick]
            else:
                scores = g[i - b0]
                cols = np.flatnonzero(scores >= scores[hits if rows is None else rows[hits]].min())
                cand = cols if number is None else number[cols]
                sc, cand = scores[cols[cand >= 0]], cand[cand >= 0]
            rk = probe_ranks(probes, home, row, cand)
            order = np.lexsort((cand, -sc))
            rk, hit = rk[order], np.isin(cand[order], hits)
            where = np.flatnonzero(hit)
            before = np.cumsum(rk[None, :] < p_axis, axis=1)[:, where]  # (pmax, hits)
            found = (rk[where][None, :] < p_axis) & (before[None] <= keep_axis)  # (keeps, pmax, hits)
            out[:, :, i] = found.sum(axis=2) / len(t)
    return out
