"""The read side against the real local MongoDB: semantic path, fallback, errors, injection."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from fastapi.testclient import TestClient
from pymongo import MongoClient, monitoring

from api_export.app import create_app
from api_export.similar import (
    IN_PROGRESS, NO_LONGER_OPEN, REFRESHING, SimilarJobsService, parse_job_id, similar_jobs,
)
from jobsim.errors import InvalidRequestError, NotFoundError
from jobsim.settings import Settings
from storage.job_reads import JobReadsRepository
from storage.recompute_requests import RecomputeRequestsRepository

NOW = datetime.now(timezone.utc).replace(microsecond=0)
_clock = iter(range(1, 1_000_000))


def make_job(**fields: Any) -> dict[str, Any]:
    """A job document as the web app stores it (each one created a little later than the last)."""
    created = NOW - timedelta(days=30) + timedelta(minutes=next(_clock))
    doc: dict[str, Any] = {
        "_id": ObjectId(),
        "title": "Backend Engineer",
        "description": "Build and run Python services for our platform team.",
        "category": "Information Technology",
        "tags": ["python"],
        "requirements": ["3 years"],
        "location": {"city": "Tirana", "region": "Tiranë", "remote": False, "hybrid": True},
        "experienceLevel": "mid",
        "salary": {"min": 900, "max": 1400, "currency": "EUR"},
        "status": "active",
        "isDeleted": False,
        "expiresAt": NOW + timedelta(days=30),
        "createdAt": created,
        "updatedAt": created,
        "postedBy": ObjectId(),
        "company": "Acme",
        "embedding": {"status": "completed", "model": "m", "contentHash": "h", "attempts": 0},
    }
    doc.update(fields)
    return doc


def with_list(job: dict[str, Any], neighbours: list[tuple[dict[str, Any], float]]) -> dict[str, Any]:
    job["similarJobs"] = [{"jobId": n["_id"], "score": s, "computedAt": NOW} for n, s in neighbours]
    job["similarityMetadata"] = {"lastComputed": NOW, "nextComputeAt": NOW + timedelta(days=7),
                                 "jobCountWhenComputed": 100}
    return job


class Recorder(monitoring.CommandListener):
    """Every command the API's client sends (name, collection)."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append((event.command_name, event.command.get(event.command_name)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def service(settings: Settings, db, recorder: Recorder):
    """The service on its own client whose commands are recorded."""
    client = MongoClient(settings.mongo.uri.get_secret_value(), tz_aware=True, event_listeners=[recorder])
    api_db = client[settings.mongo.database]
    yield SimilarJobsService(
        JobReadsRepository(api_db, settings.mongo.jobs_collection),
        RecomputeRequestsRepository(api_db, settings.api.recompute_collection),
        settings.api,
    )
    client.close()


@pytest.fixture
def client(settings: Settings, service: SimilarJobsService) -> TestClient:
    return TestClient(create_app(settings, service), raise_server_exceptions=False)


def insert(db, settings: Settings, *docs: dict[str, Any]) -> None:
    db[settings.mongo.jobs_collection].insert_many(list(docs))


def requests_of(db, settings: Settings) -> list[dict[str, Any]]:
    return list(db[settings.api.recompute_collection].find())


def ids(body: dict[str, Any]) -> list[str]:
    return [item["_id"] for item in body["data"]]


def iso(value: datetime) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value


# -- semantic path ---------------------------------------------------------------------
def test_semantic_path_keeps_stored_order_scores_and_card_fields(client, db, settings):
    neighbours = [make_job(title=f"Engineer {i}", company=f"C{i}", category="Finance") for i in range(5)]
    scores = [0.91, 0.87, 0.66, 0.5, 0.31]
    # Stored order is not the insertion order nor the id order.
    order = [3, 0, 4, 1, 2]
    subject = with_list(make_job(), [(neighbours[i], scores[k]) for k, i in enumerate(order)])
    insert(db, settings, subject, *neighbours)

    response = client.get(f"/api/jobs/{subject['_id']}/similar")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["method"] == "semantic"
    assert body.get("message") is None
    assert ids(body) == [str(neighbours[i]["_id"]) for i in order]
    assert body["total"] == 5
    assert [item["similarityScore"] for item in body["data"]] == scores
    assert [item["similarityPercentage"] for item in body["data"]] == [round(s * 100) for s in scores]
    first, source = body["data"][0], neighbours[order[0]]
    assert first["title"] == source["title"] and first["company"] == source["company"]
    assert first["category"] == "Finance"
    assert first["location"] == source["location"]
    assert first["salary"] == {"min": 900.0, "max": 1400.0, "currency": "EUR"}
    assert iso(first["postedAt"]) == source["createdAt"]
    assert requests_of(db, settings) == []


