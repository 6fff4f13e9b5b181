"""The ANN tuning's truth pruned in the search space (jobsim.ann_truth): exactly the
sample rows' top-10 by brute force, ties and twins included, whatever the bound prunes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

import jobsim.ann as ann
import jobsim.ann_truth as at
from jobsim.identical import identical_rows
from jobsim.ivf import pca_basis
from jobsim.rescoring import UNIT_ROUNDOFF
from jobsim.neighbours import topk_of_rows
from tests.test_neighbours import brute, clustered, grid_vectors


def projected(x: np.ndarray, rows: np.ndarray | None, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """y, residual norms, |x|² and slack of the rows (``x[rows]`` when given), as ``ann._space`` makes them."""
    part = x if rows is None else x[rows]
    y = part @ basis
    squares = np.einsum("ij,ij->i", part, part, dtype=np.float64)
    slack = at.basis_slack(basis)
    return y, at.residual_norms(squares, y, slack), squares, slack


def reference(x: np.ndarray, rows: np.ndarray | None, sample: np.ndarray, k: int = 10) -> np.ndarray:
    """The sample's GEMM search over the positions (canonical scores, score desc, position asc,
    padded with -1 to ``k``; itself checked against brute force in test_neighbours)."""
    part = np.ascontiguousarray(x if rows is None else x[rows])
    return topk_of_rows(part, np.asarray(sample), k)[1]


def never(positions: np.ndarray) -> np.ndarray:
    raise AssertionError(f"{len(positions)} rows sent to the GEMM")


@hsettings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 300), d=st.integers(2, 24), r=st.integers(1, 24),
       dup=st.integers(0, 40), heavy=st.sampled_from([0, 5, 2048]))
def test_pruned_truth_is_the_brute_force_top_10_with_ties(seed, n, d, r, dup, heavy):
    """Grid vectors: scores exact in float32, many exact ties and duplicates; any basis rank.
    Rows left with more than ``HEAVY`` candidates go to the GEMM path (here brute force)."""
    rng = np.random.default_rng(seed)
    x = grid_vectors(rng, n, d, dup)
    basis = pca_basis(x, 1.0, rng)[:, : min(r, d)]
    sample = np.sort(rng.choice(n, size=min(n, 40), replace=False))
    y, residual, squares, slack = projected(x, None, basis)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(at, "HEAVY", heavy)
        truth, _ = at.sample_truth(x, None, y, residual, squares, slack, sample, lambda p: reference(x, None, p))
    np.testing.assert_array_equal(truth, reference(x, None, sample))  # fewer than 10 others: padded
    found = brute(x, 10, sample)[1]  # and the float64 brute force (grid vectors: exact scores, real ties)
    np.testing.assert_array_equal(truth[:, : found.shape[1]], found)


@pytest.mark.parametrize("energy", [0.5, 0.85, 0.95])
def test_pruned_truth_over_distinct_vectors_read_in_place(energy):
    """Reposts: the positions are the distinct vectors ``x[twins.first]``; the truth is by position."""
    rng = np.random.default_rng(3)
    base = clustered(900, 48, 12, 0.5, seed=3)
    x = np.ascontiguousarray(base[rng.choice(900, size=1200)])
    twins = identical_rows(x)
    rows = twins.first
    basis = pca_basis(x, energy, rng, rows=rows)
    sample = np.sort(rng.choice(len(rows), size=200, replace=False))
    y, residual, squares, slack = projected(x, rows, basis)
    truth, _ = at.sample_truth(x, rows, y, residual, squares, slack, sample, never)
    np.testing.assert_array_equal(truth, reference(x, rows, sample))


def test_a_basis_that_is_not_orthonormal_widens_the_bound_and_stays_exact():
    """x·x' − y·y' is bounded by the residuals only for an orthonormal basis: a stretched one
    (BᵀB up to 1.1²) must raise the slack by its excess, and the truth stays exact."""
    rng = np.random.default_rng(5)
    x = clustered(600, 32, 8, 0.6, seed=5)
    basis = pca_basis(x, 0.7, rng)
    assert at.basis_slack(basis) == pytest.approx(4 * 32 * UNIT_ROUNDOFF, abs=1e-5)
    stretched = (basis * np.linspace(0.9, 1.1, basis.shape[1], dtype=np.float32)).astype(np.float32)
    assert at.basis_slack(stretched) == pytest.approx(1.1**2 - 1, rel=1e-3)
    sample = np.arange(0, 600, 7)
    y, residual, squares, slack = projected(x, None, stretched)
    truth, _ = at.sample_truth(x, None, y, residual, squares, slack, sample, never)
    np.testing.assert_array_equal(truth, reference(x, None, sample))


def test_the_bound_leaves_few_rows_to_rescore_on_clustered_vectors(monkeypatch):
    """The point of the pruning: most sample rows rescore a small share of the rows."""
    x = clustered(4000, 64, 40, 0.3, seed=9)
    rng = np.random.default_rng(9)
    basis = pca_basis(x, 0.85, rng)
    assert basis.shape[1] < 64
    monkeypatch.setattr(at, "HEAVY", 400)
    sent: list[int] = []

    def gemm(positions: np.ndarray) -> np.ndarray:
        sent.extend(positions.tolist())
        return reference(x, None, positions)

    sample = np.sort(rng.choice(4000, size=300, replace=False))
    y, residual, squares, slack = projected(x, None, basis)
    truth, _ = at.sample_truth(x, None, y, residual, squares, slack, sample, gemm)
    np.testing.assert_array_equal(truth, reference(x, None, sample))
    assert len(sent) < 0.1 * len(sample)


def test_the_index_tunes_against_the_same_truth_as_the_gemm_search(monkeypatch):
    """build_ivf's truth, pruned in its projection, equals the sample's GEMM search (and so
    does everything tuned from it)."""
    x = clustered(3000, 96, 30, 0.4, seed=11)
    pruned = ann.build_ivf(x, recall_target=0.9, recall_sample=200, seed=1)
    monkeypatch.setattr(ann, "_truth", lambda x_, twins, y, norms, sample: (reference(x_, None, sample), None))
    plain = ann.build_ivf(x, recall_target=0.9, recall_sample=200, seed=1)
    assert pruned.report.search_dims < 96  # the pruned path ran
    np.testing.assert_array_equal(pruned.truth, plain.truth)
    assert (pruned.nprobe, pruned.keep) == (plain.nprobe, plain.keep)


@pytest.mark.parametrize("heavy", [0, 2048])
def test_the_recall_simulation_reads_the_truths_scores_as_its_own(monkeypatch, heavy):
    """The sample is multiplied once: the simulation from the scores the truth kept (``above``)
    equals the simulation that multiplies the sample itself, for every keep and probe count,
    rows sent to the GEMM path included."""
    from jobsim.ivf import make_lists, probe_order, train_centroids
    from jobsim.ivf_recall import sample_recall

    rng = np.random.default_rng(13)
    x = clustered(2500, 64, 25, 0.5, seed=13)
    basis = pca_basis(x, 0.8, rng)
    y, residual, squares, slack = projected(x, None, basis)
    centroids = train_centroids(y, 32, rng)
    probes = probe_order(y, centroids, 12)
    lists = make_lists(probes[:, 0], 32)
    sample = np.sort(rng.choice(2500, size=150, replace=False))
    monkeypatch.setattr(at, "HEAVY", heavy)
    truth, above = at.sample_truth(x, None, y, residual, squares, slack, sample, lambda p: reference(x, None, p))
    np.testing.assert_array_equal(truth, reference(x, None, sample))
    keeps = (12, 20, 40)
    shared = sample_recall(y, lists, probes, sample, truth, keeps, above=above)
    own = sample_recall(y, lists, probes, sample, truth, keeps)
    np.testing.assert_array_equal(shared, own)
    assert 0 < shared.mean() < 1  # the simulation has something to tell apart
