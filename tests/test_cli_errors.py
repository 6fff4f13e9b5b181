"""Clean errors: each failure a user can meet ends as one line naming the setting to fix, a
non-zero exit code, no traceback (unless --debug / JOBSIM_DEBUG) and never a secret."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from jobsim_app import localdb
from tests.cli_helpers import JOBSIM, PASSWORD, assert_one_clean_line, clean_env, error_lines, jobsim

KEY = f"sk-{PASSWORD}"


def unreachable_uri() -> str:
    return f"mongodb://jobsim:{PASSWORD}@127.0.0.1:{localdb.free_port()}/?directConnection=true"


def test_unreachable_mongodb(tmp_path):
    env = clean_env(JOBSIM_MONGO__URI=unreachable_uri(), JOBSIM_MONGO__TIMEOUT_MS="300")
    for args in (("seed", "3"), ("run",)):
        line = assert_one_clean_line(jobsim(*args, cwd=tmp_path, env=env), 3, "JOBSIM_MONGO__URI")
        assert "cannot reach MongoDB at mongodb://127.0.0.1:" in line


def test_bad_uri(tmp_path):
    for uri in (f"mongodb://jobsim:{PASSWORD}@127.0.0.1:notaport/", f"postgres://jobsim:{PASSWORD}@h/db"):
        result = jobsim("seed", "3", cwd=tmp_path, env=clean_env(JOBSIM_MONGO__URI=uri))
        line = assert_one_clean_line(result, 2, "JOBSIM_MONGO__URI")
        assert "not a valid MongoDB URI" in line


def test_auth_failure(tmp_path, mongo_server):
    uri = f"mongodb://jobsim:{PASSWORD}@127.0.0.1:{mongo_server.port}/?directConnection=true&authSource=admin"
    result = jobsim("seed", "3", cwd=tmp_path, env=clean_env(JOBSIM_MONGO__URI=uri, JOBSIM_MONGO__TIMEOUT_MS="3000"))
    line = assert_one_clean_line(result, 3, "JOBSIM_MONGO__URI")
    assert "authentication failed" in line


def test_invalid_setting_names_it_without_its_value(tmp_path):
    result = jobsim("seed", "3", cwd=tmp_path, env=clean_env(JOBSIM_MONGO__TIMEOUT_MS=PASSWORD))
    assert_one_clean_line(result, 2, "JOBSIM_MONGO__TIMEOUT_MS")


def openai_env(mongo_server, base_url: str) -> dict[str, str]:
    return clean_env(JOBSIM_MONGO__URI=mongo_server.uri, JOBSIM_MONGO__DATABASE=f"t_{uuid.uuid4().hex[:10]}",
                     JOBSIM_EMBEDDING__PROVIDER="openai", JOBSIM_EMBEDDING__BASE_URL=base_url,
                     JOBSIM_EMBEDDING__API_KEY=KEY, JOBSIM_EMBEDDING__DIMENSIONS="64")


def test_unreachable_embedding_service(tmp_path, mongo_server):
    env = openai_env(mongo_server, f"http://127.0.0.1:{localdb.free_port()}/v1")
    line = assert_one_clean_line(jobsim("run", cwd=tmp_path, env=env), 3, "JOBSIM_EMBEDDING__BASE_URL",
                                 secrets=(PASSWORD, KEY))
    assert "cannot reach the embedding service" in line


def test_refused_api_key(tmp_path, mongo_server):
    from tests.embedding_server import EmbeddingServer

    server = EmbeddingServer(dimensions=64, vectors="hash").start()
    try:
        server.add_fault("401", times=0)
        result = jobsim("run", cwd=tmp_path, env=openai_env(mongo_server, server.url))
    finally:
        server.stop()
    line = assert_one_clean_line(result, 3, "JOBSIM_EMBEDDING__API_KEY", secrets=(PASSWORD, KEY))
    assert "HTTP 401" in line


@pytest.mark.parametrize("how", ["--debug", "JOBSIM_DEBUG"])
def test_debug_shows_the_traceback_still_without_secrets(tmp_path, how):
    env = clean_env(JOBSIM_MONGO__URI=unreachable_uri(), JOBSIM_MONGO__TIMEOUT_MS="300")
    args = ["seed", "3"]
    if how == "--debug":
        args.insert(0, "--debug")
    else:
        env["JOBSIM_DEBUG"] = "1"
    result = jobsim(*args, cwd=tmp_path, env=env)
    assert result.returncode == 3
    assert "Traceback (most recent call last)" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert len(error_lines(result)) == 1


def test_seed_cut_off_midway_says_so_in_one_line_and_a_rerun_converges(tmp_path):
    """The server dies after the first batches: one error line that says how far the write
    got and that a re-run converges; after a restart, the same command completes it."""
    storage, n = tmp_path / "mongo", 240
    server = localdb.start(storage)
    env = clean_env(JOBSIM_MONGO__URI=server.uri, JOBSIM_MONGO__DATABASE="seedcut",
                    JOBSIM_MONGO__WRITE_BATCH_SIZE="40", JOBSIM_MONGO__TIMEOUT_MS="1000")
    from pymongo import MongoClient

    jobs = MongoClient(server.uri)["seedcut"].jobs
    proc = subprocess.Popen([str(JOBSIM), "seed", str(n)], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while jobs.count_documents({}) < 40 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the seed finished before the server could be stopped"
        localdb.kill(server)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    line = assert_one_clean_line(result, 3, "JOBSIM_MONGO__URI", secrets=())
    assert "rows were written" in line and "converges" in line, line
    server = localdb.start(storage, port=server.port)
    try:
        again = jobsim("seed", str(n), cwd=tmp_path, env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        jobs = MongoClient(server.uri)["seedcut"].jobs
        assert jobs.count_documents({}) == n
        assert len(jobs.distinct("externalId")) == n
    finally:
        localdb.stop_pid(server.pid)


def test_prefect_startup_timeout_default_and_its_error(monkeypatch):
    from jobsim_app import logs
    from jobsim_app.failures import describe

    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", raising=False)
    logs.prefect_defaults()
    import os

    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "180"
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "400")
    logs.prefect_defaults()
    assert os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "400"  # the user's wins
    failure = describe(RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server."), None)
    assert failure.code == 3 and "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" in failure.line


def test_scrub_removes_credentials_and_keys():
    from jobsim_app.failures import scrub

    text = f"mongodb://jobsim:{PASSWORD}@h:1/x failed; key {KEY} refused"
    assert PASSWORD not in scrub(text, None) and "mongodb://***@h:1/x" in scrub(text, None)
