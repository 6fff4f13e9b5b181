"""The planner never takes a path predicted slower than exact; the full pass follows it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

import jobsim.fullpass as fullpass
import jobsim.planner as planner
from jobsim.fullpass import full_topk, plan_for
from jobsim.identical import ANN_MIN_SHARE
from jobsim.neighbours import exact_topk
from jobsim.planner import PassPlan, confirm_ann, plan_full_pass, predict_ann_s, predict_exact_s
from jobsim.settings import NeighbourSettings
from tests.test_neighbours import check_contract, clustered


@hsettings(max_examples=200, deadline=None)
@given(n=st.integers(2, 20_000_000), d=st.integers(1, 4096), gflops=st.floats(1, 2000),
       nlist=st.integers(1, 8192))
def test_ann_only_when_predicted_faster_than_exact(n, d, gflops, nlist):
    """... by the margin that covers the model's measured error."""
    plan = plan_full_pass(n, d, nlist=nlist, gflops=gflops)
    assert plan.mode in ("exact", "ann")
    if plan.mode == "ann":
        assert plan.ann_s * planner.ANN_MARGIN < plan.exact_s * (1 + 1e-3)
        assert plan.exact_s == pytest.approx(predict_exact_s(n, d, gflops), rel=1e-3)
    elif plan.ann_s is not None:
        assert plan.ann_s * planner.ANN_MARGIN >= plan.exact_s * (1 - 1e-3)


def test_small_passes_are_exact_without_calibrating(monkeypatch):
    def boom(*_):
        raise AssertionError("no GEMM should be timed for a small pass")

    monkeypatch.setattr(planner, "gemm_rate", boom)
    plan = plan_full_pass(5_000, 512, nlist=64)
    assert plan.mode == "exact" and "under" in plan.reason


def test_large_passes_go_ann_and_the_prediction_scales_like_the_work():
    plan = plan_full_pass(1_000_000, 1536, nlist=1024, gflops=150)
    assert plan.mode == "ann" and plan.ann_s < plan.exact_s / 10
    small, big = predict_exact_s(100_000, 512, 150), predict_exact_s(200_000, 512, 150)
    assert 3.5 < big / small < 4.1  # n² work
    assert predict_exact_s(100_000, 512, 75) == pytest.approx(2 * predict_exact_s(100_000, 512, 150), rel=0.05)
    assert predict_ann_s(10**5, 512, 150, nlist=256, nprobe=8) > predict_ann_s(10**5, 512, 150, nlist=256, nprobe=2)


def test_confirm_switches_to_exact_when_the_tuned_probes_cost_too_much():
    n, d = 200_000, 512
    plan = PassPlan("ann", 100.0, 5.0, "predicted", gflops=150)
    cheap = confirm_ann(plan, n, d, scored_pairs=n * 500, nprobe=2)
    assert cheap.mode == "ann" and cheap.ann_s < cheap.exact_s
    dear = confirm_ann(plan, n, d, scored_pairs=n * n, nprobe=64)
    assert dear.mode == "exact" and dear.ann_s >= dear.exact_s and "not 2× faster" in dear.reason

    def search_s(pairs: int) -> float:
        return predict_ann_s(n, d, 150, nlist=1, scored_pairs=pairs, built=True)

    per_pair = (search_s(n * n) - search_s(0)) / (n * n)  # the model is linear in the scores
    pairs = int((0.75 * predict_exact_s(n, d, 150) - search_s(0)) / per_pair)  # 1.33× faster: within the margin
    near = confirm_ann(plan, n, d, scored_pairs=pairs, nprobe=12)
    assert near.ann_s < near.exact_s < near.ann_s * planner.ANN_MARGIN and near.mode == "exact"
    forced = PassPlan("ann", 0.0, None, "forced by settings (ann)")
    assert confirm_ann(forced, n, d, scored_pairs=n * n, nprobe=64) is forced


def test_exact_max_jobs_forces_the_path():
    cfg = NeighbourSettings(exact_max_jobs=1000)
    assert plan_for(1000, 64, cfg).mode == "exact" and plan_for(1001, 64, cfg).mode == "ann"
    assert plan_for(10**7, 1536, NeighbourSettings()).mode == "ann"  # the cost model, at default
    assert plan_for(2000, 64, NeighbourSettings()).mode == "exact"


def test_full_topk_runs_exact_when_confirmation_says_so(monkeypatch):
    x = clustered(2500, 32, 30, 0.4, seed=4)
    cfg = NeighbourSettings(ann_recall_sample=100)
    monkeypatch.setattr("jobsim.fullpass.plan_full_pass",
                        lambda *a, **kw: PassPlan("ann", 1.0, 0.5, "test", gflops=100))
    monkeypatch.setattr("jobsim.fullpass.confirm_ann",
                        lambda plan, *a, **kw: PassPlan("exact", 1.0, 2.0, "tuned probes too dear", 100))
    result = full_topk(x, 12, cfg)
    want = exact_topk(x, 12)
    assert result.exact and result.ann is None and result.plan.reason == "tuned probes too dear"
    np.testing.assert_array_equal(result.indices, want[1])
    np.testing.assert_array_equal(result.scores, want[0])


def test_full_topk_ann_path_carries_its_measured_recall():
    x = clustered(3000, 32, 30, 0.4, seed=6)
    result = full_topk(x, 12, NeighbourSettings(exact_max_jobs=100, ann_recall_sample=150))
    assert not result.exact and result.plan.mode == "ann"
    assert result.ann is not None and result.ann.recall_sample == 150 and result.ann.recall_at_10 >= 0.95


@pytest.mark.parametrize("share", [0.03, 0.3])
def test_full_topk_ann_searches_distinct_vectors_only_when_enough_rows_repeat(monkeypatch, share):
    """Below ``ANN_MIN_SHARE`` repeated rows the ANN searches every row as it is (the expansion
    would cost more than the rows it saves), from it the distinct vectors; both give the rows'
    lists: self excluded by index, a row's twins listed first, recall on every row."""
    rng = np.random.default_rng(8)
    x = clustered(3000, 32, 30, 0.4, seed=8)
    copies = rng.choice(len(x), int(share * len(x)), replace=False)
    x[copies] = x[rng.choice(np.setdiff1d(np.arange(len(x)), copies), len(copies))]
    searched = []
    real = fullpass.build_ivf
    monkeypatch.setattr(fullpass, "build_ivf", lambda *a, **kw: searched.append(kw["twins"]) or real(*a, **kw))
    result = full_topk(x, 12, NeighbourSettings(exact_max_jobs=100, ann_recall_sample=200))
    assert not result.exact and len(searched) == 1
    assert (searched[0] is None) == (share < ANN_MIN_SHARE)
    check_contract(result.scores, result.indices, len(x), 12, np.arange(len(x)))
    want = exact_topk(x, 12)[1]
    hits = [len(np.intersect1d(a[:10], b[:10])) / 10 for a, b in zip(result.indices, want)]
    assert np.mean(hits) >= 0.95
    twin_of = {int(c): np.flatnonzero((x == x[c]).all(axis=1)) for c in copies[:50]}
    for row, group in twin_of.items():  # a row's bit-identical twins rank first, by index
        others = group[group != row][:12]
        assert result.indices[row, : len(others)].tolist() == others.tolist()


def test_gemm_rate_is_measured_once_per_dimension():
    planner.gemm_rate.cache_clear()
    a = planner.gemm_rate(64, side=256)
    assert a > 0 and planner.gemm_rate(64, side=256) == a
