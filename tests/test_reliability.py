"""Crashes and races: a killed run or a killed database converges on re-run, nothing lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jobsim_app import localdb
from storage.state import StateRepository
from tests.helpers import seed_jobs

pytestmark = pytest.mark.usefixtures("prefect_harness")
ROOT = Path(__file__).resolve().parents[1]


def refresh() -> dict:
    from flows.refresh import similarity_refresh

    return asyncio.run(similarity_refresh())


def snapshot(db) -> dict:
    """Everything a run decides, keyed by externalId (ObjectIds differ between databases)."""
    ext = {d["_id"]: d["externalId"] for d in db.jobs.find({}, {"externalId": 1})}
    out = {}
    for d in db.jobs.find({}):
        emb = d.get("embedding", {})
        out[d["externalId"]] = (
            emb.get("status"), emb.get("contentHash"), emb.get("error"),
            tuple((ext[i["jobId"]], i["score"]) for i in d.get("similarJobs", [])),
        )
    vectors = {ext[v["_id"]]: v["contentHash"] for v in db.job_embeddings.find({}, {"contentHash": 1})}
    return {"jobs": out, "vectors": vectors}


def clean_state(settings, monkeypatch, n: int, seed: int) -> dict:
    """The state a clean run reaches on the same data, in a database of its own."""
    from storage import connect

    monkeypatch.setenv("JOBSIM_MONGO__DATABASE", settings.mongo.database + "_clean")
    from jobsim.settings import Settings

    clean = Settings()
    seed_jobs(clean, n, seed=seed)
    refresh()
    state = snapshot(connect(clean.mongo))
    connect(clean.mongo).client.drop_database(clean.mongo.database)
    monkeypatch.setenv("JOBSIM_MONGO__DATABASE", settings.mongo.database)
    return state


def run_and_crash(target: str, nth: int) -> int:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "JOBSIM_MONGO__WRITE_BATCH_SIZE": "25"}
    proc = subprocess.run([sys.executable, "-m", "tests.crash_run", target, str(nth)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode


def test_edit_during_a_run_is_picked_up_by_the_next(settings, db, monkeypatch):
    from storage.jobs import JobsRepository

    seed_jobs(settings, 60, seed=5)
    victim = db.jobs.find_one({"status": "active", "isDeleted": False, "title": {"$type": "string"}})
    original = JobsRepository.changed_since

    def pull_then_app_edits(self, *args):
        docs = original(self, *args)
        # the web app saves an edit right after our pull read the old text
        db.jobs.update_one({"_id": victim["_id"]}, {"$set": {
            "title": "Inxhinier Ndërtimi i Urave", "updatedAt": datetime.now(timezone.utc)}})
        return docs

    monkeypatch.setattr(JobsRepository, "changed_since", pull_then_app_edits)
    refresh()
    stale = db.jobs.find_one({"_id": victim["_id"]})["embedding"]["contentHash"]
    monkeypatch.setattr(JobsRepository, "changed_since", original)
    second = refresh()
    assert second["embedded"] == 1
    fresh = db.jobs.find_one({"_id": victim["_id"]})["embedding"]["contentHash"]
    assert fresh != stale
    assert db.job_embeddings.find_one({"_id": victim["_id"]})["contentHash"] == fresh


@pytest.mark.slow
@pytest.mark.parametrize("target, nth", [("job_embeddings", 3), ("jobs:lists", 3)])
def test_killed_flow_process_converges_on_rerun(settings, db, monkeypatch, target, nth):
    monkeypatch.setenv("JOBSIM_OPS__WRITER_LEASE_S", "20")  # the re-run takes the killed run's lease over
    expected = clean_state(settings, monkeypatch, 150, seed=21)
    seed_jobs(settings, 150, seed=21)
    assert run_and_crash(target, nth) == -signal.SIGKILL
    if target == "job_embeddings":
        assert 0 < db.job_embeddings.count_documents({}) < len(expected["vectors"])
        # no extra "processing" write: the jobs not yet embedded are still pending, and the
        # watermark did not move, so the re-run pulls them again
        assert db.jobs.count_documents({"embedding.status": "processing"}) == 0
        assert db.jobs.count_documents({"embedding.status": "pending"}) > 0
    else:
        assert 0 < db.jobs.count_documents({"similarityMetadata": {"$exists": True}}) < sum(
            1 for v in expected["jobs"].values() if v[3])
    refresh()
    assert snapshot(db) == expected


def own_server(tmp_path, monkeypatch, seed: int):
    """A server of the test's own (to kill) with 120 seeded jobs; returns it and the settings."""
    from jobsim.settings import Settings

    server = localdb.start(tmp_path / "db")
    monkeypatch.setenv("JOBSIM_MONGO__URI", server.uri)
    monkeypatch.setenv("JOBSIM_MONGO__WRITE_BATCH_SIZE", "20")
    monkeypatch.setenv("JOBSIM_MONGO__TIMEOUT_MS", "1000")
    # the killed run cannot release its writer lease: the re-run takes it over once it is
    # this old (the default 300 s made this test wait five minutes)
    monkeypatch.setenv("JOBSIM_OPS__WRITER_LEASE_S", "20")
    own = Settings()
    try:
        seed_jobs(own, 120, seed=seed)
    except BaseException:
        localdb.stop_pid(server.pid)
        raise
    return server, own


