"""Snapshot exports of every neighbour list (and optionally the vectors) for consumers
that do not read MongoDB (search, email digests).

Files written to the output folder (mode 0644), each replaced atomically (written to a
temporary file in the same folder, fsynced, then ``os.replace``d), the manifest last:

- ``similar_jobs.parquet`` and ``similar_jobs.jsonl``: one row per job,
  ``{job_id, job_id_type, job_open, computed_at, neighbours: [{job_id, job_id_type, score,
  cosine, match}]}`` in stored (best-first) order. Ids are shown as the web app writes
  them (24 hex digits, or the string id itself); ``job_id_type`` is ``objectId`` or
  ``string``, so a string id spelling an ObjectId's hex stays a different job. ``cosine``
  and ``match`` are null for entries stored before the pipeline wrote them.
  Scope ``served`` (default): what the API serves — lists of jobs not deleted (open ones,
  and closed/expired ones, ``job_open: false``), with only neighbours still active.
  Scope ``all``: every stored list as stored;
- ``vectors.parquet`` (with ``vectors=True``): ``{job_id, job_id_type, vector: float32[dims]}``;
- ``manifest.json``: format, run id, export time, scope, counts, model, dims, and each
  file's rows, bytes and sha256 (so a reader can tell a consistent set of files).

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
import pyarrow as pa

from api_export.cards import shown_id
from api_export.database import read_side_db
from jobsim.settings import Settings
from storage.embeddings import EmbeddingsRepository, VectorSet
from storage.job_reads import JobReadsRepository, StoredEntry, StoredList
from storage.state import StateRepository

log = logging.getLogger(__name__)

FORMAT = "jobsim-similar-jobs/2"
SCOPES = ("served", "all")
EXPORT_MODE = 0o644  # readable by the consumers' users (mkstemp creates 0600)
LISTS_PARQUET = "similar_jobs.parquet"
LISTS_JSONL = "similar_jobs.jsonl"
VECTORS_PARQUET = "vectors.parquet"
MANIFEST = "manifest.json"

NEIGHBOUR = pl.Struct({
    "job_id": pl.String, "job_id_type": pl.String, "score": pl.Float64, "cosine": pl.Float64,
    "match": pl.List(pl.String),
})
LISTS_SCHEMA = pl.Schema({
    "job_id": pl.String,
    "job_id_type": pl.String,
    "job_open": pl.Boolean,
    "computed_at": pl.Datetime("us", "UTC"),
    "neighbours": pl.List(NEIGHBOUR),
})


@dataclass(frozen=True)
class ListsSnapshot:
    frame: pl.DataFrame
    dropped_neighbours: int  # neighbours left out because they are no longer active


class _NeighbourColumns:
    """Every kept neighbour as flat Arrow columns plus list offsets: building the nested
    column from these is ~12× faster than from one dict per neighbour."""

    FIELDS = (("job_id", pa.large_string()), ("job_id_type", pa.large_string()), ("score", pa.float64()),
              ("cosine", pa.float64()), ("match", pa.large_list(pa.large_string())))

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name, _ in self.FIELDS}
        self.offsets = [0]

    def add(self, items: Iterable[StoredEntry], active: set[str] | None) -> int:
        """Append one list's neighbours (only those in ``active`` when given); returns how many."""
        cols = self.columns
        for entry in items:
            if active is not None and entry.key not in active:
                continue
            shown, kind = shown_id(entry.key)
            cols["job_id"].append(shown)
            cols["job_id_type"].append(kind)
            cols["score"].append(entry.score)
            cols["cosine"].append(entry.cosine)
            cols["match"].append(None if entry.match is None else list(entry.match))
        kept = len(cols["job_id"]) - self.offsets[-1]
        self.offsets.append(len(cols["job_id"]))
        return kept

    def series(self) -> pl.Series:
        struct = pa.StructArray.from_arrays(
            [pa.array(self.columns[name], type) for name, type in self.FIELDS],
            names=[name for name, _ in self.FIELDS])
        lists = pa.LargeListArray.from_arrays(pa.array(self.offsets, pa.int64()), struct)
        return pl.Series("neighbours", lists).cast(LISTS_SCHEMA["neighbours"])


def lists_frame(lists: Iterable[StoredList], active: set[str] | None = None) -> ListsSnapshot:
    """Stored lists as one frame; with ``active`` (scope ``served``), lists of jobs not
    deleted, keeping only the neighbours in ``active``."""
    columns: dict[str, list[Any]] = {"job_id": [], "job_id_type": [], "job_open": [], "computed_at": []}
    neighbours = _NeighbourColumns()
    dropped = 0
    for stored in lists:
        if active is not None and stored.deleted:
            continue
        dropped += len(stored.items) - neighbours.add(stored.items, active)
        shown, kind = shown_id(stored.job_id)
        for name, value in (("job_id", shown), ("job_id_type", kind), ("job_open", stored.open),
                            ("computed_at", stored.computed_at)):
            columns[name].append(value)
    frame = pl.DataFrame(columns, schema={name: LISTS_SCHEMA[name] for name in columns})
    frame = frame.with_columns(neighbours.series()).select(list(LISTS_SCHEMA))
    return ListsSnapshot(frame=frame, dropped_neighbours=dropped)


def vectors_frame(vectors: VectorSet) -> pl.DataFrame:
    """Vectors as ``{job_id, job_id_type, vector: Array(Float32, dims)}`` (one contiguous buffer)."""
    shown = [shown_id(key) for key in vectors.ids.tolist()]
    return pl.DataFrame({
        "job_id": pl.Series("job_id", [s for s, _ in shown], dtype=pl.String),
        "job_id_type": pl.Series("job_id_type", [k for _, k in shown], dtype=pl.String),
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
        os.chmod(tmp, EXPORT_MODE)
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
            "closedLists": int((~frame["job_open"]).sum()) if frame.height else 0,
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
    settings: Settings, out_dir: str | Path, *, vectors: bool = False, scope: str = "served"
) -> dict[str, Any]:
    """Read every stored list (and vectors) from MongoDB and write a snapshot; returns the manifest.

    ``scope``: ``served`` (lists of jobs not deleted, active neighbours only) or ``all``.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    mongo = settings.mongo
    db = read_side_db(settings)
    reads = JobReadsRepository(db, mongo.jobs_collection)
    now = datetime.now(timezone.utc)
    active = reads.active_ids(now) if scope == "served" else None
    snapshot = lists_frame(reads.stored_lists(now), active)
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
        "scope": scope,
        "model": model,
        "dims": dims,
    }
    manifest = write_snapshot(out_dir, snapshot, meta, vector_frame)
    log.info("%s", summary_line(manifest, out_dir))
    return manifest


def summary_line(manifest: dict[str, Any], out_dir: str | Path) -> str:
    """The export's result in one line (what ``python -m api_export export`` prints)."""
    counts = manifest["counts"]
    vectors = "" if counts.get("vectors") is None else f", {counts['vectors']:,} vectors"
    run = manifest.get("runId") or "none completed yet"
    return (f"exported {counts['lists']:,} lists ({counts['closedLists']:,} of jobs no longer open; "
            f"{counts['neighbours']:,} neighbours, {counts['droppedNeighbours']:,} dropped as inactive"
            f"{vectors}) to {out_dir} (scope {manifest.get('scope')}, run {run}, "
            f"model {manifest.get('model')}/{manifest.get('dims')})")