def test_limit_truncates_the_semantic_list(client, db, settings):
    neighbours = [make_job() for _ in range(6)]
    subject = with_list(make_job(), [(n, 0.9 - i / 20) for i, n in enumerate(neighbours)])
    insert(db, settings, subject, *neighbours)
    body = client.get(f"/api/jobs/{subject['_id']}/similar", params={"limit": 2}).json()
    assert ids(body) == [str(n["_id"]) for n in neighbours[:2]] and body["total"] == 2


def test_neighbours_expired_deleted_or_closed_since_the_run_are_filtered(client, db, settings):
    live = [make_job(title=f"live {i}") for i in range(3)]
    expired = make_job(title="expired", expiresAt=NOW - timedelta(minutes=1))
    deleted = make_job(title="deleted", isDeleted=True)
    closed = make_job(title="closed", status="closed")
    stored = [live[0], expired, live[1], deleted, closed, live[2]]
    subject = with_list(make_job(), [(n, 0.9 - i / 20) for i, n in enumerate(stored)])
    missing = {"_id": ObjectId()}  # removed from the collection entirely
    subject["similarJobs"].append({"jobId": missing["_id"], "score": 0.4, "computedAt": NOW})
    insert(db, settings, subject, *stored)

    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert body["method"] == "semantic"
    assert ids(body) == [str(n["_id"]) for n in live]
    assert [i["similarityScore"] for i in body["data"]] == [0.9, 0.8, 0.65]
    # Three still live: no recompute needed.
    assert requests_of(db, settings) == []


def test_fewer_than_three_left_requests_recompute_and_tops_up(client, db, settings):
    live = [make_job(title=f"live {i}", category="Sales") for i in range(2)]
    gone = [make_job(title=f"gone {i}", category="Sales", expiresAt=NOW - timedelta(hours=1)) for i in range(3)]
    subject = with_list(make_job(category="Sales", location={"city": "Vlorë"}),
                        [(gone[0], 0.95), (live[0], 0.9), (gone[1], 0.8), (live[1], 0.7), (gone[2], 0.6)])
    same_category = [make_job(title=f"sales {i}", category="Sales", location={"city": "Durrës"}) for i in range(3)]
    same_city = [make_job(title=f"vlore {i}", category="Finance", location={"city": "Vlorë"}) for i in range(3)]
    unrelated = make_job(category="Finance", location={"city": "Durrës"})
    insert(db, settings, subject, *live, *gone, *same_category, *same_city, unrelated)

    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert body["method"] == "semantic" and body["message"] == REFRESHING
    got = ids(body)
    # The two live neighbours first, in stored order, with scores; then fallback results.
    assert got[:2] == [str(live[0]["_id"]), str(live[1]["_id"])]
    assert [i["similarityScore"] for i in body["data"][:2]] == [0.9, 0.7]
    assert len(got) == settings.api.fallback_limit == body["total"]
    fallback = got[2:]
    newest = sorted(same_category + same_city, key=lambda d: d["createdAt"], reverse=True)
    assert fallback == [str(d["_id"]) for d in newest[: len(fallback)]]
    assert all(i["similarityScore"] is None for i in body["data"][2:])
    assert str(subject["_id"]) not in got and str(unrelated["_id"]) not in got
    assert not {str(g["_id"]) for g in gone} & set(got)
    assert len(set(got)) == len(got)

    (request,) = requests_of(db, settings)
    assert request["_id"] == subject["_id"]
    assert request["liveNeighbours"] == 2 and request["storedNeighbours"] == 5 and request["count"] == 1
    client.get(f"/api/jobs/{subject['_id']}/similar")
    (again,) = requests_of(db, settings)
    assert again["count"] == 2  # one document per job, however often it is asked


def test_short_list_without_dropouts_is_topped_up_without_a_request(client, db, settings):
    only = make_job()
    subject = with_list(make_job(), [(only, 0.5)])
    other = make_job()
    insert(db, settings, subject, only, other)
    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert body["method"] == "semantic" and body.get("message") is None
    assert ids(body) == [str(only["_id"]), str(other["_id"])]
    assert requests_of(db, settings) == []