@pytest.mark.slow
def test_database_killed_mid_write_back_then_rerun_equals_clean_run(tmp_path, monkeypatch, settings):
    """SIGKILL the MongoDB server during the write-back, start it again, re-run."""
    from storage import connect
    from storage.jobs import JobsRepository

    expected = clean_state(settings, monkeypatch, 120, seed=33)
    server, own = own_server(tmp_path, monkeypatch, seed=33)
    try:
        original = JobsRepository.write_lists

        def write_then_die(self, lists, *args, **kwargs):
            first = dict(list(lists.items())[:30])
            original(self, first, *args, **kwargs)
            localdb.kill(server)  # the database dies with most lists unwritten
            return original(self, lists, *args, **kwargs)

        monkeypatch.setattr(JobsRepository, "write_lists", write_then_die)
        with pytest.raises(Exception):
            refresh()
        monkeypatch.setattr(JobsRepository, "write_lists", original)
        server = localdb.start(tmp_path / "db", port=server.port)
        db = connect(own.mongo)
        # the lists are not journaled one by one, so some of the 30 may be lost; the mark still
        # says "writing", so the re-run diffs against the database, not its snapshot
        assert StateRepository(db).written_by() is None
        refresh()
        assert snapshot(db) == expected
    finally:
        localdb.stop_pid(server.pid)


@pytest.mark.slow
def test_database_killed_once_the_write_back_is_marked_keeps_every_list(tmp_path, monkeypatch, settings):
    """The lists are written unjournaled and the journaled "written" mark after them makes
    them durable: SIGKILL the server the moment that mark is acknowledged, start it again,
    and every list is there before any re-run."""
    from storage import connect

    expected = clean_state(settings, monkeypatch, 120, seed=34)
    server, own = own_server(tmp_path, monkeypatch, seed=34)
    try:
        original = StateRepository.mark_write_back

        def mark_then_die(self, run_id, phase):
            original(self, run_id, phase)
            if phase == "written":
                localdb.kill(server)

        monkeypatch.setattr(StateRepository, "mark_write_back", mark_then_die)
        with pytest.raises(Exception):
            refresh()
        monkeypatch.setattr(StateRepository, "mark_write_back", original)
        server = localdb.start(tmp_path / "db", port=server.port)
        db = connect(own.mongo)
        assert StateRepository(db).written_by() is not None
        assert snapshot(db) == expected
    finally:
        localdb.stop_pid(server.pid)
