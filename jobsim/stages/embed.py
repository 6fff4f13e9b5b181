"""Embed: plan which jobs need a vector, make the paid call per batch, store what came back.

The paid call (:func:`embed_batch`) writes nothing; storing (:func:`store_batch`) is
idempotent, so a failed write is retried without embedding (and paying) again. Vectors are
stored before their jobs are marked ``completed``: a crash in between re-uses the vector.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from jobsim.embedders import Embedder
from jobsim.embedders.sanity import sanitize
from jobsim.repositories import EmbeddedMark, EmbeddingsRepo, JobsRepo, WriteOutcome
from jobsim.stages.prepare import Prepared
from jobsim.summary import EmbedStats


@dataclass
class EmbedBatch:
    """One embedding task's share of the jobs whose text changed (small and picklable)."""

    ids: list[str]
    hashes: list[str]
    texts: list[str]
    languages: list[str]
    attempts: list[int]  # attempts already spent by each job (a failure stores attempts + 1)


@dataclass
class EmbedPlan:
    batches: list[EmbedBatch]
    reused: int  # jobs whose stored vector already matches their text


@dataclass
class BatchVectors:
    """Outcome of the paid call for one batch (nothing stored yet)."""

    batch: EmbedBatch
    ok: list[int]  # positions in the batch with a vector
    vectors: np.ndarray  # (len(ok), d) float32, rows parallel to ``ok``
    failed: dict[str, str] = field(default_factory=dict)  # job key -> reason (an attempt spent)
    deferred: dict[str, str] = field(default_factory=dict)  # transient failures: left pending, with the reason
    requests: int = 0
    tokens: int = 0
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    unavailable: str | None = None  # the service's outage that stopped the call (circuit breaker)


def not_sent(batch: EmbedBatch, reason: str) -> BatchVectors:
    """A batch the run did not send (the service was unavailable): its jobs stay pending."""
    return BatchVectors(batch=batch, ok=[], vectors=np.zeros((0, 0), np.float32),
                        deferred={k: reason for k in batch.ids}, unavailable=reason)


def split_by_stored_hash(prepared: Prepared, stored: dict[str, str]) -> tuple[list[int], list[int]]:
    """Valid jobs split into (needs a new vector, vector up to date but job not marked)."""
    to_embed, to_mark = [], []
    for i, job in enumerate(prepared.jobs):
        h = prepared.hashes[i]
        if stored.get(job.id) != h:
            to_embed.append(i)
        elif prepared.current_hashes[i] != h or prepared.current_status[i] != "completed":
            to_mark.append(i)
    return to_embed, to_mark


def make_batches(prepared: Prepared, to_embed: list[int], batch_jobs: int) -> list[EmbedBatch]:
    """Split the jobs to embed into batches of at most ``batch_jobs`` (in job order)."""
    batches = []
    for start in range(0, len(to_embed), batch_jobs):
        chunk = to_embed[start : start + batch_jobs]
        jobs = [prepared.jobs[i] for i in chunk]
        batches.append(EmbedBatch(
            ids=[j.id for j in jobs], hashes=[prepared.hashes[i] for i in chunk],
            texts=[prepared.texts[i] for i in chunk], languages=[j.language() for j in jobs],
            attempts=[prepared.attempts[i] for i in chunk],
        ))
    return batches


def batch_size(jobs: int, batch_jobs: int, spread: int = 1) -> int:
    """Jobs per batch: at most ``batch_jobs``; with ``spread`` > 1 workers, small enough to
    give each worker a batch (but not tiny ones)."""
    if spread <= 1:
        return batch_jobs
    return max(256, min(batch_jobs, -(-jobs // spread)))


def plan_embeddings(jobs: JobsRepo, embeddings: EmbeddingsRepo, prepared: Prepared, model: str,
                    now: datetime, batch_jobs: int, spread: int = 1) -> EmbedPlan:
    """Batches of the jobs needing a new vector; jobs whose stored vector is current are
    marked embedded now. (Jobs to embed keep their state until their vector is stored:
    a run that dies before that leaves them unsettled or changed, so the next run pulls
    them again.)"""
    stored = embeddings.hashes([job.id for job in prepared.jobs]) if prepared.jobs else {}
    to_embed, to_mark = split_by_stored_hash(prepared, stored)
    if to_mark:
        jobs.mark_embedded([EmbeddedMark(prepared.jobs[i].id, prepared.hashes[i], prepared.jobs[i].language())
                            for i in to_mark], model, now)
    return EmbedPlan(make_batches(prepared, to_embed, batch_size(len(to_embed), batch_jobs, spread)), len(to_mark))


def embed_batch(embedder: Embedder, batch: EmbedBatch) -> BatchVectors:
    """The paid call for one batch: identical texts (duplicate postings) are sent once.

    Vectors are checked and normalised once (:func:`~jobsim.embedders.sanity.sanitize`).
    Inputs that failed only transiently (rate limit, unreachable service) are ``deferred``;
    the others that failed are ``failed`` with the reason."""
    started = time.perf_counter()
    unique: dict[str, int] = {}
    for h in batch.hashes:
        unique.setdefault(h, len(unique))
    texts = [""] * len(unique)
    for h, text in zip(batch.hashes, batch.texts):
        texts[unique[h]] = text
    result = sanitize(embedder.embed(texts), embedder.dimensions)
    out = BatchVectors(batch=batch, ok=[], vectors=np.zeros((0, embedder.dimensions), np.float32),
                       requests=result.requests, tokens=result.tokens, retries=result.retries,
                       rate_limited=result.rate_limited, unavailable=result.unavailable)
    rows = []
    for pos, (job_id, h) in enumerate(zip(batch.ids, batch.hashes)):
        row = unique[h]
        if row in result.transient:
            out.deferred[job_id] = result.errors.get(row, "not embedded")
        elif row in result.errors:
            out.failed[job_id] = result.errors[row]
        else:
            out.ok.append(pos)
            rows.append(row)
    out.vectors = np.ascontiguousarray(result.vectors[np.asarray(rows, dtype=np.int64)], dtype=np.float32)
    out.seconds = time.perf_counter() - started
    return out


def store_batch(jobs: JobsRepo, embeddings: EmbeddingsRepo, done: BatchVectors, model: str,
                now: datetime) -> EmbedStats:
    """Store a batch's vectors, then mark its jobs (idempotent: safe to retry)."""
    b = done.batch
    outcome = WriteOutcome()
    if done.ok:
        embeddings.upsert([b.ids[p] for p in done.ok], [b.hashes[p] for p in done.ok], done.vectors, model, now)
        outcome.add(jobs.mark_embedded([EmbeddedMark(b.ids[p], b.hashes[p], b.languages[p]) for p in done.ok],
                                       model, now))
    if done.failed:
        spent = {job_id: attempts for job_id, attempts in zip(b.ids, b.attempts)}
        outcome.add(jobs.mark_failed({k: (reason, spent[k] + 1) for k, reason in done.failed.items()}, now))
    if done.deferred:
        outcome.add(jobs.mark_pending(done.deferred))
    return EmbedStats(embedded=len(done.ok), failed=dict(done.failed), requests=done.requests,
                      tokens=done.tokens, retries=done.retries, rate_limited=done.rate_limited,
                      deferred=dict(done.deferred), seconds=done.seconds, refused=outcome.refused,
                      unavailable=done.unavailable)
