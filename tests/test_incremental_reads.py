"""An incremental run reads what changed, not the whole collection: with the local snapshot
warm, the vector documents read equal the jobs whose text changed, and every job document
read belongs to a job the run pulled. A snapshot the database does not vouch for costs a
full read."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pymongo import monitoring

from tests.helpers import seed_jobs

pytestmark = pytest.mark.usefixtures("prefect_harness")


class DocsRead(monitoring.CommandListener):
    """Documents returned per collection by find/getMore, while ``on``."""

    def __init__(self) -> None:
        self.on, self.lock = False, threading.Lock()
        self.pending: dict[int, str] = {}
        self.cursors: dict[int, str] = {}  # open cursor id -> what it reads
        self.docs: Counter = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        name = command.get("find") or (self.cursors.get(command.get("getMore")) if "getMore" in command else None)
        if name == "job_embeddings" and "vector" in (command.get("projection") or {}):
            name = "vectors"  # the vectors themselves (not the hash lookups)
        if self.on and name:
            with self.lock:
                self.pending[event.request_id] = name

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        with self.lock:
            name = self.pending.pop(event.request_id, None)
        cursor = event.reply.get("cursor") if name else None
        if cursor:
            self.docs[name] += len(cursor.get("firstBatch", cursor.get("nextBatch", [])))
            self.cursors[cursor.get("id")] = name

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.pending.pop(event.request_id, None)


@pytest.fixture
def reads():
    from storage import mongo

    listener = DocsRead()
    monitoring.register(listener)  # applies to clients created from now on
    mongo._client.cache_clear()
    yield listener
    listener.on = False
    mongo._client.cache_clear()


def run(mode: str = "incremental") -> dict:
    from flows.refresh import similarity_refresh

    return asyncio.run(similarity_refresh(mode=mode))


def test_a_warm_incremental_run_reads_only_what_changed(settings, db, reads, monkeypatch):
    monkeypatch.setenv("JOBSIM_WATERMARK_OVERLAP_S", "0")
    seed_jobs(settings, 150, seed=23)
    first = run()
    assert first["lists_written"] > 100
    edited = [d["_id"] for d in db.jobs.find({"embedding.status": "completed"}, {"_id": 1}).limit(3)]
    for i, job_id in enumerate(edited):
        db.jobs.update_one({"_id": job_id}, {"$set": {"description": f"New duties {i}: forklift driving and "
                                                                     "warehouse inventory in Durrës.",
                                                      "updatedAt": datetime.now(timezone.utc)}})
    reads.on = True
    second = run()
    reads.on = False
    assert second["seen"] == 3 and second["embedded"] == 3 and second["search"]["mode"] == "incremental"
    assert reads.docs["vectors"] == 3  # the changed vectors only
    # the pull's light read of the jobs in a non-final embedding state (rejected ones, drafts
    # imported as pending: the rule leaves them), then per pulled job: its fields, its
    # snapshot fields, its stored list
    waiting = db.jobs.count_documents({"embedding.status": {"$in": [None, "pending", "processing", "failed"]}})
    assert 0 < waiting < 30 and reads.docs["jobs"] <= waiting + 3 * second["seen"]

    reads.docs.clear()
    reads.on = True
    nothing = run()  # nothing changed: the pull's queries, nothing else read
    reads.on = False
    assert nothing["seen"] == 0 and nothing["lists_written"] == 0
    assert nothing["search"]["mode"] == "unchanged"  # the stored lists kept, not recomputed
    assert nothing["active_vectors"] == second["active_vectors"] and nothing["lists_check"] == second["lists_check"]
    assert reads.docs["vectors"] == reads.docs["job_embeddings"] == 0 and reads.docs["jobs"] == waiting


def test_a_snapshot_the_database_does_not_vouch_for_costs_a_full_read(settings, db, reads):
    seed_jobs(settings, 60, seed=24)
    run()
    db.pipeline_state.update_one({"_id": "write-back"}, {"$set": {"phase": "writing"}})  # an interrupted write-back
    reads.on = True
    again = run()
    reads.on = False
    stored = db.job_embeddings.count_documents({})
    assert reads.docs["vectors"] == stored > 40  # every vector read again
    assert again["lists_written"] == 0  # and nothing needed rewriting


def snapshot_of_last_write_back(settings, db) -> Path:
    """The local snapshot folder the database vouches for (its token is the last write-back's run)."""
    token = db.pipeline_state.find_one({"_id": "write-back"})["runId"]
    metas = Path(settings.neighbours.state_dir).glob("snapshot-*/meta.json")
    return next(m.parent for m in metas if json.loads(m.read_text())["token"] == token)


def test_a_run_where_only_time_passed_rewrites_only_the_snapshots_lists(settings, db, monkeypatch):
    """A job that expires by time changes lists, not the snapshot's docs or vectors: the
    write-back links those files into the new snapshot (same inodes) and writes its lists; the
    next run starts from it and keeps the lists."""
    monkeypatch.setenv("JOBSIM_WATERMARK_OVERLAP_S", "0")
    seed_jobs(settings, 60, seed=26)
    started = time.monotonic()
    assert run()["lists_written"] > 40
    margin = max(15.0, 2 * (time.monotonic() - started))  # the next run (one job) must end before it expires
    counts = Counter(n["jobId"] for d in db.jobs.find({}, {"similarJobs": 1}) for n in d.get("similarJobs", []))
    victim = counts.most_common(1)[0][0]  # the job listed most (its stored id)
    expires = datetime.now(timezone.utc) + timedelta(seconds=margin)
    db.jobs.update_one({"_id": victim}, {"$set": {"expiresAt": expires, "updatedAt": datetime.now(timezone.utc)}})
    assert run()["seen"] == 1 and datetime.now(timezone.utc) < expires  # the app gave it an expiry
    def inodes() -> list[int]:  # docs, vector keys, the matrix's pieces, lists
        folder = snapshot_of_last_write_back(settings, db)
        pieces = [f"piece-{p['name']}.npy" for p in json.loads((folder / "meta.json").read_text())["pieces"]]
        return [(folder / name).stat().st_ino for name in ("docs.bson", "vector_keys.bson", *pieces, "lists.bson")]
    before = inodes()
    time.sleep((expires - datetime.now(timezone.utc)).total_seconds() + 0.5)
    expired = run()  # it expired in between: nothing pulled, lists recomputed
    assert expired["seen"] == 0 and expired["search"]["mode"] == "incremental" and expired["lists_written"] > 0
    assert db.jobs.count_documents({"similarJobs.jobId": victim}) == 0
    after = inodes()
    assert after[:-1] == before[:-1] and after[-1] != before[-1]  # docs and vectors linked, lists written
    again = run()
    assert again["search"]["mode"] == "unchanged" and again["lists_written"] == 0
