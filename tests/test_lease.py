"""Never two writers: the writer lease in the database, on the in-memory twin and on the real
server, and two real flow processes started together against one database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobsim.errors import BusyError
from jobsim.memory import MemoryState
from jobsim.stages.lease import WRITER, WriterLease
from tests.embedding_server import EmbeddingServer

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


def lease_semantics(state) -> None:
    ttl = timedelta(seconds=30)
    first = state.acquire_lease(WRITER, "run-a", NOW, ttl)
    assert first["owner"] == "run-a"
    assert state.acquire_lease(WRITER, "run-b", NOW + timedelta(seconds=10), ttl) is None  # held
    assert state.acquire_lease(WRITER, "run-a", NOW + timedelta(seconds=10), ttl)["owner"] == "run-a"  # ours
    assert state.renew_lease(WRITER, "run-a", NOW + timedelta(seconds=20), ttl)
    assert state.acquire_lease(WRITER, "run-b", NOW + timedelta(seconds=45), ttl) is None  # renewed: still held
    taken = state.acquire_lease(WRITER, "run-b", NOW + timedelta(seconds=51), ttl)  # expired: taken over
    assert taken["owner"] == "run-b"
    assert not state.renew_lease(WRITER, "run-a", NOW + timedelta(seconds=52), ttl)  # run-a knows it lost it
    state.release_lease(WRITER, "run-a")  # not its lease any more: nothing happens
    assert state.lease(WRITER)["owner"] == "run-b"
    state.release_lease(WRITER, "run-b")
    assert state.lease(WRITER) is None


def test_lease_semantics_in_memory():
    lease_semantics(MemoryState())


def test_lease_semantics_on_the_real_server(db, settings):
    from storage import repositories

    lease_semantics(repositories(settings).state)


def test_a_second_writer_waits_then_gives_up_with_a_clear_error():
    state = MemoryState()
    with WriterLease(state, "run-a", ttl_s=30, wait_s=0):
        started = time.monotonic()
        with pytest.raises(BusyError, match=r"another run \(run-a.*JOBSIM_OPS__WRITER_WAIT_S"):
            with WriterLease(state, "run-b", ttl_s=30, wait_s=0.3, poll_s=0.05):
                pass
        assert 0.3 <= time.monotonic() - started < 5
    with WriterLease(state, "run-b", ttl_s=30, wait_s=0):  # released: free again
        assert state.lease(WRITER)["owner"] == "run-b"


def test_a_waiting_writer_gets_the_lease_when_the_first_finishes():
    state = MemoryState()
    order: list[str] = []
    first = WriterLease(state, "run-a", ttl_s=30, wait_s=0)
    first.__enter__()

    def second() -> None:
        with WriterLease(state, "run-b", ttl_s=30, wait_s=10, poll_s=0.05):
            order.append("b writes")

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    order.append("a writes")
    first.__exit__(None, None, None)
    thread.join(5)
    assert order == ["a writes", "b writes"]


def test_heartbeat_keeps_the_lease_and_a_lost_lease_stops_writes():
    state = MemoryState()
    clock = {"now": NOW}
    lease = WriterLease(state, "run-a", ttl_s=6, wait_s=0, clock=lambda: clock["now"])
    with lease:
        clock["now"] += timedelta(seconds=5)
        time.sleep(2.5)  # a beat every 2 s renews it at the clock's "now"
        assert state.lease(WRITER)["expiresAt"] >= NOW + timedelta(seconds=11)
        assert state.acquire_lease(WRITER, "run-b", NOW + timedelta(seconds=8), timedelta(seconds=6)) is None
        state.leases[WRITER]["owner"] = "run-b"  # taken over (as after a pause longer than the TTL)
        time.sleep(2.5)
        with pytest.raises(BusyError, match="lost the writer lease"):
            lease.check()


def test_runs_left_running_by_dead_processes_are_marked_crashed():
    state = MemoryState()
    state.start_run("dead", "full", NOW, {})
    state.start_run("done", "full", NOW, {})
    state.finish_run("done", "completed", NOW, {})
    with WriterLease(state, "new-run", ttl_s=30, wait_s=0):
        pass
    assert state.runs["dead"]["status"] == "crashed" and state.runs["done"]["status"] == "completed"


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_two_flow_processes_started_together_embed_once(settings, db):
    """Two real flow processes on one database at the same moment: one writes, the other
    waits for the lease, then finds nothing to embed; the embedding requests equal one run's."""
    from prefect.settings import PREFECT_API_URL

    from tests.helpers import seed_jobs

    seed_jobs(settings, 120, seed=12)
    with EmbeddingServer(dimensions=64, latency=0.2) as server:
        env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(),
               "JOBSIM_MONGO__URI": settings.mongo.uri.get_secret_value(),
               "JOBSIM_MONGO__DATABASE": settings.mongo.database,
               "JOBSIM_NEIGHBOURS__STATE_DIR": settings.neighbours.state_dir,
               "JOBSIM_EMBEDDING__PROVIDER": "openai", "JOBSIM_EMBEDDING__BASE_URL": server.url,
               "JOBSIM_EMBEDDING__API_KEY": "test-key", "JOBSIM_EMBEDDING__DIMENSIONS": "64",
               "JOBSIM_EMBEDDING__BATCH_MAX_INPUTS": "16"}
        code = "import asyncio; from flows.refresh import similarity_refresh; print(asyncio.run(similarity_refresh(mode='full'))['embedded'])"
        procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=600) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
        embedded = sorted(int(o[0].strip().splitlines()[-1]) for o in outs)
        valid = db.jobs.count_documents({"embedding.status": "completed"})
        assert embedded == [0, valid]  # one run embedded everything, the other nothing
        assert len({tuple(r.inputs) for r in server.requests}) == len(server.requests)  # nothing sent twice
        assert sum(len(r.inputs) for r in server.requests) <= valid
    runs = list(db.pipeline_state.find({"kind": "run"}))
    assert len(runs) == 2 and all(r["status"] == "completed" for r in runs)
    spans = sorted((r["startedAt"], r["finishedAt"]) for r in runs)
    assert spans[0][1] <= spans[1][0]  # the second started writing after the first finished
