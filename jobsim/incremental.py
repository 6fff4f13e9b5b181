"""Incremental maintenance of every corpus row's cosine candidate list.

Rows are the corpus's distinct vectors (:mod:`jobsim.corpus`): base rows ``[0, base)`` are
the candidates, query rows ``[base, n)`` only get lists. State: for each row its top-``M``
candidates among the base rows (``M`` = candidates + margin) in the total order (score
desc, index asc), and ``depth``, how many leading entries are known to be exact. From one
run to the next:

* a row whose vector is gone, changed or changed role is *removed*; its entries leave
  every list, and each list's exact depth shrinks by the entries it lost (the remaining
  ones are still the exact top of the smaller set);
* a new, changed or re-roled row is *added*: it is searched exactly against the base rows
  (one GEMM of the added rows) and gets its own list; an added base row is merged into
  every list it enters (scores are symmetric: ``s(a, j) = s(j, a)``);
* lists left with fewer than ``candidates`` exact entries are recomputed exactly.

The first ``candidates`` entries of every list then equal a full recomputation's, bit
for bit (every kept score is the canonical pair-by-pair one), which the tests check on
random edit/insert/expire/delete sequences. The state is a cache keyed by row id + a
fingerprint of the vector bytes, checked against the vectors loaded from MongoDB (the
source of truth) before it is used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from jobsim.candidates import CandidateState, fingerprints
from jobsim.neighbours import cross_topk, error_bound, exact_topk, merge_topk, order_rows, rescore, topk_of_rows

log = logging.getLogger(__name__)

CARRY_CHUNK = 8192  # rows carried over at a time
COLLECT_CELLS = 1 << 22  # scores compared with the receivers' thresholds at a time

__all__ = ["CandidateState", "IncrementalReport", "available", "churn_of", "fingerprints", "full_state",
           "search_rows", "update_state"]


@dataclass
class IncrementalReport:
    added: int
    removed: int
    recomputed: int
    merged_pairs: int
    churn: float
    seconds: float


def available(n: int, base: int) -> np.ndarray:
    """How many candidates each row has: the other base rows (base rows), all of them (query rows)."""
    return np.where(np.arange(n) < base, max(base - 1, 0), base).astype(np.int32)


def search_rows(x: np.ndarray, base: int, rows: np.ndarray, k: int, budget: int,
                on_block: Callable[[np.ndarray, np.ndarray], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of the given rows among the base rows (a base row never matches
    itself). ``on_block`` sees the (rows × base) score blocks of the base rows searched."""
    rows = np.asarray(rows, dtype=np.int64)
    scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
    cand = np.full((len(rows), k), -1, dtype=np.int64)
    at_base = rows < base
    if at_base.any() and base > 1:
        scores[at_base], cand[at_base] = topk_of_rows(x[:base], rows[at_base], k, budget, on_block=on_block)
    if (~at_base).any() and base > 0:
        (s, c), _ = cross_topk(x[rows[~at_base]], x[:base], k, budget)
        scores[~at_base], cand[~at_base] = s, c
    return scores, cand


def full_state(ids: np.ndarray, vectors: np.ndarray, fps: np.ndarray, base: int, depth_m: int, budget: int,
               exact: tuple[np.ndarray, np.ndarray] | None = None) -> CandidateState:
    """Exact top-``depth_m`` lists of every row (the full pass); ``exact`` = the base rows'
    lists already computed (e.g. by :func:`jobsim.shards.sharded_topk`)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(ids)
    scores = np.full((n, depth_m), -np.inf, dtype=np.float32)
    cand = np.full((n, depth_m), -1, dtype=np.int64)
    if base:
        scores[:base], cand[:base] = exact if exact is not None else exact_topk(x[:base], depth_m, budget)
    if n > base and base:
        (scores[base:], cand[base:]), _ = cross_topk(x[base:], x[:base], depth_m, budget)
    return CandidateState(ids=ids, fingerprints=fps, scores=scores, cand=cand, base=base,
                          depth=np.minimum(depth_m, available(n, base)), dims=int(x.shape[1]), exact=True)


def churn_of(state: CandidateState, ids: np.ndarray, fps: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(old row → new row or -1 for kept rows, added new rows, churn fraction)."""
    new_pos = {key: row for row, key in enumerate(ids.tolist())}
    old_to_new = np.full(len(state), -1, dtype=np.int64)
    for old_row, key in enumerate(state.ids.tolist()):
        row = new_pos.get(key)
        if row is not None and fps[row] == state.fingerprints[old_row]:
            old_to_new[old_row] = row
    kept_new = np.zeros(len(ids), dtype=bool)
    kept_new[old_to_new[old_to_new >= 0]] = True
    added = np.flatnonzero(~kept_new)
    removed = int((old_to_new < 0).sum())
    return old_to_new, added, (len(added) + removed) / max(1, len(ids))


