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
from jobsim.repositories import VectorSet
from jobsim.snapshot import Origin, Snapshot

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: rows are distinct vectors (corpus rows), base/query split
# 2: list fingerprints by marshal; 3: the rows' vector fingerprints kept; 4: list fingerprints of
# jobsim.listset (computed from a run's arrays)
SNAPSHOT_VERSION = 4
CODEC = CodecOptions(tz_aware=True)
# a snapshot's parts a later save may link instead of writing them again (the lists are always written)
PARTS = {"docs": ("docs.bson",), "vectors": ("vector_keys.bson", "vectors.npy", "fingerprints.npy")}


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
    candidate state: BSON documents, a float32 ``.npy`` matrix, JSON metadata. Written to a
    new folder that then replaces the old one (a crash in between leaves no snapshot: a
    full read)."""

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
                docs = {d.pop("_k"): d for d in bson.decode_all((self.path / "docs.bson").read_bytes(), CODEC)}
                lists = {d["k"]: bytes(d["fp"]) for d in bson.decode_all((self.path / "lists.bson").read_bytes())}
                rows = bson.decode_all((self.path / "vector_keys.bson").read_bytes())
            matrix = np.load(self.path / "vectors.npy", mmap_mode="r")
            if matrix.shape != (len(rows), dims) or matrix.dtype != np.float32 or not matrix.flags.c_contiguous:
                return None
            fps = np.load(self.path / "fingerprints.npy")
            if fps.shape != (len(rows),) or fps.dtype != np.uint64:
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
        when they are the copies it was loaded from (:attr:`Snapshot.parts`): a run that changed
        only lists rewrites only the lists (bench/snapshot.py)."""
        tmp = self.path.with_name(f"{self.path.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        v = snapshot.vectors
        saved = self._saved_parts()
        linked = {part: self._linked(snapshot, saved, part, tmp) for part in PARTS}
        with collector_paused():
            if not linked["docs"]:
                (tmp / "docs.bson").write_bytes(b"".join(bson.encode({"_k": k, **d}) for k, d in snapshot.docs.items()))
            (tmp / "lists.bson").write_bytes(b"".join(bson.encode({"k": k, "fp": fp})
                                                      for k, fp in snapshot.lists.items()))
            if not linked["vectors"]:
                (tmp / "vector_keys.bson").write_bytes(b"".join(bson.encode({"k": k, "h": h})
                                                                for k, h in zip(v.ids.tolist(), v.hashes.tolist())))
                np.save(tmp / "vectors.npy", np.ascontiguousarray(v.vectors, dtype=np.float32))
                fps = v.fingerprints if v.fingerprints is not None else fingerprints(v.vectors)
                np.save(tmp / "fingerprints.npy", fps)
        parts = {part: snapshot.parts[part] if linked[part] else uuid.uuid4().hex for part in PARTS}
        origin = snapshot.origin and dict(asdict(snapshot.origin), at=snapshot.origin.at.isoformat())
        (tmp / "meta.json").write_text(json.dumps({"version": SNAPSHOT_VERSION, "token": snapshot.token,
                                                   "dims": int(v.vectors.shape[1]), "origin": origin,
                                                   "parts": parts}))
        shutil.rmtree(self.path, ignore_errors=True)
        os.replace(tmp, self.path)

    def _saved_parts(self) -> dict[str, str]:
        """The ids of the parts in the saved snapshot ({} when there is none readable)."""
        try:
            return dict(json.loads((self.path / "meta.json").read_text()).get("parts", {}))
        except (OSError, KeyError, ValueError, TypeError):
            return {}

    def _linked(self, snapshot: Snapshot, saved: dict[str, str], part: str, tmp: Path) -> bool:
        """Link ``part``'s files from the saved snapshot into ``tmp`` when ``snapshot`` holds
        that very copy; False = it is to be written."""
        if not snapshot.parts.get(part) or saved.get(part) != snapshot.parts[part]:
            return False
        try:
            for name in PARTS[part]:
                os.link(self.path / name, tmp / name)
        except OSError as exc:  # e.g. a file system without hard links: written instead
            log.info("snapshot part %s not linked (%s): written", part, exc)
            for name in PARTS[part]:
                (tmp / name).unlink(missing_ok=True)
            return False
        return True

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _origin(raw: dict | None) -> Origin | None:
    """How the snapshot's lists were made (None: not recorded, e.g. a snapshot of an older release)."""
    return Origin(**dict(raw, at=datetime.fromisoformat(raw["at"]))) if raw else None
