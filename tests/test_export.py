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
from storage.ids import to_key
from storage.job_reads import StoredEntry, StoredList
from storage.state import StateRepository
from tests.test_api import NOW, make_job, with_list

ROOT = Path(__file__).resolve().parents[1]


MATCHES = [None, (), ("city",), ("category", "level"), ("adjacentLevel", "remote")]


def random_lists(n: int, seed: int = 5) -> list[StoredList]:
    """``n`` lists of up to 10 neighbours with 2-decimal scores (some empty, some undated,
    some string ids, some old entries without cosine/match, some jobs no longer open)."""
    rng = np.random.default_rng(seed)
    ids = [f"s:ext-{i}" if i % 13 == 0 else str(ObjectId()) for i in range(n)]
    sizes = rng.integers(0, 11, size=n)
    lists = []
    for row, job_id in enumerate(ids):
        picks = rng.choice(n, size=int(sizes[row]), replace=False)
        scores = np.sort(np.round(rng.uniform(0.3, 1.0, size=len(picks)), 2))[::-1]
        computed = None if row % 97 == 0 else NOW - timedelta(milliseconds=int(rng.integers(0, 10**9)))
        items = []
        for k, (p, score) in enumerate(zip(picks, scores)):
            old = (row + k) % 5 == 0
            mongo_id = ids[p][2:] if ids[p].startswith("s:") else ObjectId(ids[p])
            items.append(StoredEntry(mongo_id, float(score), None if old else round(float(score) - 0.05, 2),
                                     None if old else MATCHES[(row + k) % len(MATCHES)]))
        lists.append(StoredList(job_id, tuple(items), computed, open=row % 11 != 0))
    return lists


def shown(key: str) -> tuple[str, str]:
    return (key[2:], "string") if key.startswith("s:") else (key, "objectId")


