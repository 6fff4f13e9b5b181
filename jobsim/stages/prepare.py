"""Prepare: validate pulled documents and build each valid job's embedding text and hash."""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobsim.contract import attempts_spent, embedding_state
from jobsim.jobs import JobRecord, check_job
from jobsim.repositories import JobsRepo, WriteOutcome
from jobsim.text import content_hash


@dataclass
class Prepared:
    """Valid jobs with their embedding text and hash, plus what was set aside and why."""

    jobs: list[JobRecord] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    current_hashes: list[str | None] = field(default_factory=list)  # job.embedding.contentHash
    current_status: list[str | None] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)  # embedding attempts already spent
    rejected: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rejected_recorded: set[str] = field(default_factory=set)  # same reasons already on the job
    inactive: Counter = field(default_factory=Counter)

    def rejections_to_record(self) -> dict[str, tuple[str, ...]]:
        return {k: v for k, v in self.rejected.items() if k not in self.rejected_recorded}


def rejection_message(reasons: tuple[str, ...]) -> str:
    """What an operator reads in ``embedding.error`` of a rejected job."""
    return ("invalid: " + "; ".join(reasons))[:500]


def prepare(docs: list[dict[str, Any]], now: datetime, model: str, dims: int, closed_days: int = 0) -> Prepared:
    """Validate raw documents and build each valid job's embedding text and hash (active
    jobs, and closed ones less than ``closed_days`` ago: they get lists too)."""
    out = Prepared()
    for doc in docs:
        checked = check_job(doc, now, closed_days)
        state = embedding_state(doc)
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
        current = state.get("contentHash")
        out.current_hashes.append(current if isinstance(current, str) else None)
        status = state.get("status")
        out.current_status.append(status if isinstance(status, str) else None)
        out.attempts.append(max(0, attempts_spent(state) or 0))
    return out


def record_rejections(jobs: JobsRepo, prepared: Prepared, now: datetime) -> WriteOutcome:
    """Write each newly rejected job's reasons onto the job, where operators and the app see it."""
    messages = {job_id: rejection_message(r) for job_id, r in prepared.rejections_to_record().items()}
    return jobs.mark_rejected(messages, now) if messages else WriteOutcome()


def rehashed(prepared: Prepared, model: str, dims: int) -> Prepared:
    """``prepared`` with each text's hash for ``model`` (e.g. a fitted embedder's version)."""
    out = copy.copy(prepared)
    out.hashes = [content_hash(text, model, dims) for text in prepared.texts]
    return out
