"""Exact or ANN for a full pass: a cost model fitted on measurements, calibrated at run time.

Pure: sizes in, a :class:`PassPlan` out (plus one timed GEMM block per process and
dimension, :func:`gemm_rate`). Both paths are sums of GEMM work, divided by the GEMM rate
measured on this machine right now, and of per-pair / per-row work whose constants were
fitted from ``bench/neighbours.py --fit`` (BENCHMARKS.md "Neighbours", ``COSTS``):

* exact: ``n²/2`` distinct pairs, ``2·d`` FLOP each on the symmetric blocks, plus their top-k
  selection; per row, the locality order and the canonical rescoring of its list;
* ANN (IVF searched as GEMM blocks, :mod:`jobsim.ann`): a PCA projection, k-means on a
  sample, one GEMM per row against the centroids, the exact top-10 of the recall sample,
  then ``n · nprobe · n/nlist`` scores in the projected dimensions (GEMM + selection), and
  the canonical rescoring of every kept candidate.

Before a run knows its ``nprobe`` the plan assumes ``NPROBE_GUESS``; once the index is
tuned, :func:`confirm_ann` re-predicts the search with the real probe cost and switches
to exact if the ANN is no longer predicted ``ANN_MARGIN`` times faster. A path predicted slower
than exact is never taken, nor an ANN predicted faster by less than that margin: the model's error,
measured on the benchmark grid, is larger than the ANN's gain on small passes (BENCHMARKS.md
"Neighbours").
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Costs:
    """Fitted constants (seconds), at the GEMM rate of the fit (``ref_gflops``): per-pair
    and per-row costs scale with the calibrated rate like the GEMM does. Fitted with
    ``bench/neighbours.py --fit`` on 2026-12-02 (4 shapes × 3 data sets, min of 3 reps,
    AMD EPYC × 2, BENCHMARKS.md "Neighbours"), the IVF search's two re-fitted on 2026-12-03
    after its pushes ran side by side; the ANN's fixed part (thread pools, the
    sample's tuning loop, the PCA eigendecomposition ∝ d³) from its 10k runs of 2026-12-01."""

    ref_gflops: float = 150.0
    exact_pair_s: float = 3.9e-9  # top-k selection per distinct pair of the symmetric pass
    exact_row_s: float = 2.5e-5  # locality order + rescoring + certification, per row (d=512)
    ivf_pair_s: float = 8.2e-9  # selection (heap pushes) per score of the IVF search
    ivf_row_s: float = 1.5e-5  # probes, lists, canonical rescoring, per row (d=512)
    ivf_fixed_s: float = 1.2  # pools, tuning loop over the sample
    ivf_eig_s: float = 4e-10  # × d³: the PCA eigendecomposition
    fixed_s: float = 0.05  # thread pools, planning


COSTS = Costs()
NPROBE_GUESS = 8  # probes assumed before tuning (measured: 1 on clustered, 9–11 on real text vectors)
SEARCH_DIMS_GUESS = 192  # PCA dimensions assumed before the projection (measured: 160–224)
SMALL_PASS_S = 1.0  # exact passes predicted below this are not worth planning
ANN_MARGIN = 2.0  # the ANN must be predicted this many times faster than exact (measured on 2026-12-02: the
# predicted exact/ANN ratio was up to 1.6× the real one at 10k, where the ANN ran 0.7–1.0× of exact)


@dataclass
class PassPlan:
    """The chosen full pass and the predictions it was chosen by (shown in the run report)."""

    mode: str  # "exact" | "ann"
    exact_s: float
    ann_s: float | None
    reason: str
    gflops: float = 0.0  # GEMM rate used (calibrated at run time, 0 = not calibrated)


@functools.lru_cache(maxsize=8)
def gemm_rate(d: int, side: int = 2048) -> float:
    """GFLOP/s of one (side × d) · (d × side) float32 GEMM, best of 3 (once per process and d;
    uniform operands: the rate does not depend on the values, and they are drawn 5× faster
    than normal ones)."""
    rng = np.random.default_rng(0)
    a = rng.random((side, d), dtype=np.float32)
    b = rng.random((side, d), dtype=np.float32)
    out = np.empty((side, side), dtype=np.float32)
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        np.matmul(a, b.T, out=out)
        best = min(best, time.perf_counter() - started)
    return 2 * side * side * d / best / 1e9


def _scale(gflops: float, costs: Costs) -> float:
    return costs.ref_gflops / max(gflops, 1e-3)


