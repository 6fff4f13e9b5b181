"""The full pass the pipeline runs: the planner's choice of exact or ANN, carried out.

Pure arrays in, arrays out. :func:`plan_for` asks the planner (:mod:`jobsim.planner`)
with the run's settings; :func:`full_topk` runs the chosen path. An ANN pass builds and
tunes its index first, then asks the planner again with the probe cost it measured
(:func:`jobsim.planner.confirm_ann`) and runs the exact pass instead when that is now
predicted faster, so a pass predicted slower than exact is never run. The exact path
searches each distinct vector once (bit-identical rows, :mod:`jobsim.identical`), and the
plan is made for the distinct rows; the ANN path does so when enough rows repeat for the
expansion to pay (:func:`jobsim.identical.ann_twins`), else it searches the rows as they are.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from jobsim.ann import AnnReport, build_ivf, search_ivf
from jobsim.identical import ann_twins, expand_topk, identical_rows
from jobsim.ivf import default_nlist
from jobsim.neighbours import exact_topk
from jobsim.planner import PassPlan, confirm_ann, plan_full_pass
from jobsim.settings import NeighbourSettings

log = logging.getLogger(__name__)


@dataclass
class FullPass:
    """Candidate lists of every row, whether they are exact, the plan, the ANN's report."""

    scores: np.ndarray
    indices: np.ndarray
    exact: bool
    plan: PassPlan
    ann: AnnReport | None = None
    seconds: float = 0.0


def plan_for(n: int, d: int, settings: NeighbourSettings) -> PassPlan:
    """The planner's choice for a full pass over ``n`` rows of ``d`` dimensions;
    ``exact_max_jobs`` > 0 forces exact up to that size and ANN above it."""
    force = "auto"
    if settings.exact_max_jobs > 0:
        force = "exact" if n <= settings.exact_max_jobs else "ann"
    return plan_full_pass(n, d, nlist=settings.ann_nlist or default_nlist(n),
                          recall_sample=settings.ann_recall_sample, force=force)


def full_topk(vectors: np.ndarray, depth: int, settings: NeighbourSettings, seed: int = 0) -> FullPass:
    """Top-``depth`` candidate lists of every row by the planned path."""
    started = time.perf_counter()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    twins = identical_rows(x)  # distinct vectors, read in place
    n, d = (len(x) if twins is None else len(twins.first)), x.shape[1]
    budget = settings.memory_budget_mb << 20
    plan = plan_for(n, d, settings)
    if plan.mode == "ann":
        searched = ann_twins(twins)
        index = build_ivf(x, recall_target=settings.ann_recall_target, recall_sample=settings.ann_recall_sample,
                          nlist=settings.ann_nlist, seed=seed, twins=searched)
        m = len(x) if searched is None else n
        plan = confirm_ann(plan, m, d, scored_pairs=index.report.scored_pairs, nprobe=index.nprobe,
                           search_dims=index.report.search_dims)
        if plan.mode == "ann":
            scores, indices, report = search_ivf(x, index, depth)
            del index
            if searched is not None:
                scores, indices = expand_topk(x, scores, indices, searched, depth)
            log.info("full pass: ann over %d of %d rows (%d distinct; %s)", m, len(x), n, plan.reason)
            return FullPass(scores, indices, False, plan, report, time.perf_counter() - started)
        del index  # its search space, before the exact pass's memory
    scores, indices = exact_topk(x, depth, budget, twins=twins)
    log.info("full pass: exact (%s)", plan.reason)
    return FullPass(scores, indices, True, plan, None, time.perf_counter() - started)
