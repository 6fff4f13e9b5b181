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


# --- file edge cases: jobsim-worded errors that name the line ------------------------------

def test_latin1_csv_is_refused_with_its_line_and_read_with_encoding(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("externalId,title,description\n"
                     "a,Kontabilist,Mbajtja e librave dhe raportet mujore\n"
                     "b,Përgjegjës shitjesh,Menaxhim i ekipit të shitjeve në Tiranë\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match=r"latin1.csv line 3: not UTF-8 text .*--encoding latin-1"):
        read_table(path)
    df = read_table(path, encoding="latin-1")
    assert df["title"].to_list() == ["Kontabilist", "Përgjegjës shitjesh"]


def test_header_only_empty_ragged_and_broken_files_name_the_problem(tmp_path):
    cases = {
        "header.csv": ("externalId,title,description\n", "header.csv has a header but no rows"),
        "empty.csv": ("", "empty.csv is empty"),
        "ragged.csv": ("externalId,title\na,Chef\nb,Nurse,extra\nc,Cook\n",
                       "ragged.csv line 3: 3 fields where the header has 2"),
        "broken.jsonl": ('{"externalId": "a", "title": "Chef"}\n{"externalId": "b", "title": \n',
                         "broken.jsonl line 2: not valid JSON"),
        "list.jsonl": ('{"externalId": "a"}\n[1, 2]\n', "list.jsonl line 2: expected a JSON object"),
        "blank.jsonl": ("\n\n", "blank.jsonl has no rows"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(ImportFileError) as caught:
            read_table(tmp_path / name)
        assert message in str(caught.value), (name, str(caught.value))
        assert "truncate_ragged_lines" not in str(caught.value)


def test_csv_reading_matches_polars_on_the_shared_files():
    for name in ("linkedin_postings_2023_sample.csv", "nyc_jobs_2019.csv"):
        path = shared_file(name)
        assert read_table(path).equals(pl.read_csv(path, infer_schema_length=0))


def test_cli_import_errors_are_one_line_with_exit_codes(tmp_path):
    from tests.cli_helpers import assert_one_clean_line, jobsim

    (tmp_path / "ragged.csv").write_text("externalId,title\na,Chef\nb,Nurse,extra\n")
    line = assert_one_clean_line(jobsim("import", "ragged.csv", cwd=tmp_path), 2, "line 3")
    assert "ragged" in line
    (tmp_path / "latin1.csv").write_bytes("externalId,title\na,Përgjegjës\n".encode("latin-1"))
    assert_one_clean_line(jobsim("import", "latin1.csv", cwd=tmp_path), 2, "line 2", "--encoding")
    assert_one_clean_line(jobsim("import", "missing.csv", cwd=tmp_path), 2, "missing.csv")
    # every row rejected: nothing to import, exit 1, and the table says why
    (tmp_path / "untitled.csv").write_text("externalId,title\na,\nb,\n")
    result = jobsim("import", "untitled.csv", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "title is missing" in result.stdout and "nothing imported" in result.stdout


# --- what the import will lead to ----------------------------------------------------------

def test_outlook_counts_reasons_with_examples():
    from jobsim.import_report import outlook

    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    rows = [
        {"externalId": "ok", "title": "Kontabilist", "description": "Mbajtja e librave të kontabilitetit"},
        *[{"externalId": f"old{i}", "title": f"Chef {i}", "description": "Gatim për restorantin tonë në qendër",
           "expiresAt": "2024-01-01"} for i in range(5)],
        {"externalId": "shut", "title": "Nurse", "description": "Kujdes për pacientët në spital",
         "status": "closed"},
        {"externalId": "short", "title": "Cook", "description": "too short"},
        {"externalId": "", "title": "No id"},
    ]
    report = outlook(map_rows(pl.DataFrame(rows), NATIVE, "t"), now)
    assert (report.read, report.imported, report.embeddable) == (9, 8, 1)
    assert report.not_embedded["expired"].rows == 5
    assert [e.external_id for e in report.not_embedded["expired"].examples] == ["old0", "old1", "old2"]
    assert report.not_embedded["expired"].examples[0].row == 2
    assert report.not_embedded["closed"].rows == 1
    assert report.not_embedded["description must be at least 20 characters"].rows == 1
    assert report.rejected["missing id"].rows == 1
    assert report.headline() == ("1 of 9 rows will be embedded: 5 expired, 1 closed, 1 description must "
                                 "be at least 20 characters, 1 rejected; re-import with --ignore-expiry "
                                 "to keep the expired ones")


def test_linkedin_sample_all_expired_then_ignore_expiry_clears_the_stored_expiry(settings, db, tmp_path):
    """The CLI on the real sample: every row expired, said plainly; a re-import with
    --ignore-expiry clears the expiry stored by the first import (same rows, same keys)."""
    from tests.cli_helpers import clean_env, jobsim

    path = shared_file("linkedin_postings_2023_sample.csv")
    env = clean_env(JOBSIM_MONGO__URI=settings.mongo.uri.get_secret_value(),
                    JOBSIM_MONGO__DATABASE=settings.mongo.database)
    first = jobsim("import", str(path), "--preset", "linkedin", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert ("0 of 1,000 rows will be embedded: 1,000 expired; re-import with --ignore-expiry to keep them"
            in first.stdout)
    assert "1,000  expired" in first.stdout and first.stdout.count("              row ") == 3
    assert db.jobs.count_documents({"expiresAt": {"$type": "date"}}) == 1000
    again = jobsim("import", str(path), "--preset", "linkedin", "--ignore-expiry", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1,000 of 1,000 rows will be embedded" in again.stdout
    assert "(0 new, 1,000 updated)" in again.stdout
    assert db.jobs.count_documents({}) == 1000
    assert db.jobs.count_documents({"expiresAt": {"$exists": True}}) == 0


def test_upsert_imported_updates_known_keys_and_takes_a_key_twice(settings, db):
    from storage import imports

    jobs = imports(settings)
    jobs.ensure_indexes()
    now = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    first = {"source": "s", "externalId": "1", "title": "A", "expiresAt": datetime(2025, 1, 1, tzinfo=timezone.utc)}
    inserted, updated = jobs.upsert_imported([first, {**first, "title": "B"}], now)
    assert inserted == 1 and db.jobs.count_documents({}) == 1
    assert db.jobs.find_one()["title"] == "B"
    db.jobs.update_one({}, {"$set": {"embedding.status": "completed"}})
    assert jobs.upsert_imported([{"source": "s", "externalId": "1", "title": "C"}], now,
                                unset=("expiresAt",)) == (0, 1)
    stored = db.jobs.find_one()
    assert stored["title"] == "C" and "expiresAt" not in stored
    assert stored["embedding"]["status"] == "completed"  # an update keeps the pipeline's fields