# -- fallback path ---------------------------------------------------------------------------
def test_fallback_while_embedding_is_pending(client, db, settings):
    subject = make_job(category="Healthcare", location={"city": "Shkodër"},
                       embedding={"status": "pending", "attempts": 0})
    matches = [make_job(category="Healthcare", location={"city": "Tirana"}) for _ in range(5)]
    matches += [make_job(category="Education", location={"city": "Shkodër"}) for _ in range(3)]
    excluded = [
        make_job(category="Healthcare", expiresAt=NOW - timedelta(seconds=5)),
        make_job(category="Healthcare", status="closed"),
        make_job(category="Healthcare", status="draft"),
        make_job(category="Healthcare", isDeleted=True),
        make_job(category="Education", location={"city": "Tirana"}),
    ]
    insert(db, settings, subject, *matches, *excluded)

    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert body == {**body, "success": True, "method": "fallback", "message": IN_PROGRESS}
    newest = sorted(matches, key=lambda d: d["createdAt"], reverse=True)[:6]
    assert ids(body) == [str(d["_id"]) for d in newest]
    assert body["total"] == 6
    assert [iso(i["postedAt"]) for i in body["data"]] == [d["createdAt"] for d in newest]
    assert requests_of(db, settings) == []


def test_fallback_for_completed_job_without_a_list_has_no_message(client, db, settings):
    subject = make_job(category="Logistics", location=None)
    match = make_job(category="Logistics")
    insert(db, settings, subject, match)
    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert body["method"] == "fallback" and body.get("message") is None
    assert ids(body) == [str(match["_id"])]


def test_fallback_with_neither_category_nor_city_is_empty(client, db, settings):
    subject = make_job(category=None, location={"remote": True}, embedding=None)
    insert(db, settings, subject, make_job())
    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert body == {"success": True, "data": [], "total": 0, "method": "fallback", "jobOpen": True,
                    "message": IN_PROGRESS}


def test_dirty_stored_documents_never_break_a_response(client, db, settings):
    dirty = make_job(title=42, company={"$ne": None}, location="Tirana", salary={"min": "1000", "max": True},
                     createdAt="yesterday", category=["x"])
    fine = make_job()
    subject = with_list(make_job(), [(dirty, 0.8), (fine, 0.7)])
    subject["similarJobs"] += [
        {"jobId": {"$ne": None}, "score": 0.99},  # operator-shaped junk must not reach a query
        {"jobId": fine["_id"], "score": "high"},
        {"jobId": dirty["_id"], "score": None},
        {"jobId": fine["_id"], "score": float("nan")},
        {"jobId": 42, "score": 0.5},
        {"jobId": [fine["_id"]], "score": 0.5},
        "junk",
        {"score": 0.5},
        None,
    ]
    subject["similarJobs"].insert(0, {"jobId": fine["_id"], "score": 1.5})  # out of range: clamped
    insert(db, settings, subject, dirty, fine)
    response = client.get(f"/api/jobs/{subject['_id']}/similar")
    assert response.status_code == 200
    data = response.json()["data"]
    assert [i["_id"] for i in data[:2]] == [str(fine["_id"]), str(dirty["_id"])]
    assert data[0]["similarityScore"] == 1.0
    assert data[1]["title"] is None and data[1]["company"] is None and data[1]["location"] is None
    assert data[1]["salary"] == {"min": None, "max": None, "currency": None} and data[1]["postedAt"] is None
    assert len(data) == 2  # the two well-formed entries (the fallback finds nothing else here)


def test_client_side_activity_check_agrees_with_the_pipelines_filter(db, settings):
    """``is_active`` (used on the ``$in`` results) == ``active_filter`` run by the server."""
    from itertools import product

    from storage.job_reads import is_active
    from storage.queries import active_filter

    missing = object()
    statuses = ["active", "closed", "draft", "Active", None, missing]
    deleted = [True, False, None, 1, "true", missing]
    expiries = [NOW - timedelta(seconds=1), NOW + timedelta(seconds=30), None, "2999-01-01", 5, missing]
    docs = []
    for status, is_deleted, expires in product(statuses, deleted, expiries):
        doc = {"_id": ObjectId()}
        for key, value in (("status", status), ("isDeleted", is_deleted), ("expiresAt", expires)):
            if value is not missing:
                doc[key] = value
        docs.append(doc)
    coll = db[settings.mongo.jobs_collection]
    coll.insert_many(docs)
    by_server = {d["_id"] for d in coll.find(active_filter(NOW), {"_id": 1})}
    by_client = {d["_id"] for d in coll.find({}) if is_active(d, NOW)}
    assert by_client == by_server and 0 < len(by_server) < len(docs)


# -- errors ---------------------------------------------------------------------------------
def test_unknown_and_deleted_ids_are_404(client, db, settings):
    deleted = make_job(isDeleted=True)
    insert(db, settings, deleted)
    for job_id in (str(ObjectId()), str(deleted["_id"])):
        response = client.get(f"/api/jobs/{job_id}/similar")
        assert response.status_code == 404
        assert response.json() == {"success": False, "message": "job not found"}


