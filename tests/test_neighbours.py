"""Exact top-k search against a numpy brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from jobsim.neighbours import exact_topk, merge_topk, order_rows, topk_of_rows


def brute(x: np.ndarray, k: int, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Reference: full float64 score matrix, self masked, stable sort (score desc, index asc)."""
    n = len(x)
    rows = np.arange(n) if rows is None else rows
    g = x[rows].astype(np.float64) @ x.T.astype(np.float64)
    g[np.arange(len(rows)), rows] = -np.inf
    order = np.argsort(-g, axis=1, kind="stable")[:, : min(k, max(n - 1, 0))]
    return np.take_along_axis(g, order, axis=1), order


def grid_vectors(rng: np.random.Generator, n: int, d: int, dup: int) -> np.ndarray:
    """Entries in {-2..2}/4: every inner product is exact in float32, so ties are real."""
    x = (rng.integers(-2, 3, size=(n, d)) / 4).astype(np.float32)
    for _ in range(dup):  # duplicate postings: identical vectors under other indices
        if n >= 2:
            a, b = rng.integers(0, n, size=2)
            x[a] = x[b]
    return x


def unit_vectors(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def check_contract(scores: np.ndarray, idx: np.ndarray, n: int, k: int, rows: np.ndarray) -> None:
    kk = min(k, max(n - 1, 0))
    assert scores.shape == idx.shape == (len(rows), k)
    assert (idx[:, kk:] == -1).all() and np.isneginf(scores[:, kk:]).all()  # n ≤ k: padded
    assert (idx[:, :kk] >= 0).all()
    assert not (idx == rows[:, None]).any()  # never its own neighbour
    assert (np.diff(scores[:, :kk], axis=1) <= 0).all()  # descending
    for r in range(len(rows)):
        assert len(set(idx[r, :kk].tolist())) == kk  # no neighbour twice


@hsettings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 70), d=st.integers(1, 8),
       k=st.integers(1, 12), dup=st.integers(0, 10), budget=st.integers(8, 40_000))
def test_exact_equals_brute_force_with_ties(seed, n, d, k, dup, budget):
    x = grid_vectors(np.random.default_rng(seed), n, d, dup)
    scores, idx = exact_topk(x, k, budget)
    check_contract(scores, idx, n, k, np.arange(n))
    ref_s, ref_i = brute(x, k)
    kk = ref_i.shape[1]
    np.testing.assert_array_equal(idx[:, :kk], ref_i)  # same ids, same tie order
    np.testing.assert_array_equal(scores[:, :kk], ref_s.astype(np.float32))


@hsettings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 300), k=st.integers(1, 20),
       budget=st.integers(64, 200_000))
def test_exact_equals_brute_force_on_unit_vectors(seed, n, k, budget):
    x = unit_vectors(np.random.default_rng(seed), n, 24)
    scores, idx = exact_topk(x, k, budget)
    check_contract(scores, idx, n, k, np.arange(n))
    ref_s, ref_i = brute(x, k)
    kk = ref_i.shape[1]
    np.testing.assert_allclose(scores[:, :kk], ref_s, atol=1e-5)
    # ids agree except where two reference scores are within float32 noise
    gap_ok = np.abs(np.take_along_axis(x[np.arange(n)] @ x.T, idx[:, :kk], 1) - ref_s) < 1e-5
    assert gap_ok.all()


def test_duplicates_are_neighbours_self_is_not():
    rng = np.random.default_rng(1)
    x = unit_vectors(rng, 50, 16)
    x[7] = x[3]
    x[9] = x[3]
    scores, idx = exact_topk(x, 3)
    assert idx[3, :2].tolist() == [7, 9] and scores[3, 0] == pytest.approx(1.0, abs=1e-6)
    assert idx[7, :2].tolist() == [3, 9] and idx[9, :2].tolist() == [3, 7]


@hsettings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), k=st.integers(1, 10),
       m=st.integers(0, 8), budget=st.integers(8, 20_000))
def test_rows_search_equals_brute_force(seed, n, k, m, budget):
    rng = np.random.default_rng(seed)
    x = grid_vectors(rng, n, 5, 4)
    rows = rng.integers(0, n, size=m)
    seen: list[np.ndarray] = []
    scores, idx = topk_of_rows(x, rows, k, budget, on_block=lambda r, b: seen.append(r))
    check_contract(scores, idx, n, k, rows)
    ref_s, ref_i = brute(x, k, rows)
    np.testing.assert_array_equal(idx[:, : ref_i.shape[1]], ref_i)
    if m and n > 1:
        assert np.concatenate(seen).tolist() == rows.tolist()  # every block reported once


