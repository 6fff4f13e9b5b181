"""A run that finds nothing changed keeps the stored lists without recomputing them; each
thing that decides a list (a re-read job or its stored list, a role changing with time, the
settings or the code, a list waiting to be rewritten) makes it recompute them, and the
result then equals a full pass. On in-memory repositories; the flow's own no-change run
against the real server is in test_incremental_reads."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from jobsim.candidates import fingerprints
from jobsim.repositories import JobList, Neighbour, VectorSet
from jobsim.settings import NeighbourSettings, Settings
from jobsim.snapshot import UNREADABLE, Origin, Snapshot, kept, list_fingerprint, lists_fingerprint, lists_hold, updated
from jobsim.stages.neighbours import corpus_at
from storage.local_cache import SnapshotStore
from tests.memory_pipeline import MemoryPipeline
from tests.test_stages import NOW, load

MIN = timedelta(minutes=1)


def pipeline_after_a_run(n: int = 80, settings: Settings | None = None) -> tuple[MemoryPipeline, list[str]]:
    pipeline = MemoryPipeline(settings)
    keys = load(pipeline, n, seed=31)
    first = pipeline.run(now=NOW)
    assert first["lists_written"] > n // 2
    return pipeline, keys


def equals_a_full_pass(pipeline: MemoryPipeline, now: datetime) -> bool:
    full = copy.deepcopy(pipeline)
    full.state = None
    return full.run("full", now=now, refit=False)["lists_written"] == 0 and full.lists() == pipeline.lists()


def test_a_run_with_nothing_changed_keeps_the_lists_and_reports_them():
    pipeline, _ = pipeline_after_a_run()
    made = pipeline.repos.state.recent_runs(1)[0]["summary"]
    before = pipeline.lists()
    again = pipeline.run(now=NOW + 5 * MIN)
    assert pipeline.kept == [False, True] and again["search"]["mode"] == "unchanged"
    assert again["lists_written"] == again["lists_cleared"] == 0 and again["lists_unchanged"] == made["search"]["jobs"]
    assert again["active_vectors"] == made["active_vectors"] and again["lists_check"] == made["lists_check"]
    assert again["search"]["duplicate_groups"] == made["search"]["duplicate_groups"]
    assert again["status"] == "ok" and again["headline"] == "nothing changed since the last run"
    assert pipeline.lists() == before and equals_a_full_pass(pipeline, NOW + 5 * MIN)


def test_a_role_that_changes_with_time_recomputes_the_lists():
    pipeline = MemoryPipeline()
    keys = load(pipeline, 80, seed=31)
    docs = pipeline.repos.jobs.docs
    victim = next(k for k in keys if docs[k]["status"] == "active" and not docs[k]["isDeleted"])
    docs[victim]["expiresAt"] = NOW + 3 * MIN  # loaded so: it expires with no edit
    pipeline.run(now=NOW)
    pipeline.run(now=NOW + 2 * MIN)
    assert pipeline.kept[-1] and victim in {e[0] for items, _ in pipeline.lists().values() for e in items}
    later = pipeline.run(now=NOW + 5 * MIN)  # it expired in between
    assert not pipeline.kept[-1] and later["seen"] == 0 and later["lists_written"] > 0
    assert later["headline"] == f"{later['lists_written']:,} lists written (0 pulled, 0 embedded)"  # not "nothing changed"
    assert victim not in {e[0] for items, _ in pipeline.lists().values() for e in items}
    assert equals_a_full_pass(pipeline, NOW + 5 * MIN)


def test_other_settings_recompute_the_lists():
    pipeline, _ = pipeline_after_a_run()
    pipeline.settings = Settings(neighbours={"state_dir": "", "k": 3})
    again = pipeline.run(now=NOW + 5 * MIN)
    assert not pipeline.kept[-1] and again["lists_written"] > 0
    assert max(len(items) for items, _ in pipeline.lists().values()) == 3
    assert equals_a_full_pass(pipeline, NOW + 5 * MIN)
    pipeline.run(now=NOW + 10 * MIN)
    assert pipeline.kept[-1]  # made under these settings now


def test_a_re_read_job_whose_stored_list_was_cleared_gets_it_back():
    pipeline = MemoryPipeline()
    keys = load(pipeline, 80, seed=31)
    docs = pipeline.repos.jobs.docs
    docs[keys[0]]["updatedAt"] = NOW - MIN / 2  # inside the next run's watermark overlap: re-read
    pipeline.run(now=NOW)
    stored = pipeline.lists()[keys[0]]
    assert stored[0]
    docs[keys[0]].update(similarJobs=[])  # an app's edit of the pipeline's field, updatedAt untouched
    again = pipeline.run(now=NOW + MIN / 4)
    assert again["seen"] >= 1 and not pipeline.kept[-1] and again["lists_written"] == 1
    assert pipeline.lists()[keys[0]] == stored


def test_an_edit_recomputes_and_a_touch_without_a_change_is_kept_once_re_read():
    pipeline, keys = pipeline_after_a_run()
    docs = pipeline.repos.jobs.docs
    listed = [k for k in keys if k in pipeline.lists()]
    docs[listed[0]].update(description="Completely new duties: night shifts driving a forklift in Durrës.",
                           updatedAt=NOW + MIN)
    edited = pipeline.run(now=NOW + 2 * MIN)
    assert edited["embedded"] == 1 and not pipeline.kept[-1] and equals_a_full_pass(pipeline, NOW + 2 * MIN)
    corpus = corpus_at(pipeline.snapshot, NOW + 2 * MIN, 90)  # the rows' fingerprints, carried through the edit
    assert pipeline.vector_reads[-1] == 1 and np.array_equal(corpus.row_fingerprints(), fingerprints(corpus.vectors))
    pipeline.run(now=NOW + 2 * MIN + MIN / 2)  # re-reads it (watermark overlap): as the snapshot has it
    assert pipeline.kept[-1]


def snapshot_of(docs: dict, lists: dict[str, bytes], at: datetime, fingerprint: str) -> Snapshot:
    ids = np.array(sorted(docs), dtype=object)
    vectors = VectorSet(ids, np.array([docs[k]["embedding"]["contentHash"] for k in ids], dtype=object),
                        np.eye(len(ids), 4, dtype=np.float32))
    return Snapshot("run-1", {k: kept(d) for k, d in docs.items()}, vectors, lists,
                    Origin(at=at, fingerprint=fingerprint, stats={}, checks={}))


def piece_files(store: SnapshotStore) -> list[str]:
    return sorted(p.name for p in store.path.glob("piece-*.npy"))


def listed_doc(expires: datetime | None = None) -> dict:
    return {"status": "active", "isDeleted": False, "expiresAt": expires, "updatedAt": NOW - MIN,
            "category": "IT", "embedding": {"status": "completed", "contentHash": "h1"}}


def test_lists_hold_names_what_changed():
    fp = lists_fingerprint(NeighbourSettings())
    docs = {"s:a": listed_doc(), "s:b": listed_doc(expires=NOW + 2 * MIN)}
    stored = {"s:a": list_fingerprint(JobList((Neighbour("s:b", 0.9),)))}
    snap = snapshot_of(docs, stored, NOW, fp)
    assert lists_hold(snap, NOW + MIN, 90, fp) == ""
    assert "role changed with time" in lists_hold(snap, NOW + 3 * MIN, 90, fp)  # s:b expired
    assert "settings or the code" in lists_hold(snap, NOW + MIN, 90, lists_fingerprint(NeighbourSettings(k=5)))
    assert "rewritten" in lists_hold(snapshot_of(docs, {"s:a": UNREADABLE}, NOW, fp), NOW + MIN, 90, fp)
    snap.origin = None
    assert "no record" in lists_hold(snap, NOW + MIN, 90, fp)


def test_holds_compares_re_read_jobs_and_their_stored_lists():
    docs = {"s:a": listed_doc(), "s:b": listed_doc()}
    stored = {"s:a": list_fingerprint(JobList((Neighbour("s:b", 0.9),)))}
    snap = snapshot_of(docs, stored, NOW, "x")
    assert snap.holds({"s:a": copy.deepcopy(docs["s:a"]) | {"description": "not kept"}}, stored)
    assert snap.holds({"s:gone": None}, {})
    assert not snap.holds({"s:a": None}, {})  # deleted from the collection
    assert not snap.holds({"s:a": docs["s:a"] | {"category": "Finance"}}, stored)
    assert not snap.holds({"s:a": docs["s:a"]}, {})  # its stored list was removed
    assert not snap.holds({"s:b": docs["s:b"]}, {"s:b": stored["s:a"]})  # one appeared
    assert not snap.holds({"s:new": listed_doc()}, {})


def test_lists_fingerprint_follows_the_settings_that_shape_lists():
    base = lists_fingerprint(NeighbourSettings())
    assert base == lists_fingerprint(NeighbourSettings(state_dir="/elsewhere"))
    assert base != lists_fingerprint(NeighbourSettings(min_score=0.2))
    assert base != lists_fingerprint(NeighbourSettings(near_duplicate_cosine=0.99))


def test_the_snapshot_store_keeps_the_origin(tmp_path):
    docs = {"s:a": listed_doc(), "s:b": listed_doc(expires=NOW + 2 * MIN)}
    snap = snapshot_of(docs, {"s:a": b"x" * 16}, NOW, "fp")
    snap.origin = Origin(at=NOW, fingerprint="fp", stats={"mode": "exact", "jobs": 2, "recall_at_10": None},
                         checks={"lists": 2}, histogram={"edges": [0.0, 1.0], "counts": [3], "lists": 2, "empty": 0})
    store = SnapshotStore(tmp_path, "uri", "db", "coll", "m", "4")
    store.save(snap)
    back = store.load(4)
    assert back is not None and back.origin == snap.origin and back.docs == snap.docs and back.lists == snap.lists
    assert back.holds({k: copy.deepcopy(d) for k, d in docs.items()}, {"s:a": b"x" * 16})  # equal after BSON
    assert lists_hold(back, NOW + MIN, 90, "fp") == ""


def test_the_snapshot_store_rewrites_only_the_parts_that_changed(tmp_path):
    docs = {"s:a": listed_doc(), "s:b": listed_doc(expires=NOW + 2 * MIN)}
    store = SnapshotStore(tmp_path, "uri", "db", "coll", "m", "4")
    store.save(snapshot_of(docs, {"s:a": b"x" * 16}, NOW, "fp"))
    files = lambda: ("docs.bson", "vector_keys.bson", *piece_files(store), "lists.bson")  # noqa: E731
    inodes = lambda: [(store.path / name).stat().st_ino for name in files()]  # noqa: E731
    first, loaded = inodes(), store.load(4)
    assert loaded is not None and len(piece_files(store)) == 1
    store.save(replace(loaded, token="run-2", lists={"s:b": b"y" * 16}))  # a run that changed only lists
    again = store.load(4)
    assert again is not None and again.token == "run-2" and again.lists == {"s:b": b"y" * 16}
    assert again.docs == loaded.docs and np.array_equal(again.vectors.dense(), loaded.vectors.dense())
    assert inodes()[:3] == first[:3] and inodes()[3] != first[3]  # docs and vectors linked, lists written
    assert np.array_equal(again.vectors.fingerprints, fingerprints(again.vectors.dense()))
    none_read = VectorSet(np.zeros(0, object), np.zeros(0, object), np.zeros((0, 4), np.float32))
    edited = updated(again, {"s:a": docs["s:a"] | {"category": "Finance"}}, none_read, again.lists)
    store.save(edited)  # new docs and vector keys: written; the matrix's piece (no vector re-read): linked
    assert [a != b for a, b in zip(inodes()[:3], first[:3])] == [True, True, False]
    assert store.load(4).docs["s:a"]["category"] == "Finance"
    store.save(replace(loaded, token="run-3"))  # a copy older than the saved one: written, never linked
    stale = store.load(4)
    assert stale is not None and stale.token == "run-3" and stale.docs == loaded.docs


def test_list_fingerprint_follows_the_content_not_the_objects():
    import subprocess
    import sys

    base = JobList((Neighbour("s:b", 0.91, 0.9, ("category",)), Neighbour("s:c", 0.5, 0.5)), "s:g")
    rebuilt = JobList(tuple(Neighbour("".join(["s:", c]), float(f"{s}"), float(f"{cos}"), tuple(list(m)))
                            for c, s, cos, m in (("b", 0.91, 0.9, ["category"]), ("c", 0.5, 0.5, []))),
                      "".join(["s:", "g"]))
    assert list_fingerprint(rebuilt) == list_fingerprint(base)
    code = ("from jobsim.repositories import JobList, Neighbour; from jobsim.snapshot import list_fingerprint; "
            "print(list_fingerprint(JobList((Neighbour('s:b', 0.91, 0.9, ('category',)), Neighbour('s:c', 0.5, 0.5)),"
            " 's:g')).hex())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123"}, cwd=Path(__file__).resolve().parents[1])
    assert other.stdout.strip() == list_fingerprint(base).hex()  # another process, another hash seed
    changed = [base._replace(group=None), base._replace(items=base.items[:1]),
               base._replace(items=(base.items[0]._replace(score=0.92), base.items[1])),
               base._replace(items=(base.items[0]._replace(match=()), base.items[1])),
               base._replace(items=base.items[::-1])]
    assert len({list_fingerprint(x) for x in [base, *changed]}) == 1 + len(changed)
