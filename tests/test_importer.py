from datetime import datetime, timezone

import polars as pl
import pytest

from jobsim.errors import ImportFileError
from jobsim.importer import NATIVE, NYC, PRESETS, map_rows
from jobsim_app.tables import read_table
from jobsim.jobs import check_job
from tests.conftest import shared_file


def test_nyc_file_maps_with_reasons():
    df = read_table(shared_file("nyc_jobs_2019.csv"))
    batch = map_rows(df, NYC, "nyc")
    # the same Job ID is posted internally and externally: both are kept, keyed apart
    ids = [d["externalId"] for d in batch.docs]
    assert len(ids) == len(set(ids))
    assert any(i.endswith("-Internal") for i in ids) and any(i.endswith("-External") for i in ids)
    assert len(batch.docs) + len(batch.rejected) == df.height
    assert all(reason for _, _, reason in batch.rejected)
    # most NYC rows have no description: imported, but the pipeline rejects them with a reason
    now = datetime.now(timezone.utc)
    checks = [check_job({"_id": d["externalId"], **d, "expiresAt": None}, now) for d in batch.docs]
    no_desc = [c for c in checks if any("description is missing" in r for r in c.reasons)]
    assert len(no_desc) > 0.9 * len(batch.docs)
    assert sum(c.job is not None for c in checks) >= 10


def test_linkedin_file_maps_dates_levels_and_cities():
    batch = map_rows(read_table(shared_file("linkedin_postings_2023_sample.csv")), PRESETS["linkedin"], "li")
    assert len(batch.docs) == 1000 and not batch.rejected
    levels = {d.get("experienceLevel") for d in batch.docs}
    assert levels <= {None, "entry", "junior", "senior", "lead", "executive"} and len(levels) > 3
    dated = [d for d in batch.docs if "createdAt" in d]
    assert dated and all(d["createdAt"].year in (2023, 2024) for d in dated)
    assert all("," not in d["location"]["city"] for d in batch.docs if "location" in d)


def test_bad_rows_are_rejected_not_fatal(tmp_path):
    path = tmp_path / "jobs.csv"
    pl.DataFrame({
        "externalId": ["a", "b", None, "a", "c"],
        "title": ["Kontabilist", None, "Chef", "Dup", "Nurse"],
        "experienceLevel": ["mid", "mid", "mid", "mid", "wizard"],
        "expiresAt": ["2030-01-01", "2030-01-01", "2030-01-01", "2030-01-01", "soon"],
    }).write_csv(path)
    batch = map_rows(read_table(path), NATIVE, "csv")
    assert [d["externalId"] for d in batch.docs] == ["a"]
    reasons = {ext: reason for _, ext, reason in batch.rejected}
    assert reasons["b"] == "title is missing"
    assert reasons[""] == "missing id"
    assert reasons["a"] == "duplicate id within the file"
    assert "experienceLevel: unknown experience level 'wizard'" in reasons["c"]
    assert "expiresAt" in reasons["c"]


def test_unsupported_or_unreadable_files_raise_clear_errors(tmp_path):
    with pytest.raises(ImportFileError, match="unsupported file type"):
        read_table(tmp_path / "jobs.xlsx")
    with pytest.raises(ImportFileError, match="cannot read"):
        read_table(tmp_path / "missing.csv")
    (tmp_path / "x.csv").write_text("foo,bar\n1,2\n")
    with pytest.raises(ImportFileError, match="id column"):
        map_rows(read_table(tmp_path / "x.csv"), NATIVE, "csv")


def test_reimport_updates_instead_of_duplicating(settings, db, tmp_path):
    from jobsim_app.cli import main

    path = tmp_path / "jobs.jsonl"
    rows = [{"externalId": f"e{i}", "title": f"Job {i}", "description": "d" * 30} for i in range(5)]
    pl.DataFrame(rows).write_ndjson(path)
    assert main(["import", str(path)]) == 0
    assert main(["import", str(path)]) == 0
    assert db.jobs.count_documents({}) == 5
    assert db.jobs.count_documents({"embedding.status": "pending", "createdAt": {"$type": "date"}}) == 5


def test_insert_new_stores_postings_as_the_importer_does(settings, db):
    from bson import ObjectId

    from jobsim.synthetic import generate_jobs
    from storage import imports

    jobs = imports(settings)
    now = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    (a,) = generate_jobs(1, seed=4)
    b = {**a, "externalId": "other-key", "_id": ObjectId(), "embedding": {"status": "completed"}}
    assert jobs.upsert_imported([a], now) == (1, 0)
    stored = jobs.insert_new([b], now)
    assert stored[0]["_id"] == b["_id"]
    via_upsert = db.jobs.find_one({"externalId": a["externalId"]})
    via_insert = db.jobs.find_one({"_id": b["_id"]})
    strip = lambda d: {k: v for k, v in d.items() if k not in ("_id", "externalId")}  # noqa: E731
    assert strip(via_insert) == strip(via_upsert)
    assert via_insert["embedding"] == {"status": "pending", "attempts": 0}
    assert via_insert["updatedAt"].replace(tzinfo=timezone.utc) == now
