"""The operator stack for ops tests: `scripts/stack.sh up` on a free port, `down` at the end.

Session-scoped, so the stack tests and the browser check share one Prefect server, work
pool, deployments and worker. Everything talks to the server over its REST API.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobsim_app import localdb

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@dataclass
class Stack:
    api: str  # http://127.0.0.1:PORT/api
    ui: str
    env: dict[str, str]  # the environment stack.sh ran with (+ PREFECT_API_URL)
    database: str
    dir: Path

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        """One REST call; "busy" answers (429/502/503: the server's SQLite is locked while
        other processes write) are retried with backoff, as Prefect's own client does."""
        for attempt in range(6):
            response = httpx.request(method, self.api + path, json=body, timeout=30)
            if response.status_code not in (429, 502, 503) or attempt == 5:
                break
            time.sleep(0.5 * 2**attempt + random.random() * 0.5)
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: dict | None = None) -> Any:
        return self._call("POST", path, body or {})

    def deployment(self, flow: str, name: str) -> dict[str, Any]:
        return self.get(f"/deployments/name/{flow}/{name}")

    def runs_of(self, deployment_id: str) -> list[dict[str, Any]]:
        return self.post("/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment_id]}},
                                               "sort": "EXPECTED_START_TIME_ASC"})

    def run(self, run_id: str) -> dict[str, Any]:
        return self.get(f"/flow_runs/{run_id}")

    def artifacts_of(self, run_id: str) -> list[dict[str, Any]]:
        return self.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})

    def wait_finished(self, run_ids: list[str], timeout_s: float = 150) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            runs = [self.run(i) for i in run_ids]
            if all(r["state_type"] in TERMINAL for r in runs):
                return runs
            if time.monotonic() > deadline:
                states = {r["name"]: (r["state_type"], r["state_name"]) for r in runs}
                log = (self.dir / "worker.log").read_text()[-3000:]
                raise AssertionError(f"runs not finished after {timeout_s} s: {states}\nworker log:\n{log}")
            time.sleep(1)

    @staticmethod
    def parse_time(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    @staticmethod
    def write_jsonl(path: Path, docs: list[dict[str, Any]]) -> Path:
        with path.open("w") as fh:
            for doc in docs:
                fh.write(json.dumps({k: v.isoformat() if isinstance(v, datetime) else v
                                     for k, v in doc.items()}) + "\n")
        return path

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(ROOT / ".venv/bin/jobsim"), *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=True)


def stack_sh(action: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts/stack.sh"), action], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _pid(path: Path) -> int | None:
    return int(path.read_text()) if path.exists() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


@pytest.fixture(scope="session")
def stack(mongo_server, tmp_path_factory):
    """scripts/stack.sh up against the session's MongoDB; down (and checked dead) afterwards."""
    base = tmp_path_factory.mktemp("stack")
    port = localdb.free_port()
    database = f"ops_{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSIM_", "PREFECT_"))}
    env.update({
        "JOBSIM_STACK_DIR": str(base / "stack"), "PREFECT_SERVER_PORT": str(port),
        "JOBSIM_MONGO__URI": mongo_server.uri, "JOBSIM_MONGO__DATABASE": database,
        "JOBSIM_NEIGHBOURS__STATE_DIR": str(base / "neighbour-state"),
        # quick turn-around for tests: re-offer a run waiting for its deployment's slot after
        # 2 s (default 30 s), workers poll every 2 s (default 10 s)
        "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
    })
    started = stack_sh("up", env)
    stack_dir = base / "stack"
    pids = {n: _pid(stack_dir / f"{n}.pid") for n in ("server", "worker")}
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        api = f"http://127.0.0.1:{port}/api"
        yield Stack(api=api, ui=f"http://127.0.0.1:{port}",
                    env={**env, "PREFECT_API_URL": api, "PREFECT_HOME": str(stack_dir / "prefect")},
                    database=database, dir=stack_dir)
    finally:
        stopped = stack_sh("down", env, timeout=90)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        for name, pid in pids.items():
            assert pid is None or not _alive(pid), f"{name} (pid {pid}) still running after stack.sh down"