@pytest.mark.parametrize("job_id", [
    "abc", "zzzzzzzzzzzzzzzzzzzzzzzz", "0123456789abcdef012345678", "0123456789abcdef0123456",
    "0123456789abcdef01234567 ", " 0123456789abcdef01234567", "0123456789abcdef0123456g",
])
def test_malformed_ids_are_400_before_any_query(client, recorder, job_id):
    response = client.get(f"/api/jobs/{job_id}/similar")
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert recorder.commands == []


@pytest.mark.parametrize("path", [
    "/api/jobs/%7B%22%24ne%22%3A%20null%7D/similar",             # {"$ne": null}
    "/api/jobs/%7B%22%24gt%22%3A%22%22%7D/similar",               # {"$gt":""}
    "/api/jobs/$where/similar",
    "/api/jobs/%24where%3A%20sleep(1000)/similar",
    "/api/jobs/this.title%20%3D%3D%20'x'/similar",
    "/api/jobs/%00%FF%FE/similar",
    "/api/jobs/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd/similar",
    "/api/jobs/0123456789abcdef01234567/similar?limit=%7B%22%24gt%22%3A0%7D",
    "/api/jobs/0123456789abcdef01234567/similar?limit[$ne]=1&limit=abc",
    "/api/jobs/0123456789abcdef01234567/similar?limit=-1",
    "/api/jobs/0123456789abcdef01234567/similar?limit=51",
    "/api/jobs/0123456789abcdef01234567/similar?limit=1e9",
])
def test_injection_attempts_are_rejected_before_any_query(client, recorder, path):
    response = client.get(path)
    assert response.status_code in (400, 404)  # 404: the path no longer matches the route
    assert response.json()["success"] is False
    assert "Traceback" not in response.text
    assert recorder.commands == []


@pytest.mark.parametrize("bad", [{"$ne": None}, {"$where": "sleep(100)"}, ["a"], 12, None, b"0" * 12,
                                 "$where", "0123456789abcdef0123456\u0661"])
def test_library_rejects_non_string_and_operator_ids(service, recorder, bad):
    with pytest.raises(InvalidRequestError):
        service.similar_jobs(bad)
    assert recorder.commands == []


@pytest.mark.parametrize("limit", [0, 51, -3, True, 2.5, "3", {"$gt": 0}])
def test_library_bounds_the_limit(service, recorder, limit):
    with pytest.raises(InvalidRequestError):
        service.similar_jobs(str(ObjectId()), limit)
    assert recorder.commands == []


def test_string_ids_are_an_opt_in(settings):
    assert parse_job_id("0123456789ABCDEF01234567") == (ObjectId("0123456789abcdef01234567"),)
    with pytest.raises(InvalidRequestError):
        parse_job_id("job-17")
    assert parse_job_id("job-17", string_ids=True) == ("job-17",)
    # 24 hex digits: the ObjectId first, then the string of the same spelling
    assert parse_job_id("0123456789abcdef01234567", string_ids=True) == (
        ObjectId("0123456789abcdef01234567"), "0123456789abcdef01234567")
    for bad in ("$where", "a b", "x" * 65, "{\"$ne\":1}", ""):
        with pytest.raises(InvalidRequestError):
            parse_job_id(bad, string_ids=True)


def string_id_client(settings: Settings) -> TestClient:
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"string_ids": True})})
    return TestClient(create_app(settings))


def test_string_id_jobs_are_served_when_enabled(db, settings):
    neighbour = make_job(_id="ext-2")
    subject = with_list(make_job(_id="ext-1"), [(neighbour, 0.8)])
    insert(db, settings, subject, neighbour)
    client = string_id_client(settings)
    body = client.get("/api/jobs/ext-1/similar").json()
    assert ids(body) == ["ext-2"] and body["data"][0]["idType"] == "string"
    assert client.get("/api/jobs/ext-9/similar").status_code == 404
    assert client.get("/api/jobs/s:ext-1/similar").status_code == 404  # the internal key is no id


def test_hex_string_id_is_looked_up_as_a_string_when_no_objectid_job_exists(db, settings):
    hex_id = "a1b2c3d4e5f6a1b2c3d4e5f6"
    neighbour = make_job()
    subject = with_list(make_job(_id=hex_id), [(neighbour, 0.8)])
    insert(db, settings, subject, neighbour)
    body = string_id_client(settings).get(f"/api/jobs/{hex_id}/similar").json()
    assert body["method"] == "semantic" and ids(body) == [str(neighbour["_id"])]
    assert body["data"][0]["idType"] == "objectId"
    # with string ids off the same path means only the ObjectId, which does not exist
    assert TestClient(create_app(settings)).get(f"/api/jobs/{hex_id}/similar").status_code == 404


