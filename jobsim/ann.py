"""Approximate all-pairs top-k: an IVF searched as dense GEMM blocks, tuned each run.

Pure arrays in, arrays out. :func:`build_ivf` trains spherical k-means centroids on a
sample, gives every row its best lists (:mod:`jobsim.ivf`), computes the exact top-10
of a random sample of rows and picks the smallest ``nprobe`` whose recall@10 on that
sample reaches the target with ~95% confidence (the recall of a probe count follows from
list membership alone, so every candidate value is evaluated without a search).
:func:`jobsim.ivf.ivf_search` then searches every row: its result is the exact,
canonically rescored top-k of the union of its probed lists, so scores are the true
cosines the exact pass would give and only *which* neighbours were found is
approximate. Self is removed by index (duplicates stay), as in the exact path.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np

from jobsim.ivf import (
    Lists, default_nlist, ivf_search, make_lists, probe_order, probed_recall, search_cost, train_centroids,
)
from jobsim.neighbours import topk_of_rows

log = logging.getLogger(__name__)

MAX_NPROBE = 32  # probe counts tried; beyond this an IVF is no longer worth it
CONFIDENCE_Z = 1.645  # one-sided 95%: the sample's recall minus z standard errors must reach the target
TRUTH_BUDGET = 64 << 20  # score blocks of the sample's exact search


@dataclass
class AnnReport:
    """What the ANN pass did: index, chosen parameter and the recall measured this run."""

    index: str
    param: str
    value: int
    recall_at_10: float  # on the sample, against exact search
    recall_sample: int
    nlist: int
    build_s: float
    tune_s: float
    search_s: float = 0.0
    scored_pairs: int = 0  # scores the search computes (Σ probed list sizes)
    tried: dict[int, float] = field(default_factory=dict)


@dataclass
class IvfIndex:
    """Lists and probes of every row, and the probe count tuned to the recall target."""

    lists: Lists
    probes: np.ndarray
    nprobe: int
    report: AnnReport


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean |found[:k] ∩ truth[:k]| / |truth[:k]| over rows (ignoring empty truth slots)."""
    hits = total = 0
    for f, t in zip(found[:, :k], truth[:, :k]):
        t = t[t >= 0]
        hits += len(np.intersect1d(f[f >= 0], t))
        total += len(t)
    return hits / total if total else 1.0


def _tune(
    probes: np.ndarray, lists: Lists, truth: np.ndarray, target: float
) -> tuple[int, dict[int, float]]:
    """Smallest nprobe whose sample recall, less ``CONFIDENCE_Z`` standard errors, reaches
    ``target`` (else the largest tried); recall of every value tried."""
    tried: dict[int, float] = {}
    m = len(truth)
    for p in range(1, probes.shape[1] + 1):
        per_row = probed_recall(probes, lists, truth, p)
        mean = float(per_row.mean()) if m else 1.0
        tried[p] = round(mean, 4)
        se = float(per_row.std(ddof=1)) / math.sqrt(m) if m > 1 else 0.0
        if mean - CONFIDENCE_Z * se >= target:
            return p, tried
    return probes.shape[1], tried


def build_ivf(
    vectors: np.ndarray, *, recall_target: float = 0.95, recall_sample: int = 500,
    nlist: int = 0, seed: int = 0,
) -> IvfIndex:
    """Train, assign and tune (no search yet): the ANN pass up to its search."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    nl = max(1, min(nlist or default_nlist(n), n))
    centroids = train_centroids(x, nl, rng)
    probes = probe_order(x, centroids, MAX_NPROBE)
    lists = make_lists(probes[:, 0], len(centroids))
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    sample = np.sort(rng.choice(n, size=min(recall_sample, n), replace=False))
    _, truth = topk_of_rows(x, sample, 10, TRUTH_BUDGET)
    nprobe, tried = _tune(probes[sample], lists, truth, recall_target)
    recall = tried[nprobe]
    if recall < recall_target:
        log.warning("ann ivf: recall@10 %.3f below target %.2f at nprobe=%d", recall, recall_target, nprobe)
    report = AnnReport(
        index="ivf", param="nprobe", value=nprobe, recall_at_10=recall, recall_sample=len(sample),
        nlist=len(centroids), build_s=round(build_s, 3), tune_s=round(time.perf_counter() - started, 3),
        scored_pairs=search_cost(probes, lists, nprobe), tried=tried,
    )
    return IvfIndex(lists=lists, probes=probes, nprobe=nprobe, report=report)


def search_ivf(vectors: np.ndarray, index: IvfIndex, k: int) -> tuple[np.ndarray, np.ndarray, AnnReport]:
    """Every row's top-``k`` within its tuned probes (same shapes, order and padding as
    :func:`jobsim.neighbours.exact_topk`)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    started = time.perf_counter()
    scores, indices = ivf_search(x, index.lists, index.probes, index.nprobe, k)
    report = index.report
    report.search_s = round(time.perf_counter() - started, 3)
    log.info("ann ivf: nlist=%d nprobe=%d recall@10=%.3f (sample %d), build %.1f s, tune %.1f s, "
             "search %.1f s", report.nlist, report.value, report.recall_at_10, report.recall_sample,
             report.build_s, report.tune_s, report.search_s)
    return scores, indices, report


def ann_topk(
    vectors: np.ndarray, k: int, *, recall_target: float = 0.95, recall_sample: int = 500,
    nlist: int = 0, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, AnnReport]:
    """Approximate :func:`jobsim.neighbours.exact_topk`: :func:`build_ivf` then
    :func:`search_ivf`."""
    index = build_ivf(vectors, recall_target=recall_target, recall_sample=recall_sample,
                      nlist=nlist, seed=seed)
    return search_ivf(vectors, index, k)
