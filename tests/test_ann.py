"""The IVF pass: exact within the probed lists (brute-force reference), recall from list
membership, tuning to the target, the pipeline contract."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from jobsim import ann, ann_tuning
from jobsim.ann import ann_topk, build_ivf, recall_at, search_ivf
from jobsim.identical import expand_topk, identical_rows
from jobsim.ivf import (
    BALANCE_ITERS, BALANCE_STEP, SUBSPACE_MIN_D, balance_bias, make_lists, pca_basis, probe_order, train_centroids,
)
from jobsim import ivf_search
from jobsim.ivf_recall import sample_recall
from jobsim.ivf_search import candidate_heaps, rescored_lists
from jobsim.probe_depth import probe_depths
from jobsim.neighbours import exact_topk
from jobsim.segments import grouped_order, width_classes
from tests.test_neighbours import check_contract, clustered, grid_vectors


def candidates_brute(x: np.ndarray, lists, probes: np.ndarray, nprobe: int, k: int, depth=None) -> list[list[int]]:
    """Reference: each row's candidates = members of its first ``nprobe`` lists (``depth[r]``
    when given) and the rows probing its list at a rank below their own count, itself
    excluded; scored in float64, sorted (score desc, index asc)."""
    out = []
    depth = np.full(len(x), nprobe) if depth is None else depth
    ranks = np.arange(probes.shape[1])[None, :]
    for r in range(len(x)):
        mine = [lists.members(int(b)) for b in probes[r, : depth[r]]]
        theirs = np.flatnonzero(((probes == lists.home[r]) & (ranks >= 1) & (ranks < depth[:, None])).any(axis=1))
        cand = np.unique(np.concatenate(mine + [theirs]))
        cand = cand[cand != r]
        s = x[cand].astype(np.float64) @ x[r].astype(np.float64)
        out.append(cand[np.lexsort((cand, -s))][:k].tolist())
    return out


def scores_brute(probes: np.ndarray, lists, nprobe: int, depth=None) -> int:
    """Reference: the scores a search computes, Σ over each row's probes (its first ``nprobe``,
    or ``depth[r]``) of the probed list's size."""
    depth = np.full(len(probes), nprobe) if depth is None else depth
    return sum(int(lists.sizes[probes[r, : depth[r]]].sum()) for r in range(len(probes)))


@hsettings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 150), nlist=st.integers(1, 12),
       nprobe=st.integers(1, 12), k=st.integers(1, 25), dup=st.integers(0, 20), per_row=st.booleans())
def test_search_is_exact_over_its_candidates(seed, n, nlist, nprobe, k, dup, per_row):
    """With every candidate kept, a row's list is the exact top-k (canonical scores, ties
    by index) of its probed lists' members and of the rows probing its list (each row
    probing ``nprobe`` lists, or its own number of them, at most ``nprobe``)."""
    rng = np.random.default_rng(seed)
    x = grid_vectors(rng, n, 5, dup)  # exact float32 products: ties are real ties
    nlist = min(nlist, n)
    probes = np.argsort(rng.random((n, nlist)), axis=1).astype(np.int32)  # any probe order
    lists = make_lists(probes[:, 0], nlist)
    nprobe = min(nprobe, nlist)
    depth = rng.integers(1, nprobe + 1, n).astype(np.uint8) if per_row else None
    scores, idx = rescored_lists(x, candidate_heaps(x, lists, probes, nprobe, n, depth=depth)[1], lists, k)
    want = candidates_brute(x, lists, probes, nprobe, k, depth)
    for r in range(n):
        got = idx[r][idx[r] >= 0].tolist()
        assert got == want[r]
        assert np.isneginf(scores[r, len(got):]).all() and (idx[r, len(got):] == -1).all()
    assert not (idx == np.arange(n)[:, None]).any()