def test_string_id_spelling_an_objectid_never_merges_with_it(db, settings):
    """A string ``_id`` equal to another job's ObjectId hex is a different job everywhere."""
    twin_hex = str(ObjectId())
    object_job = make_job(_id=ObjectId(twin_hex), title="the ObjectId job")
    string_job = make_job(_id=twin_hex, title="the string job", status="closed")
    other = [make_job(title=f"other {i}") for i in range(3)]
    # the ObjectId job's list names the *string* job first (closed: dropped, never resolved
    # to the active ObjectId job of the same spelling)
    with_list(object_job, [({"_id": twin_hex}, 0.95), *((o, round(0.8 - i / 10, 2)) for i, o in enumerate(other))])
    # the string job's list names the ObjectId job, then another job
    with_list(string_job, [(object_job, 0.9), (other[0], 0.7)])
    insert(db, settings, object_job, string_job, *other)
    client = string_id_client(settings)

    body = client.get(f"/api/jobs/{twin_hex}/similar").json()  # the ObjectId job wins the lookup
    assert body["jobOpen"] is True and ids(body) == [str(o["_id"]) for o in other]
    assert [item["similarityScore"] for item in body["data"]] == [0.8, 0.7, 0.6]

    # once the ObjectId job is deleted, the same path id means the string job
    db[settings.mongo.jobs_collection].update_one({"_id": ObjectId(twin_hex)}, {"$set": {"isDeleted": True}})
    body = client.get(f"/api/jobs/{twin_hex}/similar").json()
    assert body["jobOpen"] is False and body["message"] == NO_LONGER_OPEN
    assert ids(body)[0] == str(other[0]["_id"]) and body["data"][0]["similarityScore"] == 0.7
    assert twin_hex not in ids(body)  # the deleted ObjectId job is not listed under its hex


def test_api_only_writes_recompute_requests(client, db, settings, recorder):
    live = make_job()
    gone = [make_job(status="closed") for _ in range(3)]
    subject = with_list(make_job(), [(live, 0.9), *((g, 0.8) for g in gone)])
    pending = make_job(embedding={"status": "pending"})
    insert(db, settings, subject, live, *gone, pending)
    for job in (subject, live, pending):
        assert client.get(f"/api/jobs/{job['_id']}/similar").status_code == 200
    assert client.get("/health").status_code == 200
    reads = {"find", "ping", "getMore", "killCursors", "count", "aggregate"}
    writes = [(name, coll) for name, coll in recorder.commands if name not in reads]
    assert writes == [("update", settings.api.recompute_collection)]


# -- server errors expose nothing -------------------------------------------------------------
def test_database_down_is_503_without_connection_details(mongo_server, monkeypatch):
    from jobsim_app.localdb import free_port

    port = free_port()
    monkeypatch.setenv("JOBSIM_MONGO__URI", f"mongodb://reader:s3cret-pw@127.0.0.1:{port}/?directConnection=true")
    monkeypatch.setenv("JOBSIM_MONGO__TIMEOUT_MS", "200")
    client = TestClient(create_app(Settings()), raise_server_exceptions=False)
    for path in (f"/api/jobs/{ObjectId()}/similar", "/health"):
        response = client.get(path)
        assert response.status_code == 503
        assert "s3cret" not in response.text and str(port) not in response.text and "reader" not in response.text


def test_api_uses_its_own_mongo_uri_when_set(db, settings, monkeypatch):
    """JOBSIM_API__MONGO_URI (the read-only user) wins over the pipeline's JOBSIM_MONGO__URI."""
    from jobsim_app.localdb import free_port

    neighbour = make_job()
    subject = with_list(make_job(), [(neighbour, 0.7)])
    insert(db, settings, subject, neighbour)
    monkeypatch.setenv("JOBSIM_API__MONGO_URI", settings.mongo.uri.get_secret_value())
    monkeypatch.setenv("JOBSIM_MONGO__URI", f"mongodb://127.0.0.1:{free_port()}/?directConnection=true")
    monkeypatch.setenv("JOBSIM_MONGO__TIMEOUT_MS", "200")
    client = TestClient(create_app(Settings()), raise_server_exceptions=False)
    assert ids(client.get(f"/api/jobs/{subject['_id']}/similar").json()) == [str(neighbour["_id"])]


