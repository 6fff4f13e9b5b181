"""The pipeline's stages as plain functions (Prefect tasks wrap them thinly).

Pure stages take and return plain data; I/O stages take repository objects.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from jobsim.embedders import Embedder
from jobsim.jobs import JobRecord, check_job
from jobsim.text import content_hash

if TYPE_CHECKING:  # storage types only for annotations: this module does no I/O itself
    from storage.embeddings import EmbeddingsRepository
    from storage.jobs import JobsRepository

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Valid jobs with their embedding text and hash, plus what was set aside and why."""

    jobs: list[JobRecord] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    current_hashes: list[str | None] = field(default_factory=list)  # job.embedding.contentHash
    current_status: list[str | None] = field(default_factory=list)
    rejected: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rejected_recorded: set[str] = field(default_factory=set)  # same reasons already on the job
    inactive: Counter = field(default_factory=Counter)

    def rejections_to_record(self) -> dict[str, tuple[str, ...]]:
        return {k: v for k, v in self.rejected.items() if k not in self.rejected_recorded}


@dataclass
class EmbedStats:
    embedded: int = 0
    reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    tokens: int = 0
    retries: int = 0
    rate_limited: int = 0
    deferred: list[str] = field(default_factory=list)  # transient failures, left pending
    seconds: float = 0.0


@dataclass
class WriteStats:
    written: int = 0
    cleared: int = 0
    unchanged: int = 0


@dataclass
class RunSummary:
    run_id: str
    mode: str
    seen: int = 0
    valid: int = 0
    inactive: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    embedded: int = 0
    reused: int = 0
    failed: int = 0
    failed_reasons: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    requests: int = 0
    tokens: int = 0
    retries: int = 0
    rate_limited: int = 0
    cost_usd: float = 0.0
    active_vectors: int = 0
    lists_written: int = 0
    lists_cleared: int = 0
    lists_unchanged: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)  # neighbour pass: mode, recall, ...

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reason_counts(reasons: list[str], width: int = 60) -> dict[str, int]:
    """Group free-text reasons by their text before any "(detail)" for summaries."""
    keys = [r.split("(")[0].strip()[:width] for r in reasons]
    return dict(Counter(keys).most_common(20))


# -- prepare (pure) --------------------------------------------------------------
def rejection_message(reasons: tuple[str, ...]) -> str:
    """What an operator reads in ``embedding.error`` of a rejected job."""
    return ("invalid: " + "; ".join(reasons))[:500]


def prepare(docs: list[dict[str, Any]], now: datetime, model: str, dims: int) -> Prepared:
    """Validate raw documents and build each valid job's embedding text and hash."""
    out = Prepared()
    for doc in docs:
        checked = check_job(doc, now)
        state = doc.get("embedding") if isinstance(doc.get("embedding"), dict) else {}
        if checked.job is None:
            if checked.inactive:
                out.inactive[checked.inactive] += 1
            else:
                out.rejected[checked.job_id] = checked.reasons
                if state.get("rejected") is True and state.get("error") == rejection_message(checked.reasons):
                    out.rejected_recorded.add(checked.job_id)
            continue
        text = checked.job.embedding_text()
        out.jobs.append(checked.job)
        out.texts.append(text)
        out.hashes.append(content_hash(text, model, dims))
        out.current_hashes.append(state.get("contentHash"))
        out.current_status.append(state.get("status"))
    return out


def plan_embeddings(prepared: Prepared, stored: dict[str, str]) -> tuple[list[int], list[int]]:
    """Split valid jobs into (needs a new vector, vector up to date but job not marked)."""
    to_embed, to_mark = [], []
    for i, job in enumerate(prepared.jobs):
        h = prepared.hashes[i]
        if stored.get(job.id) != h:
            to_embed.append(i)
        elif prepared.current_hashes[i] != h or prepared.current_status[i] != "completed":
            to_mark.append(i)
    return to_embed, to_mark


# -- embed and store (I/O through repositories) ----------------------------------
@dataclass
class EmbedBatch:
    """One embedding task's share of the jobs whose text changed (small and picklable:
    it travels to a worker)."""

    ids: list[str]
    hashes: list[str]
    texts: list[str]
    languages: list[str]


def embed_batches(prepared: Prepared, to_embed: list[int], batch_jobs: int) -> list[EmbedBatch]:
    """Split the jobs to embed into batches of at most ``batch_jobs`` (in job order)."""
    batches = []
    for start in range(0, len(to_embed), batch_jobs):
        chunk = to_embed[start : start + batch_jobs]
        jobs = [prepared.jobs[i] for i in chunk]
        batches.append(EmbedBatch(
            ids=[j.id for j in jobs], hashes=[prepared.hashes[i] for i in chunk],
            texts=[prepared.texts[i] for i in chunk],
            languages=[j.language() for j in jobs],
        ))
    return batches


