"""The ANN tuning: which probe setting and how many candidates kept per row, by simulation.

Pure arrays in, arrays out. Every probe setting (:mod:`jobsim.probe_depth`) and every
keep is simulated at once on the sample (:func:`jobsim.ivf_recall.sample_recall`: exactly
what each sampled row's own search would find); of those whose recall@10 reaches the
target with ~95 % confidence, the cheapest by a cost model (the search's scores, the
canonical rescoring of the kept).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from jobsim.heaps import HEAP_SLOT_BYTES
from jobsim.ivf import Lists
from jobsim.ivf_recall import Above, sample_recall
from jobsim.probe_depth import probe_depths

CONFIDENCE_Z = 1.645  # one-sided 95%: the sample's recall minus z standard errors must reach the target
PAIR_COST_S = (4.8e-9, 1.05e-11)  # per score of the candidate search: + per search dimension (the GEMM;
# measured at text 100k: 6.2e-9 in 160 dims, 7.8e-9 in 256)
KEPT_COST_S = (3.5e-8, 1.46e-10)  # per row and candidate kept: + per dimension (canonical rescoring;
# measured at 100k: 1.1e-7 at d = 512, 2.6e-7 at 1536)
HEAP_SHARE = 0.3  # the candidate heaps may take this share of the matrix's bytes (at least the default's)


def _confident(sim: np.ndarray, target: float) -> np.ndarray:
    """Per setting (row of ``sim``: its sample rows' recall): whether the mean less
    ``CONFIDENCE_Z`` standard errors reaches ``target``."""
    m = sim.shape[1]
    if m == 0:
        return np.ones(len(sim), dtype=bool)
    se = sim.std(axis=1, ddof=1) / math.sqrt(m) if m > 1 else np.zeros(len(sim))
    return sim.mean(axis=1) - CONFIDENCE_Z * se >= target


@dataclass
class Tuning:
    """The probe setting and keep chosen in a search space, and what the sample says of it."""

    nprobe: int  # the most lists a row probes
    keep: int
    depth: np.ndarray | None  # each row's lists probed (None: all nprobe)
    margin: float  # of the setting (0: one count for all rows)
    pairs: int  # scores the search computes
    expected: float  # the sample's mean recall
    tried: dict[int, float]  # the sample's mean recall per count for all rows, at this keep
    reached: bool


def tune_space(
    y: np.ndarray, ymap: np.ndarray | None, lists: Lists, probes: np.ndarray, sample: np.ndarray, truth: np.ndarray,
    keeps: tuple[int, ...], target: float, d: int, above: Above | None = None, gaps: np.ndarray | None = None,
) -> Tuning:
    """Probe setting (:mod:`jobsim.probe_depth`: one count for all rows up to ``probes.shape[1]``,
    or, with the probes' ``gaps``, a margin per row too) and candidates kept per row for
    ``target`` in this space, every setting and keep simulated at once. Of the pairs whose
    sample recall confidently reaches it, the one of least predicted cost (scores of the
    search, rescoring of the kept): a projection that ranks the true neighbours a little low
    is cheaper to search with more kept than with more lists probed. None reaching it: the
    most kept and probed, not ``reached``. ``above``: the sample's scores in this space
    (:func:`jobsim.ann_truth.sample_truth`), else multiplied here."""
    depths = probe_depths(probes, lists.sizes, min(keeps), gaps)
    sims = sample_recall(y, lists, probes, sample, truth, keeps, rows=ymap, above=above, depths=depths.table)
    pair_s, kept_s = PAIR_COST_S[0] + PAIR_COST_S[1] * y.shape[1], len(probes) * (KEPT_COST_S[0] + KEPT_COST_S[1] * d)
    pmax, best = probes.shape[1], None
    for keep, sim in zip(keeps, sims):
        ok = np.flatnonzero(_confident(sim, target))
        if len(ok):
            cost = depths.pairs[ok] * pair_s + keep * kept_s
            if best is None or cost.min() < best[0]:
                best = (cost.min(), int(ok[np.argmin(cost)]), keep, sim)
    _, j, keep, sim = best if best is not None else (0.0, pmax - 1, keeps[-1], sims[-1])
    tried = {p: round(float(sim[p - 1].mean()), 4) if sim.shape[1] else 1.0 for p in range(1, pmax + 1)}
    return Tuning(nprobe=int(depths.nprobe[j]), keep=keep, depth=depths.of(j), margin=float(depths.margin[j]),
                  pairs=int(depths.pairs[j]), expected=round(float(sim[j].mean()), 4) if sim.shape[1] else 1.0,
                  tried=tried, reached=best is not None)


def keeps_for(base: int, n: int, matrix_bytes: int) -> tuple[int, ...]:
    """Numbers of candidates kept per row the tuning may choose: ``base`` and up to 1.6×
    that, while the heaps stay within ``HEAP_SHARE`` of the matrix."""
    room = max(HEAP_SHARE * matrix_bytes, HEAP_SLOT_BYTES * n * base)
    return tuple(k for k in (base, base * 5 // 4, base * 8 // 5) if HEAP_SLOT_BYTES * n * k <= room)
