"""``similar_jobs``: the seed's "Get Similar" decision (semantic neighbours or a fallback).

Semantic path: the job's embedding is ``completed`` and it has a stored list. The
neighbours still active (status active, not deleted, not expired) are loaded in one
``$in`` query and returned in stored order with their stored scores and explanations
(``cosine``, ``match``). When fewer than ``min_semantic`` remain, the result is topped up
with fallback results, and — for an open job some of whose neighbours dropped out since
the run — a recompute is requested (``recompute_requests``).

Fallback: newest active jobs of the same category or the same city, ``fallback_limit``
of them, never the job itself nor a member of its duplicate group.

Messages: "Semantic matching in progress" only for an open job whose embedding is
pending/processing (or not yet seen by the pipeline); a closed, expired or draft job
answers its list or the fallback with "This job is no longer open — similar open jobs"
and never requests a recompute. Deleted or unknown jobs: :class:`NotFoundError`.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any

from bson import ObjectId
from pymongo.errors import PyMongoError

from api_export.cards import (
    IN_PROGRESS, NO_LONGER_OPEN, REFRESHING, SimilarJob, SimilarJobsResponse, card,
)
from api_export.database import read_side_db
from jobsim.contract import embedding_state, is_active
from jobsim.errors import InvalidRequestError, NotFoundError
from jobsim.settings import ApiSettings, Settings
from storage.ids import to_key as job_key
from storage.job_reads import JobReadsRepository, StoredEntry, group_of, stored_entries
from storage.recompute_requests import RecomputeRequestsRepository

log = logging.getLogger(__name__)

__all__ = [
    "IN_PROGRESS", "NO_LONGER_OPEN", "REFRESHING", "SimilarJob", "SimilarJobsResponse",
    "SimilarJobsService", "parse_job_id", "read_side_db", "similar_jobs",
]

PENDING_STATUSES = (None, "pending", "processing")  # None: not yet seen by the pipeline
FALLBACK_OVERFETCH = 3  # fallback rows read per result wanted, so reposts can be collapsed

_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
_STRING_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def parse_job_id(raw: Any, string_ids: bool = False) -> tuple[ObjectId | str, ...]:
    """The ``_id`` values a caller's job id may mean, in lookup order, or :class:`InvalidRequestError`.

    Only plain strings are accepted: 24 hex digits mean an ``ObjectId``; with ``string_ids``
    any short id of letters, digits and ``_ - . :`` may also be a string ``_id`` (so 24 hex
    digits mean the ObjectId first, else the string). Anything else (dicts such as
    ``{"$ne": null}``, ``$where``, junk) is rejected here, before any query.
    """
    if not isinstance(raw, str):
        raise InvalidRequestError("job id must be a string")
    candidates: list[ObjectId | str] = []
    if _OBJECT_ID.fullmatch(raw):
        candidates.append(ObjectId(raw))
    if string_ids and _STRING_ID.fullmatch(raw):
        candidates.append(raw)
    if not candidates:
        raise InvalidRequestError(
            "job id must be 24 hexadecimal characters"
            + (" or 1-64 of letters, digits, _ - . :" if string_ids else "")
        )
    return tuple(candidates)


class _Distinct:
    """Admits each job once and at most one member of each duplicate group, never the
    subject nor a member of the subject's group."""

    def __init__(self, subject: dict[str, Any]) -> None:
        self.seen = {job_key(subject["_id"])}
        group = group_of(subject)
        if group is not None:
            self.seen.add(job_key(group))

    def take(self, doc: dict[str, Any]) -> bool:
        ident = job_key(doc["_id"])
        group = group_of(doc)
        group_key = ident if group is None else job_key(group)
        if ident in self.seen or group_key in self.seen:
            return False
        self.seen.update((ident, group_key))
        return True


def _dedupe_entries(subject: dict[str, Any], stored: list[StoredEntry]) -> list[StoredEntry]:
    """Stored entries without the subject and without repeated ids (first kept)."""
    seen = {job_key(subject["_id"])}
    out = []
    for entry in stored:
        if entry.key not in seen:
            seen.add(entry.key)
            out.append(entry)
    return out