@hsettings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), k=st.integers(1, 20), budget=st.sampled_from([64, 4096]))
def test_topk_of_rows_never_lists_skipped_rows(seed, n, k, budget):
    """With a mask of rows that are never candidates (not among the queried rows), each
    list is the brute-force list of the other rows: skipped rows never listed, padding
    when fewer remain than k."""
    rng = np.random.default_rng(seed)
    x = grid_vectors(rng, n, 4, dup=n // 3)
    skip = rng.random(n) < 0.4
    allowed = np.flatnonzero(~skip)
    rows = rng.choice(allowed, size=min(len(allowed), 7)) if len(allowed) else np.empty(0, np.int64)
    scores, idx = topk_of_rows(x, rows, k, budget, skip=skip)
    g = x[rows].astype(np.float64) @ x.T.astype(np.float64)
    g[np.arange(len(rows)), rows] = -np.inf
    g[:, skip] = -np.inf
    kk = min(k, len(allowed) - 1)
    for r in range(len(rows)):
        want = np.lexsort((np.arange(n), -g[r]))[: max(kk, 0)]
        assert idx[r, : max(kk, 0)].tolist() == want.tolist()
        assert (idx[r, max(kk, 0):] == -1).all() and np.isneginf(scores[r, max(kk, 0):]).all()
        assert not skip[idx[r][idx[r] >= 0]].any()


@hsettings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 8))
def test_merge_topk_is_top_of_the_union(seed, k):
    rng = np.random.default_rng(seed)
    a_i = rng.permutation(20)[:6].reshape(2, 3)
    b_i = rng.permutation(np.arange(20, 40))[:8].reshape(2, 4)
    a_s = (rng.integers(0, 4, size=a_i.shape) / 4).astype(np.float32)
    b_s = (rng.integers(0, 4, size=b_i.shape) / 4).astype(np.float32)
    b_i[0, 0] = -1
    s, i = merge_topk(a_s, a_i, b_s, b_i, k)
    for r in range(2):
        pool = [(-float(v), int(j)) for v, j in zip(np.r_[a_s[r], b_s[r]], np.r_[a_i[r], b_i[r]]) if j >= 0]
        want = sorted(pool)[:k]
        got = [(-float(v), int(j)) for v, j in zip(s[r], i[r]) if j >= 0]
        assert got == want


ODD_SCORES = np.array([0.0, -0.0, 0.5, -0.5, 1e-40, -1e-40, np.inf, -np.inf, np.nan, 3.4e38, -3.4e38], np.float32)


@hsettings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), width=st.integers(1, 12), sort_first=st.booleans(),
       ids=st.sampled_from([np.int32, np.int64]), big=st.booleans())
def test_order_rows_equals_sorting_by_score_desc_then_index(seed, width, sort_first, ids, big):
    """Any float32 scores (ties, ±0, ±inf, NaN, subnormals) and ids (-1 = empty slot, int32
    or int64, ids past 2³² take the lexsort path): rows in (score desc, index asc) order,
    empty slots after the scores, NaN last; rows already in order stay as they are."""
    rng = np.random.default_rng(seed)
    base = rng.choice(np.array([0.5, -0.5, 1e-40, -1e-40], np.float32), (6, width))
    ulps = (base.view(np.int32) + rng.integers(0, 3, (6, width))).astype(np.int32).view(np.float32)  # a few ulps apart
    plain = np.where(rng.random((6, width)) < 0.5, ulps, rng.integers(-3, 4, (6, width)) / 2)
    scores = np.where(rng.random((6, width)) < 0.4, rng.choice(ODD_SCORES, (6, width)), plain).astype(np.float32)
    top = 2**40 if big and ids is np.int64 else 50
    indices = rng.integers(0, top, (6, width)).astype(ids)
    empty = rng.random((6, width)) < 0.2
    indices[empty], scores[empty] = -1, -np.inf

    def rank(v: float, j: int) -> tuple:
        return (np.isnan(v), j < 0, 0.0 if np.isnan(v) else -v, j if j >= 0 else 0)

    if sort_first:  # rows already in order: the fast path leaves them alone
        for r in range(6):
            order = sorted(range(width), key=lambda c: rank(float(scores[r, c]), int(indices[r, c])))
            scores[r], indices[r] = scores[r, order], indices[r, order]
    s, i = scores.copy(), indices.copy()
    order_rows(s, i)
    for r in range(6):
        want = sorted(zip(scores[r].tolist(), indices[r].tolist()), key=lambda e: rank(*e))
        assert [rank(v, j) for v, j in zip(s[r].tolist(), i[r].tolist())] == [rank(*e) for e in want]
        assert sorted(zip(np.sort(i[r]).tolist())) == sorted(zip(np.sort(indices[r]).tolist()))


