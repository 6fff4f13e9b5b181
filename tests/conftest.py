"""Shared fixtures: a real local MongoDB-compatible server and a real Prefect test harness."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

# Prefect reads its settings at import: isolate it before anything imports prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="jobsim-prefect-")
_STATE_DIR = tempfile.mkdtemp(prefix="jobsim-neighbour-state-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
for _name in list(os.environ):
    if _name.startswith("JOBSIM_"):
        del os.environ[_name]

import pytest  # noqa: E402

from jobsim_app import localdb  # noqa: E402
from jobsim.settings import Settings  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    """One SecantusDB process per test session, on a free loopback port, stopped by PID."""
    server = localdb.start(tmp_path_factory.mktemp("mongo"))
    yield server
    localdb.stop_pid(server.pid)


@pytest.fixture
def settings(mongo_server, monkeypatch) -> Settings:
    """Settings pointing at a fresh database of the session's server."""
    monkeypatch.setenv("JOBSIM_MONGO__URI", mongo_server.uri)
    monkeypatch.setenv("JOBSIM_MONGO__DATABASE", f"t_{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("JOBSIM_NEIGHBOURS__STATE_DIR", str(_STATE_DIR))
    return Settings()


@pytest.fixture
def db(settings):
    from storage import connect

    database = connect(settings.mongo)
    yield database
    database.client.drop_database(database.name)


@pytest.fixture(scope="session")
def prefect_harness():
    """One real Prefect API (temporary SQLite) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or skip the test with a clear message when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not found: the shared data folder is only beside the project in CI/dev")
    return path


@pytest.fixture(scope="module")
def server(request):
    """Our OpenAI-compatible embeddings server for a test module (default dimensions: its ``SERVER_DIMS``)."""
    from tests.embedding_server import EmbeddingServer

    with EmbeddingServer(dimensions=getattr(request.module, "SERVER_DIMS", 1536)) as srv:
        yield srv


@pytest.fixture
def srv(server):
    """The module's embeddings server, cleared of requests and faults for each test."""
    server.clear()
    server.latency = 0.0
    yield server
    server.clear()
