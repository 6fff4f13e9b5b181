"""The flow on a local Dask cluster (prefect-dask, 2 worker processes) gives the same
lists as the default thread runner: embedding batches and the shard pairs of the exact
pass run as tasks on the workers, against the same real MongoDB server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from bson import ObjectId

from jobsim.synthetic import generate_jobs
from storage import connect, imports
from tests.helpers import task_run_names

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _load(settings, docs: list[dict], at: datetime) -> None:
    """The same postings (same ids) in this settings' database, as the importer leaves
    new ones (bulk insert: the importer's upsert scans the collection on SecantusDB)."""
    jobs = imports(settings)
    jobs.ensure_indexes()
    jobs.insert_new(docs, at)


def _lists(settings) -> dict[str, list]:
    return {str(d["_id"]): [(str(i["jobId"]), i["score"]) for i in d.get("similarJobs", [])]
            for d in connect(settings.mongo).jobs.find({}, {"similarJobs": 1})}


def _run(monkeypatch, mongo_server, database: str, **env: str):
    from flows.refresh import similarity_refresh
    from jobsim.settings import Settings

    monkeypatch.setenv("JOBSIM_MONGO__DATABASE", database)
    for key, value in env.items():
        monkeypatch.setenv(f"JOBSIM_{key}", value)
    return asyncio.run(similarity_refresh(mode="full")), Settings()


def test_dask_runner_gives_the_same_lists(settings, monkeypatch, mongo_server, tmp_path):
    at = datetime.now(timezone.utc) - timedelta(minutes=5)
    docs = [{**job, "_id": ObjectId(), "createdAt": at} for job in generate_jobs(1_150, seed=11)]
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for name in names:
        _load(settings.model_copy(update={"mongo": settings.mongo.model_copy(update={"database": name})}), docs, at)

    thread, thread_settings = _run(monkeypatch, mongo_server, names[0])
    dask, dask_settings = _run(
        monkeypatch, mongo_server, names[1], EXECUTION__TASK_RUNNER="dask", EXECUTION__WORKERS="2",
        EXECUTION__SHARD_MEMORY_MB="1", EXECUTION__DASK_TEMPORARY_DIRECTORY=str(tmp_path / "dask"))
    try:
        assert dask_settings.execution.task_runner == "dask"
        # the exact pass really ran as shard pairs (2 shards of ≤ 512 rows: 3 pair tasks)
        assert thread["search"]["mode"] == dask["search"]["mode"] == "exact"
        assert thread["search"]["shards"] == 0 and dask["search"]["shards"] >= 2, (dask["search"], dask["active_vectors"])
        assert (tmp_path / "dask").is_dir()
        for key in ("seen", "valid", "rejected", "embedded", "failed", "active_vectors", "lists_written"):
            assert thread[key] == dask[key], key
        assert thread["embedded"] > 900
        # the fan-out steps ran as task runs of the flow: 2 embedding batches, 3 shard pairs
        assert task_run_names(dask["run_id"]).count("embed-batch") == 2
        assert task_run_names(dask["run_id"]).count("search-shard-pair") == 3
        assert task_run_names(thread["run_id"]).count("search-shard-pair") == 0
        a, b = _lists(thread_settings), _lists(dask_settings)
        assert a == b
        assert sum(1 for items in a.values() if items) == thread["lists_written"]
    finally:
        for name in names:
            connect(settings.mongo).client.drop_database(name)
