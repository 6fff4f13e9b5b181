"""End to end: the real flow on the real local MongoDB, checked against a brute-force reference."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from jobsim.jobs import EXPERIENCE_LEVELS
from tests.helpers import seed_jobs

pytestmark = pytest.mark.usefixtures("prefect_harness")


def run(mode: str = "incremental") -> dict:
    from flows.refresh import similarity_refresh

    return similarity_refresh(mode=mode)


def reference_lists(db, settings, now) -> dict[str, list[tuple[str, float]]]:
    """Independent brute force: all-pairs cosine, the seed's bonus pair by pair, no shortcuts."""
    jobs = {str(d["_id"]): d for d in db.jobs.find({})}
    vecs = {str(d["_id"]): d for d in db.job_embeddings.find({})}
    active = sorted(
        i for i, d in jobs.items()
        if d.get("status") == "active" and not d.get("isDeleted")
        and (d.get("expiresAt") is None or d["expiresAt"] > now)
        and d.get("embedding", {}).get("status") == "completed"
        and vecs.get(i, {}).get("contentHash") == d["embedding"]["contentHash"]
    )
    x = np.stack([np.frombuffer(vecs[i]["vector"], dtype="<f4") for i in active])
    cos = x @ x.T
    cfg = settings.neighbours
    out = {}
    for a, ia in enumerate(active):
        others = [b for b in np.argsort(-cos[a], kind="stable") if b != a][: cfg.candidates]
        scored = []
        for b in others:
            ja, jb = jobs[ia], jobs[active[b]]
            bonus = 0.4 if ja["category"].casefold() == jb["category"].casefold() else 0.0
            la, lb = EXPERIENCE_LEVELS.index(ja["experienceLevel"]), EXPERIENCE_LEVELS.index(jb["experienceLevel"])
            bonus += 0.3 if la == lb else 0.15 if abs(la - lb) == 1 else 0.0
            if ja["location"]["city"].casefold() == jb["location"]["city"].casefold():
                bonus += 0.3
            elif jb["location"]["remote"]:
                bonus += 0.15
            score = 0.9 * max(0.0, min(1.0, float(cos[a, b]))) + 0.1 * bonus
            if score >= cfg.min_score:
                scored.append((score, active[b]))
        scored.sort(key=lambda t: -t[0])
        out[ia] = [(j, s) for s, j in scored[: cfg.k]]
    return out


def stored_lists(db) -> dict[str, list[tuple[str, float]]]:
    return {str(d["_id"]): [(str(i["jobId"]), i["score"]) for i in d["similarJobs"]]
            for d in db.jobs.find({"similarJobs.0": {"$exists": True}})}


def test_refresh_end_to_end(settings, db):
    assert seed_jobs(settings, 200) == 200
    first = run()
    now = datetime.now(timezone.utc)

    # every valid job embedded, every invalid one rejected with a reason on the job
    assert first["seen"] == 200
    assert first["valid"] + first["rejected"] + sum(first["inactive"].values()) == 200
    assert first["embedded"] == first["valid"] > 150
    rejected = list(db.jobs.find({"embedding.rejected": True}))
    assert len(rejected) == first["rejected"] > 0
    assert all(d["embedding"]["error"].startswith("invalid: ") for d in rejected)
    assert db.job_embeddings.count_documents({}) == first["valid"]

    # the lists equal an independent brute-force computation
    stored, expected = stored_lists(db), reference_lists(db, settings, now)
    assert set(stored) == {i for i, items in expected.items() if items}
    for job_id, items in stored.items():
        ref = dict(expected[job_id])
        assert len(items) == len(expected[job_id]) <= 10
        assert job_id not in dict(items)
        scores = [s for _, s in items]
        assert scores == sorted(scores, reverse=True)
        for other, score in items:
            assert other in ref or abs(score - expected[job_id][-1][1]) <= 0.006, (job_id, other)
            assert 0.3 <= score <= 1.0 and round(score, 2) == score
        assert np.allclose(scores, [s for _, s in expected[job_id]], atol=0.006)
    meta = db.jobs.find_one({"similarJobs.0": {"$exists": True}})["similarityMetadata"]
    assert meta["jobCountWhenComputed"] == first["active_vectors"]
    assert meta["nextComputeAt"] - meta["lastComputed"] == timedelta(days=7)

    # a second run with no changes embeds nothing and rewrites nothing
    second = run()
    assert (second["embedded"], second["requests"], second["lists_written"]) == (0, 0, 0)
    assert second["lists_unchanged"] == first["active_vectors"]

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

    # expiring a job (time passes, no edit) removes it from every list and clears its own
    popular = max(stored, key=lambda j: sum(j in dict(v) for v in stored.values()))
    holders = [j for j, v in stored.items() if popular in dict(v)]
    assert holders
    db.jobs.update_one({"_id": _oid(popular)},
                       {"$set": {"expiresAt": datetime.now(timezone.utc) - timedelta(seconds=1)}})
    fifth = run()
    after = stored_lists(db)
    assert popular not in after
    assert all(popular not in dict(v) for v in after.values())
    assert fifth["lists_cleared"] >= 1
    assert fifth["embedded"] == 0


def _oid(key: str):
    from storage.ids import to_mongo_id

    return to_mongo_id(key)
