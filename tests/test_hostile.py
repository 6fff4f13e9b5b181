"""Hostile input: no crash, every reject has a readable reason, valid jobs unaffected."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st

from jobsim.jobs import check_job
from jobsim.stages.prepare import prepare
from tests.conftest import shared_file

NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=300), st.datetimes(timezones=st.just(timezone.utc)))
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
FIELDS = ["title", "description", "category", "tags", "requirements", "location",
          "experienceLevel", "status", "isDeleted", "expiresAt", "embedding"]
documents = st.fixed_dictionaries(
    {"_id": st.one_of(st.text(min_size=1, max_size=30), st.integers())},
    optional={name: junk for name in FIELDS},
)


@hsettings(max_examples=400, deadline=None)
@given(documents)
def test_any_document_is_either_valid_inactive_or_rejected_with_reasons(doc):
    checked = check_job(doc, NOW)
    outcomes = [checked.job is not None, checked.inactive is not None, bool(checked.reasons)]
    assert sum(outcomes) == 1
    assert all(isinstance(r, str) and 0 < len(r) <= 200 for r in checked.reasons)


@hsettings(max_examples=100, deadline=None)
@given(st.lists(documents, max_size=20))
def test_prepare_never_raises_and_accounts_for_every_document(docs):
    prepared = prepare(docs, NOW, "m", 8)
    assert len(prepared.jobs) + len(prepared.rejected) + sum(prepared.inactive.values()) >= len(
        {str(d["_id"]) for d in docs})
    assert all(len(h) == 64 for h in prepared.hashes)


def hostile_docs(now: datetime) -> list[dict]:
    base = {"status": "active", "isDeleted": False, "createdAt": now, "updatedAt": now,
            "category": "Other", "experienceLevel": "mid", "location": {"city": "Tirana"}}
    return [
        {**base, "title": 12345, "description": "A perfectly fine description here."},
        {**base, "title": "Valid title", "description": "short"},
        {**base, "title": "🚀🔥💼✅", "description": "Only emoji in the title, description ok."},
        {**base, "title": "\x00\x07\x1b", "description": "\x00" * 50},
        {**base, "title": "Dates as strings", "description": "x" * 40, "expiresAt": "tomorrow"},
        {**base, "title": "Tags as object", "description": "y" * 40, "tags": {"$gt": ""}},
        {**base, "title": "Nested junk", "description": {"a": [{"b": [1, 2, {"c": None}]}]}},
        {**base, "title": "Wrong level", "description": "z" * 40, "experienceLevel": 7},
        {**base, "title": None, "description": None, "location": [1, 2, 3]},
        {**base, "title": "Title " * 60, "description": "Very long title above the limit."},
    ]


@pytest.mark.usefixtures("prefect_harness")
def test_hostile_documents_do_not_disturb_valid_jobs(settings, db, monkeypatch):
    """Run once with and once without hostile documents: valid jobs' lists are identical."""
    from flows.refresh import similarity_refresh
    from tests.helpers import seed_jobs

    seed_jobs(settings, 80, seed=11)
    clean = asyncio.run(similarity_refresh())
    clean_lists = {d["_id"]: d.get("similarJobs") for d in db.jobs.find({}, {"similarJobs.jobId": 1, "similarJobs.score": 1})}

    now = datetime.now(timezone.utc)
    result = db.jobs.insert_many(hostile_docs(now))
    dirty = asyncio.run(similarity_refresh())
    assert dirty["rejected"] >= len(result.inserted_ids)
    for doc in db.jobs.find({"_id": {"$in": result.inserted_ids}}):
        assert doc["embedding"]["status"] == "failed" and doc["embedding"]["rejected"] is True
        assert doc["embedding"]["error"].startswith("invalid: ") and len(doc["embedding"]["error"]) > 12
        assert not doc.get("similarJobs")
    after = {d["_id"]: d.get("similarJobs") for d in db.jobs.find({"_id": {"$nin": result.inserted_ids}},
                                                                   {"similarJobs.jobId": 1, "similarJobs.score": 1})}
    assert after == clean_lists
    assert dirty["lists_written"] == 0 and clean["lists_written"] > 0

    # a 1 MB description is valid: embedded (text capped), and listed like any other job
    big = db.jobs.insert_one({**hostile_docs(now)[0], "title": "Megabyte posting",
                              "description": "Python developer Tirana. " * 42_000,
                              "expiresAt": now + timedelta(days=5)}).inserted_id
    third = asyncio.run(similarity_refresh())
    assert third["embedded"] == 1
    assert db.jobs.find_one({"_id": big})["embedding"]["status"] == "completed"


@pytest.mark.usefixtures("prefect_harness")
def test_real_messy_rows_import_and_run(settings, db):
    """The real NYC and LinkedIn rows: imported, run, every row accounted for with a reason."""
    from flows.refresh import similarity_refresh
    from jobsim.importer import PRESETS, map_rows
    from jobsim_app.tables import read_table
    from storage import imports

    jobs = imports(settings)
    total = 0
    for name, preset in [("nyc_jobs_2019.csv", "nyc"), ("linkedin_postings_2023_sample.csv", "linkedin")]:
        batch = map_rows(read_table(shared_file(name)).head(150), PRESETS[preset], preset, ignore_expiry=True)
        jobs.upsert_imported(batch.docs, datetime.now(timezone.utc))
        total += len(batch.docs)
    summary = asyncio.run(similarity_refresh())
    assert summary["seen"] == total
    assert summary["valid"] + summary["rejected"] + sum(summary["inactive"].values()) == total
    assert summary["rejected"] > 100  # most NYC rows have no description
    assert summary["embedded"] == summary["valid"] > 100
    assert "description is missing or not text" in summary["rejected_reasons"]
    assert db.jobs.count_documents({"embedding.status": "failed", "embedding.error": {"$regex": "^invalid: "}}) == summary["rejected"]
