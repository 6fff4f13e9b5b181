"""The real flow with provider=openai against our local embeddings server: the content-hash
cache sends nothing for unchanged text, only edited texts are re-embedded, and a job whose
input the server rejects fails with a reason and is retried only up to max_attempts."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from bson import ObjectId

from tests.embedding_server import EmbeddingServer

pytestmark = pytest.mark.usefixtures("prefect_harness")

ROLES = [("Python developer", "IT"), ("Kontabilist", "Finance"), ("Nurse", "Health"),
         ("Data analyst", "IT"), ("Chef", "Hospitality"), ("Sales agent", "Sales")]
CITIES = ["Tirana", "Durrës", "Vlorë", "Shkodër"]


def make_job(i: int, now: datetime) -> dict:
    title, category = ROLES[i % len(ROLES)]
    return {
        "_id": ObjectId(),
        "title": f"{title} {i}",
        "description": f"We are hiring a {title.lower()} to join our team in {CITIES[i % 4]}. "
                       f"You will work on project {i} with a friendly team; {i % 5 + 1} years of "
                       "experience preferred.",
        "category": category,
        "tags": [title.split()[0].lower(), "team"],
        "requirements": [f"{i % 5 + 1}+ years of experience"],
        "location": {"city": CITIES[i % 4], "region": "AL", "remote": i % 3 == 0, "hybrid": False},
        "experienceLevel": ["junior", "mid", "senior"][i % 3],
        "salary": {"min": 800 + i, "max": 1500 + i, "currency": "EUR"},
        "status": "active",
        "isDeleted": False,
        "expiresAt": now + timedelta(days=30) if i % 2 else None,
        "createdAt": now - timedelta(days=1),
        "updatedAt": now - timedelta(hours=1),
    }


@pytest.fixture
def server(monkeypatch):
    with EmbeddingServer() as srv:
        monkeypatch.setenv("JOBSIM_EMBEDDING__PROVIDER", "openai")
        monkeypatch.setenv("JOBSIM_EMBEDDING__BASE_URL", srv.url)
        monkeypatch.setenv("JOBSIM_EMBEDDING__API_KEY", "test-key")
        monkeypatch.setenv("JOBSIM_EMBEDDING__DIMENSIONS", "256")
        monkeypatch.setenv("JOBSIM_EMBEDDING__RETRY_BASE_DELAY_S", "0.02")
        yield srv


def run() -> dict:
    from flows.refresh import similarity_refresh

    return asyncio.run(similarity_refresh(mode="incremental"))


def test_content_hash_cache_with_openai_provider(settings, db, server):
    now = datetime.now(timezone.utc)
    jobs = [make_job(i, now) for i in range(24)]
    db.jobs.insert_many(jobs)

    first = run()
    assert first["embedded"] == 24 and first["failed"] == 0
    assert first["requests"] == len(server.requests) == 1  # 24 short texts: one request
    assert first["tokens"] == server.stats()["tokens"] > 0
    assert first["cost_usd"] == pytest.approx(first["tokens"] * 0.02 / 1e6, abs=1e-6)  # rounded
    assert db.job_embeddings.count_documents({}) == 24
    assert db.jobs.count_documents({"embedding.status": "completed"}) == 24
    assert db.jobs.count_documents({"similarJobs.0": {"$exists": True}}) > 0

    server.clear()
    second = run()
    assert second["requests"] == 0 and len(server.requests) == 0 and second["embedded"] == 0

    # a title edit changes the text: only that job is sent
    edited = jobs[5]
    db.jobs.update_one({"_id": edited["_id"]}, {"$set": {
        "title": "Senior Python developer", "updatedAt": datetime.now(timezone.utc)}})
    third = run()
    assert third["embedded"] == 1 and third["requests"] == 1
    (request,) = server.requests
    assert len(request.inputs) == 1 and request.inputs[0].startswith("Senior Python developer")

    # a salary-only edit is not in the text: nothing is sent
    server.clear()
    db.jobs.update_one({"_id": jobs[7]["_id"]}, {"$set": {
        "salary": {"min": 2000, "max": 3000, "currency": "EUR"},
        "updatedAt": datetime.now(timezone.utc)}})
    fourth = run()
    assert fourth["seen"] >= 1 and fourth["requests"] == 0 and len(server.requests) == 0
    assert fourth["embedded"] == 0


def test_rejected_input_fails_only_its_job_and_stops_after_max_attempts(settings, db, server):
    now = datetime.now(timezone.utc)
    jobs = [make_job(i, now) for i in range(10)]
    jobs[3]["description"] += " POISON"
    db.jobs.insert_many(jobs)
    server.poison.add("POISON")

    first = run()
    assert first["embedded"] == 9 and first["failed"] == 1
    doc = db.jobs.find_one({"_id": jobs[3]["_id"]})
    assert doc["embedding"]["status"] == "failed" and doc["embedding"]["attempts"] == 1
    assert "HTTP 400" in doc["embedding"]["error"]
    assert db.job_embeddings.count_documents({}) == 9

    for attempt in (2, 3):
        server.clear()
        server.poison.add("POISON")
        run()  # only the failed job is pulled again and sent, alone
        assert len(server.requests) == 1 and len(server.requests[0].inputs) == 1
        assert "POISON" in server.requests[0].inputs[0]
        assert db.jobs.find_one({"_id": jobs[3]["_id"]})["embedding"]["attempts"] == attempt

    server.clear()
    server.poison.add("POISON")
    run()  # max_attempts (3) reached: left alone until an operator retries it
    assert len(server.requests) == 0
    assert db.jobs.count_documents({"embedding.status": "completed"}) == 9


def test_wrong_api_key_fails_the_run_and_burns_no_attempts(settings, db, server):
    from jobsim.errors import EmbeddingError

    now = datetime.now(timezone.utc)
    db.jobs.insert_many([make_job(i, now) for i in range(6)])
    server.add_fault("401", times=0)
    with pytest.raises(EmbeddingError, match="HTTP 401"):
        run()
    assert len(server.requests) == 1
    assert db.jobs.count_documents({"embedding.status": "failed"}) == 0
    assert db.jobs.count_documents({"embedding.attempts": {"$gt": 0}}) == 0

    server.clear()  # key fixed: the next run embeds everything
    again = run()
    assert again["embedded"] == 6 and again["failed"] == 0


@pytest.mark.parametrize("fault, cause", [("500", "HTTP 500"), ("429", "rate limited (429)")])
def test_an_outage_that_does_not_end_fails_the_run_and_spends_no_attempt(settings, db, server, monkeypatch, fault,
                                                                           cause):
    """The circuit breaker ends a sustained 500 or a 429 that never clears: the run is red
    (the flow raises), every job stays pending with the reason, no attempt is spent, the run
    record says why, the watermark does not move, and it all ends in bounded time."""
    import time

    from jobsim.errors import EmbeddingError

    monkeypatch.setenv("JOBSIM_EMBEDDING__BREAKER_FAILURES", "3")
    monkeypatch.setenv("JOBSIM_EMBEDDING__OUTAGE_MAX_S", "4")
    monkeypatch.setenv("JOBSIM_EMBEDDING__BATCH_MAX_INPUTS", "4")  # several requests per batch
    now = datetime.now(timezone.utc)
    db.jobs.insert_many([make_job(i, now) for i in range(12)])
    server.add_fault(fault, times=0)
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match=f"embedding service unavailable: .*{re.escape(cause)}"):
        run()
    assert time.monotonic() - started < 60  # breaker limit 4 s + request timeouts + the run itself
    assert len(server.requests) <= 3 + 1
    jobs = list(db.jobs.find({}))
    assert all(j["embedding"]["status"] == "pending" and j["embedding"].get("attempts", 0) == 0 for j in jobs)
    assert all("unavailable" in j["embedding"]["error"] or cause in j["embedding"]["error"] for j in jobs)
    record = db.pipeline_state.find_one({"kind": "run"})
    assert record["status"] == "failed" and cause in record["summary"]["unavailable"]
    assert record["summary"]["headline"].startswith("embedding service unavailable")
    assert db.pipeline_state.find_one({"_id": "watermark:similarity-refresh"}) is None

    server.clear()  # the service is back: the next run embeds everything
    again = run()
    assert again["embedded"] == 12 and again["status"] == "ok"


@pytest.mark.parametrize("fault", ["zero", "huge"])
def test_degenerate_vectors_are_rejected_before_they_are_stored(settings, db, server, monkeypatch, fault):
    monkeypatch.setenv("JOBSIM_EMBEDDING__BATCH_MAX_INPUTS", "1")  # the bad input in a request of its own
    now = datetime.now(timezone.utc)
    jobs = [make_job(i, now) for i in range(10)]
    jobs[4]["description"] += " DEGENERATE"
    db.jobs.insert_many(jobs)
    server.add_fault(fault, times=0, match="DEGENERATE", rows=99)  # every vector of that request
    summary = run()
    bad = db.jobs.find_one({"_id": jobs[4]["_id"]})["embedding"]
    assert bad["status"] == "failed" and bad["attempts"] == 1 and "vector" in bad["error"]
    assert db.job_embeddings.count_documents({}) == summary["embedded"] >= 1
    for doc in db.job_embeddings.find({}):
        norm = float(np.linalg.norm(np.frombuffer(doc["vector"], dtype="<f4")))
        assert abs(norm - 1.0) < 1e-5  # stored vectors are normalised once, on the way in
    for d in db.jobs.find({"similarJobs.0": {"$exists": True}}):
        assert all(i["jobId"] != jobs[4]["_id"] and i["score"] <= 1.0 for i in d["similarJobs"])