class SimilarJobsService:
    """The read side's decision, over a read-only jobs repository and the request log."""

    def __init__(
        self, reads: JobReadsRepository, recompute: RecomputeRequestsRepository, settings: ApiSettings
    ) -> None:
        self.reads = reads
        self.recompute = recompute
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> "SimilarJobsService":
        db = read_side_db(settings)
        return cls(
            JobReadsRepository(db, settings.mongo.jobs_collection),
            RecomputeRequestsRepository(db, settings.api.recompute_collection),
            settings.api,
        )

    def _check_limit(self, limit: Any) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= self.settings.max_limit:
            raise InvalidRequestError(f"limit must be an integer in 1..{self.settings.max_limit}")

    def similar_jobs(self, job_id: Any, limit: int = 10, now: datetime | None = None) -> SimilarJobsResponse:
        """Similar jobs of ``job_id``; raises InvalidRequestError / NotFoundError."""
        candidates = parse_job_id(job_id, self.settings.string_ids)
        self._check_limit(limit)
        now = now or datetime.now(timezone.utc)
        job = self.reads.subject(candidates)
        if job is None or job.get("isDeleted") is True:
            raise NotFoundError("job not found")
        is_open = is_active(job, now)
        status = embedding_state(job).get("status")
        stored = stored_entries(job.get("similarJobs")) if status == "completed" else []
        if stored:
            return self._semantic(job, stored, limit, now, is_open)
        data = self._fallback(job, [], min(limit, self.settings.fallback_limit), now, _Distinct(job))
        if not is_open:
            message: str | None = NO_LONGER_OPEN
        else:
            message = IN_PROGRESS if status in PENDING_STATUSES else None
        return SimilarJobsResponse(data=data, total=len(data), method="fallback", jobOpen=is_open,
                                   message=message)

    def _semantic(
        self, job: dict[str, Any], stored: list[StoredEntry], limit: int, now: datetime, is_open: bool
    ) -> SimilarJobsResponse:
        wanted = _dedupe_entries(job, stored)
        live = self.reads.live_cards([entry.job_id for entry in wanted], now)
        distinct = _Distinct(job)
        data = [card(live[e.key], e) for e in wanted if e.key in live and distinct.take(live[e.key])]
        message = None if is_open else NO_LONGER_OPEN
        if len(data) < self.settings.min_semantic:
            # Recompute only helps an open job whose neighbours dropped out since the run;
            # a short list the run produced is topped up as is.
            dropped = sum(1 for e in wanted if e.key not in live)
            if is_open and dropped:
                self._request_recompute(job["_id"], len(wanted) - dropped, len(stored), now)
                message = REFRESHING
            data = data[:limit]
            room = min(limit, self.settings.fallback_limit) - len(data)
            data += self._fallback(job, [e.job_id for e in wanted], room, now, distinct)
        else:
            data = data[:limit]
        return SimilarJobsResponse(data=data, total=len(data), method="semantic", jobOpen=is_open,
                                   message=message)

    def _fallback(
        self, job: dict[str, Any], exclude: list[Any], room: int, now: datetime, distinct: _Distinct
    ) -> list[SimilarJob]:
        if room <= 0:
            return []
        loc = job.get("location") if isinstance(job.get("location"), dict) else {}
        category, city = job.get("category"), loc.get("city")
        docs = self.reads.fallback_cards(
            category if isinstance(category, str) else None, city if isinstance(city, str) else None,
            [job["_id"], *exclude], now, room * FALLBACK_OVERFETCH, group_of(job),
        )
        out: list[SimilarJob] = []
        for doc in docs:
            if len(out) == room:
                break
            if distinct.take(doc):
                out.append(card(doc))
        return out

    def _request_recompute(self, mongo_id: Any, live: int, stored: int, now: datetime) -> None:
        # The answer is still useful without the request: a failed write is logged, not raised,
        # so a read-only deployment that forgot the request collection keeps serving.
        try:
            self.recompute.request(mongo_id, "neighbours_expired", live, stored, now)
        except PyMongoError as exc:
            log.warning("recompute request for one job not recorded: %s", type(exc).__name__)


def similar_jobs(job_id: Any, limit: int = 10, settings: Settings | None = None) -> SimilarJobsResponse:
    """Library entry point: ``SimilarJobsService.from_settings(settings).similar_jobs(...)``.

    ``settings`` defaults to ``Settings()`` (the environment); long-lived callers should
    build one :class:`SimilarJobsService` and reuse it.
    """
    return SimilarJobsService.from_settings(settings or Settings()).similar_jobs(job_id, limit)
