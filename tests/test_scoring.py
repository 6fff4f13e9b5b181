"""The vectorised seed score against a pair-by-pair reference written from the seed's rules."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings as hsettings, strategies as st

from jobsim.scoring import Context, context_bonus, encode, rerank

CATS = ["it", "finance", None]
CITIES = ["tirane", "vlore", None]


def seed_bonus(a: dict, b: dict) -> float:
    """The seed's bonus for candidate ``b`` of job ``a``, one pair at a time."""
    bonus = 0.0
    if a["category"] is not None and a["category"] == b["category"]:
        bonus += 0.4
    if a["level"] >= 0 and b["level"] >= 0:
        if a["level"] == b["level"]:
            bonus += 0.3
        elif abs(a["level"] - b["level"]) == 1:
            bonus += 0.15
    if a["city"] is not None and a["city"] == b["city"]:
        bonus += 0.3
    elif b["remote"]:
        bonus += 0.15
    return bonus


def make(rng: np.random.Generator, n: int) -> tuple[list[dict], Context]:
    jobs = [{"category": CATS[rng.integers(3)], "level": int(rng.integers(-1, 6)),
             "city": CITIES[rng.integers(3)], "remote": bool(rng.integers(2))} for _ in range(n)]
    ctx = Context(category=encode([j["category"] for j in jobs]),
                  level=np.array([j["level"] for j in jobs], dtype=np.int8),
                  city=encode([j["city"] for j in jobs]),
                  remote=np.array([j["remote"] for j in jobs], dtype=bool))
    return jobs, ctx


@hsettings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), c=st.integers(1, 12))
def test_context_bonus_equals_the_seed_rules(seed, n, c):
    rng = np.random.default_rng(seed)
    jobs, ctx = make(rng, n)
    cand = rng.integers(-1, n, size=(n, c))
    bonus = context_bonus(ctx, cand)
    for q in range(n):
        for j in range(c):
            want = 0.0 if cand[q, j] < 0 else seed_bonus(jobs[q], jobs[cand[q, j]])
            assert abs(float(bonus[q, j]) - want) < 1e-6


@hsettings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 25), c=st.integers(1, 15), k=st.integers(1, 10))
def test_rerank_equals_a_pair_by_pair_reference(seed, n, c, k):
    rng = np.random.default_rng(seed)
    jobs, ctx = make(rng, n)
    cand = np.stack([rng.permutation(max(n, c))[:c] for _ in range(n)])
    cand = np.where(cand < n, cand, -1)
    cosine = rng.uniform(-0.2, 1.1, size=(n, c)).astype(np.float32)
    scores, idx = rerank(cosine, cand, ctx, k)
    assert scores.shape == idx.shape == (n, k)
    for q in range(n):
        ref = []
        for j in range(c):
            if cand[q, j] < 0:
                continue
            s = 0.9 * min(1.0, max(0.0, float(cosine[q, j]))) + 0.1 * seed_bonus(jobs[q], jobs[cand[q, j]])
            if s >= 0.3 - 1e-6:
                ref.append((-s, int(cand[q, j])))
        ref = sorted(ref)
        near_tie = any(abs(a[0] - b[0]) < 1e-5 for a, b in zip(ref, ref[1:])) or any(
            abs(-r[0] - 0.3) < 1e-5 for r in ref)
        ref = ref[:k]
        got = [(int(i), float(s)) for i, s in zip(idx[q], scores[q].astype(np.float64).round(2)) if i >= 0]
        if not near_tie:
            assert [i for i, _ in got] == [j for _, j in ref]
        assert len(got) <= k
        for (_, s), (neg, _) in zip(got, ref):
            assert abs(s - round(-neg, 2)) <= 0.0100001 and 0.3 <= s <= 1.0
        got_scores = [s for _, s in got]
        assert got_scores == sorted(got_scores, reverse=True)
        assert np.isnan(scores[q][idx[q] < 0]).all()
