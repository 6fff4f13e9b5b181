"""Incremental maintenance equals a full recomputation on random edit/insert/expire/delete runs."""

from __future__ import annotations

from dataclasses import replace
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from jobsim import incremental
from jobsim.incremental import fingerprints, full_state, update_state
from jobsim.corpus import Corpus, corpus_from_arrays
from jobsim.rescoring import order_rows
from jobsim.scoring import Context, encode
from jobsim.settings import NeighbourSettings
from jobsim.similarity import compute_neighbours
from storage.local_cache import NeighbourStateStore

CATEGORIES = ["it", "finance", "sales", None]
CITIES = ["tirane", "durres", None]

# small widths so removals really exhaust lists and force recomputations
CFG = NeighbourSettings(k=4, candidates=6, candidate_margin=3, min_score=0.3,
                        incremental_max_churn=1.0, memory_budget_mb=16)


def grid_vector(rng: np.random.Generator) -> np.ndarray:
    """Entries in {-2..2}/4 (d=4): inner products exact in float32, ties frequent."""
    return (rng.integers(-2, 3, size=4) / 4).astype(np.float32)


def random_job(rng: np.random.Generator) -> dict:
    return {"vector": grid_vector(rng), "category": CATEGORIES[rng.integers(len(CATEGORIES))],
            "level": int(rng.integers(-1, 6)), "city": CITIES[rng.integers(len(CITIES))],
            "remote": bool(rng.integers(2))}


def to_active(jobs: dict[str, dict]) -> Corpus:
    ids = sorted(jobs)
    rows = [jobs[i] for i in ids]
    return corpus_from_arrays(
        np.array(ids, dtype=object),
        np.stack([r["vector"] for r in rows]) if rows else np.zeros((0, 4), np.float32),
        Context(
            category=encode([r["category"] for r in rows]),
            level=np.array([r["level"] for r in rows], dtype=np.int8),
            city=encode([r["city"] for r in rows]),
            remote=np.array([r["remote"] for r in rows], dtype=bool),
        ),
    )


def compute_lists(corpus: Corpus, cfg: NeighbourSettings) -> dict:
    return compute_neighbours(corpus, cfg.model_copy(update={"incremental": False})).lists


def mutate(jobs: dict[str, dict], rng: np.random.Generator, next_id: list[int], ops: int) -> None:
    for _ in range(ops):
        op = rng.choice(["insert", "duplicate", "edit", "context", "expire", "delete"])
        if op in ("insert", "duplicate") or not jobs:
            job = random_job(rng)
            if op == "duplicate" and jobs:  # a re-posting: same vector, other id
                job["vector"] = jobs[rng.choice(sorted(jobs))]["vector"].copy()
            jobs[f"job{next_id[0]:05d}"] = job
            next_id[0] += 1
        elif op == "edit":  # new text → new vector
            jobs[rng.choice(sorted(jobs))]["vector"] = grid_vector(rng)
        elif op == "context":  # category/city change only: same vector, other bonus
            key = rng.choice(sorted(jobs))
            jobs[key] = {**jobs[key], "category": CATEGORIES[rng.integers(len(CATEGORIES))]}
        else:  # expired, closed or deleted: leaves the active set
            del jobs[rng.choice(sorted(jobs))]


@hsettings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), start=st.integers(0, 40),
       steps=st.lists(st.integers(0, 8), min_size=1, max_size=6), chunk=st.sampled_from([3, 8192]))
def test_incremental_equals_full_recompute(seed, start, steps, chunk):
    with patch.object(incremental, "CARRY_CHUNK", chunk):  # rows carried over a few at a time, or all at once
        incremental_equals_full_recompute(seed, start, steps)


def incremental_equals_full_recompute(seed, start, steps):
    rng = np.random.default_rng(seed)
    next_id = [0]
    jobs: dict[str, dict] = {}
    mutate(jobs, rng, next_id, start)
    state = compute_neighbours(to_active(jobs), CFG).state
    for ops in steps:
        mutate(jobs, rng, next_id, ops)
        active = to_active(jobs)
        result = compute_neighbours(active, CFG, previous=state)
        if result.stats.mode != "incremental":  # everything replaced: churn above 1.0
            assert result.stats.churn > 1.0 and result.stats.full_pass_reason.startswith("churn")
        full = compute_neighbours(active, CFG.model_copy(update={"incremental": False}))
        assert full.stats.mode == "exact"
        assert result.lists == full.lists
        n = active.rows
        need = min(CFG.candidates, max(n - 1, 0))
        np.testing.assert_array_equal(result.state.cand[:, :need], full.state.cand[:, :need])
        np.testing.assert_array_equal(result.state.scores[:, :need], full.state.scores[:, :need])
        assert (result.state.depth >= need).all()
        state = result.state


