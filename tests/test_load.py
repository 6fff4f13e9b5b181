"""The read endpoint under loopback load while a run rewrites lists: no errors, no torn lists."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import uvicorn

from jobsim_app.localdb import free_port
from tests.helpers import seed_jobs

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = 2000


def lists(db) -> dict[str, list[str]]:
    return {str(d["_id"]): [str(i["jobId"]) for i in d["similarJobs"]]
            for d in db.jobs.find({"similarJobs.0": {"$exists": True}}, {"similarJobs": 1})}


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_reads_under_load_while_a_run_writes_see_old_or_new_lists(settings, db, tmp_path):
    from api_export.app import create_app
    from flows.refresh import similarity_refresh

    seed_jobs(settings, 120, seed=9)
    asyncio.run(similarity_refresh())
    before = lists(db)
    # edits that change many lists in the next run's write-back
    for doc in db.jobs.find({"status": "active", "isDeleted": False}).limit(25):
        db.jobs.update_one({"_id": doc["_id"]}, {"$set": {
            "title": f"Operator Call Center {doc['_id']}", "category": "Customer Service",
            "updatedAt": datetime.now(timezone.utc)}})

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    ids_file, out = tmp_path / "ids.json", tmp_path / "out.jsonl"
    ids_file.write_text(json.dumps(sorted(before)))
    client = subprocess.Popen([sys.executable, "-m", "tests.load_client", f"http://127.0.0.1:{port}",
                               str(ids_file), str(REQUESTS), str(out)], cwd=ROOT)
    try:
        summary = asyncio.run(similarity_refresh())  # writes while the client reads
        assert client.wait(timeout=300) == 0
    finally:
        client.kill()
        server.should_exit = True
        thread.join(timeout=10)
    after = lists(db)
    assert summary["lists_written"] > 20

    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == REQUESTS
    assert all(r["status"] == 200 for r in results), {r["status"] for r in results}
    for r in results:
        if r["method"] == "semantic":
            # a reader sees a prefix-filtered old list or new list, never a mix of the two
            old, new = before.get(r["id"], []), after.get(r["id"], [])
            assert r["scored"] in (old, new) or _subsequence(r["scored"], old) or _subsequence(r["scored"], new), r
    assert any(before[i] != after.get(i) for i in before)


def _subsequence(items: list[str], full: list[str]) -> bool:
    """``items`` are ``full`` with some entries filtered out (neighbours that left), in order."""
    it = iter(full)
    return all(x in it for x in items)
