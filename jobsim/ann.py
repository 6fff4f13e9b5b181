"""Approximate all-pairs top-k: an IVF searched as dense GEMM blocks, tuned each run.

Pure arrays in, arrays out. :func:`build_ivf` projects the rows on their top principal
directions (enough of them for a share ``PCA_ENERGIES`` of the sample's energy; text embeddings
concentrate there), trains spherical k-means centroids on a sample in that space, gives
every row its best lists (:mod:`jobsim.ivf`; biased towards even sizes where the lists rows
probe are crowded, as on text), computes the exact top-10 of a random
sample of rows (pruned in the projection, :mod:`jobsim.ann_truth`; its scores there feed the
simulation below) and picks how many lists each row probes (:mod:`jobsim.probe_depth`: one
count for all rows, or each row the lists within a margin of its best one's score) and
the candidates kept per row for rescoring (:mod:`jobsim.ann_tuning`): of the settings
whose recall@10 on that sample — simulating exactly what each sampled row's own search
would find — reaches the target with ~95% confidence, the cheapest by a cost model (more
kept can replace many probed lists where the projection ranks true neighbours a little
low; the heaps stay within ``HEAP_SHARE`` of the matrix).
:func:`search_ivf` then searches every row (:mod:`jobsim.ivf_search`): candidates by
GEMM blocks in the projected space, the kept ones rescored canonically with the full
vectors (the exact pass's scores, bit for bit), ordered (score desc, index asc), and
every found pair offered to both sides. The recall reported is measured on the sample's
final lists. Self is removed by index (duplicates stay), as in the exact path. Given the
groups of bit-identical rows (``twins``, :mod:`jobsim.identical`), the index is over the
distinct vectors, read where they lie in the matrix: what the pass holds beside the
vectors is the projection, the heaps (then only their candidate ids) and the lists.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from jobsim.ann_truth import basis_slack, residual_norms, sample_truth
from jobsim.ann_tuning import keeps_for, tune_space
from jobsim.heaps import SPARE, compact_ids
from jobsim.identical import Twins
from jobsim.ivf import (
    Lists, balance_bias, default_nlist, gather, make_lists, pca_basis, probe_order, train_centroids,
)
from jobsim.ivf_recall import Above
from jobsim.ivf_search import candidate_heaps, rescored_lists
from jobsim.neighbours import topk_of_rows
from jobsim.rescoring import cpu_count, release_memory

log = logging.getLogger(__name__)

MAX_NPROBE = 32  # lists a row may probe; beyond this an IVF is no longer worth it
TRUTH_BUDGET = 128 << 20  # score blocks of the sample's exact search (32 MB: blocks of 80 rows at 100k,
# a third slower than 335; the pass's peak comes later, in the search)
PCA_ENERGIES = (0.85, 0.95, 1.0)  # shares of the sample's energy the search space keeps, tried in turn
# until the target is reachable (measured: 0.85 keeps 0.99 of the true top-10 in the PCA top-66 at
# 512 dims and 0.97 at 1536 on real text vectors; isotropic noise needs all dimensions)


@dataclass
class AnnReport:
    """What the ANN pass did: index, chosen parameter and the recall measured this run."""

    index: str
    param: str
    value: int
    recall_at_10: float  # on the sample, against exact search
    recall_sample: int
    target: float
    nlist: int
    build_s: float
    tune_s: float
    search_s: float = 0.0
    scored_pairs: int = 0  # scores the search computes (Σ probed list sizes)
    search_dims: int = 0  # dimensions candidates are scored in (PCA)
    keep: int = 0  # candidates kept per row for the canonical rescoring
    tried: dict[int, float] = field(default_factory=dict)  # expected sample recall per nprobe (one count for all)
    probe_margin: float = 0.0  # > 0: each row probes the lists within this score of its best, at most ``value``
    mean_probes: float = 0.0  # lists probed per row
    expected_recall: float = 0.0  # the simulation's, for the setting chosen


@dataclass
class IvfIndex:
    """Search space, lists and probes of every row, the recall sample and the probe count
    tuned to the recall target (``depth``: each row's own count, at most ``nprobe``; None:
    all ``nprobe``). ``y`` is released by :func:`search_ivf`. With ``twins``, the
    index is over the distinct vectors ``x[twins.first]`` (positions = vector numbers); ``y``
    is their projection (``ymap`` None), or ``x`` itself read through ``ymap`` = ``twins.first``."""

    y: np.ndarray | None
    ymap: np.ndarray | None
    twins: Twins | None
    lists: Lists
    probes: np.ndarray
    nprobe: int
    depth: np.ndarray | None
    keep: int
    sample: np.ndarray
    truth: np.ndarray
    report: AnnReport

    @property
    def rows(self) -> np.ndarray | None:
        """The rows of ``x`` the index is over (None: all of them)."""
        return None if self.twins is None else self.twins.first


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean |found[:k] ∩ truth[:k]| / |truth[:k]| over rows (ignoring empty truth slots)."""
    hits = total = 0
    for f, t in zip(found[:, :k], truth[:, :k]):
        t = t[t >= 0]
        hits += len(np.intersect1d(f[f >= 0], t))
        total += len(t)
    return hits / total if total else 1.0


