"""Local caches beside the database, never the truth: the incremental neighbour state
(Arrow IPC) and the snapshot an incremental run starts from (:class:`SnapshotStore`).

One file per (MongoDB URI, database, embeddings collection, model, dims). What it holds
(candidate lists keyed by job id + vector fingerprint) is reconciled with the vectors
loaded from MongoDB before use; a missing, unreadable or foreign file only costs a full
pass. Writes are atomic (temporary file + rename).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import bson
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
from bson.codec_options import CodecOptions

from jobsim.allocation import collector_paused
from jobsim.candidates import CandidateState, fingerprints
from jobsim.pieces import PiecedRows
from jobsim.repositories import VectorSet
from jobsim.snapshot import Origin, Snapshot

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: rows are distinct vectors (corpus rows), base/query split
# 2: list fingerprints by marshal; 3: the rows' vector fingerprints kept; 4: list fingerprints of
# jobsim.listset (computed from a run's arrays); 5: the matrix in pieces (jobsim.pieces)
SNAPSHOT_VERSION = 5
CODEC = CodecOptions(tz_aware=True)
# a snapshot's parts a later save may link instead of writing them again (the lists are always written)
# (the docs are linked with a log of changes, :meth:`SnapshotStore._save_docs`; the matrix's
# pieces one by one, :meth:`SnapshotStore._save_pieces`)
PARTS = {"vectors": ("vector_keys.bson", "fingerprints.npy")}
MAX_DOCS_LOG = 0.25  # changed docs appended to the saved ones, as a share of the docs, before all are written again


class NeighbourStateStore:
    def __init__(self, directory: str | Path, *key_parts: str) -> None:
        digest = hashlib.sha256("\x1f".join(key_parts).encode()).hexdigest()[:24]
        self.path = Path(directory).expanduser() / f"candidates-{digest}.arrow"

    def load(self, dims: int) -> CandidateState | None:
        """The saved state, or None when absent, unreadable or for other dimensions."""
        if not self.path.exists():
            return None
        try:
            with pa.memory_map(str(self.path)) as source:
                table = ipc.open_file(source).read_all()
            meta = json.loads(table.schema.metadata[b"jobsim"])
            if meta["version"] != FORMAT_VERSION or meta["dims"] != dims:
                return None
            width = int(meta["width"])
            n = table.num_rows
            return CandidateState(
                ids=np.array(table["id"].to_pylist(), dtype=object),
                fingerprints=table["fp"].to_numpy().astype(np.uint64),
                scores=_matrix(table["scores"], n, width, np.float32),
                cand=_matrix(table["cand"], n, width, np.int64),
                depth=table["depth"].to_numpy().astype(np.int32),
                dims=dims, exact=bool(meta["exact"]), base=int(meta["base"]),
            )
        except (OSError, KeyError, ValueError, TypeError, pa.ArrowException) as exc:
            log.warning("neighbour state %s unreadable (%s): full pass", self.path, exc)
            return None

    def save(self, state: CandidateState) -> None:
        n, width = state.scores.shape
        table = pa.table({
            "id": pa.array(state.ids.tolist(), type=pa.string()),
            "fp": pa.array(state.fingerprints, type=pa.uint64()),
            "depth": pa.array(state.depth, type=pa.int32()),
            "scores": pa.FixedSizeListArray.from_arrays(pa.array(state.scores.reshape(-1)), width),
            "cand": pa.FixedSizeListArray.from_arrays(pa.array(state.cand.reshape(-1)), width),
        })
        meta = {"version": FORMAT_VERSION, "dims": state.dims, "width": width, "exact": state.exact,
                "base": state.base}
        table = table.replace_schema_metadata({"jobsim": json.dumps(meta)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def _matrix(column: pa.ChunkedArray, n: int, width: int, dtype: type) -> np.ndarray:
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(flat.reshape(n, width), dtype=dtype)


class SnapshotStore:
    """The local snapshot (:mod:`jobsim.snapshot`) of one database + model, beside the
    candidate state: BSON documents, the matrix's pieces as float32 ``.npy`` files
    (:mod:`jobsim.pieces`), JSON metadata. Written to a new folder that then replaces the old
    one (a crash in between leaves no snapshot: a full read); files that did not change are
    hard links to the old folder's."""

    def __init__(self, directory: str | Path, *key_parts: str) -> None:
        digest = hashlib.sha256("\x1f".join(key_parts).encode()).hexdigest()[:24]
        self.path = Path(directory).expanduser() / f"snapshot-{digest}"

    def load(self, dims: int) -> Snapshot | None:
        """The saved snapshot, or None when absent, unreadable or for other dimensions. Its
        matrix is mapped read-only from the file (runs gather rows from it; none writes it)."""
        try:
            meta = json.loads((self.path / "meta.json").read_text())
            if meta["version"] != SNAPSHOT_VERSION or meta["dims"] != dims:
                return None
            with collector_paused():
                docs = self._docs(meta.get("docs_log", []))
                lists = {d["k"]: bytes(d["fp"]) for d in bson.decode_all((self.path / "lists.bson").read_bytes())}
                rows = bson.decode_all((self.path / "vector_keys.bson").read_bytes())
            matrix = self._pieces(meta["pieces"], len(rows), dims)
            fps = np.load(self.path / "fingerprints.npy")
            if matrix is None or fps.shape != (len(rows),) or fps.dtype != np.uint64:
                return None
            vectors = VectorSet(ids=np.array([r["k"] for r in rows], dtype=object),
                                hashes=np.array([r["h"] for r in rows], dtype=object), vectors=matrix, fingerprints=fps)
            return Snapshot(token=meta["token"], docs=docs, vectors=vectors, lists=lists,
                            origin=_origin(meta.get("origin")), parts=dict(meta["parts"]))
        except FileNotFoundError:
            return None
        except (OSError, KeyError, ValueError, TypeError, bson.errors.BSONError) as exc:
            log.warning("snapshot %s unreadable (%s): full read", self.path, exc)
            return None

    def save(self, snapshot: Snapshot) -> None:
        """Write ``snapshot``; its docs and vectors are linked from the saved snapshot instead
        when they are the copies it was loaded from (:attr:`Snapshot.parts`), and so are the
        matrix's pieces it holds: a run that changed only lists rewrites only the lists, one that
        re-read a few vectors writes them as one new piece (bench/snapshot.py)."""
        tmp = self.path.with_name(f"{self.path.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        v = snapshot.vectors
        saved = self._saved_meta()
        linked = {part: self._linked(snapshot, saved, part, tmp) for part in PARTS}
        with collector_paused():
            docs_id, docs_log = self._save_docs(snapshot, saved, tmp)
            (tmp / "lists.bson").write_bytes(b"".join(bson.encode({"k": k, "fp": fp})
                                                      for k, fp in snapshot.lists.items()))
            if not linked["vectors"]:
                (tmp / "vector_keys.bson").write_bytes(b"".join(bson.encode({"k": k, "h": h})
                                                                for k, h in zip(v.ids.tolist(), v.hashes.tolist())))
                fps = v.fingerprints if v.fingerprints is not None else fingerprints(v.dense())
                np.save(tmp / "fingerprints.npy", fps)
        pieces = self._save_pieces(v.vectors, tmp)
        parts = {part: snapshot.parts[part] if linked[part] else uuid.uuid4().hex for part in PARTS}
        origin = snapshot.origin and dict(asdict(snapshot.origin), at=snapshot.origin.at.isoformat())
        (tmp / "meta.json").write_text(json.dumps({"version": SNAPSHOT_VERSION, "token": snapshot.token,
                                                   "dims": v.dims, "origin": origin, "parts": parts | {"docs": docs_id},
                                                   "docs_log": docs_log, "pieces": pieces}))
        shutil.rmtree(self.path, ignore_errors=True)
        os.replace(tmp, self.path)

    def _docs(self, log: list[dict]) -> dict[str, dict]:
        """The saved docs: ``docs.bson`` with each change in ``log`` applied in order."""
        docs = {d.pop("_k"): d for d in bson.decode_all((self.path / "docs.bson").read_bytes(), CODEC)}
        for entry in log:
            for d in bson.decode_all((self.path / f"docs-{entry['name']}.bson").read_bytes(), CODEC):
                key = d.pop("_k")
                if d.pop("_gone", False):
                    docs.pop(key, None)
                else:
                    docs[key] = d
        return docs

    def _save_docs(self, snapshot: Snapshot, saved: dict, tmp: Path) -> tuple[str, list[dict]]:
        """The docs into ``tmp``: when ``snapshot`` holds the saved copy, that copy linked and its
        changes (:attr:`Snapshot.docs_changes`) appended as one more log file; else (or when the
        log would hold more than a quarter as many entries as there are docs) every doc written.
        Returns the docs' copy id and its log."""
        base, changes = snapshot.parts.get("docs"), snapshot.docs_changes
        log = list(saved.get("docs_log", [])) if base and saved.get("parts", {}).get("docs") == base else None
        short = log is not None and sum(e["entries"] for e in log) + len(changes) <= MAX_DOCS_LOG * len(snapshot.docs)
        if short and all(self._link(name, tmp) for name in ("docs.bson", *(f"docs-{e['name']}.bson" for e in log))):
            if not changes:
                return base, log
            name = uuid.uuid4().hex
            (tmp / f"docs-{name}.bson").write_bytes(_encode_docs(changes.items()))
            return uuid.uuid4().hex, [*log, {"name": name, "entries": len(changes)}]
        for stale in tmp.glob("docs*.bson"):  # a partial link
            stale.unlink()
        (tmp / "docs.bson").write_bytes(_encode_docs(snapshot.docs.items()))
        return uuid.uuid4().hex, []

    def _save_pieces(self, matrix: np.ndarray | PiecedRows, tmp: Path) -> list[dict]:
        """The matrix's pieces into ``tmp``: those the saved snapshot holds linked, the others
        written (all as one piece when the pieces hold too many dead rows or are too many), and
        each row's (piece, row) as ``rows.npy``. Returns the pieces' names and sizes."""
        rows = matrix if isinstance(matrix, PiecedRows) else PiecedRows.of(matrix)
        if rows.worth_compacting():
            rows = PiecedRows.of(rows.dense())
        out = []
        for piece, name in zip(rows.pieces, rows.names):
            if not (name and self._link(f"piece-{name}.npy", tmp)):  # not held by the saved snapshot: written
                name = uuid.uuid4().hex
                np.save(tmp / f"piece-{name}.npy", np.ascontiguousarray(piece, dtype=np.float32))
            out.append({"name": name, "rows": len(piece)})
        np.save(tmp / "rows.npy", np.stack([rows.piece.astype(np.int64), rows.at]))
        return out

    def _pieces(self, pieces: list[dict], n: int, dims: int) -> PiecedRows | None:
        """The saved matrix, each piece mapped read-only from its file (None = not as recorded)."""
        mapped = [np.load(self.path / f"piece-{p['name']}.npy", mmap_mode="r") for p in pieces]
        if not mapped or any(m.shape != (p["rows"], dims) or m.dtype != np.float32 or not m.flags.c_contiguous
                             for m, p in zip(mapped, pieces)):
            return None
        where = np.load(self.path / "rows.npy")
        if where.shape != (2, n) or where.dtype != np.int64:
            return None
        piece, at = where
        sizes = np.array([p["rows"] for p in pieces], dtype=np.int64)
        if n and (piece.min() < 0 or piece.max() >= len(pieces) or at.min() < 0 or (at >= sizes[piece]).any()):
            return None
        return PiecedRows(tuple(mapped), piece.astype(np.int32), np.ascontiguousarray(at),
                          tuple(p["name"] for p in pieces))

    def _saved_meta(self) -> dict:
        """The saved snapshot's metadata ({} when there is none readable)."""
        try:
            meta = json.loads((self.path / "meta.json").read_text())
            return meta if isinstance(meta, dict) else {}
        except (OSError, ValueError):
            return {}

    def _linked(self, snapshot: Snapshot, saved: dict, part: str, tmp: Path) -> bool:
        """Link ``part``'s files from the saved snapshot into ``tmp`` when ``snapshot`` holds
        that very copy; False = it is to be written."""
        if not snapshot.parts.get(part) or saved.get("parts", {}).get(part) != snapshot.parts[part]:
            return False
        if all(self._link(name, tmp) for name in PARTS[part]):
            return True
        for name in PARTS[part]:
            (tmp / name).unlink(missing_ok=True)
        return False

    def _link(self, name: str, tmp: Path) -> bool:
        """Link the saved snapshot's file ``name`` into ``tmp`` (False: it is not there, or
        this file system has no hard links, and it is to be written)."""
        try:
            os.link(self.path / name, tmp / name)
        except OSError as exc:
            log.info("snapshot file %s not linked (%s): written", name, exc)
            return False
        return True

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _encode_docs(items: Iterable[tuple[str, dict | None]]) -> bytes:
    """Docs as the snapshot stores them: one BSON document each, keyed by ``_k`` (None = gone)."""
    return b"".join(bson.encode({"_k": k, **d} if d is not None else {"_k": k, "_gone": True}) for k, d in items)


def _origin(raw: dict | None) -> Origin | None:
    """How the snapshot's lists were made (None: not recorded, e.g. a snapshot of an older release)."""
    return Origin(**dict(raw, at=datetime.fromisoformat(raw["at"]))) if raw else None
