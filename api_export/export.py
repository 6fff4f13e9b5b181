"""Snapshot exports of every neighbour list (and optionally the vectors) for consumers
that do not read MongoDB (search, email digests).

Files written to the output folder, each replaced atomically (written to a temporary
file in the same folder, fsynced, then ``os.replace``d), the manifest last:

- ``similar_jobs.parquet`` and ``similar_jobs.jsonl``: one row per job,
  ``{job_id, computed_at, neighbours: [{job_id, score}]}`` in stored (best-first) order;
- ``vectors.parquet`` (with ``vectors=True``): ``{job_id, vector: float32[dims]}``;
- ``manifest.json``: run id, export time, counts, model, dims, and each file's rows,
  bytes and sha256 (so a reader can tell a consistent set of files).

Read back with :func:`read_lists` (JSON Lines needs the schema to restore datetimes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from api_export.similar import read_side_db
from jobsim.settings import Settings
from storage.embeddings import EmbeddingsRepository, VectorSet
from storage.job_reads import JobReadsRepository, StoredList
from storage.state import StateRepository

log = logging.getLogger(__name__)

FORMAT = "jobsim-similar-jobs/1"
LISTS_PARQUET = "similar_jobs.parquet"
LISTS_JSONL = "similar_jobs.jsonl"
VECTORS_PARQUET = "vectors.parquet"
MANIFEST = "manifest.json"

LISTS_SCHEMA = pl.Schema({
    "job_id": pl.String,
    "computed_at": pl.Datetime("us", "UTC"),
    "neighbours": pl.List(pl.Struct({"job_id": pl.String, "score": pl.Float64})),
})


@dataclass(frozen=True)
class ListsSnapshot:
    frame: pl.DataFrame
    dropped_neighbours: int  # neighbours left out because they are no longer active


def lists_frame(lists: Iterable[StoredList], active: set[str] | None = None) -> ListsSnapshot:
    """Stored lists as one frame; with ``active``, only active jobs and active neighbours."""
    job_ids: list[str] = []
    computed: list[datetime | None] = []
    neighbours: list[list[dict[str, Any]]] = []
    dropped = 0
    for stored in lists:
        if active is not None and stored.job_id not in active:
            continue
        kept = [{"job_id": other, "score": score} for other, score in stored.items
                if active is None or other in active]
        dropped += len(stored.items) - len(kept)
        job_ids.append(stored.job_id)
        computed.append(stored.computed_at)
        neighbours.append(kept)
    frame = pl.DataFrame({"job_id": job_ids, "computed_at": computed, "neighbours": neighbours},
                         schema=LISTS_SCHEMA)
    return ListsSnapshot(frame=frame, dropped_neighbours=dropped)


def vectors_frame(vectors: VectorSet) -> pl.DataFrame:
    """Vectors as ``{job_id, vector: Array(Float32, dims)}`` (one contiguous buffer)."""
    return pl.DataFrame({
        "job_id": pl.Series("job_id", vectors.ids.tolist(), dtype=pl.String),
        "vector": pl.Series("vector", vectors.vectors),
    })


def read_lists(path: str | Path) -> pl.DataFrame:
    """A lists file (Parquet or JSON Lines) back as a frame of :data:`LISTS_SCHEMA`."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return pl.read_ndjson(path, schema=LISTS_SCHEMA)


# -- atomic files ---------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> dict[str, Any]:
    """Write ``path`` through ``write(tmp)`` on a temporary file beside it, then replace it.

    Readers see the old file or the complete new one, never a partial file; on any error
    the temporary file is removed and the old file is left as it was. Returns bytes/sha256.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        digest = hashlib.sha256()
        with open(tmp, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
            os.fsync(fh.fileno())
        size = tmp.stat().st_size
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return {"bytes": size, "sha256": digest.hexdigest()}


def write_snapshot(
    out_dir: str | Path,
    lists: ListsSnapshot,
    meta: dict[str, Any],
    vectors: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Write the files and then the manifest (returned) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = lists.frame
    files: dict[str, Any] = {}
    files[LISTS_PARQUET] = {"rows": frame.height, **atomic_write(
        out / LISTS_PARQUET, lambda p: frame.write_parquet(p, compression="zstd", statistics=True))}
    files[LISTS_JSONL] = {"rows": frame.height, **atomic_write(out / LISTS_JSONL, frame.write_ndjson)}
    if vectors is not None:
        files[VECTORS_PARQUET] = {"rows": vectors.height, **atomic_write(
            out / VECTORS_PARQUET, lambda p: vectors.write_parquet(p, compression="zstd"))}
    neighbour_count = int(frame["neighbours"].list.len().sum() or 0) if frame.height else 0
    manifest = {
        "format": FORMAT,
        "exportedAt": datetime.now(timezone.utc).isoformat(),
        **meta,
        "counts": {
            "lists": frame.height,
            "neighbours": neighbour_count,
            "droppedNeighbours": lists.dropped_neighbours,
            "vectors": None if vectors is None else vectors.height,
        },
        "files": files,
    }
    text = json.dumps(manifest, indent=2, default=str)
    atomic_write(out / MANIFEST, lambda p: p.write_text(text + "\n", encoding="utf-8"))
    return manifest


def latest_run(state: StateRepository) -> dict[str, Any] | None:
    """The most recent completed run record, if any."""
    for run in state.recent_runs(20):
        if run.get("status") == "completed":
            return run
    return None


def export_snapshot(
    settings: Settings, out_dir: str | Path, *, vectors: bool = False, active_only: bool = True
) -> dict[str, Any]:
    """Read every stored list (and vectors) from MongoDB and write a snapshot; returns the manifest."""
    mongo = settings.mongo
    db = read_side_db(settings)
    reads = JobReadsRepository(db, mongo.jobs_collection)
    now = datetime.now(timezone.utc)
    active = reads.active_ids(now) if active_only else None
    snapshot = lists_frame(reads.stored_lists(), active)
    model, dims = settings.embedding.model, settings.embedding.dimensions
    vector_frame = None
    if vectors:
        vector_set = EmbeddingsRepository(db, mongo.embeddings_collection).load(model, dims)
        vector_frame = vectors_frame(vector_set)
    run = latest_run(StateRepository(db, mongo.state_collection)) or {}
    finished = run.get("finishedAt")
    meta = {
        "runId": run.get("runId"),
        "runFinishedAt": finished.isoformat() if isinstance(finished, datetime) else None,
        "snapshotAt": now.isoformat(),
        "activeOnly": active_only,
        "model": model,
        "dims": dims,
    }
    manifest = write_snapshot(out_dir, snapshot, meta, vector_frame)
    log.info("exported %d lists (%d neighbours) to %s", manifest["counts"]["lists"],
             manifest["counts"]["neighbours"], out_dir)
    return manifest
