"""Active-set join, full lists against brute force, and the diff that decides what is written."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from jobsim.settings import NeighbourSettings
from jobsim.corpus import build_corpus, corpus_from_arrays
from jobsim.repositories import JobContexts, JobList, Neighbour, VectorSet
from jobsim.similarity import compute_neighbours
from jobsim.snapshot import diff_fingerprints, stored_fingerprints
from tests.test_scoring import make

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)


def contexts(ids, hashes, categories=None):
    out = JobContexts()
    for i, (key, h) in enumerate(zip(ids, hashes)):
        category = categories[i] if categories else "IT"
        out.append(key, {"embedding": {"contentHash": h}, "category": category, "experienceLevel": "mid",
                         "location": {"city": "Tiranë", "remote": False}})
    return out


def test_active_set_keeps_only_current_vectors_in_id_order():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    vectors = VectorSet(ids=np.array(["d", "b", "a", "z"], dtype=object),
                        hashes=np.array(["h1", "h2", "old", "hz"], dtype=object), vectors=x)
    corpus = build_corpus(vectors, contexts(["a", "b", "d", "c"], ["new", "h2", "h1", "hc"]))
    # "a": stale vector (hash differs); "c": no vector; "z": vector of an inactive job
    assert corpus.job_ids.tolist() == ["b", "d"] and corpus.row_ids.tolist() == ["b:h1", "b:h2"]
    np.testing.assert_array_equal(corpus.vectors, x[[0, 1]])
    assert corpus.job_row.tolist() == [1, 0] and corpus.vectors.flags.c_contiguous


def test_identical_texts_share_a_row_and_closed_jobs_make_query_rows():
    x = np.eye(5, dtype=np.float32)
    keys = ["a", "b", "c", "d", "e"]
    vectors = VectorSet(ids=np.array(keys, dtype=object), hashes=np.array(["h1", "h1", "h2", "h3", "h3"], dtype=object),
                        vectors=x)
    jobs = contexts(keys, ["h1", "h1", "h2", "h3", "h3"])
    jobs.active[2] = jobs.active[3] = False  # "c" closed alone; "d" closed but "e" (same text) active
    corpus = build_corpus(vectors, jobs)
    assert corpus.row_ids.tolist() == ["b:h1", "b:h3", "q:h2"] and corpus.base == 2
    assert corpus.job_row.tolist() == [0, 0, 2, 1, 1]
    np.testing.assert_array_equal(corpus.vectors, x[[0, 3, 2]])  # a row's vector: its smallest key's
    members = [corpus.members[corpus.member_start[r]:corpus.member_start[r + 1]].tolist() for r in range(3)]
    assert members == [[0, 1], [4], []]  # active jobs only


def test_active_set_normalises_context_labels_by_the_contract_rule():
    """"IT", " it " and "IT 🚀" are one category; an unknown level is -1; no city is -1."""
    x = np.eye(4, dtype=np.float32)
    keys = ["a", "b", "c", "d"]
    vectors = VectorSet(ids=np.array(keys, dtype=object), hashes=np.array(keys, dtype=object), vectors=x)
    ctx = contexts(keys, keys, categories=["IT", " it ", "IT 🚀", None])
    ctx.level[3], ctx.city[3] = "guru", 7
    corpus = build_corpus(vectors, ctx)
    assert corpus.context.category.tolist()[:3] == [0, 0, 0] and corpus.context.category[3] == -1
    assert corpus.context.level.tolist() == [2, 2, 2, -1]
    assert corpus.context.city.tolist() == [0, 0, 0, -1]


def diff_lists(new, stored):
    """The write-back's diff (changes, unchanged) against what ``stored_lists`` read."""
    return diff_fingerprints(new, stored_fingerprints(stored))[:2]


def L(*items, group=None) -> JobList:  # noqa: N802 - a list literal
    return JobList(tuple(Neighbour(j, s, s, ()) for j, s in items), group)


