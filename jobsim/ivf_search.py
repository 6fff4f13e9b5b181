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

from jobsim.heaps import compact_ids, new_heaps, push_sparse
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


def probe_pairs(
    probes: np.ndarray, first: int, last: int, depth: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(list, row, rank) of the probes of ranks ``first``..``last - 1`` (below each row's
    ``depth`` when given), grouped by list (rows ascending)."""
    width = max(0, min(last, probes.shape[1]) - first)
    lists = probes[:, first : first + width].ravel()
    if depth is None:
        by_list = grouped_order(lists)
    else:
        probed = np.flatnonzero((np.arange(first, first + width)[None, :] < depth[:, None]).ravel())
        by_list = probed[grouped_order(lists[probed])]
    rows, ranks = np.divmod(by_list, max(1, width))
    return lists[by_list].astype(np.int64), rows, ranks + first


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


def _covered(mutual: tuple[np.ndarray, np.ndarray, int], probing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(members × the probing rows' distinct lists) bool: member ``j`` probes that list at a
    later rank (``mutual`` = the members' later probes, ``nlist`` where a row probes no
    more; list of every row; number of lists), and each probing row's column: the pairs a
    member's own probes cover. Lists are numbered by a table over all lists (no sort)."""
    theirs, home, nlist = mutual
    homes = home[probing]
    present = np.zeros(nlist + 1, dtype=bool)
    present[homes] = True
    column = np.cumsum(present) - 1  # list -> its column, where present
    member, rank = np.nonzero(present[theirs])
    covered = np.zeros((len(theirs), int(column[-1]) + 1), dtype=bool)
    covered[member, column[theirs[member, rank]]] = True
    return covered, column[homes]


def _list_entries(
    y: np.ndarray, rows: np.ndarray | None, ids: np.ndarray, probing: np.ndarray, thresholds: np.ndarray,
    mutual: tuple[np.ndarray, np.ndarray, int],
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Heap entries (heap, candidate, score), in parts, of the rows ``probing`` against the list
    members ``ids`` (one GEMM per ``QUERY_CELLS`` scores): the scores above the rows' thresholds
    for the rows' heaps, and above the members' thresholds for the members' heaps, except
    pairs the member's own probes cover too (``mutual``, :func:`_covered`): those reach it
    from its own block, and a pair is offered to a heap once."""
    yb, parts = gather(y, rows, ids), []
    covered, home_of = _covered(mutual, probing)
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
    of heaps, the ranges side by side, while the next wave is scored (``later``: every row's
    later probes, rows in list order). A wave has ``WAVE`` to ``MAX_WAVE`` blocks, as many scores as the previous wave's entries per score say
    make ``WAVE_ENTRIES`` (few entries pass once the heaps fill: fewer, larger pushes; the
    entries' memory stays bounded whatever the lists' sizes). A threshold read during a
    push is the heap's top before or after it (faiss writes the top once), never above
    the final one: a filter can only let more through."""
    bounds = np.flatnonzero(np.r_[True, pl[1:] != pl[:-1], True]) if len(pl) else np.zeros(1, np.int64)
    sizes = lists.sizes
    blocks = [(int(pl[s0]), pr[s0:s1]) for s0, s1 in zip(bounds[:-1], bounds[1:]) if sizes[int(pl[s0])]]
    thresholds, at = heaps[0][:, 0], lists.offsets

    def submit(wave: list) -> list:
        return [pool.submit(_list_entries, y, rows, lists.members(b), q, thresholds,
                            (later[at[b] : at[b + 1]], lists.home, len(sizes))) for b, q in wave]

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
    y: np.ndarray, lists: Lists, probes: np.ndarray, nprobe: int, keep: int, rows: np.ndarray | None = None,
    depth: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's (of ``y[rows]`` when given) ``keep`` best candidates by ``y`` scores among
    the members of its first ``nprobe`` lists (its first ``depth`` of them, when given) and
    the rows that probe its list (heaps, in heap order: the canonical rescoring orders
    each row anyway), on every core."""
    n = len(y) if rows is None else len(rows)
    heaps = new_heaps(n, n - 1, keep, 0)
    workers = cpu_count()
    later = probes[lists.order, 1:nprobe]  # rows in list order: a list's members' probes, a slice
    if depth is not None:  # the lists a row does not probe: a list number no list has
        later[np.arange(1, nprobe)[None, :] >= depth[lists.order, None]] = len(lists.sizes)
    with threadpool_limits(1), ThreadPoolExecutor(workers) as pool:  # small GEMMs: one thread each
        for job in [pool.submit(_own_lists, y, rows, lists, np.arange(t, len(lists.sizes), workers), heaps)
                    for t in range(workers)]:
            job.result()
    with threadpool_limits(1), ThreadPoolExecutor(workers) as pool:  # one GEMM per thread
        for first, last in RANK_STAGES:  # nearer lists first: thresholds tighten, fewer pushes later
            if first < nprobe:
                pl, pr, _ = probe_pairs(probes, first, min(last, nprobe), depth)
                _probed_lists(pool, workers, y, rows, lists, pl, pr, heaps, later)
                del pl, pr
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
