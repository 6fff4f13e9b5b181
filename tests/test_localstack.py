"""The local stack record (.jobsim/local.json): what `jobsim db start` writes, the settings'
lowest-priority source reads, and the environment overrides."""

from __future__ import annotations

import json
import os

import pytest
from pymongo import MongoClient

from jobsim import localstack
from jobsim.settings import Settings
from jobsim_app.local import running
from tests.cli_helpers import clean_env, jobsim

RECORDED = "mongodb://127.0.0.1:45678/?directConnection=true"


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working directory of its own, and no JOBSIM_ setting in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("JOBSIM_"):
            monkeypatch.delenv(name)
    return tmp_path


def test_no_record_means_the_defaults(here):
    s = Settings()
    assert (s.mongo.uri.get_secret_value(), s.mongo.database) == ("mongodb://127.0.0.1:27017", "jobsim")


def test_the_record_gives_server_and_database(here):
    localstack.record_mongo(RECORDED, "jobsim_demo", 1, str(here / "mongo"))
    s = Settings()
    assert (s.mongo.uri.get_secret_value(), s.mongo.database) == (RECORDED, "jobsim_demo")
    assert json.loads((here / ".jobsim" / "local.json").read_text())["mongo"]["database"] == "jobsim_demo"


def test_the_environment_wins(here, monkeypatch):
    localstack.record_mongo(RECORDED, "jobsim_demo", 1, str(here / "mongo"))
    monkeypatch.setenv("JOBSIM_MONGO__DATABASE", "other")  # alone: another database, same server
    s = Settings()
    assert (s.mongo.uri.get_secret_value(), s.mongo.database) == (RECORDED, "other")
    monkeypatch.delenv("JOBSIM_MONGO__DATABASE")
    monkeypatch.setenv("JOBSIM_MONGO__URI", "mongodb://db.example:27017")  # a URI replaces the record
    s = Settings()
    assert (s.mongo.uri.get_secret_value(), s.mongo.database) == ("mongodb://db.example:27017", "jobsim")
    monkeypatch.setenv("JOBSIM_MONGO__TIMEOUT_MS", "500")  # other mongo settings keep the record
    monkeypatch.delenv("JOBSIM_MONGO__URI")
    assert Settings().mongo.uri.get_secret_value() == RECORDED


def test_forgetting_the_server_removes_the_record(here):
    localstack.record_mongo(RECORDED, "jobsim", 1, "x")
    localstack.forget_mongo()
    assert not (here / ".jobsim" / "local.json").exists()
    assert localstack.mongo() is None


def test_db_start_records_it_and_every_command_uses_it(tmp_path):
    """`jobsim db start --database D`, then `jobsim seed` with no JOBSIM_ setting writes into D
    on that server; `jobsim db stop` stops it and forgets it."""
    started = jobsim("db", "start", "--database", "walk", cwd=tmp_path, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    entry = json.loads((tmp_path / ".jobsim" / "local.json").read_text())["mongo"]
    try:
        assert entry["database"] == "walk" and started.stdout.strip().splitlines()[-1] == entry["uri"]
        seeded = jobsim("seed", "30", cwd=tmp_path, env=clean_env())
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        assert "(database walk)" in seeded.stdout
        assert MongoClient(entry["uri"])["walk"].jobs.count_documents({}) == 30
        again = jobsim("db", "start", cwd=tmp_path)
        assert "already running" in again.stdout and "database walk" in again.stdout
    finally:
        stopped = jobsim("db", "stop", cwd=tmp_path, timeout=60)
    assert stopped.returncode == 0 and f"pid {entry['pid']}" in stopped.stdout
    assert not (tmp_path / ".jobsim" / "local.json").exists()
    assert not running(entry)
