"""Sharded exact search: identical to the unsharded pass, and right against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from jobsim.neighbours import cross_topk, exact_topk, square_block_for
from jobsim.shards import TopKMerger, search_pair, shard_bounds, shard_pairs, sharded_topk


def _vectors(n: int, d: int, seed: int, duplicates: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    if duplicates:  # identical postings: exact ties that must resolve by index
        src = rng.choice(n, duplicates, replace=False)
        dst = rng.choice(np.setdiff1d(np.arange(n), src), duplicates, replace=False)
        x[dst] = x[src]
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair's score in float64, sorted by (score desc, index asc), self excluded."""
    s = x.astype(np.float64) @ x.astype(np.float64).T
    np.fill_diagonal(s, -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(x)), s.shape), -s), axis=1)[:, :k]
    return np.take_along_axis(s, order, axis=1), order


@pytest.mark.parametrize(
    "n,d,k,shard_rows,budget",
    [
        (1_000, 32, 10, 300, 100 * 100 * 10),   # block 100: 4 shards of 300 rows (last 100)
        (777, 16, 25, 128, 64 * 64 * 10),       # odd sizes, blocks of 64, 7 shards
        (1_500, 48, 60, 1_500, 200 * 200 * 10), # one shard = the unsharded pass itself
        (40, 8, 60, 8, 8 * 8 * 10),             # k > n - 1: padded lists
    ],
)
def test_sharded_equals_unsharded(n: int, d: int, k: int, shard_rows: int, budget: int) -> None:
    x = _vectors(n, d, seed=n, duplicates=n // 20)
    want_s, want_i = exact_topk(x, k, budget)
    got_s, got_i = sharded_topk(x, k, shard_budget_bytes=shard_rows * d * 4, memory_budget_bytes=budget)
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_array_equal(got_s, want_s)


def test_sharded_matches_brute_force_with_duplicates() -> None:
    x = _vectors(600, 24, seed=3, duplicates=40)
    k = 12
    got_s, got_i = sharded_topk(x, k, shard_budget_bytes=100 * 24 * 4, memory_budget_bytes=50 * 50 * 10)
    ref_s, _ = _brute(x, k)
    np.testing.assert_allclose(got_s, ref_s, atol=1e-5)
    # every listed id really has its listed score, so each list is a true top-k
    true = np.einsum("id,ikd->ik", x.astype(np.float64), x[got_i].astype(np.float64))
    np.testing.assert_allclose(true, got_s, atol=1e-5)
    # one total order: score descending, then index ascending among equal scores
    same = got_s[:, 1:] == got_s[:, :-1]
    assert same.any()  # the duplicates produce exact ties
    assert (got_s[:, 1:] <= got_s[:, :-1]).all() and (got_i[:, 1:][same] > got_i[:, :-1][same]).all()
    assert not (got_i == np.arange(len(x))[:, None]).any()  # never itself, duplicates kept


def test_duplicate_postings_are_each_others_neighbours() -> None:
    x = _vectors(300, 16, seed=5)
    x[250] = x[10]
    _, idx = sharded_topk(x, 5, shard_budget_bytes=64 * 16 * 4, memory_budget_bytes=32 * 32 * 10)
    assert idx[10, 0] == 250 and idx[250, 0] == 10


@hsettings(max_examples=25, deadline=None)
@given(n=st.integers(2, 200), k=st.integers(1, 30), shard_rows=st.integers(1, 120),
       block=st.integers(4, 40), seed=st.integers(0, 10_000))
def test_sharded_identity_property(n: int, k: int, shard_rows: int, block: int, seed: int) -> None:
    x = _vectors(n, 6, seed, duplicates=n // 10)
    budget = block * block * 10
    want = exact_topk(x, k, budget)
    got = sharded_topk(x, k, shard_budget_bytes=shard_rows * 6 * 4, memory_budget_bytes=budget)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("cached_block", [2048, 0])  # blocks compared whole / filtered by threshold
def test_cross_topk_against_brute_force(cached_block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import jobsim.neighbours as nb

    monkeypatch.setattr(nb, "CACHED_BLOCK", cached_block)
    x = _vectors(500, 20, seed=9, duplicates=30)
    xa, xb = x[:180], x[180:]
    (sa, ia), (sb, ib) = cross_topk(xa, xb, 7, memory_budget_bytes=40 * 40 * 10)
    full = xa.astype(np.float64) @ xb.astype(np.float64).T
    for scores, idx, mat in ((sa, ia, full), (sb, ib, full.T)):
        ref = np.sort(mat, axis=1)[:, ::-1][:, :7]
        np.testing.assert_allclose(scores, ref, atol=1e-5)
        np.testing.assert_allclose(np.take_along_axis(mat, idx, axis=1), ref, atol=1e-5)


def test_shard_bounds_respect_budget_block_and_min_shards() -> None:
    bounds = shard_bounds(100_000, 1536, 256 << 20, block=4096)
    rows = (256 << 20) // (4 * 1536)
    assert len(bounds) == 3 and all(hi - lo <= rows for lo, hi in bounds)
    assert all(lo % 4096 == 0 for lo, _ in bounds)
    assert bounds[0][0] == 0 and bounds[-1][1] == 100_000
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert len(shard_bounds(100_000, 512, 1 << 40, block=4096, min_shards=4)) == 4
    assert len(shard_bounds(1_000, 512, 1 << 40, block=512, min_shards=8)) == 2  # ≥ one block each
    assert shard_bounds(0, 512, 1 << 20, block=64) == []


def test_pairs_cover_every_block_once_and_merge_runs_in_any_order() -> None:
    x = _vectors(400, 12, seed=1)
    k, budget = 9, 40 * 40 * 10
    block = square_block_for(len(x), budget)
    bounds = shard_bounds(len(x), 12, 80 * 12 * 4, block)
    pairs = shard_pairs(bounds)
    s = len(bounds)
    assert len(pairs) == s * (s + 1) // 2 == len(set(pairs))
    parts = []
    for a, b in pairs:
        (a0, a1), (b0, b1) = bounds[a], bounds[b]
        parts.append(search_pair(x[a0:a1], bounds[a], None if a == b else x[b0:b1],
                                 None if a == b else bounds[b], k, budget, block))
    merger = TopKMerger(len(x), k)
    for part in reversed(parts):  # completion order must not matter
        merger.add(part)
    want = exact_topk(x, k, budget)
    np.testing.assert_array_equal(merger.result()[1], want[1])


def test_many_equal_scores_resolve_by_index_in_every_path() -> None:
    # 50 identical postings: every candidate ties, far beyond the heaps' spare slots, so the
    # exhaustive fallback runs; the lists must still be the lowest other indices, in order
    rng = np.random.default_rng(2)
    order = rng.permutation(80)
    x = np.vstack([np.repeat(_vectors(1, 8, seed=2), 50, axis=0), _vectors(30, 8, seed=4)])[order]
    group = np.flatnonzero(order < 50)  # where the 50 copies landed, ascending
    k = 6
    for s, i in (exact_topk(x, k, 8 * 8 * 10), sharded_topk(x, k, 16 * 8 * 4, 8 * 8 * 10)):
        for row in group:
            assert i[row].tolist() == [g for g in group if g != row][:k]
            assert len(set(s[row].tolist())) == 1


def test_min_shards_give_each_worker_two_pair_tasks_and_no_more() -> None:
    from jobsim.shards import min_shards_for

    for workers in (1, 2, 3, 8, 32, 128, 1000):
        s = min_shards_for(workers)
        assert s * (s + 1) // 2 >= 2 * workers > (s - 1) * s // 2
