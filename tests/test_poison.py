"""A poison corpus: documents that once stopped every run (pipeline-owned fields of every
wrong type, a posting at the 16 MB limit, every `_id` type, dates as text) beside normal
jobs. The run succeeds, every job's list equals the one a clean twin database gets, and each
hostile document ends with a reason."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from jobsim.synthetic import generate_jobs

pytestmark = pytest.mark.usefixtures("prefect_harness")
PIPELINE_FIELDS = ("embedding", "similarJobs", "similarityMetadata", "duplicateGroup")
WRONG = [None, "garbage", 7, 3.5, True, [], [1, "x"], {"status": 7, "attempts": "many"},
         [{"jobId": "nope", "score": "high"}], [{"jobId": None, "score": None}], {"nested": {"deep": []}},
         datetime(2020, 1, 1, tzinfo=timezone.utc), ObjectId(), b"\x00\x01"]
MAX_BSON = 16 * 1024 * 1024


def run() -> dict:
    from flows.refresh import similarity_refresh

    return asyncio.run(similarity_refresh(mode="full"))


def lists_by_external_id(db) -> dict[str, list]:
    from storage.ids import to_key

    ext = {to_key(d["_id"]): d.get("externalId") for d in db.jobs.find({}, {"externalId": 1})}
    return {ext[to_key(d["_id"])]: [(ext[to_key(i["jobId"])], i["score"], i.get("match")) for i in d["similarJobs"]]
            for d in db.jobs.find({"similarJobs.0": {"$exists": True}})}


def normal_jobs(now: datetime) -> list[dict]:
    docs = generate_jobs(70, seed=31, now=now)
    for i, doc in enumerate(docs):
        doc.update(_id=ObjectId(), embedding={"status": "pending", "attempts": 0})
        if i < len(WRONG) * len(PIPELINE_FIELDS) // 4:
            doc["garbled"] = True  # its pipeline fields get wrong types in the poisoned database
    return docs


def garble(docs: list[dict]) -> list[dict]:
    """The same jobs with their pipeline-owned fields holding every wrong type."""
    out = []
    for i, doc in enumerate(docs):
        doc = dict(doc)
        if doc.pop("garbled", False):
            doc[PIPELINE_FIELDS[i % 4]] = WRONG[(i // 4) % len(WRONG)]
        out.append(doc)
    return out


def unprocessable(now: datetime) -> list[dict]:
    """Documents no run can list, each for its own reason."""
    base = {"status": "active", "isDeleted": False, "createdAt": now, "updatedAt": now, "title": "Data analyst",
            "description": "We need a data analyst for reporting and dashboards in Tirana.", "category": "IT",
            "source": "poison"}
    return [
        {**base, "_id": 42, "externalId": "int-id"},
        {**base, "_id": {"region": "AL", "n": 1}, "externalId": "dict-id"},
        {**base, "_id": ObjectId(), "externalId": "iso-expiry", "expiresAt": "2027-01-01T00:00:00Z"},
        {**base, "_id": ObjectId(), "externalId": "closed-garbage-list", "status": "closed",
         "similarJobs": [{"jobId": "x", "score": "high"}], "similarityMetadata": "oops"},
    ]


def huge_posting(db, now: datetime) -> ObjectId:
    """A valid posting a few bytes under MongoDB's 16 MB limit: no pipeline field fits."""
    doc = {"_id": ObjectId(), "externalId": "huge", "source": "poison", "status": "active", "isDeleted": False,
           "createdAt": now, "updatedAt": now, "title": "Warehouse worker", "embedding": {"status": "pending"},
           "description": "Warehouse work with forklifts and inventory. " * 10, "attachment": ""}
    import bson

    doc["attachment"] = "x" * (MAX_BSON - len(bson.encode(doc)) - 60)
    db.jobs.insert_one(doc)
    return doc["_id"]