def predict_exact_s(n: int, d: int, gflops: float, costs: Costs = COSTS) -> float:
    """Seconds of :func:`jobsim.neighbours.exact_topk` over ``n`` rows of ``d`` dims."""
    pairs = n * (n - 1) / 2
    gemm = pairs * 2 * d / (gflops * 1e9)
    per_unit = _scale(gflops, costs)
    return gemm + per_unit * (pairs * costs.exact_pair_s + n * costs.exact_row_s * d / 512) + costs.fixed_s


def predict_ann_s(
    n: int, d: int, gflops: float, *, nlist: int, nprobe: float | None = None, recall_sample: int = 500,
    scored_pairs: float | None = None, search_dims: int | None = None, built: bool = False,
    costs: Costs = COSTS,
) -> float:
    """Seconds of the IVF pass: projection on ``search_dims`` PCA dimensions, training (32
    rows per list, 10 rounds), assignment, the recall sample's exact top-10 (all skipped
    when ``built``), then a search scoring ``scored_pairs`` (default ``n · nprobe ·
    n / nlist``, counted once per side) in ``search_dims`` and the full-dimension finish."""
    rate = gflops * 1e9
    per_unit = _scale(gflops, costs)
    r = search_dims or min(d, SEARCH_DIMS_GUESS)
    build = 0.0 if built else ((20_000 * d + n * r) * d + (10 * 32 * nlist * nlist + n * nlist) * r
                               + recall_sample * n * d) * 2 / rate
    pairs = scored_pairs if scored_pairs is not None else n * (nprobe or NPROBE_GUESS) * n / max(1, nlist)
    search = pairs * 2 * r / rate + per_unit * pairs * costs.ivf_pair_s
    fixed = 0.0 if built else costs.ivf_fixed_s + costs.ivf_eig_s * d**3
    return build + search + per_unit * n * costs.ivf_row_s * d / 512 + fixed + costs.fixed_s


def plan_full_pass(
    n: int, d: int, *, nlist: int, recall_sample: int = 500, force: str = "auto",
    gflops: float | None = None, costs: Costs = COSTS,
) -> PassPlan:
    """Exact unless the ANN is predicted faster (``force`` = "exact" / "ann" overrides).

    ``gflops`` = the GEMM rate (default: :func:`gemm_rate`, measured once per process;
    skipped for passes too small to matter, judged at the fitted rate)."""
    if n < 2 or d < 1:
        return PassPlan("exact", 0.0, None, "nothing to search")
    if force in ("exact", "ann"):
        return PassPlan(force, 0.0, None, f"forced by settings ({force})")
    if predict_exact_s(n, d, costs.ref_gflops, costs) < SMALL_PASS_S:
        return PassPlan("exact", round(predict_exact_s(n, d, costs.ref_gflops, costs), 3), None,
                        f"exact pass predicted under {SMALL_PASS_S:.0f} s")
    rate = gflops or gemm_rate(d)
    exact_s = predict_exact_s(n, d, rate, costs)
    ann_s = predict_ann_s(n, d, rate, nlist=nlist, recall_sample=recall_sample, costs=costs)
    mode = "ann" if ann_s * ANN_MARGIN < exact_s else "exact"
    reason = (f"predicted exact {exact_s:.1f} s vs ANN {ann_s:.1f} s (nprobe {NPROBE_GUESS} assumed, "
              f"GEMM {rate:.0f} GFLOP/s; ANN only when {ANN_MARGIN:g}× faster)")
    return PassPlan(mode, round(exact_s, 3), round(ann_s, 3), reason, round(rate, 1))


def confirm_ann(
    plan: PassPlan, n: int, d: int, *, scored_pairs: int, nprobe: int, search_dims: int | None = None,
    costs: Costs = COSTS,
) -> PassPlan:
    """After tuning: the ANN search with its real probe cost vs the exact pass (both from
    here on); exact when the ANN is no longer predicted ``ANN_MARGIN`` times faster."""
    if plan.reason.startswith("forced"):
        return plan
    rate = plan.gflops or gemm_rate(d)
    ann_s = predict_ann_s(n, d, rate, nlist=1, scored_pairs=scored_pairs, search_dims=search_dims,
                          built=True, costs=costs)
    exact_s = predict_exact_s(n, d, rate, costs)
    if ann_s * ANN_MARGIN < exact_s:
        return PassPlan("ann", round(exact_s, 3), round(ann_s, 3),
                        f"tuned nprobe {nprobe}: ANN search {ann_s:.1f} s vs exact {exact_s:.1f} s", plan.gflops)
    return PassPlan("exact", round(exact_s, 3), round(ann_s, 3),
                    f"tuned nprobe {nprobe} makes the ANN search ({ann_s:.1f} s) not {ANN_MARGIN:g}× faster "
                    f"than exact ({exact_s:.1f} s)", plan.gflops)