def start_embedding(
    jobs_repo: JobsRepository, prepared: Prepared, to_embed: list[int], to_mark: list[int], model: str,
    now: datetime,
) -> None:
    """Mark the jobs whose stored vector is current as embedded, and the rest as processing."""
    from storage.jobs import EmbeddedMark

    jobs_repo.mark_embedded(
        [EmbeddedMark(prepared.jobs[i].id, prepared.hashes[i], prepared.jobs[i].language()) for i in to_mark],
        model, now,
    )
    if to_embed:
        jobs_repo.mark_processing([prepared.jobs[i].id for i in to_embed], now)


def embed_batch(
    embedder: Embedder, jobs_repo: JobsRepository, vectors_repo: EmbeddingsRepository,
    batch: EmbedBatch, now: datetime,
) -> EmbedStats:
    """Embed one batch; its vectors are stored before its jobs are marked embedded.

    Identical texts (duplicate postings) are embedded once. Inputs that failed only
    transiently (rate limit storm, service unreachable) go back to ``pending`` without
    spending one of the job's attempts; the others are marked failed with the reason.
    """
    from storage.jobs import EmbeddedMark

    stats = EmbedStats()
    started = time.perf_counter()
    unique: dict[str, int] = {}
    for h in batch.hashes:
        unique.setdefault(h, len(unique))
    texts = [""] * len(unique)
    for h, text in zip(batch.hashes, batch.texts):
        texts[unique[h]] = text
    result = embedder.embed(texts)
    stats.requests, stats.tokens = result.requests, result.tokens
    stats.retries, stats.rate_limited = result.retries, result.rate_limited
    ok = []
    for pos, (job_id, h) in enumerate(zip(batch.ids, batch.hashes)):
        row = unique[h]
        if row in result.transient:
            stats.deferred.append(job_id)
        elif row in result.errors:
            stats.failed[job_id] = result.errors[row]
        else:
            ok.append(pos)
    if ok:
        vectors_repo.upsert([batch.ids[p] for p in ok], [batch.hashes[p] for p in ok],
                            result.vectors[np.array([unique[batch.hashes[p]] for p in ok])], embedder.model, now)
        jobs_repo.mark_embedded([EmbeddedMark(batch.ids[p], batch.hashes[p], batch.languages[p]) for p in ok],
                                embedder.model, now)
    stats.embedded = len(ok)
    if stats.failed:
        jobs_repo.mark_failed(stats.failed, now)
    if stats.deferred:
        jobs_repo.mark_pending(stats.deferred)
    stats.seconds = time.perf_counter() - started
    return stats


def combine_embed_stats(reused: int, parts: list[EmbedStats], seconds: float) -> EmbedStats:
    """One run's embedding stats from its batches' (wall time measured by the caller)."""
    total = EmbedStats(reused=reused, seconds=seconds)
    for part in parts:
        total.embedded += part.embedded
        total.failed.update(part.failed)
        total.requests += part.requests
        total.tokens += part.tokens
        total.retries += part.retries
        total.rate_limited += part.rate_limited
        total.deferred.extend(part.deferred)
    return total


# -- run bookkeeping (pure) ------------------------------------------------------
@dataclass(frozen=True)
class RunInfo:
    run_id: str
    mode: str
    started_at: datetime
    since: datetime | None  # pull jobs changed since (None = all)


def summarize(
    run: RunInfo, seen: int, prepared: Prepared, embedded: EmbedStats, active: int,
    written: WriteStats, price_per_million: float, timings: dict[str, float],
    search: dict[str, Any] | None = None,
) -> RunSummary:
    return RunSummary(
        run_id=run.run_id, mode=run.mode, seen=seen, valid=len(prepared.jobs),
        inactive=dict(prepared.inactive), rejected=len(prepared.rejected),
        rejected_reasons=reason_counts([r for rs in prepared.rejected.values() for r in rs]),
        embedded=embedded.embedded, reused=embedded.reused, failed=len(embedded.failed),
        failed_reasons=reason_counts(list(embedded.failed.values())),
        deferred=len(embedded.deferred), requests=embedded.requests, tokens=embedded.tokens,
        retries=embedded.retries, rate_limited=embedded.rate_limited,
        cost_usd=round(embedded.tokens * price_per_million / 1e6, 9),
        active_vectors=active, lists_written=written.written, lists_cleared=written.cleared,
        lists_unchanged=written.unchanged, timings={k: round(v, 3) for k, v in timings.items()},
        search=dict(search or {}),
    )
