"""In-memory twins of the repositories (:mod:`jobsim.repositories`) for fast stage tests.

Documents are plain dicts keyed by job key (:mod:`jobsim.ids`); the rules that MongoDB
queries implement in ``storage/queries.py`` are applied here straight from
:mod:`jobsim.contract`. Integration and reliability tests keep using the real server.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from jobsim.contract import PULL_FIELDS, embedding_state, holds_pipeline_list, listing_role, needs_check
from jobsim.repositories import EmbeddedMark, JobList, Neighbour, Repositories, VectorSet, WriteOutcome


def _pulled(key: str, doc: dict[str, Any]) -> dict[str, Any]:
    return {"_id": key, **{f: copy.deepcopy(doc[f]) for f in PULL_FIELDS if f in doc}}


class MemoryJobs:
    def __init__(self, docs: dict[str, dict[str, Any]] | None = None) -> None:
        self.docs: dict[str, dict[str, Any]] = docs if docs is not None else {}

    def _embedding(self, key: str) -> dict[str, Any]:
        doc = self.docs[key]
        if not isinstance(doc.get("embedding"), dict):
            doc["embedding"] = {}
        return doc["embedding"]

    def ensure_indexes(self) -> None:
        """Nothing to index in memory."""

    def changed_since(self, since: datetime | None, max_attempts: int, now: datetime) -> list[dict[str, Any]]:
        return [_pulled(k, d) for k, d in self.docs.items() if needs_check(d, since, max_attempts, now)]

    def by_ids(self, job_ids: list[str]) -> list[dict[str, Any]]:
        return [_pulled(k, self.docs[k]) for k in job_ids if k in self.docs]

    def listed_docs(self, now: datetime, closed_days: int) -> dict[str, dict[str, Any]]:
        return {k: copy.deepcopy(d) for k, d in self.docs.items()
                if listing_role(d, now, closed_days) is not None and embedding_state(d).get("status") == "completed"}

    def listing_docs(self, job_ids: list[str]) -> dict[str, dict[str, Any] | None]:
        return {k: copy.deepcopy(self.docs[k]) if k in self.docs else None for k in job_ids}

    def stored_lists(self, job_ids: list[str] | None = None) -> dict[str, JobList | None]:
        out: dict[str, JobList | None] = {}
        for key, doc in self.docs.items() if job_ids is None else [(k, self.docs[k]) for k in job_ids if k in self.docs]:
            if not holds_pipeline_list(doc):
                continue
            raw, group = doc.get("similarJobs", []), doc.get("duplicateGroup")
            ok = isinstance(raw, list) and all(isinstance(i, dict) and isinstance(i.get("score"), float)
                                               and isinstance(i.get("jobId"), str) for i in raw)
            out[key] = JobList(tuple(Neighbour(i["jobId"], i["score"], i.get("cosine", 0.0), tuple(i.get("match", ())))
                                     for i in raw), group) if ok else None
        return out

    def _set_embedding(self, states: dict[str, tuple[dict[str, Any], tuple[str, ...]]]) -> WriteOutcome:
        for key, (fields, unset) in states.items():
            state = self._embedding(key)
            state.update(fields)
            for field in unset:
                state.pop(field, None)
        return WriteOutcome(written=len(states))

    def mark_pending(self, reasons: dict[str, str]) -> WriteOutcome:
        return self._set_embedding({k: ({"status": "pending", "error": why[:500]}, ("startedAt", "rejected"))
                                    for k, why in reasons.items()})

    def mark_embedded(self, marks: Iterable[EmbeddedMark], model: str, now: datetime) -> WriteOutcome:
        return self._set_embedding({m.job_id: (
            {"status": "completed", "model": model, "contentHash": m.content_hash, "generatedAt": now,
             "language": m.language, "attempts": 0}, ("error", "rejected", "startedAt", "failedAt")) for m in marks})

    def mark_failed(self, failures: dict[str, tuple[str, int]], now: datetime) -> WriteOutcome:
        return self._set_embedding({k: ({"status": "failed", "error": reason[:500], "failedAt": now,
                                         "attempts": attempts}, ("rejected", "startedAt"))
                                    for k, (reason, attempts) in failures.items()})

    def mark_rejected(self, rejections: dict[str, str], now: datetime) -> WriteOutcome:
        return self._set_embedding({k: ({"status": "failed", "rejected": True, "error": message[:500],
                                         "failedAt": now}, ("startedAt",)) for k, message in rejections.items()})

    def write_lists(self, lists: dict[str, JobList], now: datetime, job_count: int,
                    recompute_days: int) -> WriteOutcome:
        for key, job_list in lists.items():
            doc = self.docs[key]
            doc["similarJobs"] = [{"jobId": n.job_id, "score": n.score, "cosine": n.cosine, "match": list(n.match),
                                   "computedAt": now} for n in job_list.items]
            doc["similarityMetadata"] = {"lastComputed": now, "jobCountWhenComputed": job_count,
                                         "nextComputeAt": now + timedelta(days=recompute_days)}
            if job_list.group is None:
                doc.pop("duplicateGroup", None)
            else:
                doc["duplicateGroup"] = job_list.group
        return WriteOutcome(written=len(lists))

    def reset_failed_attempts(self, job_ids: list[str] | None = None) -> int:
        count = 0
        for key in self.docs if job_ids is None else [k for k in job_ids if k in self.docs]:
            state = embedding_state(self.docs[key])
            if state.get("status") == "failed" and state.get("rejected") is not True:
                state.update(status="pending", attempts=0)
                count += 1
        return count

    def reset_stale_processing(self, started_before: datetime) -> int:
        count = 0
        for doc in self.docs.values():
            state = embedding_state(doc)
            started = state.get("startedAt")
            if state.get("status") == "processing" and (started is None or started < started_before):
                state["status"] = "pending"
                state.pop("startedAt", None)
                count += 1
        return count



class MemoryEmbeddings:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def hashes(self, job_ids: list[str]) -> dict[str, str]:
        return {k: self.rows[k]["contentHash"] for k in job_ids if k in self.rows}

    def upsert(self, job_ids: list[str], hashes: list[str], vectors: np.ndarray, model: str, now: datetime) -> int:
        for key, h, vector in zip(job_ids, hashes, np.asarray(vectors, dtype=np.float32), strict=True):
            self.rows[key] = {"model": model, "dims": len(vector), "contentHash": h, "vector": vector.copy(),
                              "updatedAt": now}
        return len(job_ids)

    def load(self, model: str, dims: int, job_ids: list[str] | None = None) -> VectorSet:
        wanted = None if job_ids is None else set(job_ids)
        rows = [(k, r) for k, r in self.rows.items()
                if r["model"] == model and r["dims"] == dims and (wanted is None or k in wanted)]
        matrix = np.stack([r["vector"] for _, r in rows]) if rows else np.zeros((0, dims), np.float32)
        return VectorSet(ids=np.array([k for k, _ in rows], dtype=object),
                         hashes=np.array([r["contentHash"] for _, r in rows], dtype=object),
                         vectors=np.ascontiguousarray(matrix, dtype=np.float32))


class MemoryLeases:
    """The lease half of the state repository (one lock: threads renew while others try)."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # copies (tests copy a whole database) get their own lock
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, lock=threading.Lock())

    def acquire_lease(self, name: str, owner: str, now: datetime, ttl: timedelta) -> dict[str, Any] | None:
        with self.lock:
            held = self.leases.get(name)
            if held and held["owner"] != owner and held["expiresAt"] >= now:
                return None
            lease = {"owner": owner, "heartbeatAt": now, "expiresAt": now + ttl,
                     "acquiredAt": held["acquiredAt"] if held and held["owner"] == owner else now}
            self.leases[name] = lease
            return dict(lease)

    def renew_lease(self, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        with self.lock:
            held = self.leases.get(name)
            if not held or held["owner"] != owner:
                return False
            held.update(heartbeatAt=now, expiresAt=now + ttl)
            return True

    def release_lease(self, name: str, owner: str) -> None:
        with self.lock:
            if self.leases.get(name, {}).get("owner") == owner:
                del self.leases[name]

    def lease(self, name: str) -> dict[str, Any] | None:
        return dict(self.leases[name]) if name in self.leases else None


class MemoryState(MemoryLeases):
    def __init__(self) -> None:
        super().__init__()
        self.mark: datetime | None = None
        self.runs: dict[str, dict[str, Any]] = {}

    def embedder_model(self, name: str) -> bytes | None:
        return getattr(self, "models", {}).get(name)

    def save_embedder_model(self, name: str, version: str, data: bytes, now: datetime, texts: int) -> None:
        self.models = {**getattr(self, "models", {}), name: data}

    def mark_write_back(self, run_id: str, phase: str) -> None:
        self.write_back = (run_id, phase)

    def written_by(self) -> str | None:
        run_id, phase = getattr(self, "write_back", (None, None))
        return run_id if phase == "written" else None

    def mark_crashed(self, except_run: str, now: datetime) -> int:
        dead = [r for k, r in self.runs.items() if r["status"] == "running" and k != except_run]
        for run in dead:
            run.update(status="crashed", finishedAt=now)
        return len(dead)

    def watermark(self) -> datetime | None:
        return self.mark

    def set_watermark(self, value: datetime, run_id: str) -> None:
        if self.mark is None or value > self.mark:
            self.mark = value

    def start_run(self, run_id: str, mode: str, started_at: datetime, params: dict[str, Any]) -> None:
        self.runs[run_id] = {"runId": run_id, "mode": mode, "status": "running", "startedAt": started_at,
                             "params": params}

    def finish_run(self, run_id: str, status: str, finished_at: datetime, summary: dict[str, Any]) -> None:
        self.runs[run_id].update(status=status, finishedAt=finished_at, summary=summary)

    def recent_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return sorted(self.runs.values(), key=lambda r: r["startedAt"], reverse=True)[:limit]

    def delete_runs_before(self, cutoff: datetime) -> int:
        old = [k for k, r in self.runs.items() if r["startedAt"] < cutoff]
        for key in old:
            del self.runs[key]
        return len(old)


class MemoryRequests:
    def __init__(self) -> None:
        self.requested: dict[str, datetime] = {}

    def pending(self, limit: int = 10_000) -> dict[str, datetime]:
        return dict(sorted(self.requested.items(), key=lambda kv: kv[1])[:limit])

    def clear_before(self, cutoff: datetime) -> int:
        old = [k for k, at in self.requested.items() if at < cutoff]
        for key in old:
            del self.requested[key]
        return len(old)


def memory_repositories(docs: dict[str, dict[str, Any]] | None = None) -> Repositories:
    """Fresh in-memory repositories (``docs`` = job documents by key, used as is)."""
    return Repositories(jobs=MemoryJobs(docs), embeddings=MemoryEmbeddings(), state=MemoryState(),
                        requests=MemoryRequests())
