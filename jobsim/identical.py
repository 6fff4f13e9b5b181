"""Bit-identical rows: search each distinct vector once, then expand the lists.

Pure arrays in, arrays out. Distinct texts often have bit-identical vectors (reposts that
differ only in what the embedder leaves out: boilerplate, words seen once; measured: 20 %
of the rows of the 100k benchmark texts under the corpus-fitted embedder, BENCHMARKS.md
"Neighbours"). Equal vectors have equal canonical scores against every row
(:func:`jobsim.rescoring.rescore` depends on the values only), so they tie and the order
(score desc, index asc) puts them by index. Searching one representative per distinct
vector — its smallest row, so representatives keep the rows' order — and expanding each
list to the members of every listed vector (plus the row's own twins, at the vector's score
with itself) gives the lists of the search over all rows, bit for bit, for the work of the
distinct rows, and without the ties that a certified finish must otherwise recompute
exhaustively.

Why the distinct top-``k`` is enough: a row's true top-``k`` entry ``m`` (a member of vector
``w``) has fewer than ``k`` entries before it; if ``w`` were not among the ``k`` distinct
vectors listed, each of those ``k`` would have a member before ``m`` (a higher score, or the
same score and a smaller representative, hence a smaller row than ``m``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.random import default_rng  # loaded with the module, not by the first search

from jobsim.rescoring import cpu_count, exhaustive_rows, rescore
from jobsim.segments import spans, within

MIN_SHARE = 0.01  # fewer repeated rows than this: search all rows as they are
ANN_MIN_SHARE = 0.1  # the ANN pass (cost ∝ rows, not rows²) searches the distinct vectors from this share: below
# it the expansion costs more than the rows it saves (text 100k x 512: 4.5 % repeated, ANN 4.4-4.5 s over all rows
# against 5.0-5.6 s with the twins; text-fitted, 20 %: 3.6 s with them, 3.9 s without)
_CHUNK = 1024  # rows hashed / expanded at a time (the expansion's temporaries grow with it)
PROBE_COLUMNS = 32  # columns of the first, cheap key


@dataclass
class Twins:
    """Rows grouped by bit-identical vector; vectors numbered by their smallest row."""

    first: np.ndarray  # (u,) int64: smallest row of each distinct vector, ascending
    vector: np.ndarray  # (n,) int64: each row's distinct vector
    members: np.ndarray  # (n,) int64: rows grouped by vector, ascending inside a group
    starts: np.ndarray  # (u + 1,) int64: members of vector v = members[starts[v]:starts[v + 1]]

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.starts)

    @property
    def share(self) -> float:
        """The share of rows that repeat an earlier row."""
        return 1 - len(self.first) / len(self.vector)

    @property
    def repeats(self) -> np.ndarray:
        """(n,) bool: the rows that repeat an earlier row (all but each vector's first)."""
        mask = np.ones(len(self.vector), dtype=bool)
        mask[self.first] = False
        return mask


def _row_keys(bits: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """A 64-bit key per row (of ``bits[rows]`` when given): Σ bits · odd random weights
    (mod 2⁶⁴); equal rows, equal keys. Rows are gathered a chunk at a time (no copy of them
    all: a fresh copy of a quarter of a 100k x 1536 matrix took 0.02-0.46 s in page faults)."""
    weights = default_rng(0x7715).integers(1, 1 << 63, size=bits.shape[1], dtype=np.uint64) | np.uint64(1)
    n = len(bits) if rows is None else len(rows)
    keys = np.empty(n, dtype=np.uint64)
    for c0 in range(0, n, _CHUNK):
        part = bits[c0 : c0 + _CHUNK] if rows is None else bits[rows[c0 : c0 + _CHUNK]]
        keys[c0 : c0 + _CHUNK] = (part.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return keys


def _heads(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each of ``rows`` (ascending), the first of the rows sharing its key."""
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = keys[by_key]
    start = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    heads = np.empty(len(rows), dtype=np.int64)
    heads[by_key] = rows[by_key[np.maximum.accumulate(np.where(start, np.arange(len(keys)), 0))]]
    return heads


def identical_rows(x: np.ndarray, min_share: float = MIN_SHARE) -> Twins | None:
    """The groups of bit-identical rows of ``x``, or None when fewer than ``min_share`` of
    the rows repeat an earlier one. Rows are first keyed on ``PROBE_COLUMNS`` columns
    (cheap: most rows of a matrix without twins stop there), the rows sharing a probe key
    on all columns, then checked against the first row of their key; a row whose key
    collides with a different vector's stays on its own (a missed twin costs work, never
    a wrong list)."""
    n = len(x)
    if n < 2:
        return None
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    cols = np.unique(np.linspace(0, bits.shape[1] - 1, min(bits.shape[1], PROBE_COLUMNS)).astype(np.int64))
    every = np.arange(n, dtype=np.int64)
    probe_heads = _heads(_row_keys(bits[:, cols]), every)
    shared = np.bincount(probe_heads, minlength=n)[probe_heads] > 1
    if shared.sum() - np.count_nonzero(np.bincount(probe_heads[shared])) < min_share * n:
        return None  # too few rows can repeat another
    rows = every[shared]
    heads = _heads(_row_keys(bits, rows), rows)
    same = np.ones(len(rows), dtype=bool)
    for c0 in range(0, len(rows), _CHUNK):
        r, h = rows[c0 : c0 + _CHUNK], heads[c0 : c0 + _CHUNK]
        same[c0 : c0 + _CHUNK] = (bits[r] == bits[h]).all(axis=1)
    rep = every.copy()
    rep[rows[same]] = heads[same]  # each row's representative: itself, or the first row of its vector
    first, vector = np.unique(rep, return_inverse=True)
    if len(first) > (1 - min_share) * n:
        return None
    members = np.argsort(vector, kind="stable")
    starts = np.searchsorted(vector[members], np.arange(len(first) + 1))
    return Twins(first=first.astype(np.int64), vector=vector.astype(np.int64), members=members.astype(np.int64),
                 starts=starts.astype(np.int64))


def ann_twins(twins: Twins | None) -> Twins | None:
    """The groups the ANN pass searches by: ``twins`` when at least ``ANN_MIN_SHARE`` of the
    rows repeat another (None: it searches the rows as they are; its lists need no expansion)."""
    return twins if twins is not None and twins.share >= ANN_MIN_SHARE else None


def _vector_lists(
    x: np.ndarray, su: np.ndarray, iu: np.ndarray, vecs: np.ndarray, twins: Twins, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """For the distinct vectors ``vecs`` (lists ``su``, ``iu``), the first ``width``
    entries (score desc, row asc) of the rows their lists reach: their own members (at the
    vector's score with itself) and every member of the vectors listed; a vector listed
    after ``width`` entries of strictly better score is not expanded."""
    u, k = iu.shape
    own = vecs[:, None]
    first = twins.first[vecs]
    own_s = rescore(x[first], x, first[:, None])
    # the vector itself goes where (score desc, vector asc) puts it among its sorted list;
    # vector numbers order like their smallest rows, so ties stay in row order
    at = ((iu >= 0) & ((su > own_s) | ((su == own_s) & (iu < own)))).sum(axis=1, keepdims=True)
    cols = np.arange(k + 1)[None, :]
    take = np.clip(np.where(cols < at, cols, cols - 1), 0, max(k - 1, 0))
    vec = np.where(cols == at, own, np.take_along_axis(iu, take, axis=1) if k else own)
    sc = np.where(cols == at, own_s, np.take_along_axis(su, take, axis=1) if k else own_s)
    counts = np.where(vec >= 0, np.minimum(twins.counts[np.maximum(vec, 0)], width), 0)
    before = np.cumsum(counts, axis=1) - counts
    tie_start = np.ones(sc.shape, dtype=bool)
    tie_start[:, 1:] = sc[:, 1:] != sc[:, :-1]
    needed = np.maximum.accumulate(np.where(tie_start, before, 0), axis=1) < width
    counts = np.where(needed, counts, 0).ravel()
    # entries come out ordered by (owner, score desc, vector, row): only where one score is
    # shared by several listed vectors must their members be merged by row
    run = np.cumsum(tie_start.ravel())  # tie runs, numbered along the lists
    shared = np.bincount(run, weights=counts > 0, minlength=int(run[-1]) + 1) > 1
    owner = np.repeat(np.repeat(np.arange(u), k + 1), counts)
    scores = np.repeat(sc.ravel(), counts)
    rows = twins.members[spans(twins.starts[np.maximum(vec, 0)].ravel(), counts)]
    mixed = np.flatnonzero(np.repeat(shared[run], counts))
    if len(mixed):  # a stable sort by row inside each mixed run (its entries are contiguous)
        entry_run = np.repeat(run, counts)[mixed]
        rows[mixed] = rows[mixed[np.lexsort((rows[mixed], entry_run))]]
    slot = within(np.bincount(owner, minlength=u))
    keep = slot < width
    out_s = np.full((u, width), -np.inf, dtype=np.float32)
    out_i = np.full((u, width), -1, dtype=np.int64)
    out_s[owner[keep], slot[keep]], out_i[owner[keep], slot[keep]] = scores[keep], rows[keep]
    return out_s, out_i


def expand_topk(x: np.ndarray, su: np.ndarray, iu: np.ndarray, twins: Twins, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row's top-``k`` (score desc, row asc; self excluded by index; -inf / -1 padding)
    of ``x`` from the top-``k`` lists ``(su, iu)`` of its distinct vectors ``x[twins.first]``
    (indices = vector numbers, -1 = empty), chunks of vectors on every core (each writes
    the rows of its own vectors)."""
    n = len(twins.vector)
    out = np.empty((n, k), dtype=np.float32), np.empty((n, k), dtype=np.int64)
    chunks = range(0, len(twins.first), _CHUNK)
    with ThreadPoolExecutor(cpu_count()) as pool:
        for _ in pool.map(lambda v0: _expand_chunk(x, su, iu, twins, k, v0, out), chunks):
            pass
    return out


def _expand_chunk(
    x: np.ndarray, su: np.ndarray, iu: np.ndarray, twins: Twins, k: int, v0: int, out: tuple[np.ndarray, np.ndarray]
) -> None:
    """The rows of vectors ``v0 .. v0 + _CHUNK - 1`` of :func:`expand_topk`. A vector of one
    row whose list holds only vectors of one row has that list, mapped to rows (nothing to
    merge: measured, half the vectors of the 100k benchmark texts)."""
    out_s, out_i = out
    counts = twins.counts
    v1 = min(len(twins.first), v0 + _CHUNK)
    ls, li = su[v0:v1, :k], iu[v0:v1, :k]
    alone = (counts[v0:v1] == 1) & ((li < 0) | (counts[np.maximum(li, 0)] == 1)).all(axis=1)
    rows = twins.first[v0:v1][alone]
    out_s[rows], out_i[rows] = ls[alone], np.where(li[alone] >= 0, twins.first[np.maximum(li[alone], 0)], -1)
    vecs = np.flatnonzero(~alone) + v0
    if len(vecs) == 0:
        return
    vs, vi = _vector_lists(x, ls[~alone], li[~alone], vecs, twins, k + 1)
    rows = twins.members[spans(twins.starts[vecs], counts[vecs])]
    own = np.repeat(np.arange(len(vecs)), counts[vecs])
    i = vi[own]
    drop = i == rows[:, None]  # the row itself (once at most), else the last of the k + 1
    drop[~drop.any(axis=1), k] = True
    kept = ~drop
    out_i[rows], out_s[rows] = i[kept].reshape(len(rows), k), vs[own][kept].reshape(len(rows), k)


def distinct_rows(x: np.ndarray, twins: Twins, vectors: np.ndarray, kk: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Exhaustive canonical top-``kk`` of distinct ``vectors`` among the distinct vectors
    (by vector number), reading ``x`` in place."""
    rows = twins.first[vectors]
    s, i = exhaustive_rows(x[rows], x, rows, kk, budget, skip=twins.repeats)
    i[i >= 0] = twins.vector[i[i >= 0]]
    return s, i