def clustered(n: int, d: int, clusters: int, spread: float, seed: int) -> np.ndarray:
    """Unit vectors around random centres: the structure real embeddings have."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@hsettings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 400), k=st.integers(1, 30),
       block=st.integers(8, 120), dup=st.integers(0, 30))
def test_locality_order_gives_the_same_lists_bit_for_bit(seed, n, k, block, dup):
    """Large matrices are searched in a k-means order (heap rows and ids are positions in
    it) with thresholds filtering large blocks; the result must not depend on it, on the
    block size, nor on the selection (small blocks compare every score)."""
    import jobsim.neighbours as nb

    x = grid_vectors(np.random.default_rng(seed), n, 6, dup) + 0.25  # many exact ties
    plain = exact_topk(x, k, block=block)
    with pytest.MonkeyPatch.context() as mp:  # the filtered path of large blocks, in a locality order
        mp.setattr(nb, "LOCALITY_MIN_BYTES", 0)
        mp.setattr(nb, "CACHED_BLOCK", 0)
        ordered = exact_topk(x, k, block=max(8, block // 2 + 3))
    np.testing.assert_array_equal(ordered[1], plain[1])
    np.testing.assert_array_equal(ordered[0], plain[0])
    ref_s, ref_i = brute(x, k)
    np.testing.assert_array_equal(ordered[1][:, : ref_i.shape[1]], ref_i)


def test_column_and_sparse_pushes_equal_a_full_sort():
    from jobsim import heaps
    from jobsim.heaps import new_heaps, push_columns, push_dense, push_sparse, push_top, reorder

    rng = np.random.default_rng(4)
    blk = (rng.integers(0, 50, size=(37, 29)) / 7).astype(np.float32)  # ties
    k = 5
    cols_s, cols_i = new_heaps(29, 37, k)
    push_columns(blk, cols_s, cols_i, r0=100, c0=0)
    reorder(cols_s, cols_i)
    rows_s, rows_i = new_heaps(37, 29, k)
    r, c = np.nonzero(blk >= 0)
    push_sparse(rows_s, rows_i, r, c + 7, blk[r, c])
    reorder(rows_s, rows_i)
    dense_s, dense_i = new_heaps(37, 29, k)
    push_dense(blk, dense_s, dense_i, 0, 7)
    reorder(dense_s, dense_i)
    top_s, top_i = new_heaps(29, 37, k)  # empty heaps take each row's best (a partial sort, 3 rows at a time)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(heaps, "TOP_CELLS", 3 * 37)
        push_top(blk.T, top_s, top_i, 0, 100)
    reorder(top_s, top_i)
    for warm in (False, True):  # the same heaps as offering the block whole, ties included; non-empty heaps too
        want, got = new_heaps(37, 29, k), new_heaps(37, 29, k)
        for heaps_ in (want, got):
            if warm:
                push_dense(blk[:, :9], *heaps_, 0, 500)
        push_dense(blk, *want, 0, 7)
        push_top(blk, *got, 0, 7)
        for heaps_ in (want, got):
            reorder(*heaps_)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    keep = cols_s.shape[1]
    for mat, (s, i), off in ((blk.T, (cols_s, cols_i), 100), (blk, (rows_s, rows_i), 7), (blk, (dense_s, dense_i), 7),
                             (blk.T, (top_s, top_i), 100)):
        np.testing.assert_array_equal(s, -np.sort(-mat, axis=1)[:, :keep])  # the k+SPARE best values
        np.testing.assert_array_equal(np.take_along_axis(mat, i - off, axis=1), s)  # with their ids


@pytest.mark.parametrize("n, budget_mb", [(10, 16), (5_000, 16), (100_000, 512), (1_000_000, 64)])
def test_blocks_fit_the_memory_budget(n, budget_mb):
    from jobsim.neighbours import block_rows_for, square_block_for

    budget = budget_mb << 20
    b = square_block_for(n, budget)
    assert 1 <= b <= min(n, 4096) and 10 * b * b <= budget + 10  # two blocks + masks fit
    rows = block_rows_for(n, budget)
    assert rows >= 1 and (rows == 1 or 4 * rows * n <= budget)


@pytest.mark.parametrize("prefilter, live_cells", [(True, 1 << 20), (True, 1), (True, 77), (False, 1 << 20)])
def test_filtered_pushes_on_warm_heaps_equal_dense_pushes(monkeypatch, prefilter, live_cells):
    """Warm heaps (thresholds set) take only the scores above them: the result equals
    offering the whole block, whichever rows/columns the max-prefilter skips, and however
    many of the live rows (columns) are compared at a time."""
    from jobsim import heaps as heaps_module
    from jobsim.heaps import new_heaps, push_columns, push_dense, push_filtered, reorder

    monkeypatch.setattr(heaps_module, "LIVE_CELLS", live_cells)

    rng = np.random.default_rng(7)
    blk = (0.5 * rng.random((60, 50))).astype(np.float32)
    for side, mat in (("rows", blk), ("cols", blk.T)):
        # thresholds from 0.4 to 0.9: heaps with a top above 0.5 take nothing from the block
        warm = (rng.random((mat.shape[0], 40)) * rng.uniform(0.9, 2.0, (mat.shape[0], 1))).astype(np.float32)
        want, got = new_heaps(mat.shape[0], 90, 6), new_heaps(mat.shape[0], 90, 6)
        for heaps in (want, got):
            push_dense(warm, *heaps, 0, 1000)
        push_dense(mat, *want, 0, 0)
        push = push_filtered if side == "rows" else push_columns
        share = push(blk, *got, 0, 0, prefilter)
        assert 0.0 < share < 0.5  # few heaps take anything: the prefilter's subset path runs
        for s, i in (want, got):
            reorder(s, i)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