def expected_rows(lists: list[StoredList]) -> list[dict]:
    rows = []
    for s in lists:
        job_id, kind = shown(s.job_id)
        neighbours = [{"job_id": shown(e.key)[0], "job_id_type": shown(e.key)[1], "score": e.score,
                       "cosine": e.cosine, "match": None if e.match is None else list(e.match)}
                      for e in s.items]
        rows.append({"job_id": job_id, "job_id_type": kind, "job_open": s.open,
                     "computed_at": s.computed_at, "neighbours": neighbours})
    return rows


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
    # string ids are shown as written, never as the internal "s:" key, with their type
    assert json.loads(lines[0])["job_id"] == "ext-0" and json.loads(lines[0])["job_id_type"] == "string"
    assert not any(n["job_id"].startswith("s:") for row in from_jsonl.to_dicts() for n in row["neighbours"])

    on_disk = json.loads((tmp_path / MANIFEST).read_text())
    assert on_disk["counts"] == {"lists": 10_000, "closedLists": sum(not s.open for s in lists),
                                 "neighbours": sum(len(s.items) for s in lists),
                                 "droppedNeighbours": 0, "vectors": None}
    assert on_disk["runId"] == "r1" and on_disk["model"] == "m" and on_disk["dims"] == 8
    for name in (LISTS_PARQUET, LISTS_JSONL):
        data = (tmp_path / name).read_bytes()
        assert on_disk["files"][name] == {"rows": 10_000, "bytes": len(data),
                                          "sha256": hashlib.sha256(data).hexdigest()}
    assert manifest["files"] == on_disk["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([LISTS_PARQUET, LISTS_JSONL, MANIFEST])


def entry(key: str, score: float) -> StoredEntry:
    return StoredEntry(key[2:] if key.startswith("s:") else ObjectId(key), score)


def test_served_scope_keeps_lists_of_closed_jobs_and_only_active_neighbours():
    a, b, c, x, d = (str(ObjectId()) for _ in range(5))
    lists = [StoredList(a, (entry(b, 0.9), entry(x, 0.8), entry(c, 0.7)), NOW),
             StoredList(x, (entry(a, 0.9),), NOW, open=False),                 # closed: kept, flagged
             StoredList(d, (entry(a, 0.9),), NOW, open=False, deleted=True),   # deleted: left out
             StoredList(b, (entry(x, 0.5),), None)]
    snapshot = lists_frame(lists, active={a, b, c})
    neighbour = {"job_id_type": "objectId", "cosine": None, "match": None}
    assert snapshot.frame.to_dicts() == [
        {"job_id": a, "job_id_type": "objectId", "job_open": True, "computed_at": NOW,
         "neighbours": [{"job_id": b, "score": 0.9, **neighbour}, {"job_id": c, "score": 0.7, **neighbour}]},
        {"job_id": x, "job_id_type": "objectId", "job_open": False, "computed_at": NOW,
         "neighbours": [{"job_id": a, "score": 0.9, **neighbour}]},
        {"job_id": b, "job_id_type": "objectId", "job_open": True, "computed_at": None, "neighbours": []},
    ]
    assert snapshot.dropped_neighbours == 2
    assert lists_frame(lists).frame.height == 4  # scope "all": every stored list as stored


def test_files_are_readable_by_others(tmp_path):
    write_snapshot(tmp_path, lists_frame(random_lists(30)), {})
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path.name


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
    """``n`` jobs with lists pointing at each other; some jobs closed, expired, deleted; some
    string ids (one spelling another job's ObjectId hex); new entries with cosine/match, old
    ones without, malformed ones; vectors; run records."""
    rng = np.random.default_rng(11)
    jobs = [make_job() for _ in range(n)]
    for i in range(3, n, 17):
        jobs[i]["_id"] = f"ext-{i}"
    jobs[4]["_id"] = str(jobs[5]["_id"])  # a string id that spells another job's ObjectId
    for i in range(0, n, 10):
        jobs[i]["status"] = "closed"
    for i in range(5, n, 25):
        jobs[i]["expiresAt"] = NOW - timedelta(days=1)
    for i in range(7, n, 30):
        jobs[i]["isDeleted"] = True
    for i, job in enumerate(jobs):
        if i % 7 == 3:
            continue  # no list yet
        picks = rng.choice([j for j in range(n) if j != i], size=10, replace=False)
        scores = np.round(np.linspace(0.95, 0.5, 10), 2)
        with_list(job, [(jobs[p], float(s)) for p, s in zip(picks, scores)])
        for k, item in enumerate(job["similarJobs"]):
            if (i + k) % 3:
                item.update(cosine=round(item["score"] - 0.04, 2), match=["city", "level"][: (i + k) % 3])
        job["similarJobs"].insert(i % 5, {"jobId": jobs[picks[0]]["_id"], "score": "high"})
        job["similarJobs"].append({"jobId": {"$ne": None}, "score": 0.4})
        job["similarJobs"].append({"jobId": jobs[picks[1]]["_id"], "score": None})
    db[settings.mongo.jobs_collection].insert_many(jobs)

    dims = settings.embedding.dimensions
    vectors = rng.standard_normal((n, dims)).astype(np.float32)
    EmbeddingsRepository(db, settings.mongo.embeddings_collection).upsert(
        [to_key(j["_id"]) for j in jobs], ["h"] * n, vectors, settings.embedding.model, NOW)
    state = StateRepository(db, settings.mongo.state_collection)
    state.start_run("old-run", "full", NOW - timedelta(hours=2), {})
    state.finish_run("old-run", "completed", NOW - timedelta(hours=2), {})
    state.start_run("good-run", "incremental", NOW - timedelta(hours=1), {})
    state.finish_run("good-run", "completed", NOW - timedelta(minutes=59), {})
    state.start_run("running-run", "incremental", NOW - timedelta(minutes=1), {})
    return jobs, vectors


def _active(job) -> bool:
    return job["status"] == "active" and not job["isDeleted"] and job["expiresAt"] > datetime.now(timezone.utc)


def _shown(mongo_id) -> tuple[str, str]:
    return (mongo_id, "string") if isinstance(mongo_id, str) else (str(mongo_id), "objectId")


def _expected_served(jobs) -> tuple[dict, int]:
    """(job id, type) → (open, neighbours) as the API would serve them, and neighbours dropped."""
    active = {to_key(j["_id"]) for j in jobs if _active(j)}
    expected, dropped = {}, 0
    for job in jobs:
        if job["isDeleted"] or not job.get("similarJobs"):
            continue
        items = [i for i in job["similarJobs"] if isinstance(i["score"], float)
                 and isinstance(i["jobId"], (str, ObjectId))]
        kept = [{"job_id": _shown(i["jobId"])[0], "job_id_type": _shown(i["jobId"])[1], "score": i["score"],
                 "cosine": i.get("cosine"), "match": i.get("match")}
                for i in items if to_key(i["jobId"]) in active]
        dropped += len(items) - len(kept)
        expected[_shown(job["_id"])] = (_active(job), kept)
    return expected, dropped


def test_export_from_mongo_matches_what_the_api_serves(tmp_path, db, settings):
    jobs, vectors = _seed_mongo(db, settings)
    manifest = export_snapshot(settings, tmp_path, vectors=True)

    expected, dropped = _expected_served(jobs)
    assert any(not is_open for is_open, _ in expected.values())  # closed/expired jobs' lists kept
    assert (str(jobs[5]["_id"]), "string") in expected and (str(jobs[5]["_id"]), "objectId") in expected
    for name in (LISTS_PARQUET, LISTS_JSONL):
        frame = read_lists(tmp_path / name)
        got = {(r["job_id"], r["job_id_type"]): (r["job_open"], r["neighbours"]) for r in frame.to_dicts()}
        assert got == expected
        assert frame["computed_at"].drop_nulls().to_list() == [NOW] * frame.height
        assert (frame.height, frame["job_id"].str.starts_with("s:").sum()) == (len(expected), 0)

    assert manifest["runId"] == "good-run" and manifest["scope"] == "served"
    assert manifest["model"] == settings.embedding.model and manifest["dims"] == settings.embedding.dimensions
    assert manifest["counts"]["lists"] == len(expected)
    assert manifest["counts"]["closedLists"] == sum(not o for o, _ in expected.values())
    assert manifest["counts"]["neighbours"] == sum(len(n) for _, n in expected.values())
    assert manifest["counts"]["droppedNeighbours"] == dropped > 0
    assert manifest["counts"]["vectors"] == len(jobs)

    vec = pl.read_parquet(tmp_path / VECTORS_PARQUET)
    assert vec.schema["vector"] == pl.Array(pl.Float32, settings.embedding.dimensions)
    by_id = {(i, t): v for i, t, v in zip(vec["job_id"].to_list(), vec["job_id_type"].to_list(),
                                          vec["vector"].to_numpy())}
    for row, job in enumerate(jobs):
        np.testing.assert_array_equal(by_id[_shown(job["_id"])], vectors[row])
    assert "uri" not in json.dumps(manifest).lower()


def run_export(settings, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JOBSIM_")}
    env = env if env is not None else {"JOBSIM_MONGO__URI": settings.mongo.uri.get_secret_value(),
                                       "JOBSIM_MONGO__DATABASE": settings.mongo.database}
    return subprocess.run([sys.executable, "-m", "api_export", "export", *args], cwd=ROOT,
                          env={**base, **env}, capture_output=True, text=True, timeout=120)


def test_export_cli_prints_one_line(tmp_path, db, settings):
    jobs, _ = _seed_mongo(db, settings, n=40)
    out = tmp_path / "snap"
    result = run_export(settings, "--out", str(out))
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    manifest = json.loads((out / MANIFEST).read_text())
    lists = manifest["counts"]["lists"]
    assert line.startswith(f"exported {lists} lists ") and str(out) in line and "good-run" in line
    assert result.stderr == ""
    assert read_lists(out / LISTS_PARQUET).equals(read_lists(out / LISTS_JSONL))
    assert not (out / VECTORS_PARQUET).exists()
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in out.iterdir())

    result = run_export(settings, "--out", str(out), "--json", "--include-inactive")
    summary = json.loads(result.stdout)
    assert summary["runId"] == "good-run" and summary["scope"] == "all"
    assert summary["counts"]["lists"] == sum(1 for j in jobs if j.get("similarJobs")) > lists


@pytest.mark.parametrize("env, setting", [
    ({"JOBSIM_MONGO__URI": "mongodb://u:s3cret@127.0.0.1:{port}/?directConnection=true"}, "JOBSIM_MONGO__URI"),
    ({"JOBSIM_API__MONGO_URI": "mongodb://u:s3cret@/nohost"}, "JOBSIM_API__MONGO_URI"),
])
def test_export_cli_with_an_unusable_database_names_the_setting(tmp_path, settings, env, setting):
    from jobsim_app.localdb import free_port

    env = {k: v.format(port=free_port()) for k, v in env.items()}
    result = run_export(settings, "--out", str(tmp_path / "snap"), env={**env, "JOBSIM_MONGO__TIMEOUT_MS": "300"})
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and setting in line
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "snap").exists()


def test_empty_database_exports_empty_files(tmp_path, db, settings):
    manifest = export_snapshot(settings, tmp_path)
    assert manifest["runId"] is None and manifest["counts"]["lists"] == 0
    assert manifest["counts"]["closedLists"] == 0
    assert read_lists(tmp_path / LISTS_PARQUET).schema == LISTS_SCHEMA
    assert read_lists(tmp_path / LISTS_JSONL).height == 0