def test_scores_are_the_exact_pass_scores_bit_for_bit():
    x = clustered(1500, 24, 20, 0.4, seed=8)
    x[10] = x[11]  # duplicates stay neighbours
    s_ann, i_ann, _ = ann_topk(x, 15, recall_sample=200)
    es, ei = exact_topk(x, 1499)  # every pair's canonical score
    canon = np.full((len(x), len(x)), np.nan, dtype=np.float32)
    np.put_along_axis(canon, ei, es, axis=1)
    np.testing.assert_array_equal(s_ann, np.take_along_axis(canon, i_ann, axis=1))
    assert i_ann[10, 0] == 11 and i_ann[11, 0] == 10


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_tuning_simulation_is_what_the_search_finds(seed):
    """The recall the tuning computes for a sampled row and probe count is the recall of
    that row's list after the real search (continuous vectors: no ties)."""
    x = clustered(1500, 24, 30, 0.6, seed=seed)
    rng = np.random.default_rng(seed)
    c = train_centroids(x, 16, rng)
    probes = probe_order(x, c, 6)
    lists = make_lists(probes[:, 0], len(c))
    sample = np.sort(rng.choice(len(x), 80, replace=False))
    _, truth = exact_topk(x, 10)
    keep = 14
    sim = sample_recall(x, lists, probes, sample, truth[sample], (keep,))[0]
    for p in (1, 3, 6):
        _, idx = rescored_lists(x, candidate_heaps(x, lists, probes, p, keep)[1], lists, 10)
        for j, row in enumerate(sample):
            found = len(set(idx[row].tolist()) & set(truth[row].tolist())) / 10
            assert sim[p - 1, j] == pytest.approx(found)
    # and each row probing the lists within a margin of its best (its own number of them)
    probes, gaps = probe_order(x, c, 6, gaps=True)
    depths = probe_depths(probes, lists.sizes, keep, gaps)
    sim = sample_recall(x, lists, probes, sample, truth[sample], (keep,), depths=depths.table)[0]
    settings = [j for j in range(6, depths.table.shape[1], 5)]
    assert len(settings) > 4 and len({tuple(depths.table[:, j]) for j in settings}) > 4  # rows differ
    for j in settings:
        depth = depths.of(j)
        _, idx = rescored_lists(x, candidate_heaps(x, lists, probes, int(depths.nprobe[j]), keep, depth=depth)[1],
                                lists, 10)
        for i, row in enumerate(sample):
            found = len(set(idx[row].tolist()) & set(truth[row].tolist())) / 10
            assert sim[j, i] == pytest.approx(found)


def test_pca_basis_keeps_the_energy_asked_for():
    low = clustered(3000, 12, 20, 0.2, seed=3)
    x = low @ np.random.default_rng(3).standard_normal((12, 96)).astype(np.float32)  # 12-dim structure
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    basis = pca_basis(x, 0.99, np.random.default_rng(0), step=4)
    assert basis.shape == (96, 12)
    np.testing.assert_allclose(basis.T @ basis, np.eye(12), atol=1e-4)
    y = x @ basis
    np.testing.assert_allclose(y @ y[:50].T, x @ x[:50].T, atol=1e-3)  # inner products kept


