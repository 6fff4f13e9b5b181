"""What the pipeline needs from its stores: repository interfaces and the records they return.

``storage/`` implements them on MongoDB; :mod:`jobsim.memory` implements them in memory for
fast stage tests. Job ids are keys (:mod:`jobsim.ids`) everywhere on this side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import numpy as np

from jobsim.pieces import PiecedRows

MATCH_CODES = ("category", "level", "adjacentLevel", "city", "remote")


class Neighbour(NamedTuple):
    """One entry of a similar-jobs list, with why it is there."""

    job_id: str  # the neighbour's key
    score: float  # blended score, 2 decimals
    cosine: float = 0.0  # the semantic part, 2 decimals (0 when unknown: lists stored before it existed)
    match: tuple[str, ...] = ()  # context bonuses that applied, codes of MATCH_CODES


Neighbours = tuple[Neighbour, ...]  # best first


class JobList(NamedTuple):
    """What the pipeline writes on one job: its list and its duplicate group."""

    items: Neighbours
    group: str | None = None  # key of the group's original posting; None = no duplicates


@dataclass
class VectorSet:
    """Vectors as one contiguous float32 matrix with parallel key and hash arrays (the local
    snapshot keeps its matrix in pieces, :class:`jobsim.pieces.PiecedRows`, gathered by :meth:`take`)."""

    ids: np.ndarray  # (n,) object array of job keys
    hashes: np.ndarray  # (n,) object array of content hashes
    vectors: np.ndarray | PiecedRows  # (n, d) float32, C-contiguous
    fingerprints: np.ndarray | None = None  # (n,) uint64 digests of the rows (jobsim.candidates.fingerprints), if known

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dims(self) -> int:
        return int(self.vectors.shape[1])

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` of the matrix, as one contiguous float32 matrix."""
        if isinstance(self.vectors, PiecedRows):
            return self.vectors.take(rows)
        return np.ascontiguousarray(self.vectors[rows], dtype=np.float32)

    def dense(self) -> np.ndarray:
        """The whole matrix, contiguous (gathered when kept in pieces)."""
        if isinstance(self.vectors, PiecedRows):
            return self.vectors.dense()
        return np.ascontiguousarray(self.vectors, dtype=np.float32)


@dataclass
class JobContexts:
    """Jobs that get a list (role "active" or "closed", see
    :func:`jobsim.contract.listing_role`) with a completed embedding: parallel lists of
    their raw fields, as stored (the core normalises them)."""

    ids: list[str] = field(default_factory=list)
    hashes: list[str | None] = field(default_factory=list)  # embedding.contentHash
    active: list[bool] = field(default_factory=list)  # role "active" (else "closed")
    category: list[Any] = field(default_factory=list)
    level: list[Any] = field(default_factory=list)
    city: list[Any] = field(default_factory=list)
    remote: list[bool] = field(default_factory=list)
    company: list[Any] = field(default_factory=list)
    created: list[datetime | None] = field(default_factory=list)

    def append(self, key: str, doc: dict[str, Any], active: bool = True) -> None:
        """Add one stored document's fields (whatever their types)."""
        state = doc.get("embedding") if isinstance(doc.get("embedding"), dict) else {}
        location = doc.get("location") if isinstance(doc.get("location"), dict) else {}
        content_hash = state.get("contentHash")
        created = doc.get("createdAt")
        self.ids.append(key)
        self.hashes.append(content_hash if isinstance(content_hash, str) else None)
        self.active.append(active)
        self.category.append(doc.get("category"))
        self.level.append(doc.get("experienceLevel"))
        self.city.append(location.get("city"))
        self.remote.append(location.get("remote") is True)
        self.company.append(doc.get("company"))
        self.created.append(created if isinstance(created, datetime) else None)


