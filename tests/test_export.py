"""Snapshot exports: 10k lists round-trip through Parquet and JSON Lines; the MongoDB read
path on a few hundred real documents; atomic replacement; the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from bson import ObjectId

from api_export.export import (
    LISTS_JSONL, LISTS_PARQUET, LISTS_SCHEMA, MANIFEST, VECTORS_PARQUET,
    atomic_write, export_snapshot, lists_frame, read_lists, write_snapshot,
)
from storage.embeddings import EmbeddingsRepository
from storage.job_reads import StoredList
from storage.state import StateRepository
from tests.test_api import NOW, make_job, with_list

ROOT = Path(__file__).resolve().parents[1]


def random_lists(n: int, seed: int = 5) -> list[StoredList]:
    """``n`` lists of up to 10 neighbours with 2-decimal scores (some empty, some undated)."""
    rng = np.random.default_rng(seed)
    ids = [str(ObjectId()) for _ in range(n)]
    sizes = rng.integers(0, 11, size=n)
    lists = []
    for row, job_id in enumerate(ids):
        picks = rng.choice(n, size=int(sizes[row]), replace=False)
        scores = np.sort(np.round(rng.uniform(0.3, 1.0, size=len(picks)), 2))[::-1]
        computed = None if row % 97 == 0 else NOW - timedelta(milliseconds=int(rng.integers(0, 10**9)))
        lists.append(StoredList(job_id, tuple((ids[p], float(s)) for p, s in zip(picks, scores)), computed))
    return lists


def expected_rows(lists: list[StoredList]) -> list[dict]:
    return [{"job_id": s.job_id, "computed_at": s.computed_at,
             "neighbours": [{"job_id": o, "score": sc} for o, sc in s.items]} for s in lists]


def test_10k_lists_round_trip_parquet_and_jsonl(tmp_path):
    lists = random_lists(10_000)
    snapshot = lists_frame(lists)
    assert snapshot.frame.schema == LISTS_SCHEMA and snapshot.frame.height == 10_000
    manifest = write_snapshot(tmp_path, snapshot, {"runId": "r1", "model": "m", "dims": 8})

    from_parquet = read_lists(tmp_path / LISTS_PARQUET)
    from_jsonl = read_lists(tmp_path / LISTS_JSONL)
    assert from_parquet.equals(snapshot.frame)
    assert from_jsonl.equals(snapshot.frame)
    # Not just self-consistent: the frame holds exactly the input, in order.
    assert from_jsonl.to_dicts() == expected_rows(lists)
    # JSON Lines: one valid JSON object per line, one line per job.
    lines = (tmp_path / LISTS_JSONL).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10_000 and json.loads(lines[1])["job_id"] == lists[1].job_id

    on_disk = json.loads((tmp_path / MANIFEST).read_text())
    assert on_disk["counts"] == {"lists": 10_000, "neighbours": sum(len(s.items) for s in lists),
                                 "droppedNeighbours": 0, "vectors": None}
    assert on_disk["runId"] == "r1" and on_disk["model"] == "m" and on_disk["dims"] == 8
    for name in (LISTS_PARQUET, LISTS_JSONL):
        data = (tmp_path / name).read_bytes()
        assert on_disk["files"][name] == {"rows": 10_000, "bytes": len(data),
                                          "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest["files"] == on_disk["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([LISTS_PARQUET, LISTS_JSONL, MANIFEST])


def test_active_only_drops_inactive_jobs_and_neighbours():
    lists = [StoredList("a", (("b", 0.9), ("x", 0.8), ("c", 0.7)), NOW),
             StoredList("x", (("a", 0.9),), NOW),
             StoredList("b", (("x", 0.5),), None)]
    snapshot = lists_frame(lists, active={"a", "b", "c"})
    assert snapshot.frame.to_dicts() == [
        {"job_id": "a", "computed_at": NOW, "neighbours": [{"job_id": "b", "score": 0.9},
                                                          {"job_id": "c", "score": 0.7}]},
        {"job_id": "b", "computed_at": None, "neighbours": []},
    ]
    assert snapshot.dropped_neighbours == 2


def test_failed_write_leaves_the_old_file_and_no_partial_file(tmp_path):
    target = tmp_path / "similar_jobs.jsonl"
    target.write_text("old complete file\n")

    def half_then_crash(path: Path) -> None:
        path.write_text('{"job_id": "a", "neigh')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half_then_crash)
    assert target.read_text() == "old complete file\n"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]

    info = atomic_write(target, lambda p: p.write_text("new\n"))
    assert target.read_text() == "new\n" and info["bytes"] == 4
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_second_export_replaces_the_first(tmp_path):
    write_snapshot(tmp_path, lists_frame(random_lists(50, seed=1)), {})
    second = random_lists(20, seed=2)
    manifest = write_snapshot(tmp_path, lists_frame(second), {})
    assert read_lists(tmp_path / LISTS_JSONL).to_dicts() == expected_rows(second)
    assert read_lists(tmp_path / LISTS_PARQUET).to_dicts() == expected_rows(second)
    assert manifest["counts"]["lists"] == 20
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _seed_mongo(db, settings, n: int = 300):
    """``n`` jobs with lists pointing at each other; some jobs inactive; vectors; a run record."""
    rng = np.random.default_rng(11)
    jobs = [make_job() for _ in range(n)]
    for i in range(0, n, 10):
        jobs[i]["status"] = "closed"
    for i in range(5, n, 25):
        jobs[i]["expiresAt"] = NOW - timedelta(days=1)
    for i, job in enumerate(jobs):
        if i % 7 == 3:
            continue  # no list yet
        picks = rng.choice([j for j in range(n) if j != i], size=10, replace=False)
        scores = np.round(np.linspace(0.95, 0.5, 10), 2)
        with_list(job, [(jobs[p], float(s)) for p, s in zip(picks, scores)])
    db[settings.mongo.jobs_collection].insert_many(jobs)

    dims = settings.embedding.dimensions
    vectors = rng.standard_normal((n, dims)).astype(np.float32)
    EmbeddingsRepository(db, settings.mongo.embeddings_collection).upsert(
        [str(j["_id"]) for j in jobs], ["h"] * n, vectors, settings.embedding.model, NOW)
    state = StateRepository(db, settings.mongo.state_collection)
    state.start_run("old-run", "full", NOW - timedelta(hours=2), {})
    state.finish_run("old-run", "completed", NOW - timedelta(hours=2), {})
    state.start_run("good-run", "incremental", NOW - timedelta(hours=1), {})
    state.finish_run("good-run", "completed", NOW - timedelta(minutes=59), {})
    state.start_run("running-run", "incremental", NOW - timedelta(minutes=1), {})
    return jobs, vectors


def _active(job) -> bool:
    return job["status"] == "active" and job["expiresAt"] > datetime.now(timezone.utc)


def test_export_from_mongo_matches_the_stored_lists(tmp_path, db, settings):
    jobs, vectors = _seed_mongo(db, settings)
    manifest = export_snapshot(settings, tmp_path, vectors=True)

    active = {str(j["_id"]) for j in jobs if _active(j)}
    expected = {}
    dropped = 0
    for job in jobs:
        if str(job["_id"]) not in active or not job.get("similarJobs"):
            continue
        items = [{"job_id": str(i["jobId"]), "score": i["score"]} for i in job["similarJobs"]]
        kept = [i for i in items if i["job_id"] in active]
        dropped += len(items) - len(kept)
        expected[str(job["_id"])] = kept
    for name in (LISTS_PARQUET, LISTS_JSONL):
        frame = read_lists(tmp_path / name)
        got = {row["job_id"]: row["neighbours"] for row in frame.to_dicts()}
        assert got == expected
        assert frame["computed_at"].drop_nulls().to_list() == [NOW] * frame.height

    assert manifest["runId"] == "good-run"
    assert manifest["model"] == settings.embedding.model and manifest["dims"] == settings.embedding.dimensions
    assert manifest["counts"]["lists"] == len(expected)
    assert manifest["counts"]["neighbours"] == sum(map(len, expected.values()))
    assert manifest["counts"]["droppedNeighbours"] == dropped > 0
    assert manifest["counts"]["vectors"] == len(jobs)

    vec = pl.read_parquet(tmp_path / VECTORS_PARQUET)
    assert vec.schema["vector"] == pl.Array(pl.Float32, settings.embedding.dimensions)
    by_id = dict(zip(vec["job_id"].to_list(), vec["vector"].to_numpy()))
    for row, job in enumerate(jobs):
        np.testing.assert_array_equal(by_id[str(job["_id"])], vectors[row])
    assert "uri" not in json.dumps(manifest).lower()


def test_export_cli(tmp_path, db, settings):
    _seed_mongo(db, settings, n=40)
    env = {**os.environ, "JOBSIM_MONGO__URI": settings.mongo.uri.get_secret_value(),
           "JOBSIM_MONGO__DATABASE": settings.mongo.database}
    out = tmp_path / "snap"
    result = subprocess.run([sys.executable, "-m", "api_export", "export", "--out", str(out)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["runId"] == "good-run" and summary["counts"]["lists"] > 0
    assert read_lists(out / LISTS_PARQUET).equals(read_lists(out / LISTS_JSONL))
    assert not (out / VECTORS_PARQUET).exists()


def test_empty_database_exports_empty_files(tmp_path, db, settings):
    manifest = export_snapshot(settings, tmp_path)
    assert manifest["runId"] is None and manifest["counts"]["lists"] == 0
    assert read_lists(tmp_path / LISTS_PARQUET).schema == LISTS_SCHEMA
    assert read_lists(tmp_path / LISTS_JSONL).height == 0

