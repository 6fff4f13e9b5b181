"""From cosine candidate lists of corpus rows to every job's final similar-jobs list.

For each row, the *pool* is its candidates in cosine order, up to the one where the
``candidates``-th distinct duplicate group (other than the row's own) appears. A row whose
exact candidates run out before that is searched deeper (:func:`rows_needing_more`).
Every job of a row is then reranked over its row's pool:

- each candidate row stands for its *active* jobs; the one kept is the best-scored for
  this job (the context bonus differs between reposts in other cities), ties → newest;
- score = w·cosine + (1-w)·bonus; below ``min_score`` dropped;
- members of the job's own duplicate group never appear, and a group appears once (its
  best-scored posting, ties → newest);
- order: score desc, then newest, then row; the first ``k`` kept, with their cosine and
  the bonuses that applied (``match``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobsim.corpus import Corpus
from jobsim.groups import Groups
from jobsim.listset import ListSet
from jobsim.scoring import pair_bonus
from jobsim.segments import spans, within
from jobsim.settings import NeighbourSettings

POOL_CHUNK = 8192  # rows whose pools are measured at a time


def first_in_row(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mask of the entries that are the first (leftmost) valid occurrence of their value in their row.

    One in-place sort per row of the values with each entry's position in the low bits (the
    keys are distinct, so no stable sort is needed: half a two-key lexsort's time)."""
    n, w = values.shape
    if not n or not w:
        return np.zeros((n, w), dtype=bool)
    shift = max(1, (w - 1).bit_length())
    low = int(values.min())
    span = int(values.max()) - low + 1
    if span.bit_length() + shift > 62:
        raise ValueError(f"values span {span}: too far apart to pack with {w} positions")
    packed = np.where(valid, values - low, span).astype(np.int64)  # invalid entries: one value after all
    packed <<= shift
    packed |= np.arange(w, dtype=np.int64)
    packed.sort(axis=1)
    first = np.ones((n, w), dtype=bool)
    first[:, 1:] = (packed[:, 1:] >> shift) != (packed[:, :-1] >> shift)
    packed &= (1 << shift) - 1  # the positions, in sorted order
    packed += (np.arange(n, dtype=np.int64) * w)[:, None]
    out = np.zeros(n * w, dtype=bool)
    out[packed.reshape(-1)] = first.reshape(-1)
    return out.reshape(n, w) & valid


def pool_ends(cand: np.ndarray, depth: np.ndarray, row_group: np.ndarray, own: np.ndarray,
              candidates: int) -> np.ndarray:
    """Per row of ``cand``, how many leading entries make its pool; -1 when its exact
    entries hold fewer than ``candidates`` distinct groups other than its own (``own``).
    Rows go ``POOL_CHUNK`` at a time (small temporaries, reused)."""
    n, w = cand.shape
    ends = np.full(n, -1, dtype=np.int64)
    for a in range(0, n if w else 0, POOL_CHUNK):
        c = cand[a:a + POOL_CHUNK]
        exact = (np.arange(w)[None, :] < depth[a:a + POOL_CHUNK, None]) & (c >= 0)
        groups = np.where(c >= 0, row_group[np.maximum(c, 0)], -1)
        distinct = first_in_row(groups, exact & (groups != own[a:a + POOL_CHUNK, None]))
        reached = np.cumsum(distinct, axis=1) >= candidates
        ends[a:a + POOL_CHUNK] = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, -1)
    return ends