def test_failed_recompute_write_still_answers(db, settings, caplog):
    """A deployment whose user cannot write the request collection keeps serving (and logs it)."""
    from jobsim_app.localdb import free_port

    live = make_job()
    gone = [make_job(isDeleted=True) for _ in range(3)]
    subject = with_list(make_job(), [(g, 0.9) for g in gone] + [(live, 0.5)])
    insert(db, settings, subject, live, *gone)
    dead = MongoClient(f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
                       serverSelectionTimeoutMS=200)
    service = SimilarJobsService(JobReadsRepository(db, settings.mongo.jobs_collection),
                                 RecomputeRequestsRepository(dead["x"]), settings.api)
    with caplog.at_level("WARNING", logger="api_export.similar"):
        result = service.similar_jobs(str(subject["_id"]))
    dead.close()
    assert result.method == "semantic" and [j.id for j in result.data][0] == str(live["_id"])
    assert "recompute request for one job not recorded" in caplog.text


class _ExplodingReads(JobReadsRepository):
    """A repository that fails with an unexpected error carrying a connection string."""

    def subject(self, mongo_id):
        raise RuntimeError("boom at mongodb://admin:hunter2@db.internal:27017 in subject()")


def test_unexpected_error_is_a_generic_500(settings, db):
    service = SimilarJobsService(
        _ExplodingReads(db), RecomputeRequestsRepository(db), settings.api
    )
    client = TestClient(create_app(settings, service), raise_server_exceptions=False)
    response = client.get(f"/api/jobs/{ObjectId()}/similar")
    assert response.status_code == 500
    assert response.json() == {"success": False, "message": "internal error"}
    assert "hunter2" not in response.text and "Traceback" not in response.text


def test_health_and_library_entry_point(client, db, settings):
    assert client.get("/health").json() == {"status": "ok", "database": "ok"}
    neighbour = make_job()
    subject = with_list(make_job(), [(neighbour, 0.77)])
    insert(db, settings, subject, neighbour)
    result = similar_jobs(str(subject["_id"]), limit=5, settings=settings)
    assert result.method == "semantic" and [j.id for j in result.data][0] == str(neighbour["_id"])
    dumped = result.model_dump(by_alias=True, exclude_none=True)
    assert dumped["data"][0]["_id"] == str(neighbour["_id"]) and dumped["data"][0]["similarityPercentage"] == 77
    with pytest.raises(NotFoundError):
        similar_jobs(str(ObjectId()), settings=settings)


