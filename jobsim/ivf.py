"""Inverted lists: spherical k-means on a sample, each row's best lists, a PCA basis.

Pure arrays in, arrays out (numpy GEMM). Rows are assigned to ``nlist`` lists by
spherical k-means centroids trained on a sample; each row *probes* its best lists (by
centroid score less a per-list bias that evens out the lists' sizes, :func:`balance_bias`,
its own list first, :func:`probe_order`). :func:`pca_basis` gives the
subspace the ANN search scores candidates in (:mod:`jobsim.ivf_search`), and
:func:`locality_order` reuses the lists to order the rows of the exact pass.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from jobsim.rescoring import cpu_count

log = logging.getLogger(__name__)

BALANCE_PER_LIST, BALANCE_ITERS, BALANCE_STEP = 64, 30, 0.004  # measured at text 100k: scores per row at the same
# recall 6,884 -> 4,171 (x 512), 6,387 -> 3,873 (x 1536); a step of 0.008 balanced further and cost more
BALANCE_PROBES, BALANCE_CROWDING = 8, 1.3  # balance when a row's 8 best lists hold >= 1.3x the mean size: text 100k
# 1.59 / 1.91 (x 512 / 1536), where it pays; clustered 1.00 and text-fitted 1.14, which it made 6-34 % slower
SUBSPACE_MIN_D = 1024  # from here the PCA's top eigenpairs by subspace iteration (0.52 s against 1.84 for
# eigh of the 1536² Gram matrix, text 100k, on a loaded machine; the same 217 dimensions for 85 % of the energy)


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


def gather(x: np.ndarray, rows: np.ndarray | None, ids: np.ndarray | slice) -> np.ndarray:
    """Rows ``ids`` of the matrix ``x``, or of ``x[rows]`` (read in place, never copied whole):
    the passes search the distinct vectors of a matrix where it lies."""
    return x[ids] if rows is None else x[rows[ids]]


def train_centroids(
    x: np.ndarray, nlist: int, rng: np.random.Generator, per_list: int = 32, iters: int = 10,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Spherical k-means (inner product) on a sample of ``per_list · nlist`` rows (of
    ``x[rows]`` when given): (nlist, d) unit centroids. Empty lists are re-seeded with
    random sample rows."""
    n = len(x) if rows is None else len(rows)
    sample = gather(x, rows, np.sort(rng.choice(n, size=min(n, per_list * nlist), replace=False)))
    nlist = min(nlist, len(sample))
    centroids = _normalise(sample[rng.choice(len(sample), size=nlist, replace=False)])
    for _ in range(iters):
        assign = np.argmax(sample @ centroids.T, axis=1)
        sums = _list_sums(sample, assign, nlist)
        empty = np.flatnonzero(np.bincount(assign, minlength=nlist) == 0)
        sums[empty] = sample[rng.choice(len(sample), size=len(empty), replace=False)]
        centroids = _normalise(sums)
    return centroids


def balance_bias(
    x: np.ndarray, centroids: np.ndarray, rng: np.random.Generator, rows: np.ndarray | None = None,
    per_list: int = BALANCE_PER_LIST, iters: int = BALANCE_ITERS, step: float = BALANCE_STEP,
) -> np.ndarray:
    """(nlist,) float32 biases subtracted from the centroid scores so that the lists are
    closer to equal sizes, when the lists rows probe are crowded: on a sample of
    ``per_list · nlist`` rows (of ``x[rows]`` when given), if a row's ``BALANCE_PROBES`` best
    lists hold ``BALANCE_CROWDING`` × the mean list's size or more, each of ``iters`` rounds
    raises the bias of a list by ``step`` × log(its share / the even share), clipped to ±1
    (zeros otherwise). Text embeddings crowd into a few dense regions whose lists are the
    largest *and* the most probed; the biases move border rows to their next-best list."""
    n, nlist = (len(x) if rows is None else len(rows)), len(centroids)
    part = gather(x, rows, np.sort(rng.choice(n, size=min(n, per_list * nlist), replace=False)))
    scores = part @ centroids.T
    even = len(part) / nlist
    bias = np.zeros(nlist, dtype=np.float32)
    probes, sizes = min(BALANCE_PROBES, nlist), np.bincount(np.argmax(scores, axis=1), minlength=nlist)
    held = 0  # Σ over rows of the sizes of their best lists, in blocks (argpartition's index array is 8 B a score)
    for b0 in range(0, len(scores), 2048):
        held += int(sizes[np.argpartition(-scores[b0 : b0 + 2048], probes - 1, axis=1)[:, :probes]].sum())
    crowding = held / max(1, len(scores) * probes) / even
    log.info("ivf lists: the %d best of a row hold %.2f x the mean list size%s", probes, crowding,
             "; balancing" if crowding >= BALANCE_CROWDING else "")
    if crowding < BALANCE_CROWDING:
        return bias
    shifted = np.empty_like(scores)  # reused: a fresh one per round was a third of the rounds' time
    for _ in range(iters):
        np.subtract(scores, bias, out=shifted)
        sizes = np.bincount(np.argmax(shifted, axis=1), minlength=nlist)
        bias += np.float32(step) * np.clip(np.log(np.maximum(sizes, 1) / even), -1, 1).astype(np.float32)
    return bias


