"""The IVF pass: exact within the probed lists (brute-force reference), recall from list
membership, tuning to the target, the pipeline contract."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from jobsim.ann import ann_topk, build_ivf, recall_at, search_ivf
from jobsim.ivf import ivf_search, make_lists, probe_order, probed_recall, train_centroids
from jobsim.neighbours import exact_topk
from tests.test_neighbours import check_contract, clustered, grid_vectors


def probed_brute(x: np.ndarray, lists, probes: np.ndarray, nprobe: int, k: int) -> list[list[int]]:
    """Reference: each row's candidates = members of its probed lists but itself, scored in
    float64, sorted (score desc, index asc)."""
    out = []
    for r in range(len(x)):
        cand = np.concatenate([lists.members(int(b)) for b in probes[r, :nprobe]])
        cand = np.sort(cand[cand != r])
        s = x[cand].astype(np.float64) @ x[r].astype(np.float64)
        out.append(cand[np.lexsort((cand, -s))][:k].tolist())
    return out


@hsettings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 150), nlist=st.integers(1, 12),
       nprobe=st.integers(1, 12), k=st.integers(1, 25), dup=st.integers(0, 20))
def test_search_is_exact_within_the_probed_lists(seed, n, nlist, nprobe, k, dup):
    rng = np.random.default_rng(seed)
    x = grid_vectors(rng, n, 5, dup)  # exact float32 products: ties are real ties
    nlist = min(nlist, n)
    probes = np.argsort(rng.random((n, nlist)), axis=1).astype(np.int32)  # any probe order
    lists = make_lists(probes[:, 0], nlist)
    nprobe = min(nprobe, nlist)
    scores, idx = ivf_search(x, lists, probes, nprobe, k)
    want = probed_brute(x, lists, probes, nprobe, k)
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


@hsettings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), nprobe=st.integers(1, 6))
def test_recall_from_membership_equals_the_recall_of_the_search(seed, nprobe):
    x = grid_vectors(np.random.default_rng(seed), 300, 6, 20) + 0.25  # ties everywhere
    rng = np.random.default_rng(seed + 1)
    c = train_centroids(x, 8, rng)
    probes = probe_order(x, c, 8)
    lists = make_lists(probes[:, 0], len(c))
    _, idx = ivf_search(x, lists, probes, nprobe, 10)
    _, truth = exact_topk(x, 10)
    per_row = probed_recall(probes, lists, truth, nprobe)
    for r in range(len(x)):
        t = truth[r][truth[r] >= 0]
        found = set(idx[r, :10].tolist()) & set(t.tolist())
        assert found == {j for j in t.tolist() if lists.home[j] in probes[r, :nprobe]}
        assert per_row[r] == len(found) / len(t)


def test_probes_are_sorted_by_centroid_score_and_lists_partition_the_rows():
    x = clustered(2000, 16, 12, 0.3, seed=1)
    c = train_centroids(x, 32, np.random.default_rng(0))
    assert c.shape == (32, 16) and np.allclose(np.linalg.norm(c, axis=1), 1, atol=1e-5)
    probes = probe_order(x, c, 5)
    s = x @ c.T
    np.testing.assert_array_equal(probes[:, 0], np.argmax(s, axis=1))
    got = np.take_along_axis(s, probes, axis=1)
    assert (np.diff(got, axis=1) <= 0).all()
    lists = make_lists(probes[:, 0], len(c))
    members = np.concatenate([lists.members(b) for b in range(len(c))])
    assert sorted(members.tolist()) == list(range(len(x)))
    assert all(lists.members(int(lists.home[i]))[lists.pos[i]] == i for i in range(len(x)))


@pytest.mark.parametrize("d, clusters", [(64, 40), (256, 200)])
def test_ann_meets_its_recall_target_on_every_row(d, clusters):
    x = clustered(6000, d, clusters, 0.5, seed=5)
    scores, idx, report = ann_topk(x, 20, recall_target=0.95, recall_sample=400)
    assert report.index == "ivf" and report.param == "nprobe" and report.recall_sample == 400
    assert report.recall_at_10 >= 0.95 and report.recall_at_10 == report.tried[report.value]
    _, truth = exact_topk(x, 20)
    assert recall_at(idx, truth) >= 0.94  # holds on all rows, not only on the sample
    check_contract(scores, idx, len(x), 20, np.arange(len(x)))
    assert report.scored_pairs < len(x) * len(x)  # it searched less than everything


def test_tuning_picks_the_smallest_probe_count_that_is_confidently_on_target():
    x = clustered(3000, 32, 300, 0.9, seed=2)  # weak structure: several probes needed
    index = build_ivf(x, recall_target=0.9, recall_sample=300, nlist=64)
    tried = index.report.tried
    assert index.nprobe == max(tried) and index.nprobe > 1
    assert all(r < 0.9 for p, r in tried.items() if p < index.nprobe - 1)
    values = [tried[p] for p in sorted(tried)]
    assert values == sorted(values)  # more probes never lose a neighbour
    _, idx, report = search_ivf(x, index, 10)
    assert report.value == index.nprobe and report.search_s >= 0


def test_tiny_inputs_keep_the_contract():
    for n in (1, 2, 3, 12):
        x = clustered(n, 8, 2, 0.3, seed=n)
        s, i, _ = ann_topk(x, 5, recall_sample=10)
        check_contract(s, i, n, 5, np.arange(n))
