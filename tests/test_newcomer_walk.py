"""The README's walk, as a newcomer runs it, in a fresh copy of the project (sharing only the
installed .venv): demo → stack up → a stack run processes the demo's jobs → import of the
LinkedIn sample (all expired) → a run that says nothing was embedded and why → re-import with
--ignore-expiry → lists written → the read side answers with no JOBSIM_ setting → stack down
leaves no process. Every step is a subprocess with the environment a newcomer has."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from jobsim_app import localdb
from jobsim_app.local import running
from tests.conftest import shared_file
from tests.ops_stack import Stack, _alive

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def copy_project(dest: Path) -> Path:
    """The project's files (tracked and new, not ignored) with their times; .venv linked."""
    stamp = ROOT / ".venv" / ".jobsim-installed"
    if not stamp.exists() or (ROOT / "pyproject.toml").stat().st_mtime > stamp.stat().st_mtime:
        pytest.skip("run scripts/setup.sh first: the walk shares the installed .venv and must not reinstall it")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def newcomer_env(home: Path, **extra: str) -> dict[str, str]:
    """A shell with no jobsim or Prefect settings, a home of its own (Prefect's, the caches)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSIM_", "PREFECT_"))}
    env.update(HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", **extra)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def headline_and_counts(out: str) -> tuple[str, dict[str, int]]:
    """The run summary's first line (its headline) and its counts, from the CLI's output."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if re.match(r"run \S+ \((incremental|full)\)$", line))
    headline = lines[at - 1].strip()  # the summary starts with a blank line, then the headline
    counts = {"pulled": int(re.search(r"jobs pulled ([\d,]+)", out).group(1).replace(",", "")),
              "written": int(re.search(r"lists written ([\d,]+)", out).group(1).replace(",", ""))}
    return headline, counts


SOON_S = 600  # a scheduled run due within this is waited for (a schedule's first run, or its next tick)


