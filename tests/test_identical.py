"""Bit-identical rows searched once (jobsim.identical): the same lists as the search over
every row, checked against the plain path and a float64 brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

import jobsim.identical as identical
import jobsim.neighbours as nb
from jobsim.identical import identical_rows
from jobsim.neighbours import exact_topk
from jobsim.rescoring import exhaustive_rows
from tests.test_neighbours import brute, check_contract


def reposted(rng: np.random.Generator, n: int, d: int, distinct: int, zipf: float = 1.2) -> np.ndarray:
    """Unit vectors drawn from ``distinct`` ones with Zipf popularity: groups of every size,
    from singletons to groups far larger than k."""
    base = rng.standard_normal((distinct, d)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    p = 1.0 / np.arange(1, distinct + 1) ** zipf
    return np.ascontiguousarray(base[rng.choice(distinct, size=n, p=p / p.sum())])


def plain_topk(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The search over every row as it is (twins never grouped)."""
    return exact_topk(x, k, twins=None)


def test_groups_are_bit_identical_rows_numbered_by_first_row():
    x = np.array([[1, 0], [0, 1], [1, 0], [0.0, 1], [-0.0, 1], [1, 0]], dtype=np.float32)
    twins = identical_rows(x, min_share=0)
    assert twins.first.tolist() == [0, 1, 4]  # -0.0 is another bit pattern: its own vector
    assert twins.vector.tolist() == [0, 1, 0, 1, 2, 0]
    assert twins.members.tolist() == [0, 2, 5, 1, 3, 4]
    assert twins.counts.tolist() == [3, 2, 1]
    assert identical_rows(np.eye(5, dtype=np.float32)) is None  # nothing repeats
    assert identical_rows(x[:1]) is None


def test_key_collisions_never_merge_different_vectors(monkeypatch):
    rng = np.random.default_rng(3)
    x = reposted(rng, 300, 16, 40)
    monkeypatch.setattr(identical, "_row_keys",
                        lambda bits, rows=None: np.zeros(len(bits) if rows is None else len(rows), dtype=np.uint64))
    twins = identical_rows(x, min_share=0)  # every row collides with row 0: only its true twins join it
    assert (x[twins.first[twins.vector]] == x).all()
    assert len(twins.first) == len(x) - int((twins.vector == twins.vector[0]).sum()) + 1
    ref = plain_topk(x, 12)
    got = exact_topk(x, 12)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[0], ref[0])


@hsettings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 400), distinct=st.integers(1, 60),
       k=st.integers(1, 40), d=st.integers(2, 24), ordered=st.booleans())
def test_twins_path_equals_plain_path_bit_for_bit(seed, n, distinct, k, d, ordered):
    x = reposted(np.random.default_rng(seed), n, d, distinct)
    ref_s, ref_i = plain_topk(x, k)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(identical, "_CHUNK", 7)  # hashing, checks and expansion in many chunks
        if ordered:  # the distinct rows in a locality order, gathered in place, large blocks filtered
            mp.setattr(nb, "LOCALITY_MIN_BYTES", 0)
            mp.setattr(nb, "CACHED_BLOCK", 0)
        s, i = exact_topk(x, k, block=64 if ordered else None)
    check_contract(s, i, n, k, np.arange(n))
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(s, ref_s)


def grid_topk(seed: int, n: int, d: int, k: int, fallback: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid entries: different vectors often have exactly equal scores too, so ties cross
    groups (the expansion must interleave their members by row) and near-ties at the k-th
    place send lists to the fallback (recomputed among the distinct rows: counted)."""
    x = (np.random.default_rng(seed).integers(-2, 3, size=(n, d)) / 4).astype(np.float32)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(identical, "exhaustive_rows", lambda q, *a, **kw: fallback.append(len(q)) or exhaustive_rows(q, *a, **kw))
        s, i = exact_topk(x, k)
    return x, s, i


@hsettings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 120), d=st.integers(1, 4), k=st.integers(1, 30))
def test_twins_with_equal_scores_across_vectors_match_brute_force(seed, n, d, k):
    x, s, i = grid_topk(seed, n, d, k, [])
    check_contract(s, i, n, k, np.arange(n))
    ref_s, ref_i = brute(x, k)
    np.testing.assert_array_equal(i[:, : ref_i.shape[1]], ref_i)
    np.testing.assert_array_equal(s[:, : ref_i.shape[1]], ref_s.astype(np.float32))


def test_near_ties_are_recomputed_among_distinct_vectors():
    fallback: list[int] = []
    for seed in range(20):
        x, s, i = grid_topk(seed, 150, 3, 30, fallback)
        ref_s, ref_i = brute(x, 30)
        np.testing.assert_array_equal(i, ref_i)
    assert sum(fallback) > 0  # the fallback path ran, and its lists are right


def test_large_groups_reach_past_k_and_the_search_shrinks():
    """Groups of hundreds (a posting re-posted every day): a row's list is its own twins
    first, in row order; the search runs over the distinct vectors only."""
    rng = np.random.default_rng(11)
    x = reposted(rng, 3000, 32, 200, zipf=1.6)
    twins = identical_rows(x)
    assert twins.counts.max() > 200 and len(twins.first) < 0.1 * len(x)
    timings: dict[str, float] = {}
    s, i = exact_topk(x, 50, timings=timings)
    assert "twins" in timings
    ref_s, ref_i = plain_topk(x, 50)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(s, ref_s)
    big = int(np.argmax(twins.counts))
    row = int(twins.members[twins.starts[big]])
    own = twins.members[twins.starts[big] : twins.starts[big + 1]]
    assert i[row].tolist() == own[own != row][:50].tolist()


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_groups_do_not_depend_on_the_chunks_rows_are_keyed_in(monkeypatch, chunk):
    x = reposted(np.random.default_rng(12), 900, 24, 150)
    want = identical_rows(x, min_share=0)
    monkeypatch.setattr(identical, "_CHUNK", chunk)
    got = identical_rows(x, min_share=0)
    for name in ("first", "vector", "members", "starts"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    assert got.share == pytest.approx(1 - len(np.unique(x, axis=0)) / len(x))


def test_the_ann_searches_by_the_groups_only_from_its_share():
    x = np.random.default_rng(13).standard_normal((1000, 16)).astype(np.float32)
    x[:30] = x[-1]  # 3 % repeat the last row
    twins = identical_rows(x, min_share=0)
    assert twins.share == pytest.approx(0.03) and identical.ann_twins(twins) is None
    x[: int(identical.ANN_MIN_SHARE * len(x)) + 1] = x[-1]
    twins = identical_rows(x, min_share=0)
    assert twins.share >= identical.ANN_MIN_SHARE and identical.ann_twins(twins) is twins
    assert identical.ann_twins(None) is None
