"""Lists as arrays (jobsim.listset): fingerprints, checks and scores computed from the arrays
equal those of the JobList objects they stand for (brute-force references below)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings as hsettings, strategies as st

from jobsim.corpus import corpus_from_arrays
from jobsim.listset import ListSet, list_fingerprint
from jobsim.report import histogram_of
from jobsim.repositories import JobList, Neighbour
from jobsim.settings import NeighbourSettings
from jobsim.similarity import compute_neighbours
from jobsim.snapshot import diff_fingerprints
from tests.test_neighbours import clustered
from tests.test_scoring import make


def reference_checks(lists: dict[str, JobList], active: set[str], k: int) -> dict[str, float | int]:
    """The checks counted one list at a time (the former ``jobsim.lists.list_checks``)."""
    group = {key: job_list.group or key for key, job_list in lists.items()}
    open_groups = {group[key] for key in active if key in group}
    own = repeated = 0
    lengths = []
    for key, job_list in lists.items():
        listed = [group.get(n.job_id, n.job_id) for n in job_list.items]
        own += group[key] in listed
        repeated += len(set(listed)) < len(listed)
        if key in active and len(open_groups) - (group[key] in open_groups) >= k:
            lengths.append(len(listed))
    return {"lists": len(lists), "closed_job_lists": len(lists) - len(active & lists.keys()),
            "with_own_duplicate": own, "with_repeated_group": repeated,
            "median_length": float(np.median(lengths)) if lengths else 0.0,
            "shorter_than_k": int(sum(n < k for n in lengths))}


def pipeline_lists(seed: int, n: int = 300):
    """A pass over jobs with reposts (same text, other companies), closed jobs and groups."""
    rng = np.random.default_rng(seed)
    x = clustered(n, 16, 12, 0.3, seed)
    dup = rng.integers(0, n, n // 5)
    x[rng.integers(0, n, n // 5)] = x[dup]
    _, ctx = make(rng, n)
    active = rng.random(n) > 0.15
    corpus = corpus_from_arrays(np.array([f"s:{i:05d}" for i in range(n)], dtype=object), x, ctx,
                                active=active, company=[f"c{i % 7}" for i in range(n)])
    cfg = NeighbourSettings(state_dir="", min_score=0.0, k=10)
    return corpus, compute_neighbours(corpus, cfg), cfg


@hsettings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_runs_fingerprints_checks_and_scores_equal_those_of_its_list_objects(seed):
    corpus, result, cfg = pipeline_lists(seed)
    lists = result.lists
    assert isinstance(lists, ListSet)
    objects = dict(lists.items())  # one list at a time, by key
    assert objects == lists.materialize(np.arange(len(lists)))  # all at once
    assert len(objects) == len(corpus.job_ids) and result.stats.grouped_jobs > 0
    assert lists.fingerprints() == [list_fingerprint(v) for v in objects.values()]
    active = set(corpus.job_ids[corpus.active].tolist())
    assert result.checks == reference_checks(objects, active, cfg.k)
    scores = np.array([n.score for v in objects.values() for n in v.items])
    assert result.histogram == histogram_of(scores, len(objects), sum(1 for v in objects.values() if not v.items))


@hsettings(max_examples=40, deadline=None)
@given(data=st.data(), n=st.integers(1, 12), k=st.integers(1, 4))
def test_checks_count_own_duplicates_and_repeated_groups_like_one_list_at_a_time(data, n, k):
    """Lists that break the rules (the pipeline never makes them), neighbours without a list,
    groups whose original has no list: the counts still match the reference."""
    keys = np.array([f"j{i}" for i in range(n)], dtype=object)
    original = [data.draw(st.one_of(st.none(), st.sampled_from([*keys.tolist(), "elsewhere"]))) for _ in range(n)]
    jobs = np.array(data.draw(st.lists(st.integers(0, n - 1), unique=True, max_size=n)), dtype=np.int64)
    rows = [data.draw(st.lists(st.integers(0, n - 1), max_size=5)) for _ in jobs]
    starts = np.cumsum([0, *map(len, rows)]).astype(np.int64)
    entry = np.array([e for row in rows for e in row], dtype=np.int64)
    lists = ListSet(keys, original, jobs, starts, entry, np.full(len(entry), 0.5), np.full(len(entry), 0.5),
                    np.zeros(len(entry), dtype=np.int8))
    active = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    objects = dict(lists.items())
    assert lists.checks(active, k) == reference_checks(objects, set(keys[active].tolist()), k)


def test_the_diff_builds_only_the_lists_that_changed():
    corpus, result, _ = pipeline_lists(3)
    lists = result.lists
    stored = dict(zip(lists, lists.fingerprints()))
    first = next(iter(lists))
    stored[first] = list_fingerprint(JobList((Neighbour("s:other", 0.5),)))
    stored["s:gone"] = list_fingerprint(JobList((Neighbour(first, 0.5),)))
    built = []
    materialize = lists.materialize
    lists.materialize = lambda positions: built.append(list(positions)) or materialize(positions)
    changes, unchanged, after = diff_fingerprints(lists, stored)
    assert built == [[0]] and changes == {first: lists[first], "s:gone": JobList(())}
    assert unchanged == len(lists) - 1
    assert after == {key: fp for key, fp in zip(lists, lists.fingerprints()) if lists[key] != JobList(())}


def test_a_match_outside_the_known_codes_is_its_own_fingerprint():
    known = JobList((Neighbour("s:b", 0.5, 0.5, ("category",)),))
    foreign = [JobList((Neighbour("s:b", 0.5, 0.5, codes),)) for codes in (("colour",), ("size",), ("category", "x"))]
    assert len({list_fingerprint(x) for x in [known, *foreign]}) == 4