def test_read_side_never_imports_the_pipeline():
    code = (
        "import sys, api_export, api_export.app, api_export.similar, api_export.export, api_export.__main__\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('flows', 'tasks', 'prefect'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_documented_serve_command_starts_the_api(db, settings):
    """``python -m api_export serve`` (the README's one-line start) answers on its port."""
    import json
    import os
    import time
    import urllib.request

    from jobsim_app.localdb import free_port

    neighbour = make_job()
    subject = with_list(make_job(), [(neighbour, 0.64)])
    insert(db, settings, subject, neighbour)
    port = free_port()
    env = {**os.environ, "JOBSIM_MONGO__URI": settings.mongo.uri.get_secret_value(),
           "JOBSIM_MONGO__DATABASE": settings.mongo.database, "JOBSIM_API__PORT": str(port)}
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "api_export", "serve"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert json.load(r)["status"] == "ok"
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs/{subject['_id']}/similar") as r:
            body = json.load(r)
        assert body["method"] == "semantic" and body["data"][0]["similarityPercentage"] == 64
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# -- jobs that are not open --------------------------------------------------------------------
NOT_OPEN = {
    "closed": {"status": "closed"},
    "expired": {"expiresAt": NOW - timedelta(days=3)},
    "draft": {"status": "draft"},
}


@pytest.mark.parametrize("state", sorted(NOT_OPEN))
def test_job_no_longer_open_answers_its_stored_list_of_open_jobs(client, db, settings, state):
    live = [make_job(title=f"open {i}") for i in range(4)]
    gone = make_job(title="closed since", status="closed")
    subject = with_list(make_job(**NOT_OPEN[state]),
                        [(live[2], 0.9), (gone, 0.85), (live[0], 0.8), (live[3], 0.7), (live[1], 0.6)])
    insert(db, settings, subject, gone, *live)
    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert body["method"] == "semantic" and body["jobOpen"] is False
    assert body["message"] == NO_LONGER_OPEN
    assert ids(body) == [str(live[i]["_id"]) for i in (2, 0, 3, 1)]
    assert requests_of(db, settings) == []


@pytest.mark.parametrize("state", sorted(NOT_OPEN))
def test_job_no_longer_open_with_few_neighbours_left_is_topped_up_without_a_request(client, db, settings, state):
    live = make_job(category="Sales")
    gone = [make_job(category="Sales", isDeleted=True) for _ in range(3)]
    subject = with_list(make_job(category="Sales", **NOT_OPEN[state]), [(live, 0.9), *((g, 0.8) for g in gone)])
    others = [make_job(category="Sales") for _ in range(2)]
    insert(db, settings, subject, live, *gone, *others)
    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert body["method"] == "semantic" and body["message"] == NO_LONGER_OPEN
    assert ids(body)[0] == str(live["_id"])
    assert set(ids(body)[1:]) == {str(o["_id"]) for o in others}
    assert requests_of(db, settings) == []


@pytest.mark.parametrize("embedding", [{"status": "pending"}, {"status": "processing"}, None,
                                       {"status": "completed"}, {"status": "failed"}])
@pytest.mark.parametrize("state", sorted(NOT_OPEN))
def test_job_no_longer_open_is_never_in_progress(client, db, settings, state, embedding):
    subject = make_job(category="Healthcare", embedding=embedding, **NOT_OPEN[state])
    match = make_job(category="Healthcare")
    insert(db, settings, subject, match)
    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert body == {"success": True, "data": body["data"], "total": 1, "method": "fallback",
                    "jobOpen": False, "message": NO_LONGER_OPEN}
    assert ids(body) == [str(match["_id"])]
    assert requests_of(db, settings) == []


@pytest.mark.parametrize("embedding, message", [
    ({"status": "pending"}, IN_PROGRESS), ({"status": "processing"}, IN_PROGRESS), (None, IN_PROGRESS),
    ({"status": "failed", "error": "invalid: title"}, None), ({"status": "completed"}, None),
])
def test_in_progress_only_for_an_open_job_being_embedded(client, db, settings, embedding, message):
    subject = make_job(embedding=embedding)
    insert(db, settings, subject, make_job())
    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert body["method"] == "fallback" and body["jobOpen"] is True and body.get("message") == message


def test_deleted_job_with_a_list_is_404(client, db, settings):
    neighbour = make_job()
    subject = with_list(make_job(isDeleted=True, status="closed"), [(neighbour, 0.9)])
    insert(db, settings, subject, neighbour)
    assert client.get(f"/api/jobs/{subject['_id']}/similar").status_code == 404


# -- explanations ------------------------------------------------------------------------------
def test_semantic_results_carry_the_stored_cosine_and_match(client, db, settings):
    new = [make_job(title=f"new {i}") for i in range(3)]
    old = make_job(title="old entry")
    subject = with_list(make_job(), [(n, 0.9) for n in new] + [(old, 0.5)])
    stored = [(0.78, ["city", "level"]), (0.66, []), (0.71, ["category", "adjacentLevel", "remote"])]
    for entry, (cosine, match) in zip(subject["similarJobs"], stored):
        entry.update(cosine=cosine, match=match)
    insert(db, settings, subject, old, *new)
    data = client.get(f"/api/jobs/{subject['_id']}/similar").json()["data"]
    assert [(d["semanticScore"], d["semanticPercentage"], d["match"]) for d in data[:3]] == [
        (0.78, 78, ["city", "level"]), (0.66, 66, []), (0.71, 71, ["category", "adjacentLevel", "remote"])]
    assert data[3]["_id"] == str(old["_id"]) and data[3]["similarityScore"] == 0.5
    assert data[3]["semanticScore"] is None and data[3]["match"] is None  # entry written before


def test_explanations_are_read_leniently(client, db, settings):
    jobs = [make_job() for _ in range(4)]
    subject = with_list(make_job(), [(j, 0.9 - i / 10) for i, j in enumerate(jobs)])
    for entry, (cosine, match) in zip(subject["similarJobs"], [
        ("high", "city"), (float("nan"), ["city", "bogus", 3, "city"]), (1.7, None), (True, [{"$ne": 1}]),
    ]):
        entry.update(cosine=cosine, match=match)
    insert(db, settings, subject, *jobs)
    data = client.get(f"/api/jobs/{subject['_id']}/similar").json()["data"]
    assert [(d["semanticScore"], d["match"]) for d in data] == [(None, None), (None, ["city"]), (1.0, None),
                                                               (None, [])]


def test_fallback_results_carry_no_scores_or_explanations(client, db, settings):
    subject = make_job(embedding={"status": "pending"})
    insert(db, settings, subject, make_job())
    (item,) = client.get(f"/api/jobs/{subject['_id']}/similar").json()["data"]
    assert item["similarityScore"] is None and item["semanticScore"] is None and item["match"] is None


def test_openapi_documents_the_response_fields(client):
    spec = client.get("/openapi.json").json()
    job = spec["components"]["schemas"]["SimilarJob"]["properties"]
    for field in ("_id", "idType", "similarityScore", "similarityPercentage", "semanticScore",
                  "semanticPercentage", "match", "postedAt"):
        assert job[field].get("description"), field
    assert job["match"]["anyOf"][0]["items"]["enum"] == ["category", "level", "adjacentLevel", "city", "remote"]
    response = spec["components"]["schemas"]["SimilarJobsResponse"]["properties"]
    for field in ("data", "total", "method", "jobOpen", "message"):
        assert response[field].get("description"), field
    for message in (IN_PROGRESS, NO_LONGER_OPEN, REFRESHING):
        assert message in response["message"]["description"]


# -- duplicate groups --------------------------------------------------------------------------
def test_fallback_never_returns_the_subjects_duplicates_and_collapses_reposts(client, db, settings):
    original = make_job(category="Legal", title="Lawyer (original)")
    original["duplicateGroup"] = original["_id"]
    subject = make_job(category="Legal", title="Lawyer (repost)", duplicateGroup=original["_id"],
                       embedding={"status": "pending"})
    reposts = [make_job(category="Legal", title="Lawyer (repost)", duplicateGroup=original["_id"]) for _ in range(3)]
    other_group = make_job(category="Legal", title="Clerk")
    other_reposts = [make_job(category="Legal", title="Clerk", duplicateGroup=other_group["_id"]) for _ in range(3)]
    other_group["duplicateGroup"] = other_group["_id"]
    unique = [make_job(category="Legal", title=f"Notary {i}") for i in range(2)]
    insert(db, settings, original, subject, *reposts, other_group, *other_reposts, *unique)
    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    got = ids(body)
    banned = {str(original["_id"]), str(subject["_id"]), *(str(r["_id"]) for r in reposts)}
    assert not banned & set(got)
    # newest first; of the other group only its newest posting
    assert got == [*(str(u["_id"]) for u in reversed(unique)), str(other_reposts[-1]["_id"])]


def test_semantic_list_skips_members_of_the_subjects_group(client, db, settings):
    original = make_job()
    original["duplicateGroup"] = original["_id"]
    repost = make_job(duplicateGroup=original["_id"])
    others = [make_job() for _ in range(3)]
    subject = with_list(make_job(duplicateGroup=original["_id"]),
                        [(original, 0.99), (others[0], 0.9), (repost, 0.88), (others[1], 0.8), (others[2], 0.7)])
    insert(db, settings, original, repost, subject, *others)
    body = client.get(f"/api/jobs/{subject['_id']}/similar").json()
    assert ids(body) == [str(o["_id"]) for o in others]
    assert requests_of(db, settings) == []


# -- health and command line ------------------------------------------------------------------
def test_health_is_fast_when_the_database_is_away(mongo_server, monkeypatch):
    """The default 10 s server-selection timeout is not what /health waits."""
    import time

    from jobsim_app.localdb import free_port

    monkeypatch.setenv("JOBSIM_MONGO__URI", f"mongodb://127.0.0.1:{free_port()}/?directConnection=true")
    client = TestClient(create_app(Settings()), raise_server_exceptions=False)
    for _ in range(2):
        started = time.monotonic()
        response = client.get("/health")
        assert response.status_code == 503 and response.json()["status"] == "unavailable"
        assert time.monotonic() - started < 4


def run_cli(*args: str, env: dict[str, str], timeout: int = 60) -> subprocess.CompletedProcess:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBSIM_")}
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "api_export", *args], cwd=root, env={**clean, **env},
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("case", ["unreachable", "bad-uri", "auth-refused", "api-uri-unreachable", "bad-setting"])
def test_serve_with_an_unusable_database_says_which_setting_to_fix(mongo_server, case):
    from jobsim_app.localdb import free_port

    dead = f"mongodb://reader:s3cret-pw@127.0.0.1:{free_port()}/?directConnection=true"
    env, setting = {
        "unreachable": ({"JOBSIM_MONGO__URI": dead}, "JOBSIM_MONGO__URI"),
        "bad-uri": ({"JOBSIM_MONGO__URI": "mongodb://reader:s3cret-pw@/nohost"}, "JOBSIM_MONGO__URI"),
        "auth-refused": ({"JOBSIM_MONGO__URI": mongo_server.uri.replace("mongodb://", "mongodb://reader:s3cret-pw@")},
                         "JOBSIM_MONGO__URI"),
        "api-uri-unreachable": ({"JOBSIM_API__MONGO_URI": dead, "JOBSIM_MONGO__URI": mongo_server.uri},
                                "JOBSIM_API__MONGO_URI"),
        "bad-setting": ({"JOBSIM_API__PORT": "eighty", "JOBSIM_MONGO__URI": dead}, "JOBSIM_API__PORT"),
    }[case]
    result = run_cli("serve", "--port", str(free_port()), env={**env, "JOBSIM_MONGO__TIMEOUT_MS": "300"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and setting in lines[0], result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr + result.stdout
    assert "reader" not in result.stderr
    if case == "auth-refused":
        assert "authentication failed" in lines[0]