def _carry_over(state: CandidateState, old_to_new: np.ndarray, n: int,
                avail: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept rows' lists in the new row numbering: removed entries dropped, depth shrunk by
    the exact entries lost (a list that held every candidate keeps holding every one).
    Rows go ``CARRY_CHUNK`` at a time: the temporaries stay small and are reused, only the
    new lists are fresh memory (a run is a new process: every MB it touches first is a fault)."""
    m_width = state.scores.shape[1]
    scores = np.full((n, m_width), -np.inf, dtype=np.float32)
    cand = np.full((n, m_width), -1, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int32)
    kept_old = np.flatnonzero(old_to_new >= 0)
    if not len(kept_old):
        return scores, cand, depth
    kept_new = old_to_new[kept_old]
    # Kept rows keep their relative order (both numberings sort the row ids), so a list that
    # lost no entry is still in (score desc, index asc) order: only the others are sorted again.
    in_order = bool(np.all(np.diff(kept_new) > 0))
    old_avail = available(len(state), state.base)
    columns = np.arange(m_width)[None, :]
    for a in range(0, len(kept_old), CARRY_CHUNK):
        old, new = kept_old[a:a + CARRY_CHUNK], kept_new[a:a + CARRY_CHUNK]
        old_c = state.cand[old]
        mapped = old_to_new[np.maximum(old_c, 0)]
        held = (columns < state.depth[old][:, None]) & (old_c >= 0)
        lost = (held & (mapped < 0)).sum(axis=1)
        mapped[~held] = -1
        s = np.where(mapped >= 0, state.scores[old], -np.inf).astype(np.float32)
        unsorted = np.flatnonzero(lost > 0) if in_order else np.arange(len(old))
        if len(unsorted):
            s_u, m_u = s[unsorted], mapped[unsorted]
            order_rows(s_u, m_u)
            s[unsorted], mapped[unsorted] = s_u, m_u
        scores[new], cand[new] = s, mapped
        was_all = state.depth[old] >= old_avail[old]
        depth[new] = np.where(was_all, np.minimum(m_width, avail[new]), state.depth[old] - lost)
    return scores, cand, depth


def _merge_added(x: np.ndarray, base: int, scores: np.ndarray, cand: np.ndarray, depth: np.ndarray,
                 avail: np.ndarray, added: np.ndarray, receivers: np.ndarray, budget: int) -> tuple[tuple, int]:
    """Own lists of the added rows; the added base rows merged into the receivers' lists.
    Returns the added rows' (scores, cand) and how many pairs were merged."""
    n = len(x)
    threshold = np.where(depth > 0, scores[np.arange(n), np.maximum(depth, 1) - 1], -np.inf).astype(np.float32)
    threshold = np.where(depth >= avail, -np.inf, threshold)  # lists holding every candidate take everyone
    threshold = (threshold - error_bound(x, x[:base])).astype(np.float32)  # block scores are GEMM values
    gate = np.where(receivers, threshold, np.inf).astype(np.float32)  # only receivers take pairs
    pairs_a: list[np.ndarray] = []
    pairs_j: list[np.ndarray] = []

    def collect(rows: np.ndarray, block: np.ndarray, c0: int = 0) -> None:
        columns = gate[None, c0:c0 + block.shape[1]]
        step = max(1, COLLECT_CELLS // max(1, block.shape[1]))  # a few MB of comparisons at a time
        for a0 in range(0, len(rows), step):
            a, j = np.nonzero(block[a0:a0 + step] >= columns)
            pairs_a.append(rows[a0 + a])
            pairs_j.append(c0 + j)

    own = search_rows(x, base, added, scores.shape[1], budget, on_block=collect)
    added_base = added[added < base]
    if len(added_base) and n > base:  # query rows receive added base rows too
        collect(added_base, x[added_base] @ x[base:].T, base)
    merged = 0
    if pairs_j:
        pa, pj = np.concatenate(pairs_a), np.concatenate(pairs_j)
        merged = len(pj)
        if merged:
            _merge_pairs(scores, cand, pa, pj, _pair_scores(x, pa, pj))
    return own, merged


def _pair_scores(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Canonical scores of the row pairs (a, b), ``COLLECT_CELLS`` // d pairs at a time (a
    gather of every pair's vector at once would be one row per pair: 620 MB for 100k pairs
    at 1,536 dimensions, fresh memory)."""
    out = np.empty(len(a), dtype=np.float32)
    step = max(1, COLLECT_CELLS // max(1, x.shape[1]))
    for p0 in range(0, len(a), step):
        out[p0:p0 + step] = rescore(x[b[p0:p0 + step]], x, a[p0:p0 + step, None])[:, 0]
    return out


def update_state(state: CandidateState, ids: np.ndarray, vectors: np.ndarray, fps: np.ndarray, base: int,
                 needed: int, budget: int, old_to_new: np.ndarray | None = None,
                 added: np.ndarray | None = None) -> tuple[CandidateState, IncrementalReport]:
    """Bring ``state`` up to date with the current rows (``ids`` sorted, base rows first).

    ``needed`` = how many exact leading candidates each list must keep (the rerank's
    candidates); lists with fewer are recomputed. Depth ``M`` stays the state's width.
    """
    started = time.perf_counter()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, m_width = len(ids), state.scores.shape[1]
    if old_to_new is None or added is None:
        old_to_new, added, _ = churn_of(state, ids, fps)
    avail = available(n, base)
    scores, cand, depth = _carry_over(state, old_to_new, n, avail)
    is_added = np.zeros(n, dtype=bool)
    is_added[added] = True
    recompute = np.flatnonzero(~is_added & (depth < np.minimum(needed, avail)))
    receivers = ~is_added
    receivers[recompute] = False
    merged = 0
    if len(added):
        (scores[added], cand[added]), merged = _merge_added(x, base, scores, cand, depth, avail, added,
                                                            receivers, budget)
        depth[added] = np.minimum(m_width, avail[added])
    if len(recompute):
        scores[recompute], cand[recompute] = search_rows(x, base, recompute, m_width, budget)
        depth[recompute] = np.minimum(m_width, avail[recompute])
    beyond = np.arange(m_width)[None, :] >= depth[:, None]  # past the exact depth: not trustworthy
    scores[beyond], cand[beyond] = -np.inf, -1
    removed = int((old_to_new < 0).sum())
    report = IncrementalReport(added=len(added), removed=removed, recomputed=len(recompute), merged_pairs=merged,
                               churn=round((len(added) + removed) / max(1, n), 6),
                               seconds=round(time.perf_counter() - started, 3))
    log.info("incremental: %d added, %d removed, %d lists recomputed, %d pairs merged, %.2f s",
             report.added, report.removed, report.recomputed, merged, report.seconds)
    return CandidateState(ids=ids, fingerprints=fps, scores=scores, cand=cand, depth=depth, base=base,
                          dims=int(x.shape[1]), exact=state.exact), report


def _merge_pairs(scores: np.ndarray, cand: np.ndarray, pa: np.ndarray, pj: np.ndarray, ps: np.ndarray) -> None:
    """Merge (row ``pj`` gets candidate ``pa`` with score ``ps``) into the lists, in place;
    the caller truncates each list to its exact depth afterwards."""
    order = np.argsort(pj, kind="stable")
    pa, pj, ps = pa[order], pj[order], ps[order]
    rows, starts, counts = np.unique(pj, return_index=True, return_counts=True)
    width = int(counts.max())
    slot = np.arange(len(pj)) - np.repeat(starts, counts)
    extra_s = np.full((len(rows), width), -np.inf, dtype=np.float32)
    extra_i = np.full((len(rows), width), -1, dtype=np.int64)
    row_of = np.repeat(np.arange(len(rows)), counts)
    extra_s[row_of, slot], extra_i[row_of, slot] = ps, pa
    s, i = merge_topk(scores[rows], cand[rows], extra_s, extra_i, scores.shape[1])
    scores[rows], cand[rows] = s, i
