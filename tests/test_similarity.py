"""Active-set join, full lists against brute force, and the diff that decides what is written."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
from hypothesis import given, settings as hsettings, strategies as st

from jobsim.settings import NeighbourSettings
from jobsim.similarity import ActiveSet, active_set, compute_lists, compute_neighbours, diff_lists
from storage.embeddings import VectorSet
from tests.test_scoring import make, seed_bonus

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)


def context_frame(ids, hashes):
    n = len(ids)
    return pl.DataFrame({
        "id": ids, "contentHash": hashes, "category": ["it"] * n, "level": [2] * n,
        "city": ["tirane"] * n, "remote": [False] * n,
    }, schema={"id": pl.String, "contentHash": pl.String, "category": pl.String,
               "level": pl.Int8, "city": pl.String, "remote": pl.Boolean})


def test_active_set_keeps_only_current_vectors_in_id_order():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    vectors = VectorSet(ids=np.array(["d", "b", "a", "z"], dtype=object),
                        hashes=np.array(["h1", "h2", "old", "hz"], dtype=object), vectors=x)
    active = active_set(vectors, context_frame(["a", "b", "d", "c"], ["new", "h2", "h1", "hc"]))
    # "a": stale vector (hash differs); "c": no vector; "z": vector of an inactive job
    assert active.ids.tolist() == ["b", "d"]
    np.testing.assert_array_equal(active.vectors, x[[1, 0]])
    assert active.vectors.flags.c_contiguous


@hsettings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40))
def test_full_lists_equal_a_pair_by_pair_brute_force(seed, n):
    rng = np.random.default_rng(seed)
    jobs, ctx = make(rng, n)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    x[: n // 4] = x[n // 4 : 2 * (n // 4)]  # duplicate postings
    ids = np.array([f"j{i:03d}" for i in range(n)], dtype=object)
    cfg = NeighbourSettings(k=5, candidates=12)
    lists = compute_lists(ActiveSet(ids=ids, vectors=x, context=ctx), cfg)
    cos = x.astype(np.float64) @ x.T.astype(np.float64)
    for a in range(n):
        others = [b for b in np.argsort(-cos[a], kind="stable") if b != a][: cfg.candidates]
        scored = sorted(
            (-(0.9 * min(1.0, max(0.0, cos[a, b])) + 0.1 * seed_bonus(jobs[a], jobs[b])), b) for b in others)
        ref = [(ids[b], round(-s, 2)) for s, b in scored if -s >= 0.3][: cfg.k]
        got = lists[ids[a]]
        assert ids[a] not in dict(got)  # never itself, duplicates allowed
        assert len(got) == len(ref) or any(abs(-s - 0.3) < 1e-5 for s, _ in scored)
        for (gi, gs), (ri, rs) in zip(got, ref):
            assert abs(gs - rs) <= 0.0100001 and round(gs, 2) == gs
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    assert set(lists) == set(ids.tolist())


def test_diff_writes_only_what_changed_and_clears_inactive_jobs():
    stored = {"a": (("b", 0.9), ("c", 0.5)), "b": (("a", 0.9),), "gone": (("a", 0.4),)}
    new = {"a": (("b", 0.9), ("c", 0.5)), "b": (("a", 0.91),), "c": (), "d": (("a", 0.7),)}
    changes, unchanged = diff_lists(new, stored)
    assert changes == {"b": (("a", 0.91),), "d": (("a", 0.7),), "gone": ()}
    assert unchanged == 2  # "a" same; "c" empty and nothing stored


def test_diff_of_identical_lists_writes_nothing():
    lists = {f"j{i}": ((f"j{(i + 1) % 5}", 0.5 + i / 100),) for i in range(5)}
    assert diff_lists(lists, dict(lists)) == ({}, 5)


def test_order_change_alone_is_a_change():
    changes, _ = diff_lists({"a": (("b", 0.5), ("c", 0.5))}, {"a": (("c", 0.5), ("b", 0.5))})
    assert list(changes) == ["a"]


def test_a_second_write_of_the_same_lists_writes_zero_documents(db, settings):
    """Round trip through the real server: stored floats compare equal to recomputed ones."""
    from bson import ObjectId

    from storage import repositories

    jobs = repositories(settings.mongo).jobs
    oids = [ObjectId() for _ in range(30)]
    db[settings.mongo.jobs_collection].insert_many([{"_id": o, "status": "active"} for o in oids])
    rng = np.random.default_rng(0)
    ids = np.array(sorted(str(o) for o in oids), dtype=object)
    x = rng.standard_normal((30, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    _, ctx = make(rng, 30)
    result = compute_neighbours(ActiveSet(ids=ids, vectors=x, context=ctx), NeighbourSettings(min_score=0.0))
    changes, _ = diff_lists(result.lists, jobs.stored_lists())
    assert jobs.write_lists(changes, NOW, 30, 7) == 30
    again, unchanged = diff_lists(result.lists, jobs.stored_lists())
    assert again == {} and unchanged == 30
    assert jobs.write_lists(again, NOW, 30, 7) == 0


def test_large_sets_take_the_ann_path_and_record_recall():
    from tests.test_neighbours import clustered

    n = 1500
    x = clustered(n, 32, 25, 0.35, seed=2)
    rng = np.random.default_rng(0)
    _, ctx = make(rng, n)
    ids = np.array([f"j{i:05d}" for i in range(n)], dtype=object)
    cfg = NeighbourSettings(exact_max_jobs=1000, ann_recall_sample=200, k=10, candidates=20)
    result = compute_neighbours(ActiveSet(ids=ids, vectors=x, context=ctx), cfg)
    s = result.stats
    assert s.mode == "ann" and s.recall_at_10 >= 0.95 and s.recall_sample == 200
    assert s.ann_index == "ivf" and s.ann_param == "nprobe" and s.ann_value >= 1
    assert not result.state.exact
    exact = compute_lists(ActiveSet(ids=ids, vectors=x, context=ctx), cfg.model_copy(update={"exact_max_jobs": 10**6}))
    same = np.mean([result.lists[i] == exact[i] for i in exact])
    assert same >= 0.8  # reranked top-10 lists mostly identical at recall ≥ 0.95
    # the next run starts from the approximate state incrementally while the set stays large
    again = compute_neighbours(ActiveSet(ids=ids, vectors=x, context=ctx), cfg, previous=result.state)
    assert again.stats.mode == "incremental" and again.lists == result.lists