def _space(
    x: np.ndarray, rows: np.ndarray | None, energy: float, nlist: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None, Lists, np.ndarray, np.ndarray, tuple[np.ndarray, float] | None]:
    """Search space (PCA keeping ``energy``, or the vectors) of the rows (``x[rows]`` when
    given) and how it maps positions to its rows (None: by position), lists, probes (and
    their gaps, :func:`jobsim.ivf.probe_order`), and for a projection each row's ``|x|²`` and
    the basis's :func:`basis_slack` (None: no projection)."""
    n, d = (len(x) if rows is None else len(rows)), x.shape[1]
    basis = pca_basis(x, energy, rng, rows=rows) if energy < 1 else np.empty((d, d))
    if basis.shape[1] >= d:
        y, ymap, norms = x, rows, None
    else:
        y, ymap, squares = np.empty((n, basis.shape[1]), dtype=np.float32), None, np.empty(n)

        def project(c0: int) -> None:
            part = gather(x, rows, slice(c0, c0 + 2048))
            y[c0 : c0 + 2048] = part @ basis
            squares[c0 : c0 + 2048] = np.einsum("ij,ij->i", part, part, dtype=np.float64)

        with threadpool_limits(1), ThreadPoolExecutor(cpu_count()) as pool:  # the gathers on every core too:
            list(pool.map(project, range(0, n, 2048)))  # 0.19 -> 0.08 s at text-fitted 100k x 512
        norms = squares, basis_slack(basis)
    centroids = train_centroids(y, nlist, rng, rows=ymap)
    probes, gaps = probe_order(y, centroids, MAX_NPROBE, rows=ymap, bias=balance_bias(y, centroids, rng, rows=ymap),
                               gaps=True)
    lists = make_lists(probes[:, 0], len(centroids))
    release_memory()
    return y, ymap, lists, probes, gaps, norms


def _truth(
    x: np.ndarray, twins: Twins | None, y: np.ndarray, norms: tuple[np.ndarray, float] | None, sample: np.ndarray
) -> tuple[np.ndarray, Above | None]:
    """The sample positions' exact top-10 (vector numbers with ``twins``): pruned in the
    projection, with what the recall simulation reads of each row there
    (:func:`jobsim.ann_truth.sample_truth`), or by GEMMs against every row (None)."""

    def exact(positions: np.ndarray) -> np.ndarray:
        if twins is None:
            return topk_of_rows(x, positions, 10, TRUTH_BUDGET)[1]
        _, truth = topk_of_rows(x, twins.first[positions], 10, TRUTH_BUDGET, skip=twins.repeats)
        truth[truth >= 0] = twins.vector[truth[truth >= 0]]
        return truth

    if norms is None:
        return exact(sample), None
    squares, slack = norms
    rows = None if twins is None else twins.first
    return sample_truth(x, rows, y, residual_norms(squares, y, slack), squares, slack, sample, exact)


