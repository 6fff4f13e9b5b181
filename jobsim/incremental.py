"""Incremental maintenance of every job's cosine candidate list.

State: for each active row, its top-``M`` candidates (``M`` = candidates + margin) in
the total order (score desc, id asc), and ``depth``, how many leading entries are
known to be exact. From one run to the next:

* a row whose vector is gone or changed is *removed*; its entries leave every list,
  and each list's exact depth shrinks by the entries it lost (the remaining ones are
  still the exact top of the smaller set);
* a new or changed vector is *added*: it is searched exactly against all rows (one
  GEMM of the added rows), gets its own list, and is merged into every list it
  enters (scores are symmetric: ``s(a, j) = s(j, a)``);
* lists left with fewer than ``candidates`` exact entries are recomputed exactly.

The first ``candidates`` entries of every list then equal a full recomputation's,
which the tests check on random edit/insert/expire/delete sequences. The state is a
cache keyed by job id + a fingerprint of the vector bytes: whatever it says is checked
against the vectors loaded from MongoDB (the source of truth) before it is used.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import numpy as np

from jobsim.neighbours import error_bound, exact_topk, merge_topk, order_rows as _order_rows, rescore, topk_of_rows

log = logging.getLogger(__name__)


@dataclass
class CandidateState:
    """Cosine candidate lists of a set of vectors, rows in id order."""

    ids: np.ndarray  # (n,) object, sorted
    fingerprints: np.ndarray  # (n,) uint64, blake2b of each vector's bytes
    scores: np.ndarray  # (n, M) float32, -inf = empty
    cand: np.ndarray  # (n, M) int64 row indices, -1 = empty
    depth: np.ndarray  # (n,) int32, leading entries known exact
    dims: int
    exact: bool

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class IncrementalReport:
    added: int
    removed: int
    recomputed: int
    merged_pairs: int
    churn: float
    seconds: float


def fingerprints(vectors: np.ndarray) -> np.ndarray:
    """A 64-bit digest per row (blake2b): identifies a vector's exact bytes."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    digests = b"".join(hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in x)
    return np.frombuffer(digests, dtype="<u8").copy()


def full_state(
    ids: np.ndarray, vectors: np.ndarray, fps: np.ndarray, depth_m: int, budget: int,
    exact: tuple[np.ndarray, np.ndarray] | None = None,
) -> CandidateState:
    """Exact top-``depth_m`` lists of every row (the full pass); ``exact`` = those lists
    already computed (e.g. by :func:`jobsim.shards.sharded_topk`)."""
    n = len(ids)
    scores, cand = exact if exact is not None else exact_topk(vectors, depth_m, budget)
    return CandidateState(
        ids=ids, fingerprints=fps, scores=scores, cand=cand,
        depth=np.full(n, min(depth_m, max(n - 1, 0)), dtype=np.int32),
        dims=int(vectors.shape[1]), exact=True,
    )


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
    churn = (len(added) + removed) / max(1, len(ids))
    return old_to_new, added, churn