def test_poison_documents_cost_only_themselves(settings, db, monkeypatch):
    from storage import connect

    # a corpus-blind embedder: the fitted default learns from every valid posting, the huge one included
    monkeypatch.setenv("JOBSIM_EMBEDDING__MODEL", "jobsim-hash-ngram-v3")
    now = datetime.now(timezone.utc)
    jobs = normal_jobs(now)
    monkeypatch.setenv("JOBSIM_MONGO__DATABASE", settings.mongo.database + "_clean")
    from jobsim.settings import Settings

    clean_db = connect(Settings().mongo)
    clean_db.jobs.insert_many([{k: v for k, v in d.items() if k != "garbled"} for d in jobs])
    run()
    expected = lists_by_external_id(clean_db)
    clean_db.client.drop_database(clean_db.name)
    monkeypatch.setenv("JOBSIM_MONGO__DATABASE", settings.mongo.database)

    db.jobs.insert_many(garble(jobs) + unprocessable(now))
    huge = huge_posting(db, now)
    summary = run()  # no exception: one document never fails the others
    got = lists_by_external_id(db)
    closed_list = got.pop("closed-garbage-list", [])  # a closed job's list of open jobs, when any pass min_score
    assert got == expected and len(expected) > 40
    assert all(isinstance(score, float) and other.startswith("synthetic") for other, score, _ in closed_list)
    by_ext = {d["externalId"]: d for d in db.jobs.find({"source": "poison"})}
    assert "_id of type int is not supported" in by_ext["int-id"]["embedding"]["error"]
    assert "_id of type dict is not supported" in by_ext["dict-id"]["embedding"]["error"]
    assert "expiresAt must be a date" in by_ext["iso-expiry"]["embedding"]["error"]
    # the unreadable list of a closed job is replaced: cleared, or its list of similar open jobs
    assert len(by_ext["closed-garbage-list"]["similarJobs"]) == len(closed_list)
    assert summary["refused"] == 1
    assert list(summary["refused_reasons"]) == ["MongoDB refused the write: document would exceed 16 MB"]
    assert db.jobs.find_one({"_id": huge}, {"embedding": 1})["embedding"]["status"] != "completed"
    for doc in db.jobs.find({"externalId": {"$regex": "^synthetic"}}):  # every normal job settled
        assert isinstance(doc["embedding"], dict) and doc["embedding"]["status"] in ("completed", "failed") \
            or doc.get("status") != "active" or doc.get("isDeleted") or doc.get("expiresAt", now) <= now
    assert run()["lists_written"] == 0  # and the next run has nothing left to fix


storable = st.characters(exclude_categories=("Cs",), exclude_characters="\x00$.")  # what BSON can hold
wrong_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True),
              st.text(storable, max_size=20), st.datetimes(timezones=st.just(timezone.utc))),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(storable, min_size=1, max_size=6), inner, max_size=3)),
    max_leaves=8)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(PIPELINE_FIELDS), value=wrong_values)
def test_every_pipeline_write_replaces_a_field_of_the_wrong_type(settings, db, field, value):
    """Any value in a field the pipeline owns: its writes succeed and what it reads back is sane."""
    from jobsim.repositories import EmbeddedMark, JobList, Neighbour
    from storage import repositories
    from storage.ids import to_key

    jobs = repositories(settings).jobs
    ids = db.jobs.insert_many([{"status": "active", field: value}, {"status": "active"}]).inserted_ids
    key, other = to_key(ids[0]), to_key(ids[1])
    now = datetime.now(timezone.utc)
    stored = jobs.stored_lists().get(key, "absent")
    assert stored in (None, "absent") or isinstance(stored, JobList)
    assert jobs.stored_lists([key]).get(key, "absent") == stored  # the incremental run's read agrees
    for outcome in (jobs.mark_embedded([EmbeddedMark(key, "h")], "m", now), jobs.mark_failed({key: ("x", 1)}, now),
                    jobs.mark_rejected({key: "bad"}, now), jobs.mark_pending({key: "later"}),
                    jobs.write_lists({key: JobList((Neighbour(other, 0.5, 0.5, ("city",)),), other)}, now, 2, 7)):
        assert outcome.refused == {}
    assert jobs.stored_lists()[key] == JobList((Neighbour(other, 0.5, 0.5, ("city",)),), other)
    assert db.jobs.find_one({"_id": ids[0]})["embedding"]["status"] == "pending"
    db.jobs.delete_many({"_id": {"$in": ids}})


def test_every_id_type_round_trips_without_collisions(settings, db, monkeypatch):
    """The same postings under string ids (some spelling another job's ObjectId hex) get
    the same lists as under ObjectIds, mapped id for id."""
    from storage import connect

    now = datetime.now(timezone.utc)
    jobs = [d for d in generate_jobs(60, seed=41, now=now)]
    oids = [ObjectId() for _ in jobs]
    db.jobs.insert_many([{**d, "_id": o} for d, o in zip(jobs, oids)])
    by_oid = run()
    lists_oid = lists_by_external_id(db)

    monkeypatch.setenv("JOBSIM_MONGO__DATABASE", settings.mongo.database + "_strings")
    from jobsim.settings import Settings

    other = connect(Settings().mongo)
    string_ids = [str(oids[(i + 1) % len(oids)]) if i % 2 else f"job-{i}" for i in range(len(jobs))]
    other.jobs.insert_many([{**d, "_id": s} for d, s in zip(jobs, string_ids)])
    other.jobs.insert_one({**jobs[0], "_id": oids[1], "externalId": "an-objectid-equal-to-a-string-id",
                           "status": "closed"})  # an ObjectId job beside the string "<its hex>" job
    by_string = run()
    try:
        assert lists_by_external_id(other) == lists_oid and by_string["embedded"] == by_oid["embedded"]
        assert all(isinstance(v["_id"], str) for v in other.job_embeddings.find({"_id": {"$ne": oids[1]}}))
    finally:
        other.client.drop_database(other.name)
        monkeypatch.setenv("JOBSIM_MONGO__DATABASE", settings.mongo.database)