def test_diff_writes_only_what_changed_and_clears_inactive_jobs():
    stored = {"a": L(("b", 0.9), ("c", 0.5)), "b": L(("a", 0.9)), "gone": L(("a", 0.4)), "bad": None,
              "grouped": L(group="a")}
    new = {"a": L(("b", 0.9), ("c", 0.5)), "b": L(("a", 0.91)), "c": L(), "d": L(("a", 0.7)), "bad": L(("a", 0.3)),
           "grouped": L()}
    changes, unchanged = diff_lists(new, stored)
    assert changes == {"b": L(("a", 0.91)), "d": L(("a", 0.7)), "gone": L(), "bad": L(("a", 0.3)), "grouped": L()}
    assert unchanged == 2  # "a" same; "c" empty and nothing stored


def test_a_changed_explanation_or_group_alone_is_a_change():
    stored = {"a": L(("b", 0.5))}
    explained = JobList((Neighbour("b", 0.5, 0.5, ("city",)),))
    assert list(diff_lists({"a": explained}, stored)[0]) == ["a"]
    assert list(diff_lists({"a": L(("b", 0.5), group="z")}, stored)[0]) == ["a"]


def test_diff_of_identical_lists_writes_nothing():
    lists = {f"j{i}": L((f"j{(i + 1) % 5}", 0.5 + i / 100)) for i in range(5)}
    assert diff_lists(lists, dict(lists)) == ({}, 5)


def test_order_change_alone_is_a_change():
    changes, _ = diff_lists({"a": L(("b", 0.5), ("c", 0.5))}, {"a": L(("c", 0.5), ("b", 0.5))})
    assert list(changes) == ["a"]


def test_a_second_write_of_the_same_lists_writes_zero_documents(db, settings):
    """Round trip through the real server: stored floats compare equal to recomputed ones."""
    from bson import ObjectId

    from storage import repositories

    jobs = repositories(settings).jobs
    oids = [ObjectId() for _ in range(30)]
    db[settings.mongo.jobs_collection].insert_many([{"_id": o, "status": "active"} for o in oids])
    rng = np.random.default_rng(0)
    ids = np.array(sorted(str(o) for o in oids), dtype=object)
    x = rng.standard_normal((30, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[1] = x[0]  # a repost: its group is written on both
    _, ctx = make(rng, 30)
    result = compute_neighbours(corpus_from_arrays(ids, x, ctx), NeighbourSettings(min_score=0.0))
    assert result.lists[ids[0]].group == ids[0] == result.lists[ids[1]].group
    changes, _ = diff_lists(result.lists, jobs.stored_lists())
    assert jobs.write_lists(changes, NOW, 30, 7).written == 30
    stored = jobs.stored_lists()
    assert stored == result.lists  # entries with explanations and groups round-trip exactly
    again, unchanged = diff_lists(result.lists, stored)
    assert again == {} and unchanged == 30


def test_large_sets_take_the_ann_path_and_record_recall():
    from tests.test_neighbours import clustered

    n = 1500
    x = clustered(n, 32, 25, 0.35, seed=2)
    rng = np.random.default_rng(0)
    _, ctx = make(rng, n)
    ids = np.array([f"j{i:05d}" for i in range(n)], dtype=object)
    cfg = NeighbourSettings(exact_max_jobs=1000, ann_recall_sample=200, k=10, candidates=20)
    corpus = corpus_from_arrays(ids, x, ctx)
    result = compute_neighbours(corpus, cfg)
    s = result.stats
    assert s.mode == "ann" and s.recall_at_10 >= 0.95 and s.recall_sample == 200
    assert s.ann_index == "ivf" and s.ann_param == "nprobe" and s.ann_value >= 1
    assert 1 <= s.ann_mean_probes <= s.ann_value and s.ann_probe_margin >= 0
    assert not result.state.exact
    exact = compute_neighbours(corpus, cfg.model_copy(update={"exact_max_jobs": 10**6, "incremental": False})).lists
    same = np.mean([result.lists[i] == exact[i] for i in exact])
    assert same >= 0.8  # reranked top-10 lists mostly identical at recall ≥ 0.95
    # the next run starts from the approximate state incrementally while the set stays large
    again = compute_neighbours(corpus, cfg, previous=result.state)
    assert again.stats.mode == "incremental" and again.lists == result.lists