def wait_idle(stack: Stack, timeout_s: float = SOON_S + 300) -> None:
    """No flow run of the stack running or about to run (a schedule's first run included). The
    timeout outlasts the window: the daily incremental rule (no start date) ticks at 00:00 UTC, so a
    walk just before midnight waits up to 10 min for that run (CI at 23:5x UTC timed out at 300 s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = stack.post("/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": [
            "RUNNING", "PENDING", "CANCELLING"]}}}})
        soon = [r for r in stack.post("/flow_runs/filter", {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}})
                if Stack.parse_time(r["expected_start_time"]).timestamp() < time.time() + SOON_S]
        if not busy and not soon:
            return
        time.sleep(2)
    raise AssertionError("the stack's flow runs did not settle")


def test_the_newcomer_walk(tmp_path):
    linkedin = shared_file("linkedin_postings_2023_sample.csv")
    project = copy_project(tmp_path / "jobsim")
    home = tmp_path / "home"
    home.mkdir()
    env = newcomer_env(home)
    jobsim = str(project / ".venv" / "bin" / "jobsim")
    port = localdb.free_port()
    stack_env = newcomer_env(home, PREFECT_SERVER_PORT=str(port), PREFECT_WORKER_QUERY_SECONDS="2",
                             JOBSIM_OPS__INCREMENTAL_INTERVAL_MINUTES="1440")
    pids: dict[str, int] = {}
    missing_headline = ""
    try:
        demo = run(["bash", "scripts/demo.sh", "--n", "150"], project, env, timeout=900)
        assert "database jobsim_demo" in demo.stdout and "lists written" in demo.stdout
        record = json.loads((project / ".jobsim" / "local.json").read_text())["mongo"]
        pids["mongo"] = record["pid"]
        assert record["database"] == "jobsim_demo"

        up = run(["bash", "scripts/stack.sh", "up"], project, stack_env, timeout=600)
        api = f"http://127.0.0.1:{port}/api"
        assert "database jobsim_demo at mongodb://127.0.0.1:" in up.stdout and "answering" in up.stdout
        assert f"CLI env:    export PREFECT_HOME={project}/.jobsim/stack/prefect PREFECT_API_URL={api}" in up.stdout
        stack_dir = project / ".jobsim" / "stack"
        pids.update({n: int((stack_dir / f"{n}.pid").read_text()) for n in ("server", "worker")})
        status = run(["bash", "scripts/stack.sh", "status"], project, env)  # no PREFECT_SERVER_PORT: recorded
        assert f"{api} (healthy)" in status.stdout and "database jobsim_demo" in status.stdout

        # the UI's API: a stack run processes the demo's jobs (the worker's flows read the record)
        stack = Stack(api=api, ui=api[:-4], env=stack_env, database="jobsim_demo", dir=stack_dir)
        on_demand = stack.deployment("similarity-refresh", "on-demand")
        flow_run = stack.post(f"/deployments/{on_demand['id']}/create_flow_run", {"parameters": {"mode": "full"}})
        (done,) = stack.wait_finished([flow_run["id"]], timeout_s=400)
        assert done["state_type"] == "COMPLETED", done["state"]
        table = {a["key"]: a for a in stack.artifacts_of(done["id"])}["jobsim-run-counts"]["data"]
        metrics = {row["metric"]: row["value"] for row in (json.loads(table) if isinstance(table, str) else table)}
        assert metrics["jobs seen"] == 150 and metrics["active jobs with vectors"] > 100, metrics
        wait_idle(stack)

        # the LinkedIn sample: every posting expired, and the output says so
        imported = run([jobsim, "import", str(linkedin), "--preset", "linkedin"], project, env)
        assert "1,000 expired" in imported.stdout and "--ignore-expiry" in imported.stdout
        first = run([jobsim, "run"], project, env, timeout=900)
        headline, counts = headline_and_counts(first.stdout)
        assert counts["pulled"] >= 1000, first.stdout
        if not headline:  # checked at the end: the rest of the walk still runs
            missing_headline = "the run summary has no headline (summary['headline'] of the run report)"
        else:
            assert "nothing" in headline and "expired" in headline, headline

        again = run([jobsim, "import", str(linkedin), "--preset", "linkedin", "--ignore-expiry"], project, env)
        assert "1,000 of 1,000 rows will be embedded" in again.stdout
        second = run([jobsim, "run"], project, env, timeout=900)
        _, counts = headline_and_counts(second.stdout)
        assert counts["written"] >= 500, second.stdout

        # the read side with no JOBSIM_ setting at all: it finds the database in the record
        job = MongoClient(record["uri"])["jobsim_demo"].jobs.find_one(
            {"source": "linkedin", "similarJobs.0": {"$exists": True}}, {"_id": 1})
        api_port = localdb.free_port()
        serve = subprocess.Popen([str(project / ".venv/bin/python"), "-m", "api_export", "serve", "--port",
                                  str(api_port)], cwd=project, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        try:
            answer = None
            for _ in range(120):
                try:
                    answer = httpx.get(f"http://127.0.0.1:{api_port}/api/jobs/{job['_id']}/similar", timeout=10)
                    break
                except httpx.TransportError:
                    time.sleep(0.5)
            assert answer is not None and answer.status_code == 200, answer and answer.text
            body = answer.json()
            assert body["success"] and body["method"] == "semantic" and body["data"], body
        finally:
            serve.terminate()
            serve.wait(timeout=30)

        down = run(["bash", "scripts/stack.sh", "down"], project, env, timeout=120)
        assert "stopped worker" in down.stdout or "killed worker" in down.stdout
        for name in ("server", "worker"):
            assert not _alive(pids[name]), f"{name} (pid {pids[name]}) still runs after stack.sh down"
        assert running(record), "the demo's MongoDB is the demo's: stack.sh down leaves it"
    finally:
        subprocess.run(["bash", "scripts/stack.sh", "down"], cwd=project, env=env, capture_output=True, timeout=120)
        subprocess.run([jobsim, "db", "stop"], cwd=project, env=env, capture_output=True, timeout=60)
    assert not any(_alive(pid) for pid in pids.values()), pids
    assert not missing_headline, missing_headline