@pytest.mark.parametrize("power", [0.8, 0.5])
def test_pca_basis_by_subspace_iteration_keeps_what_the_full_spectrum_keeps(power):
    """From SUBSPACE_MIN_D dimensions the top eigenpairs come from subspace iteration: the
    basis is orthonormal, keeps the energy asked for, and has as many dimensions as the
    full eigendecomposition's (a spectrum decaying like text embeddings')."""
    rng = np.random.default_rng(7)
    d = SUBSPACE_MIN_D
    scales = (np.arange(1, d + 1) ** -power).astype(np.float32)  # power-law spectrum
    x = (rng.standard_normal((6000, d)).astype(np.float32) * scales) @ np.linalg.qr(
        rng.standard_normal((d, d)))[0].astype(np.float32)
    for variance in (0.6, 0.85, 0.99):  # 0.99: beyond the top quarter, the full spectrum
        basis = pca_basis(x, variance, np.random.default_rng(0), step=8)
        gram = x.T.astype(np.float64) @ x.astype(np.float64)
        values = np.linalg.eigvalsh(gram)[::-1]
        want = -(-(int(np.searchsorted(np.cumsum(values) / values.sum(), variance)) + 1) // 8) * 8
        assert basis.shape == (d, want)
        np.testing.assert_allclose(basis.T @ basis, np.eye(want), atol=1e-4)
        kept = np.trace(basis.T.astype(np.float64) @ gram @ basis) / np.trace(gram)
        assert kept >= variance and kept >= values[:want].sum() / values.sum() - 1e-3


@pytest.mark.parametrize("biased", [False, True])
@pytest.mark.parametrize("pmax", [5, 32, 40])  # fewer lists than, as many as, more than there are
def test_probes_are_sorted_by_centroid_score_and_lists_partition_the_rows(biased, pmax):
    x = clustered(2000, 16, 12, 0.3, seed=1)
    c = train_centroids(x, 32, np.random.default_rng(0))
    assert c.shape == (32, 16) and np.allclose(np.linalg.norm(c, axis=1), 1, atol=1e-5)
    bias = np.random.default_rng(1).uniform(-0.2, 0.2, 32).astype(np.float32) if biased else None
    probes = probe_order(x, c, pmax, block=300, bias=bias)
    assert probes.shape == (len(x), min(pmax, 32)) and probes.dtype == np.uint16
    assert all(len(set(row)) == probes.shape[1] for row in probes.tolist())  # no list twice
    s = x.astype(np.float64) @ c.T.astype(np.float64) - (0 if bias is None else bias)
    np.testing.assert_array_equal(probes[:, 0], np.argmax(s, axis=1))
    got = np.take_along_axis(s, probes, axis=1)
    assert (np.diff(got, axis=1) <= 0).all()
    lists = make_lists(probes[:, 0], len(c))
    members = np.concatenate([lists.members(b) for b in range(len(c))])
    assert sorted(members.tolist()) == list(range(len(x)))
    assert all(lists.members(int(lists.home[i]))[lists.pos[i]] == i for i in range(len(x)))


def test_balancing_evens_out_the_lists_of_a_crowded_region():
    """5/6 of the rows around 2 centres, the rest around 60, overlapping (as text
    embeddings crowd): a row's best lists are crowded, so the biases move border rows of
    the crowded lists to their next-best list; the largest list and the spread of sizes
    shrink, the biases stay within their steps. Even clusters get no bias."""
    rng = np.random.default_rng(4)
    x = np.vstack([clustered(5000, 32, 2, 1.0, seed=4), clustered(1000, 32, 60, 1.0, seed=5)])
    x = x[rng.permutation(len(x))]
    c = train_centroids(x, 64, np.random.default_rng(0))
    bias = balance_bias(x, c, np.random.default_rng(0))
    plain, even = (np.bincount(probe_order(x, c, 1, bias=b)[:, 0], minlength=64) for b in (None, bias))
    assert even.max() < 0.8 * plain.max() and even.std() < 0.8 * plain.std()
    assert np.abs(bias).max() <= BALANCE_ITERS * BALANCE_STEP + 1e-6
    spread = clustered(6000, 32, 60, 1.0, seed=5)
    assert not balance_bias(spread, train_centroids(spread, 64, np.random.default_rng(0)), rng).any()


def test_keys_are_grouped_in_a_stable_order():
    rng = np.random.default_rng(0)
    for top in (50, 70_000, 3_000_000):
        heap = rng.integers(0, top, 20_000).astype(np.int32)
        np.testing.assert_array_equal(grouped_order(heap), np.argsort(heap, kind="stable"))


def test_width_classes_hold_every_non_empty_segment_once_at_least_half_full():
    counts = np.random.default_rng(1).integers(0, 3000, 500)
    counts[:5] = [0, 1, 2, 3, 4]
    classes = width_classes(counts)
    seen = np.concatenate([group for group, _ in classes])
    np.testing.assert_array_equal(np.sort(seen), np.flatnonzero(counts > 0))
    assert len({width for _, width in classes}) == len(classes)
    for group, width in classes:
        assert (counts[group] <= width).all() and ((counts[group] > width // 2) | (width == 1)).all()
    assert width_classes(np.zeros(3, dtype=np.int64)) == []


@pytest.mark.parametrize("d, clusters", [(64, 40), (256, 200)])
def test_ann_meets_its_recall_target_on_every_row(d, clusters):
    x = clustered(6000, d, clusters, 0.5, seed=5)
    scores, idx, report = ann_topk(x, 20, recall_target=0.95, recall_sample=400)
    assert report.index == "ivf" and report.param == "nprobe" and report.recall_sample == 400
    # the simulation is exact: the same hits, each figure rounded to 4 decimals on its own (0.99425 -> 0.9942 / 0.9943)
    assert report.recall_at_10 >= 0.95 and report.recall_at_10 == pytest.approx(report.expected_recall, abs=1e-4)
    _, truth = exact_topk(x, 20)
    assert recall_at(idx, truth) >= 0.94  # holds on all rows, not only on the sample
    check_contract(scores, idx, len(x), 20, np.arange(len(x)))
    assert report.scored_pairs < len(x) * len(x)  # it searched less than everything


def test_tuning_reports_the_setting_it_chose_and_the_search_uses_it():
    x = clustered(3000, 32, 300, 0.9, seed=2)  # weak structure: several probes needed
    index = build_ivf(x, recall_target=0.9, recall_sample=300, nlist=64)
    report, tried = index.report, index.report.tried
    assert report.expected_recall >= 0.9 and index.nprobe > 1 and index.probes.shape[1] == index.nprobe
    values = [tried[p] for p in sorted(tried)]
    assert values == sorted(values)  # more probes never lose a neighbour
    depth = np.full(len(x), index.nprobe) if index.depth is None else index.depth
    assert (depth >= 1).all() and (depth <= index.nprobe).all()
    assert report.scored_pairs == scores_brute(index.probes, index.lists, index.nprobe, index.depth)
    assert report.mean_probes == pytest.approx(depth.mean(), abs=0.01) and report.probe_margin >= 0
    _, idx, report = search_ivf(x, index, 10)
    assert report.value == index.nprobe and report.search_s >= 0 and index.y is None
    assert report.recall_at_10 >= report.expected_recall - 1e-9  # the measured recall, at least the simulated


def test_tiny_inputs_keep_the_contract():
    for n in (1, 2, 3, 12):
        x = clustered(n, 8, 2, 0.3, seed=n)
        s, i, _ = ann_topk(x, 5, recall_sample=10)
        check_contract(s, i, n, 5, np.arange(n))


@pytest.mark.parametrize("energies", [(0.85, 0.95, 1.0), (1.0,)])
def test_index_over_distinct_rows_in_place_equals_the_index_over_their_copy(monkeypatch, energies):
    """``build_ivf(x, twins=…)`` reads the distinct vectors where they lie (projection, or
    the vectors themselves through a row map): the same index, tuning and lists as the
    index over the copy ``x[twins.first]``, bit for bit."""
    monkeypatch.setattr(ann, "PCA_ENERGIES", energies)
    rng = np.random.default_rng(4)
    base = clustered(2500, 48, 60, 0.5, seed=4)
    x = base[rng.integers(0, len(base), size=3400)]  # ≈ 30 % of the rows repeat another bit for bit
    twins = identical_rows(x)
    assert twins is not None and len(twins.first) < len(x)
    in_place = build_ivf(x, recall_target=0.9, recall_sample=300, nlist=32, twins=twins)
    copied = build_ivf(x[twins.first], recall_target=0.9, recall_sample=300, nlist=32)
    assert (in_place.ymap is None) == (energies[0] < 1) and in_place.report.tried == copied.report.tried
    np.testing.assert_array_equal(in_place.truth, copied.truth)
    np.testing.assert_array_equal(in_place.probes, copied.probes)
    s1, i1, r1 = search_ivf(x, in_place, 12)
    s2, i2, r2 = search_ivf(x[twins.first], copied, 12)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)
    assert r1.recall_at_10 == r2.recall_at_10
    # and the expanded lists are the rows' lists: duplicates listed, self excluded by index
    s, i = expand_topk(x, s1, i1, twins, 12)
    _, truth = exact_topk(x, 12)
    assert recall_at(i, truth) >= 0.85
    check_contract(s, i, len(x), 12, np.arange(len(x)))


@pytest.mark.parametrize("wave, max_wave, entries, cells", [
    (1, 1, 1, 1 << 18), (3, 3, 1, 64), (100, 100, 1, 1 << 18), (1, 64, 200, 1 << 18), (2, 64, 1 << 19, 64),
])
def test_candidates_do_not_depend_on_how_the_blocks_are_batched(monkeypatch, wave, max_wave, entries, cells):
    """Lists pushed one at a time or in waves (fixed or sized by the entries they bring),
    rows scored in small or large GEMMs, pushes running while the next wave is scored: each
    row's heap holds the same best ``keep`` candidates (continuous vectors: no ties)."""
    x = clustered(1200, 16, 25, 0.6, seed=5)
    rng = np.random.default_rng(5)
    probes = probe_order(x, train_centroids(x, 20, rng), 6)
    lists = make_lists(probes[:, 0], 20)
    monkeypatch.setattr(ivf_search, "WAVE", 1)
    monkeypatch.setattr(ivf_search, "MAX_WAVE", 1)
    monkeypatch.setattr(ivf_search, "QUERY_CELLS", 1 << 30)
    monkeypatch.setattr(ivf_search, "cpu_count", lambda: 1)  # one push at a time, one range of heaps
    want = np.sort(candidate_heaps(x, lists, probes, 6, 12)[1], axis=1)
    monkeypatch.undo()
    monkeypatch.setattr(ivf_search, "WAVE", wave)
    monkeypatch.setattr(ivf_search, "MAX_WAVE", max_wave)
    monkeypatch.setattr(ivf_search, "WAVE_ENTRIES", entries)
    monkeypatch.setattr(ivf_search, "QUERY_CELLS", cells)
    monkeypatch.setattr(ivf_search, "cpu_count", lambda: 2)  # two ranges of heaps pushed side by side
    np.testing.assert_array_equal(np.sort(candidate_heaps(x, lists, probes, 6, 12)[1], axis=1), want)


def test_the_tuning_takes_the_cheapest_keep_that_reaches_the_target(monkeypatch):
    """Kept candidates and probed lists trade against each other: of the (keep, nprobe)
    pairs whose simulated recall reaches the target, the one of least predicted cost;
    none reaching it: the most kept and probed, flagged."""
    x = clustered(1200, 16, 20, 0.5, seed=4)
    rng = np.random.default_rng(4)
    probes = probe_order(x, train_centroids(x, 16, rng), 8)
    lists = make_lists(probes[:, 0], 16)
    m, target = 50, 0.95
    reach = {20: 7, 32: 2}  # keep -> first probe count whose recall is 1 (0.9 before it)

    def fake(y, lists_, probes_, sample, truth, keeps, rows=None, above=None, depths=None):
        assert depths.shape[1] == 8  # without the probes' gaps: one count for all rows, 1 … 8
        assert (depths == np.arange(1, 9)).all()  # lists hold more than 32 rows: no row needs more
        found = [np.where(np.arange(8)[:, None] + 1 >= reach[k], 1.0, 0.9) * np.ones((8, m)) for k in keeps]
        return np.stack(found)

    monkeypatch.setattr(ann_tuning, "sample_recall", fake)
    sample, truth = np.arange(m), np.zeros((m, 10), np.int64)
    chosen = set()
    for d in (8, 4096):  # rescoring dearer with the dimension: more probes, fewer kept
        pair_s = ann_tuning.PAIR_COST_S[0] + ann_tuning.PAIR_COST_S[1] * x.shape[1]
        cost = {k: scores_brute(probes, lists, p) * pair_s
                + len(x) * k * (ann_tuning.KEPT_COST_S[0] + ann_tuning.KEPT_COST_S[1] * d) for k, p in reach.items()}
        keep = min(cost, key=cost.get)
        tuned = ann_tuning.tune_space(x, None, lists, probes, sample, truth, (20, 32), target, d)
        assert (tuned.nprobe, tuned.keep, tuned.depth, tuned.reached) == (reach[keep], keep, None, True)
        assert tuned.pairs == scores_brute(probes, lists, reach[keep]) and tuned.expected == 1.0
        chosen.add(keep)
    assert chosen == {20, 32}
    reach = {20: 99, 32: 99}
    tuned = ann_tuning.tune_space(x, None, lists, probes, sample, truth, (20, 32), target, 8)
    assert (tuned.nprobe, tuned.keep, tuned.reached) == (8, 32, False) and tuned.tried[8] == pytest.approx(0.9)


def test_the_tuning_takes_a_margin_per_row_where_it_is_cheaper(monkeypatch):
    """With the probes' gaps, settings where each row probes the lists within a margin of
    its best compete with one count for all: the cheapest confidently on target wins, and
    its depths are what the search reads."""
    x = clustered(1200, 16, 20, 0.5, seed=4)
    rng = np.random.default_rng(4)
    probes, gaps = probe_order(x, train_centroids(x, 16, rng), 8, gaps=True)
    lists = make_lists(probes[:, 0], 16)
    depths = probe_depths(probes, lists.sizes, 20, gaps)
    m, sample, truth = 50, np.arange(50), np.zeros((50, 10), np.int64)
    margin = 8 + int(np.argmin(depths.pairs[8:]))  # the cheapest margin setting: cheaper than 2 lists for all?
    cheaper = margin if depths.pairs[margin] < depths.pairs[1] else 1

    def fake(y, lists_, probes_, sample_, truth_, keeps, rows=None, above=None, depths=None):
        found = np.full((len(keeps), depths.shape[1], m), 0.9)
        found[:, [1, margin]] = 1.0  # two lists for all rows, and one margin setting, reach the target
        return found

    monkeypatch.setattr(ann_tuning, "sample_recall", fake)
    tuned = ann_tuning.tune_space(x, None, lists, probes, sample, truth, (20,), 0.95, 16, gaps=gaps)
    assert tuned.reached and tuned.pairs == depths.pairs[cheaper] and tuned.nprobe == depths.nprobe[cheaper]
    if cheaper == margin:
        np.testing.assert_array_equal(tuned.depth, depths.table[:, margin])
        assert tuned.margin == depths.margin[margin] > 0
        assert tuned.pairs == scores_brute(probes, lists, tuned.nprobe, tuned.depth)
    else:
        assert tuned.depth is None and tuned.margin == 0


def test_probe_depths_are_the_margins_counted_by_brute_force():
    rng = np.random.default_rng(3)
    x = clustered(3000, 24, 40, 0.6, seed=3)
    probes, gaps = probe_order(x, train_centroids(x, 32, rng), 20, gaps=True)
    assert (gaps[:, 0] == 0).all() and (np.diff(gaps, axis=1) >= 0).all()
    lists = make_lists(probes[:, 0], 32)
    least = int(np.median(lists.sizes))  # half the rows' own lists hold too few candidates
    depths = probe_depths(probes, lists.sizes, least, gaps)
    assert depths.table.shape[1] > 20 and (depths.margin[:20] == 0).all() and (depths.margin[20:] > 0).all()
    ranks = np.arange(20)[None, :]
    need = 1 + (np.cumsum(lists.sizes[probes], axis=1) <= least).sum(axis=1)
    assert (need > 1).any()
    for j in range(depths.table.shape[1]):
        want = np.full(len(x), j + 1)
        if depths.margin[j] > 0:
            cap = [8, 16, 20][(j - 20) // ((depths.table.shape[1] - 20) // 3)]
            want = np.minimum((gaps <= depths.margin[j]).sum(axis=1), cap)
        want = np.minimum(np.maximum(want, need), 20)
        np.testing.assert_array_equal(depths.table[:, j], want)
        assert depths.nprobe[j] == want.max()
        assert depths.pairs[j] == (lists.sizes[probes] * (ranks < want[:, None])).sum()
    assert probe_depths(probes, lists.sizes, least).table.shape[1] == 20  # no gaps: one count for all rows
