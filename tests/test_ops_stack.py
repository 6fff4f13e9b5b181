"""The operator stack for real: Prefect server, work pool, deployments from prefect.yaml, a
worker, the bulk-import event trigger and the no-overlap rule (scripts/stack.sh up/down)."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pymongo import MongoClient

from jobsim.jobs import check_job
from jobsim.synthetic import generate_jobs

ROOT = Path(__file__).resolve().parents[1]

# one stack for the session, shared by the ops and browser modules
pytest_plugins = ["tests.ops_stack"]

pytestmark = pytest.mark.slow

DEPLOYMENTS = {
    ("similarity-refresh", "incremental"), ("similarity-refresh", "full-rebuild"),
    ("similarity-refresh", "on-demand"), ("refresh-after-import", "after-import"),
    ("retry-failed-embeddings", "retry-failed"), ("recompute-jobs", "recompute-jobs"),
    ("housekeeping", "housekeeping"),
}


def import_file(stack, tmp_path, n: int, seed: int) -> tuple[str, str]:
    """`jobsim import` of ``n`` synthetic postings; returns (import id, CLI output)."""
    path = stack.write_jsonl(tmp_path / f"jobs-{seed}.jsonl", generate_jobs(n, seed=seed))
    out = stack.cli("import", str(path), "--preset", "native", "--source", f"test{seed}").stdout
    found = re.search(r"emitted jobsim.import.completed \(import (\S+)\)", out)
    assert found, out
    return found.group(1), out


def runs_for_import(stack, import_id: str) -> list[dict]:
    dep = stack.deployment("refresh-after-import", "after-import")
    return [r for r in stack.runs_of(dep["id"]) if r["parameters"].get("import_id") == import_id]


def wait_for_runs(fetch, count: int, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = fetch()
        if len(runs) >= count:
            return runs
        time.sleep(0.5)
    raise AssertionError(f"expected {count} runs within {timeout_s} s, found {len(fetch())}")


def history_of(stack, run_id: str) -> list[str]:
    """The names of a flow run's states, in order."""
    return [s["name"] for s in stack.get(f"/flow_run_states/?flow_run_id={run_id}")]


def report_of(stack, run_id: str) -> tuple[str, list[dict]]:
    arts = {a["key"]: a for a in stack.artifacts_of(run_id)}
    assert {"jobsim-run-report", "jobsim-run-counts"} <= arts.keys(), list(arts)
    import json

    table = arts["jobsim-run-counts"]["data"]
    return arts["jobsim-run-report"]["data"], json.loads(table) if isinstance(table, str) else table


def test_stack_deploys_every_deployment_with_schedules_and_limits(stack):
    for flow, name in DEPLOYMENTS:
        dep = stack.deployment(flow, name)
        assert dep["work_pool_name"] == "jobsim"
        assert dep["global_concurrency_limit"]["limit"] == 1, name
        strategy = dep["concurrency_options"]["collision_strategy"]
        assert strategy == ("CANCEL_NEW" if name == "incremental" else "ENQUEUE"), name
    incremental = stack.deployment("similarity-refresh", "incremental")
    assert "FREQ=MINUTELY;INTERVAL=15" in incremental["schedules"][0]["schedule"]["rrule"]
    full = stack.deployment("similarity-refresh", "full-rebuild")
    assert full["schedules"][0]["schedule"]["cron"] == "0 3 * * *"
    assert full["parameters"] == {"mode": "full"}
    assert stack.get("/work_pools/jobsim")["type"] == "process"
    assert stack.get("/v2/concurrency_limits/jobsim-writer")["limit"] == 1
    triggers = stack.post("/automations/filter", {})
    assert any(t["trigger"].get("expect") == ["jobsim.import.completed"] for t in triggers)


def test_import_event_starts_exactly_one_run_with_the_import_parameters(stack, tmp_path):
    import_id, out = import_file(stack, tmp_path, n=60, seed=11)
    assert "60 rows imported (60 new, 0 updated)" in out
    (run,) = wait_for_runs(lambda: runs_for_import(stack, import_id), 1)
    (done,) = stack.wait_finished([run["id"]])
    assert done["state_type"] == "COMPLETED", done["state"]
    p = done["parameters"]
    assert (p["rows"], p["inserted"], p["updated"], p["rejected"], p["source"]) == (60, 60, 0, 0, "test11")
    assert p["file"] == "jobs-11.jsonl"
    time.sleep(3)  # a second trigger firing late would show up here
    assert len(runs_for_import(stack, import_id)) == 1
    report, table = report_of(stack, done["id"])
    assert import_id in report and "## Score distribution" in report
    assert "data:image/svg+xml;base64," in report
    metrics = {row["metric"]: row["value"] for row in table}
    # the stack is shared: postings of earlier tests may be re-checked (watermark overlap)
    # with their vectors current; exactly this import's valid postings are newly embedded
    now = datetime.now(timezone.utc)
    new_valid = sum(check_job({"_id": d["externalId"], **d}, now, 90).job is not None  # active or closed < 90 days
                    for d in generate_jobs(60, seed=11))
    assert metrics["jobs seen"] >= 60 and metrics["embedded"] == new_valid > 30
    assert metrics["embedded"] <= metrics["valid"]
    assert "cost (USD)" in metrics