def probe_order(
    x: np.ndarray, centroids: np.ndarray, pmax: int, block: int = 2048, rows: np.ndarray | None = None,
    bias: np.ndarray | None = None, gaps: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """(n, pmax) uint16 (int32 from 2¹⁶ lists): each row's (of ``x[rows]`` when given) ``pmax`` best lists by
    centroid score (less the list's ``bias``, :func:`balance_bias`), best first: a block of
    rows at a time, a GEMM and a partial sort, the blocks on every core (faiss's heaps took
    twice as long for 32 of 256 lists; blocks of 8,192 rows raised the ANN pass's peak RSS
    by 12 MB at text 100k x 512, blocks of 2,048 did not). With ``gaps``, also (n, pmax)
    float32: the best list's score less each one's (ascending along a row)."""
    n, nlist = len(x) if rows is None else len(rows), len(centroids)
    pmax = min(pmax, nlist)
    out = np.empty((n, pmax), dtype=np.uint16 if nlist < 1 << 16 else np.int32)
    behind = np.empty((n, pmax), dtype=np.float32) if gaps else None

    def rank(b0: int) -> None:
        g = gather(x, rows, slice(b0, b0 + block)) @ centroids.T
        if bias is not None:
            g -= bias
        np.negative(g, out=g)  # ascending = best first
        top = (np.argpartition(g, pmax - 1, axis=1)[:, :pmax] if pmax < nlist
               else np.broadcast_to(np.arange(nlist), g.shape))
        values = np.take_along_axis(g, top, axis=1)
        best = np.argsort(values, axis=1)
        out[b0 : b0 + block] = np.take_along_axis(top, best, axis=1)
        if behind is not None:
            values = np.take_along_axis(values, best, axis=1)
            behind[b0 : b0 + block] = values - values[:, :1]

    with threadpool_limits(1), ThreadPoolExecutor(cpu_count()) as pool:
        list(pool.map(rank, range(0, n, block)))
    return out if behind is None else (out, behind)


def locality_order(x: np.ndarray, seed: int = 0, rows: np.ndarray | None = None) -> np.ndarray:
    """A row order that keeps similar rows together (by k-means list): blocks of it have
    near-final thresholds early, and rows next to each other share candidates. With
    ``rows``, an order of ``x[rows]`` (positions in ``rows``), read without copying it."""
    n = len(x) if rows is None else len(rows)
    rng = np.random.default_rng(seed)
    nlist = default_nlist(n)
    centroids = train_centroids(x, nlist, rng, iters=5, rows=rows)
    home = np.empty(n, dtype=np.int64)
    for b0 in range(0, n, 8192):
        home[b0 : b0 + 8192] = np.argmax(gather(x, rows, slice(b0, b0 + 8192)) @ centroids.T, axis=1)
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


def _top_eigenpairs(gram: np.ndarray, variance: float, rng: np.random.Generator) -> tuple | None:
    """The top ``d / 4`` eigenpairs of the Gram matrix, values descending, by two rounds of
    subspace iteration and Rayleigh-Ritz (the Ritz values are the energy the vectors keep,
    exactly), or None when they keep less than ``variance`` of the trace."""
    d = len(gram)
    q = np.linalg.qr(gram @ rng.standard_normal((d, d // 4), dtype=np.float32))[0]
    for _ in range(2):
        q = np.linalg.qr(gram @ q)[0]
    values, vectors = np.linalg.eigh(q.T @ gram @ q)
    if values.sum() < variance * float(np.trace(gram)):
        return None
    return values[::-1], (q @ vectors)[:, ::-1]


def pca_basis(x: np.ndarray, variance: float, rng: np.random.Generator, sample: int = 20_000,
              step: int = 32, rows: np.ndarray | None = None) -> np.ndarray:
    """(d, r) orthonormal basis of the top principal directions (uncentred: inner products
    are what is kept) of a row sample (of ``x[rows]`` when given): the smallest multiple of
    ``step`` dimensions whose share of the sample's energy reaches ``variance`` (all d when
    that is d). From ``SUBSPACE_MIN_D`` dimensions, the top quarter of the spectrum by
    subspace iteration when it holds that share (the full ``eigh`` otherwise)."""
    n, d = (len(x) if rows is None else len(rows)), x.shape[1]
    part = gather(x, rows, np.sort(rng.choice(n, size=min(n, sample), replace=False)))
    gram = part.T @ part
    top = _top_eigenpairs(gram, variance, rng) if d >= SUBSPACE_MIN_D else None
    if top is not None:
        values, vectors = top
        total = float(np.trace(gram))
    else:
        values, vectors = np.linalg.eigh(gram)
        values, vectors = values[::-1], vectors[:, ::-1]
        total = float(np.maximum(values, 0).sum())
    share = np.cumsum(np.maximum(values, 0)) / max(total, 1e-30)
    r = min(d, -(-(int(np.searchsorted(share, variance)) + 1) // step) * step)
    if r > len(values):  # rounded up past the top quarter: the whole spectrum
        values, vectors = np.linalg.eigh(gram)
        vectors = vectors[:, ::-1]
    return np.ascontiguousarray(vectors[:, :r], dtype=np.float32)
