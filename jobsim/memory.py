"""In-memory twins of the repositories (:mod:`jobsim.repositories`) for fast stage tests.

Documents are plain dicts keyed by job key (:mod:`jobsim.ids`); the rules that MongoDB
queries implement in ``storage/queries.py`` are applied here straight from
:mod:`jobsim.contract`. Integration and reliability tests keep using the real server.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from jobsim.contract import PULL_FIELDS, embedding_state, is_active, needs_check
from jobsim.repositories import EmbeddedMark, JobContexts, Neighbours, Repositories, VectorSet


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

    def changed_since(self, since: datetime | None, max_attempts: int) -> list[dict[str, Any]]:
        return [_pulled(k, d) for k, d in self.docs.items() if needs_check(d, since, max_attempts)]

    def by_ids(self, job_ids: list[str]) -> list[dict[str, Any]]:
        return [_pulled(k, self.docs[k]) for k in job_ids if k in self.docs]

    def active_context(self, now: datetime) -> JobContexts:
        out = JobContexts()
        for key, doc in self.docs.items():
            if is_active(doc, now) and embedding_state(doc).get("status") == "completed":
                out.append(key, doc)
        return out

    def stored_lists(self) -> dict[str, Neighbours | None]:
        out: dict[str, Neighbours | None] = {}
        for key, doc in self.docs.items():
            raw = doc.get("similarJobs")
            if raw is None or raw == []:
                continue
            ok = isinstance(raw, list) and all(isinstance(i, dict) and isinstance(i.get("score"), float)
                                               and isinstance(i.get("jobId"), str) for i in raw)
            out[key] = tuple((i["jobId"], i["score"]) for i in raw) if ok else None
        return out

    def mark_processing(self, job_ids: list[str], now: datetime) -> None:
        for key in job_ids:
            self._embedding(key).update(status="processing", startedAt=now)

    def mark_pending(self, job_ids: list[str]) -> None:
        for key in job_ids:
            state = self._embedding(key)
            state["status"] = "pending"
            state.pop("startedAt", None)

    def mark_embedded(self, marks: Iterable[EmbeddedMark], model: str, now: datetime) -> int:
        count = 0
        for m in marks:
            state = self._embedding(m.job_id)
            state.update(status="completed", model=model, contentHash=m.content_hash, generatedAt=now,
                         language=m.language, attempts=0)
            for field in ("error", "rejected", "startedAt"):
                state.pop(field, None)
            count += 1
        return count

    def mark_failed(self, failures: dict[str, tuple[str, int]], now: datetime) -> int:
        for key, (reason, attempts) in failures.items():
            state = self._embedding(key)
            state.update(status="failed", error=reason[:500], failedAt=now, attempts=attempts)
            state.pop("rejected", None)
            state.pop("startedAt", None)
        return len(failures)

    def mark_rejected(self, rejections: dict[str, str], now: datetime) -> int:
        for key, message in rejections.items():
            state = self._embedding(key)
            state.update(status="failed", rejected=True, error=message, failedAt=now)
            state.pop("startedAt", None)
        return len(rejections)

    def write_lists(self, lists: dict[str, Neighbours], now: datetime, job_count: int, recompute_days: int) -> int:
        for key, items in lists.items():
            doc = self.docs[key]
            doc["similarJobs"] = [{"jobId": other, "score": score, "computedAt": now} for other, score in items]
            doc["similarityMetadata"] = {"lastComputed": now, "jobCountWhenComputed": job_count,
                                         "nextComputeAt": now + timedelta(days=recompute_days)}
        return len(lists)

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

    def failed_jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        failed = [(k, d) for k, d in self.docs.items() if embedding_state(d).get("status") == "failed"]
        failed.sort(key=lambda kd: embedding_state(kd[1]).get("failedAt") or datetime.min, reverse=True)
        return [{"id": k, "title": d.get("title"), "error": embedding_state(d).get("error"),
                 "attempts": embedding_state(d).get("attempts"), "rejected": embedding_state(d).get("rejected") is True,
                 "failedAt": embedding_state(d).get("failedAt")} for k, d in failed[:limit]]


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

    def load(self, model: str, dims: int) -> VectorSet:
        rows = [(k, r) for k, r in self.rows.items() if r["model"] == model and r["dims"] == dims]
        matrix = np.stack([r["vector"] for _, r in rows]) if rows else np.zeros((0, dims), np.float32)
        return VectorSet(ids=np.array([k for k, _ in rows], dtype=object),
                         hashes=np.array([r["contentHash"] for _, r in rows], dtype=object),
                         vectors=np.ascontiguousarray(matrix, dtype=np.float32))


class MemoryState:
    def __init__(self) -> None:
        self.mark: datetime | None = None
        self.runs: dict[str, dict[str, Any]] = {}

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
