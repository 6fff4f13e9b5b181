"""The real flow with provider=openai against our local embeddings server: the content-hash
cache sends nothing for unchanged text, only edited texts are re-embedded, and a job whose
input the server rejects fails with a reason and is retried only up to max_attempts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

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

    return similarity_refresh(mode="incremental")


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