def build_ivf(
    vectors: np.ndarray, *, recall_target: float = 0.95, recall_sample: int = 500, nlist: int = 0,
    seed: int = 0, keep: int = 0, twins: Twins | None = None,
) -> IvfIndex:
    """Project, train, assign and tune (no search yet): the ANN pass up to its search.
    When the projection caps the recall below the target, more dimensions are kept
    (``PCA_ENERGIES``). ``keep`` = the fewest candidates kept per row for rescoring (the
    tuning may keep more, :func:`_keeps`). With ``twins``, the index is over the distinct
    vectors ``x[twins.first]`` (read in place; positions = vector numbers)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    rows = None if twins is None else twins.first
    n = len(x) if rows is None else len(rows)
    rng = np.random.default_rng(seed)
    nl = max(1, min(nlist or default_nlist(n), n))
    sample = np.sort(rng.choice(n, size=min(recall_sample, n), replace=False))
    tune_s, build_s, truth = 0.0, 0.0, None
    keeps = keeps_for(keep or 66 + SPARE, n, n * x.shape[1] * x.itemsize)  # the distinct vectors' bytes
    for energy in PCA_ENERGIES:
        started = time.perf_counter()
        y, ymap, lists, probes, gaps, norms = _space(x, rows, energy, nl, rng)
        build_s += time.perf_counter() - started
        started = time.perf_counter()
        above = None
        if truth is None:  # in the first space (the truth is exact in any; its scores are this space's)
            truth, above = _truth(x, twins, y, norms, sample)
        tuned = tune_space(y, ymap, lists, probes, sample, truth, keeps, recall_target, x.shape[1], above, gaps)
        del gaps
        tune_s += time.perf_counter() - started
        if tuned.reached or y is x:
            break
        log.info("ann ivf: %d search dims cap the sample recall at %.3f; keeping more", y.shape[1],
                 max(tuned.tried.values()))
    if not tuned.reached:
        log.warning("ann ivf: recall@10 %.3f below target %.2f at nprobe=%d", tuned.expected, recall_target,
                    tuned.nprobe)
    nprobe = tuned.nprobe
    report = AnnReport(
        index="ivf", param="nprobe", value=nprobe, recall_at_10=tuned.expected, recall_sample=len(sample),
        target=recall_target, nlist=len(lists.sizes), build_s=round(build_s, 3), tune_s=round(tune_s, 3),
        scored_pairs=tuned.pairs, search_dims=y.shape[1], keep=tuned.keep, tried=tuned.tried,
        probe_margin=round(tuned.margin, 4), expected_recall=tuned.expected,
        mean_probes=round(float(nprobe if tuned.depth is None else tuned.depth.mean()), 2),
    )
    probes = np.ascontiguousarray(probes[:, :nprobe])  # what the search reads
    release_memory()
    return IvfIndex(y, ymap, twins, lists, probes, nprobe, tuned.depth, tuned.keep, sample, truth, report)


def search_ivf(vectors: np.ndarray, index: IvfIndex, k: int) -> tuple[np.ndarray, np.ndarray, AnnReport]:
    """Every row's top-``k`` (same shapes, order and padding as
    :func:`jobsim.neighbours.exact_topk`) — of the index's rows (``x[index.twins.first]``, lists
    of positions, when it has them); the recall reported is measured on the sample's final
    lists. Releases ``index.y``."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, report = (len(x) if index.rows is None else len(index.rows)), index.report
    if n < 2:
        return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64), report
    started = time.perf_counter()
    y, ymap = (index.y, index.ymap) if index.y is not None else (x, index.rows)
    index.y = None
    release_memory()
    heaps = candidate_heaps(y, index.lists, index.probes, index.nprobe, max(k, index.keep), rows=ymap,
                            depth=index.depth)
    del y  # before the rescoring's memory
    release_memory()
    candidates = compact_ids(heaps[1], n)  # the rescoring needs only these
    del heaps
    release_memory()
    scores, indices = rescored_lists(x, candidates, index.lists, k, twins=index.twins)
    del candidates
    release_memory()
    report.recall_at_10 = round(recall_at(indices[index.sample], index.truth), 4)
    report.search_s = round(time.perf_counter() - started, 3)
    log.info("ann ivf: nlist=%d nprobe=%d (margin %g, %.1f per row) keep=%d in %d dims, recall@10=%.3f (sample %d), build %.1f s, "
             "tune %.1f s, search %.1f s", report.nlist, report.value, report.probe_margin, report.mean_probes, report.keep, report.search_dims,
             report.recall_at_10, report.recall_sample, report.build_s, report.tune_s, report.search_s)
    return scores, indices, report


def ann_topk(
    vectors: np.ndarray, k: int, *, recall_target: float = 0.95, recall_sample: int = 500,
    nlist: int = 0, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, AnnReport]:
    """Approximate :func:`jobsim.neighbours.exact_topk`: :func:`build_ivf` then
    :func:`search_ivf`."""
    index = build_ivf(vectors, recall_target=recall_target, recall_sample=recall_sample,
                      nlist=nlist, seed=seed, keep=k + SPARE)
    return search_ivf(vectors, index, k)