@dataclass
class WriteOutcome:
    """What a bulk write did: documents written, and those the server refused (key → its
    reason). A refused document never fails the others."""

    written: int = 0
    refused: dict[str, str] = field(default_factory=dict)

    def add(self, other: "WriteOutcome") -> "WriteOutcome":
        self.written += other.written
        self.refused.update(other.refused)
        return self


@dataclass(frozen=True)
class EmbeddedMark:
    """A job whose stored vector matches its current text."""

    job_id: str
    content_hash: str
    language: str = "unknown"


class JobsRepo(Protocol):
    """The web app's postings, as the pipeline reads and writes them."""

    def ensure_indexes(self) -> None: ...
    def changed_since(self, since: datetime | None, max_attempts: int, now: datetime) -> list[dict[str, Any]]: ...
    def by_ids(self, job_ids: list[str]) -> list[dict[str, Any]]: ...
    def listed_docs(self, now: datetime, closed_days: int) -> dict[str, dict[str, Any]]: ...
    def listing_docs(self, job_ids: list[str]) -> dict[str, dict[str, Any] | None]: ...
    def stored_lists(self, job_ids: list[str] | None = None) -> dict[str, JobList | None]: ...
    def mark_pending(self, reasons: dict[str, str]) -> WriteOutcome: ...
    def mark_embedded(self, marks: Iterable[EmbeddedMark], model: str, now: datetime) -> WriteOutcome: ...
    def mark_failed(self, failures: dict[str, tuple[str, int]], now: datetime) -> WriteOutcome: ...
    def mark_rejected(self, rejections: dict[str, str], now: datetime) -> WriteOutcome: ...
    def write_lists(self, lists: dict[str, JobList], now: datetime, job_count: int,
                    recompute_days: int) -> WriteOutcome: ...
    def reset_failed_attempts(self, job_ids: list[str] | None = None) -> int: ...
    def reset_stale_processing(self, started_before: datetime) -> int: ...


class EmbeddingsRepo(Protocol):
    """One vector per job."""

    def hashes(self, job_ids: list[str]) -> dict[str, str]: ...
    def upsert(self, job_ids: list[str], hashes: list[str], vectors: np.ndarray, model: str,
               now: datetime) -> int: ...
    def load(self, model: str, dims: int, job_ids: list[str] | None = None) -> VectorSet: ...


class StateRepo(Protocol):
    """Watermark and run records."""

    def watermark(self) -> datetime | None: ...
    def set_watermark(self, value: datetime, run_id: str) -> None: ...
    def start_run(self, run_id: str, mode: str, started_at: datetime, params: dict[str, Any]) -> None: ...
    def finish_run(self, run_id: str, status: str, finished_at: datetime, summary: dict[str, Any]) -> None: ...
    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]: ...
    def delete_runs_before(self, cutoff: datetime) -> int: ...
    def acquire_lease(self, name: str, owner: str, now: datetime, ttl: timedelta) -> dict[str, Any] | None: ...
    def renew_lease(self, name: str, owner: str, now: datetime, ttl: timedelta) -> bool: ...
    def release_lease(self, name: str, owner: str) -> None: ...
    def lease(self, name: str) -> dict[str, Any] | None: ...
    def mark_crashed(self, except_run: str, now: datetime) -> int: ...
    def mark_write_back(self, run_id: str, phase: str) -> None: ...
    def written_by(self) -> str | None: ...
    def embedder_model(self, name: str) -> bytes | None: ...
    def save_embedder_model(self, name: str, version: str, data: bytes, now: datetime, texts: int) -> None: ...


class RequestsRepo(Protocol):
    """Jobs whose list the read side asked to recompute."""

    def pending(self, limit: int = 10_000) -> dict[str, datetime]: ...
    def clear_before(self, cutoff: datetime) -> int: ...


@dataclass(frozen=True)
class Repositories:
    """Every store a run touches."""

    jobs: JobsRepo
    embeddings: EmbeddingsRepo
    state: StateRepo
    requests: RequestsRepo