@hsettings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), churn=st.floats(0.0, 0.3))
def test_incremental_on_unit_vectors_matches_full_scores(seed, churn):
    """Real-valued vectors: the very same lists and scores (every kept score is rescored pair
    by pair, so GEMM shapes do not matter)."""
    rng = np.random.default_rng(seed)
    n, d = 300, 32
    x = rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.array([f"j{i:04d}" for i in range(n)], dtype=object)
    before = full_state(ids, x, fingerprints(x), n, 20, 1 << 20)
    changed = rng.random(n) < churn
    y = x.copy()
    fresh = rng.standard_normal((int(changed.sum()), d)).astype(np.float32)
    y[changed] = fresh / np.linalg.norm(fresh, axis=1, keepdims=True)
    keep = rng.random(n) >= churn / 2
    ids2, y = ids[keep], np.ascontiguousarray(y[keep])
    inc, report = update_state(before, ids2, y, fingerprints(y), len(ids2), 12, 1 << 20)
    ref = full_state(ids2, y, fingerprints(y), len(ids2), 20, 1 << 20)
    np.testing.assert_array_equal(inc.scores[:, :12], ref.scores[:, :12])
    np.testing.assert_array_equal(inc.cand[:, :12], ref.cand[:, :12])
    assert report.added == int((changed & keep).sum()) and report.removed == int((changed | ~keep).sum())


def test_a_state_whose_rows_are_in_another_order_still_gives_sorted_lists():
    """Lists that lost no entry are re-sorted only when the rows keep their relative order; a
    state in another order (e.g. written by other code) has every list sorted again."""
    rng = np.random.default_rng(5)
    n = 120
    x = np.stack([grid_vector(rng) for _ in range(n)])  # ties everywhere: the order by index matters
    ids = np.array([f"j{i:04d}" for i in range(n)], dtype=object)
    ref = full_state(ids, x, fingerprints(x), n, 20, 1 << 20)
    perm = rng.permutation(n)  # the same state, rows shuffled and their candidates renumbered
    inverse = np.argsort(perm)
    shuffled = replace(ref, ids=ids[perm], fingerprints=ref.fingerprints[perm], depth=ref.depth[perm],
                       scores=ref.scores[perm], cand=np.where(ref.cand[perm] >= 0, inverse[ref.cand[perm]], -1))
    order_rows(shuffled.scores, shuffled.cand)  # its ties ordered by its own numbering
    inc, report = update_state(shuffled, ids, x, fingerprints(x), n, 12, 1 << 20)
    assert report.added == report.removed == report.recomputed == 0
    np.testing.assert_array_equal(inc.scores[:, :12], ref.scores[:, :12])
    np.testing.assert_array_equal(inc.cand[:, :12], ref.cand[:, :12])


def test_churn_above_the_threshold_runs_a_full_pass():
    rng = np.random.default_rng(0)
    jobs = {f"j{i:03d}": random_job(rng) for i in range(30)}
    cfg = CFG.model_copy(update={"incremental_max_churn": 0.1})
    state = compute_neighbours(to_active(jobs), cfg).state
    for key in sorted(jobs)[:5]:
        jobs[key]["vector"] = grid_vector(rng) + 1.0  # certainly different
    result = compute_neighbours(to_active(jobs), cfg, previous=state)
    assert result.stats.mode == "exact" and result.stats.full_pass_reason.startswith("churn")
    assert result.stats.churn == pytest.approx(10 / 30, abs=1e-6)
    assert result.lists == compute_lists(to_active(jobs), cfg)


def test_state_of_other_dimensions_is_not_used():
    rng = np.random.default_rng(0)
    jobs = {f"j{i:03d}": random_job(rng) for i in range(10)}
    state = compute_neighbours(to_active(jobs), CFG).state
    state.dims = 8
    assert compute_neighbours(to_active(jobs), CFG, previous=state).stats.mode == "exact"


def test_state_round_trips_through_the_store(tmp_path):
    rng = np.random.default_rng(0)
    jobs = {f"j{i:03d}": random_job(rng) for i in range(25)}
    state = compute_neighbours(to_active(jobs), CFG).state
    store = NeighbourStateStore(tmp_path, "mongodb://x", "db", "job_embeddings", "m", "4")
    assert store.load(4) is None
    store.save(state)
    back = store.load(4)
    for name in ("ids", "fingerprints", "scores", "cand", "depth"):
        np.testing.assert_array_equal(getattr(back, name), getattr(state, name))
    assert (back.dims, back.exact, back.base) == (4, True, state.base)
    assert store.load(8) is None  # other dimensions: a full pass
    jobs["j999"] = random_job(rng)
    result = compute_neighbours(to_active(jobs), CFG, previous=back)
    assert result.stats.mode == "incremental" and result.stats.added == 1
    assert result.lists == compute_lists(to_active(jobs), CFG)


def test_a_damaged_state_file_means_a_full_pass(tmp_path):
    store = NeighbourStateStore(tmp_path, "k")
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_bytes(b"not an arrow file")
    assert store.load(4) is None