def update_state(
    state: CandidateState,
    ids: np.ndarray,
    vectors: np.ndarray,
    fps: np.ndarray,
    needed: int,
    budget: int,
    old_to_new: np.ndarray | None = None,
    added: np.ndarray | None = None,
) -> tuple[CandidateState, IncrementalReport]:
    """Bring ``state`` up to date with the current rows (``ids`` sorted, ``fps`` parallel).

    ``needed`` = how many exact leading candidates each list must keep (the rerank's
    candidates); lists with fewer are recomputed. Depth ``M`` stays the state's width.
    """
    started = time.perf_counter()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, m_width = len(ids), state.scores.shape[1]
    if old_to_new is None or added is None:
        old_to_new, added, _ = churn_of(state, ids, fps)
    removed = int((old_to_new < 0).sum())
    n_old = len(state)

    # carry kept rows over: remap candidate indices, drop removed entries, shrink depth
    scores = np.full((n, m_width), -np.inf, dtype=np.float32)
    cand = np.full((n, m_width), -1, dtype=np.int64)
    depth = np.zeros(n, dtype=np.int32)
    kept_old = np.flatnonzero(old_to_new >= 0)
    kept_new = old_to_new[kept_old]
    if len(kept_old):
        old_c = state.cand[kept_old]
        mapped = np.where(old_c >= 0, old_to_new[np.where(old_c < 0, 0, old_c)], -1)
        valid = np.arange(m_width)[None, :] < state.depth[kept_old][:, None]
        lost = ((old_c >= 0) & (mapped < 0) & valid).sum(axis=1)
        mapped = np.where(valid, mapped, -1)
        s = np.where(mapped >= 0, state.scores[kept_old], -np.inf).astype(np.float32)
        _order_rows(s, mapped)
        was_all = state.depth[kept_old] >= n_old - 1
        d = np.where(was_all, min(m_width, n - 1), state.depth[kept_old] - lost)
        scores[kept_new], cand[kept_new], depth[kept_new] = s, mapped, d

    is_added = np.zeros(n, dtype=bool)
    is_added[added] = True
    need = min(needed, max(n - 1, 0))
    recompute = np.flatnonzero(~is_added & (depth < need))
    is_recomputed = np.zeros(n, dtype=bool)
    is_recomputed[recompute] = True
    merge_rows = ~is_added & ~is_recomputed  # lists that only need the added rows merged in

    # added rows: their own lists, and every (added, kept) pair that can enter a list
    merged_pairs = 0
    if len(added):
        threshold = np.where(
            depth > 0, scores[np.arange(n), np.maximum(depth, 1) - 1], -np.inf
        ).astype(np.float32)
        threshold = np.where(depth >= n - 1, -np.inf, threshold)  # "all" lists take everyone
        # block scores are GEMM values: widen by the error bound, rescore the pairs found
        threshold = (threshold - error_bound(x, x)).astype(np.float32)
        pairs_a: list[np.ndarray] = []
        pairs_j: list[np.ndarray] = []

        def collect(rows: np.ndarray, block: np.ndarray) -> None:
            hit = (block >= threshold[None, :]) & merge_rows[None, :]
            a, j = np.nonzero(hit)
            pairs_a.append(rows[a])
            pairs_j.append(j)

        s_add, c_add = topk_of_rows(x, added, m_width, budget, on_block=collect)
        scores[added], cand[added] = s_add, c_add
        depth[added] = min(m_width, n - 1)
        if pairs_j:
            pa, pj = np.concatenate(pairs_a), np.concatenate(pairs_j)
            ps = rescore(x[pj], x, pa[:, None])[:, 0]
            merged_pairs = len(pj)
            if merged_pairs:
                _merge_pairs(scores, cand, pa, pj, ps)

    if len(recompute):
        s_re, c_re = topk_of_rows(x, recompute, m_width, budget)
        scores[recompute], cand[recompute] = s_re, c_re
        depth[recompute] = min(m_width, n - 1)

    # entries past the exact depth are not trustworthy: clear them
    beyond = np.arange(m_width)[None, :] >= depth[:, None]
    scores[beyond], cand[beyond] = -np.inf, -1
    new_state = CandidateState(ids=ids, fingerprints=fps, scores=scores, cand=cand, depth=depth,
                               dims=int(x.shape[1]), exact=state.exact)
    report = IncrementalReport(
        added=len(added), removed=removed, recomputed=len(recompute), merged_pairs=merged_pairs,
        churn=round((len(added) + removed) / max(1, n), 6),
        seconds=round(time.perf_counter() - started, 3),
    )
    log.info("incremental: %d added, %d removed, %d lists recomputed, %d pairs merged, %.2f s",
             report.added, report.removed, report.recomputed, merged_pairs, report.seconds)
    return new_state, report


def _merge_pairs(
    scores: np.ndarray, cand: np.ndarray, pa: np.ndarray, pj: np.ndarray, ps: np.ndarray
) -> None:
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
