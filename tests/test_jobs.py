from datetime import datetime, timedelta, timezone

import pytest

from jobsim.jobs import check_job

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)


def job(**overrides):
    doc = {
        "_id": "j1", "title": "Backend Engineer", "status": "active", "isDeleted": False,
        "description": "Build and run Python services for our job board.",
        "category": "IT", "tags": ["Python", "SQL"], "requirements": ["3 years"],
        "location": {"city": "Tirana", "remote": False}, "experienceLevel": "mid",
        "expiresAt": NOW + timedelta(days=3),
    }
    doc.update(overrides)
    return doc


def test_valid_job_becomes_a_record():
    checked = check_job(job(), NOW)
    assert checked.reasons == () and checked.inactive is None
    record = checked.job
    assert (record.id, record.title, record.city, record.experience_level) == ("j1", "Backend Engineer", "tirana", "mid")
    assert record.tags == ("Python", "SQL")


@pytest.mark.parametrize("overrides, inactive", [
    ({"status": "closed"}, "status 'closed'"),
    ({"status": "draft"}, "status 'draft'"),
    ({"isDeleted": True}, "deleted"),
    ({"expiresAt": NOW - timedelta(seconds=1)}, "expired"),
    ({"expiresAt": NOW}, "expired"),
])
def test_inactive_jobs_are_set_aside_not_rejected(overrides, inactive):
    checked = check_job(job(**overrides), NOW)
    assert checked.job is None and checked.inactive == inactive and checked.reasons == ()


@pytest.mark.parametrize("overrides, fragment", [
    ({"title": "QA"}, "title must be 3-200 characters (got 2)"),
    ({"title": "x" * 201}, "title must be 3-200 characters (got 201)"),
    ({"title": "🚀🚀🚀🚀"}, "title must be 3-200 characters (got 0)"),
    ({"title": 12345}, "title is missing or not text (got int)"),
    ({"title": None}, "title is missing or not text (got NoneType)"),
    ({"description": "Too short"}, "description must be at least 20 characters (got 9)"),
    ({"description": ["a", "b"]}, "description is missing or not text (got list)"),
    ({"expiresAt": "next week"}, "expiresAt must be a date, got 'next week'"),
    ({"expiresAt": "2027-01-01T00:00:00Z"}, "expiresAt must be a date, got '2027-01-01T00:00:00Z'"),
    ({"expiresAt": 1767225600}, "expiresAt must be a date, got int"),
    ({"_id": "x:int:EAAAABB2ACoAAAAA"}, "_id of type int is not supported"),
    ({"experienceLevel": "guru"}, "experienceLevel 'guru' is not one of"),
    ({"location": "Tirana"}, "location is not an object (got str)"),
    ({"tags": {"$ne": 1}}, "tags: expected a list of strings, got dict"),
    ({"category": 7}, "category: category is not text (got int)"),
])
def test_invalid_jobs_are_rejected_with_a_readable_reason(overrides, fragment):
    checked = check_job(job(**overrides), NOW)
    assert checked.job is None and checked.inactive is None
    assert any(fragment in reason for reason in checked.reasons), checked.reasons


def test_all_reasons_are_reported_together():
    checked = check_job(job(title=1, description=None), NOW)
    assert len(checked.reasons) == 2


def test_lenient_on_unambiguous_forms():
    checked = check_job(job(tags="Python, SQL", expiresAt=datetime(2027, 1, 1)), NOW)
    assert checked.job is not None
    assert checked.job.tags == ("Python", "SQL")
    assert checked.job.expires_at == datetime(2027, 1, 1, tzinfo=timezone.utc)  # naive BSON dates are UTC


def test_a_string_expiry_on_a_closed_job_is_only_inactive():
    assert check_job(job(status="closed", expiresAt="soon"), NOW).inactive == "status 'closed'"


def test_missing_status_is_not_active_as_for_the_read_side():
    doc = job()
    del doc["status"]
    assert check_job(doc, NOW).inactive == "status None"
