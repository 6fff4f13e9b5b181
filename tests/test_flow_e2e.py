"""End to end: the real flow on the real local MongoDB, checked against a brute-force reference."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from jobsim.allocation import numpy_huge_pages
from jobsim.corpus import build_corpus
from jobsim.repositories import JobContexts, VectorSet
from tests.helpers import seed_jobs
from tests.test_lists import reference_lists as reference

pytestmark = pytest.mark.usefixtures("prefect_harness")


def run(mode: str = "incremental") -> dict:
    from flows.refresh import similarity_refresh

    return asyncio.run(similarity_refresh(mode=mode))


def reference_lists(db, settings, now) -> dict[str, list[tuple[str, float]]]:
    """Independent of the flow: which jobs get lists, read straight from the raw documents,
    then the pair-by-pair reference of tests/test_lists.py (groups, pools, best member)."""
    window = now - timedelta(days=settings.neighbours.closed_list_days)
    vecs = {d["_id"]: d for d in db.job_embeddings.find({})}
    jobs, keys, hashes, rows = JobContexts(), [], [], []
    for d in db.jobs.find({}):
        emb = d.get("embedding", {})
        expires = d.get("expiresAt")
        open_ = d.get("status") == "active" and not d.get("isDeleted") and (expires is None or expires > now)
        closed = not d.get("isDeleted") and (
            (d.get("status") == "active" and expires is not None and window < expires <= now)
            or (d.get("status") == "closed" and d["updatedAt"] >= window))
        v = vecs.get(d["_id"])
        if (open_ or closed) and emb.get("status") == "completed" and v and v["contentHash"] == emb["contentHash"]:
            jobs.append(str(d["_id"]), d, active=open_)
            keys.append(str(d["_id"])), hashes.append(v["contentHash"])
            rows.append(np.frombuffer(v["vector"], dtype="<f4"))
    corpus = build_corpus(VectorSet(np.array(keys, dtype=object), np.array(hashes, dtype=object), np.stack(rows)), jobs)
    return reference(corpus, settings.neighbours)


def stored_lists(db) -> dict[str, list[tuple[str, float]]]:
    return {str(d["_id"]): [(str(i["jobId"]), i["score"]) for i in d["similarJobs"]]
            for d in db.jobs.find({"similarJobs.0": {"$exists": True}})}


def test_refresh_end_to_end(settings, db, monkeypatch):
    monkeypatch.setenv("JOBSIM_WATERMARK_OVERLAP_S", "0")  # runs seconds apart: no re-reads of earlier edits
    assert seed_jobs(settings, 200) == 200
    numpy_huge_pages(True)  # numpy's own default; the run sets JOBSIM_EXECUTION__NUMPY_HUGE_PAGES's (off)
    first = run()
    now = datetime.now(timezone.utc)
    assert numpy_huge_pages(True) is False

    # every valid job embedded, every invalid one rejected with a reason on the job
    assert first["seen"] == 200
    assert first["valid"] + first["rejected"] + sum(first["inactive"].values()) == 200
    assert first["embedded"] == first["valid"] > 150
    rejected = list(db.jobs.find({"embedding.rejected": True}))
    assert len(rejected) == first["rejected"] > 0
    assert all(d["embedding"]["error"].startswith("invalid: ") for d in rejected)
    assert db.job_embeddings.count_documents({}) == first["valid"]

    # the lists equal an independent brute-force computation, reposts grouped and left out
    stored, expected = stored_lists(db), reference_lists(db, settings, now)
    assert stored == {i: items for i, items in expected.items() if items} and len(stored) > 150
    groups = {str(d["_id"]): str(d["duplicateGroup"]) for d in db.jobs.find({"duplicateGroup": {"$exists": True}})}
    assert len(groups) >= 4  # the synthetic data has reposts
    for job_id, items in stored.items():
        listed = [groups.get(other, other) for other, _ in items]
        assert len(set(listed)) == len(listed) and groups.get(job_id) not in listed
        assert all(settings.neighbours.min_score <= score <= 1.0 and round(score, 2) == score for _, score in items)
    meta = db.jobs.find_one({"similarJobs.0": {"$exists": True}})["similarityMetadata"]
    assert meta["jobCountWhenComputed"] == len(expected)
    assert meta["nextComputeAt"] - meta["lastComputed"] == timedelta(days=7)

    # a second run with no changes embeds nothing and rewrites nothing
    second = run()
    assert (second["embedded"], second["requests"], second["lists_written"]) == (0, 0, 0)
    assert second["lists_unchanged"] == len(expected)

    # editing one job's text re-embeds exactly that job
    edited = db.jobs.find_one({"embedding.status": "completed"})
    old_hash = edited["embedding"]["contentHash"]
    db.jobs.update_one({"_id": edited["_id"]}, {"$set": {
        "title": "Pilot i Linjës Ajrore", "updatedAt": datetime.now(timezone.utc)}})
    third = run()
    assert third["embedded"] == 1
    assert db.job_embeddings.find_one({"_id": edited["_id"]})["contentHash"] != old_hash
    assert db.jobs.find_one({"_id": edited["_id"]})["embedding"]["contentHash"] != old_hash

    # a salary-only edit is pulled but embeds nothing
    db.jobs.update_one({"_id": edited["_id"]}, {"$set": {
        "salary.max": 999_000, "updatedAt": datetime.now(timezone.utc)}})
    assert run()["embedded"] == 0

    # expiring a job (time passes, no edit) removes it from every list; it keeps its own
    # list of open jobs (its page is still visited) until the closed-list window ends
    popular = max(stored, key=lambda j: sum(j in dict(v) for v in stored.values()))
    holders = [j for j, v in stored.items() if popular in dict(v)]
    assert holders
    soon = datetime.now(timezone.utc) + timedelta(seconds=10)  # after the next run's start, even on a loaded machine
    db.jobs.update_one({"_id": _oid(popular)}, {"$set": {"expiresAt": soon, "updatedAt": datetime.now(timezone.utc)}})
    assert run()["lists_written"] == 0  # edited, still open
    while datetime.now(timezone.utc) <= soon + timedelta(seconds=1):
        time.sleep(0.2)
    fifth = run()  # nothing pulled: the expiry is seen from the kept expiresAt alone
    after = stored_lists(db)
    assert after[popular] and all(popular not in dict(v) for v in after.values())
    assert fifth["embedded"] == 0 and fifth["seen"] == 0
    db.jobs.update_one({"_id": _oid(popular)}, {"$set": {"expiresAt": datetime.now(timezone.utc) - timedelta(days=91),
                                                         "updatedAt": datetime.now(timezone.utc)}})
    assert run()["lists_cleared"] == 1 and popular not in stored_lists(db)


def _oid(key: str):
    from storage.ids import to_mongo_id

    return to_mongo_id(key)


def test_every_flow_is_async_around_synchronous_steps():
    """Prefect 3.9's sync engine ends a run by joining its heartbeat thread (≥ 1 s, sleeping in
    whole seconds); the async engine does not. The steps stay synchronous (flows.refresh.steps)."""
    import inspect

    import flows.ops
    import flows.refresh
    from prefect import Flow

    found = [f for m in (flows.refresh, flows.ops) for f in vars(m).values() if isinstance(f, Flow)]
    assert {f.name for f in found} == {"similarity-refresh", "refresh-after-import", "retry-failed-embeddings",
                                       "recompute-jobs", "housekeeping"}
    assert all(f.isasync and inspect.iscoroutinefunction(f.fn) for f in found)
    assert not inspect.iscoroutinefunction(flows.refresh.refresh)
