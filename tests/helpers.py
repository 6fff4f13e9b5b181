"""Test helpers that build real state in the local MongoDB."""

from __future__ import annotations

from datetime import datetime, timezone

from jobsim.settings import Settings
from jobsim.synthetic import generate_jobs
from storage import repositories


def seed_jobs(settings: Settings, n: int, seed: int = 3) -> int:
    """Insert ``n`` synthetic postings through the import path; returns how many were inserted."""
    jobs = repositories(settings.mongo).jobs
    jobs.ensure_indexes()
    inserted, _ = jobs.upsert_imported(generate_jobs(n, seed=seed), datetime.now(timezone.utc))
    return inserted