def rows_needing_more(ends: np.ndarray, depth: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Rows whose pool is not complete but whose exact list does not yet hold every
    candidate there is: they need a deeper search."""
    return np.flatnonzero((ends < 0) & (depth < available))


def _choose_members(corpus: Corpus, subjects: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each (subject job, candidate row), the row's active job with the highest bonus
    for the subject (members are stored newest first, so ties go to the newest)."""
    counts = np.diff(corpus.member_start)[np.where(rows < 0, 0, rows)]
    chosen = np.where(rows >= 0, corpus.members[corpus.member_start[np.where(rows < 0, 0, rows)]], -1)
    multi = np.flatnonzero((rows >= 0) & (counts > 1))
    if not len(multi):
        return chosen
    seg = counts[multi]
    offsets = within(seg)
    member = corpus.members[spans(corpus.member_start[rows[multi]], seg)]
    bonus, _ = pair_bonus(corpus.context, np.repeat(subjects[multi], seg), member[:, None])
    segment = np.repeat(np.arange(len(multi)), seg)
    best = np.lexsort((offsets, -bonus[:, 0], segment))
    firsts = best[np.r_[True, segment[best][1:] != segment[best][:-1]]]
    chosen[multi] = member[firsts]
    return chosen


def _list_order(blended: np.ndarray, age_rank: np.ndarray, chosen: np.ndarray, row_key: np.ndarray) -> np.ndarray:
    """Flat indices of each row's entries by score desc, then newest, then ``row_key``: one
    sort per row of one key packing the score's float bits with the entry's rank by
    creation; the rows where two entries with a score tie on it are sorted again by all
    three (-inf entries, never kept, are left as they fall)."""
    n, w = blended.shape
    age = np.where(chosen >= 0, age_rank[np.where(chosen < 0, 0, chosen)], 0)  # 0 = newest
    bits = (-blended).astype(np.float32).view(np.int32).astype(np.int64)
    bits ^= (bits >> 31) & 0x7FFFFFFF  # ordered like the floats
    key = ((bits + (1 << 31)) << 31) | age
    order = np.argsort(key, axis=1)
    order += (np.arange(n, dtype=np.int64) * w)[:, None]
    ranked = key.reshape(-1)[order]
    tied = (ranked[:, 1:] == ranked[:, :-1]) & np.isfinite(blended.reshape(-1)[order[:, 1:]])
    tied = np.flatnonzero(tied.any(axis=1))
    if len(tied):
        again = np.lexsort((row_key[tied], age[tied], -blended[tied]), axis=1)
        order[tied] = again + (tied * w)[:, None]
    return order


@dataclass
class Ranked:
    """Each job's pool, reranked: parallel (jobs × pool) arrays in list order, and ``keep``,
    the entries its list holds."""

    chosen: np.ndarray  # the candidate job of each entry (-1 = none)
    blended: np.ndarray  # its score (-inf = dropped)
    cosine: np.ndarray
    bits: np.ndarray  # the bonuses that applied (jobsim.scoring.MATCH_BITS)
    keep: np.ndarray


def ranked(corpus: Corpus, groups: Groups, jobs: np.ndarray, pool_cos: np.ndarray, pool_rows: np.ndarray,
           cfg: NeighbourSettings) -> Ranked:
    """The rerank of ``jobs``' pools (see the module docstring), as arrays."""
    flat_rows = pool_rows.reshape(-1)
    chosen = _choose_members(corpus, np.repeat(jobs, pool_rows.shape[1]), flat_rows).reshape(pool_rows.shape)
    bonus, bits = pair_bonus(corpus.context, jobs, chosen)
    cosine = np.clip(pool_cos, 0.0, 1.0)
    blended = cfg.cosine_weight * cosine + (1 - cfg.cosine_weight) * bonus
    own_group = groups.job_group[jobs][:, None]
    live = (chosen >= 0) & (blended >= cfg.min_score) & (groups.row_group[np.where(pool_rows < 0, 0, pool_rows)] != own_group)
    blended = np.where(live, blended, -np.inf)
    order = _list_order(blended, corpus.age_rank, chosen, np.where(live, pool_rows, np.iinfo(np.int64).max))
    take = lambda a: a.reshape(-1)[order].reshape(a.shape)  # noqa: E731
    chosen, blended, cosine, bits, rows = take(chosen), take(blended), take(cosine), take(bits), take(pool_rows)
    keep = first_in_row(groups.row_group[np.where(rows < 0, 0, rows)], np.isfinite(blended))
    keep &= np.cumsum(keep, axis=1) <= cfg.k
    return Ranked(chosen, blended, cosine, bits, keep)


def rerank_jobs(corpus: Corpus, groups: Groups, jobs: np.ndarray, pool_cos: np.ndarray,
                pool_rows: np.ndarray, cfg: NeighbourSettings) -> ListSet:
    """Final lists of ``jobs`` (job indices) from their pools (one row per job, -1 padded)."""
    if not len(jobs) or pool_rows.shape[1] == 0:
        return ListSet.without_entries(corpus.job_ids, groups.original, jobs)
    r = ranked(corpus, groups, jobs, pool_cos, pool_rows, cfg)
    kept = np.nonzero(r.keep)  # row by row, each row's entries in list order
    starts = np.zeros(len(jobs) + 1, dtype=np.int64)
    np.cumsum(r.keep.sum(axis=1), out=starts[1:])
    return ListSet(corpus.job_ids, groups.original, jobs.astype(np.int64), starts, r.chosen[kept],
                   np.round(r.blended[kept].astype(np.float64), 2), np.round(r.cosine[kept].astype(np.float64), 2),
                   r.bits[kept])


def pools(cos: np.ndarray, cand: np.ndarray, ends: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pools of ``rows`` as (cosine, candidate row) matrices padded with -1."""
    width = int(ends[rows].max()) if len(rows) else 0
    mask = np.arange(width)[None, :] < ends[rows][:, None]
    return (np.where(mask, cos[rows, :width], -np.inf).astype(np.float32),
            np.where(mask, cand[rows, :width], -1))