def test_two_events_at_once_never_write_concurrently(stack, tmp_path):
    """Two imports at once, plus an on-demand run: the after-import deployment's own limit
    queues its second run, and the shared writer limit keeps every writing section apart.
    The test holds the writer lease until the second run is queued, so the first is still
    running then (else a fast first run may end before the second is even picked up)."""
    from jobsim.stages.lease import WRITER
    from storage.state import StateRepository

    docs = generate_jobs(80, seed=21)
    ids = []
    for part, chunk in enumerate((docs[:40], docs[40:])):
        path = stack.write_jsonl(tmp_path / f"part{part}.jsonl", chunk)
        ids.append(path)
    with MongoClient(stack.env["JOBSIM_MONGO__URI"]) as client:
        state = StateRepository(client[stack.database])
        assert state.acquire_lease(WRITER, "the test", datetime.now(timezone.utc), timedelta(seconds=240)) is not None
        try:
            procs = [subprocess.Popen([str(ROOT / ".venv/bin/jobsim"), "import", str(p), "--preset", "native",
                                       "--source", "burst"], cwd=ROOT, env=stack.env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for p in ids]
            on_demand = stack.deployment("similarity-refresh", "on-demand")
            manual = stack.post(f"/deployments/{on_demand['id']}/create_flow_run", {})
            import_ids = []
            for proc in procs:
                out, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err
                import_ids.append(re.search(r"\(import (\S+)\)", out).group(1))
            runs = [wait_for_runs(lambda i=i: runs_for_import(stack, i), 1)[0] for i in import_ids]
            wait_for_runs(lambda: [r for r in runs if "AwaitingConcurrencySlot" in history_of(stack, r["id"])], 1,
                          timeout_s=120)
        finally:
            state.release_lease(WRITER, "the test")
    finished = stack.wait_finished([r["id"] for r in runs] + [manual["id"]], timeout_s=180)
    assert [r["state_type"] for r in finished] == ["COMPLETED"] * 3, [r["state"] for r in finished]
    # the two runs of one deployment never ran at the same time
    (a, b) = sorted(finished[:2], key=lambda r: r["start_time"])
    assert stack.parse_time(a["end_time"]) <= stack.parse_time(b["start_time"])
    history = history_of(stack, b["id"])
    assert "AwaitingConcurrencySlot" in history, history  # it was held back, not just lucky
    # and no two writing sections (start_run .. finish_run, inside the writer slot) overlapped
    with MongoClient(stack.env["JOBSIM_MONGO__URI"]) as client:
        records = {d["runId"]: d for d in client[stack.database].pipeline_state.find({"kind": "run"})}
    spans = sorted((records[r["id"]]["startedAt"], records[r["id"]]["finishedAt"]) for r in finished)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start, spans


def test_scheduled_deployment_runs_through_the_worker(stack):
    dep = stack.deployment("similarity-refresh", "incremental")
    run = stack.post(f"/deployments/{dep['id']}/create_flow_run", {})
    (done,) = stack.wait_finished([run["id"]])
    if done["state_type"] == "CANCELLED":
        # A schedule tick (every 15 minutes, on the quarter hour; the worker takes a run up to 10 s
        # early) held the deployment's one slot, and CANCEL_NEW dropped this run, as prefect.yaml
        # says: the tick's run is the one to check.
        ticks = [r for r in stack.runs_of(dep["id"]) if r["auto_scheduled"] and r["state_type"] != "SCHEDULED"]
        assert ticks, done["state"]
        (done,) = stack.wait_finished([ticks[-1]["id"]])
    assert done["state_type"] == "COMPLETED", done["state"]
    assert done["work_pool_name"] == "jobsim" and done["parameters"] == {"mode": "incremental"}
    report, table = report_of(stack, done["id"])
    metrics = {row["metric"]: row["value"] for row in table}
    assert {"jobs seen", "embedded", "failed", "tokens", "cost (USD)", "lists written"} <= metrics.keys()
    assert "## Timings" in report and "data:image/svg+xml;base64," in report


def test_status_finds_the_port_up_started(stack):
    """`stack.sh status` without PREFECT_SERVER_PORT: the address `up` recorded in stack.json."""
    from tests.ops_stack import stack_sh

    env = {k: v for k, v in stack.env.items() if k not in ("PREFECT_SERVER_PORT", "PREFECT_API_URL")}
    out = stack_sh("status", env, timeout=60).stdout
    assert f"Prefect API: {stack.api} (healthy)" in out, out
    assert "server: running" in out and "worker: running" in out
    assert f"database {stack.database} at mongodb://127.0.0.1:" in out and "answering" in out, out
