"""``similar_jobs``: the seed's "Get Similar" decision (semantic neighbours or a fallback).

Semantic path: the job's embedding is ``completed`` and it has a stored list. The
neighbours still active (status active, not deleted, not expired) are loaded in one
``$in`` query and returned in stored order with their stored scores. When fewer than
``min_semantic`` remain, the result is topped up with fallback results, and — when some
neighbours dropped out since the run — a recompute is requested (``recompute_requests``).

Fallback: newest active jobs of the same category or the same city, itself excluded,
``fallback_limit`` of them; message "Semantic matching in progress" while the job's
embedding is pending.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Any, Literal

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field
from pymongo.database import Database
from pymongo.errors import PyMongoError

from jobsim.errors import InvalidRequestError, NotFoundError
from jobsim.settings import ApiSettings, Settings
from storage.job_reads import JobReadsRepository, is_active, stored_items
from jobsim.ids import display_id
from storage.ids import to_key as job_key
from storage.mongo import connect
from storage.recompute_requests import RecomputeRequestsRepository

log = logging.getLogger(__name__)

IN_PROGRESS = "Semantic matching in progress"
REFRESHING = "Some similar jobs are no longer available; the list is being refreshed"
PENDING_STATUSES = (None, "pending", "processing")

_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
_STRING_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def parse_job_id(raw: Any, string_ids: bool = False) -> ObjectId | str:
    """A caller's job id as it can go into a query, or :class:`InvalidRequestError`.

    Only plain strings are accepted: 24 hex digits become an ``ObjectId``; with
    ``string_ids`` other short ids of letters, digits and ``_ - . :`` stay strings.
    Anything else (dicts such as ``{"$ne": null}``, ``$where``, junk) is rejected here.
    """
    if not isinstance(raw, str):
        raise InvalidRequestError("job id must be a string")
    if _OBJECT_ID.fullmatch(raw):
        return ObjectId(raw)
    if string_ids and _STRING_ID.fullmatch(raw):
        return raw
    raise InvalidRequestError(
        "job id must be 24 hexadecimal characters"
        + (" or 1-64 of letters, digits, _ - . :" if string_ids else "")
    )


def read_side_db(settings: Settings) -> Database:
    """The database as the read side's user sees it (``JOBSIM_API__MONGO_URI`` when set)."""
    mongo = settings.mongo
    if settings.api.mongo_uri is not None:
        mongo = mongo.model_copy(update={"uri": settings.api.mongo_uri})
    return connect(mongo)


# -- response ------------------------------------------------------------------------
class Location(BaseModel):
    city: str | None = None
    region: str | None = None
    remote: bool | None = None
    hybrid: bool | None = None


class Salary(BaseModel):
    min: float | None = None
    max: float | None = None
    currency: str | None = None


class SimilarJob(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(serialization_alias="_id", description="The job's id.")
    title: str | None = None
    company: str | None = None
    location: Location | None = None
    salary: Salary | None = None
    category: str | None = None
    postedAt: datetime | None = Field(None, description="When the job was posted (createdAt).")
    similarityScore: float | None = Field(
        None, ge=0, le=1, description="Stored similarity (0..1); null for fallback results."
    )
    similarityPercentage: int | None = Field(
        None, ge=0, le=100, description="similarityScore as a whole percentage."
    )


class SimilarJobsResponse(BaseModel):
    success: bool = True
    data: list[SimilarJob]
    total: int
    method: Literal["semantic", "fallback"]
    message: str | None = None


# -- cards from stored documents (which may be dirty: type-check everything) --------------
def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def card(doc: dict[str, Any], score: float | None = None) -> SimilarJob:
    """A result card from a stored job document."""
    loc, sal = doc.get("location"), doc.get("salary")
    created = doc.get("createdAt")
    if score is not None:
        score = min(max(score, 0.0), 1.0)
    return SimilarJob(
        id=display_id(job_key(doc["_id"])),
        title=_str(doc.get("title")),
        company=_str(doc.get("company")),
        location=Location(city=_str(loc.get("city")), region=_str(loc.get("region")),
                          remote=_bool(loc.get("remote")), hybrid=_bool(loc.get("hybrid")))
        if isinstance(loc, dict) else None,
        salary=Salary(min=_num(sal.get("min")), max=_num(sal.get("max")),
                      currency=_str(sal.get("currency")))
        if isinstance(sal, dict) else None,
        category=_str(doc.get("category")),
        postedAt=created if isinstance(created, datetime) else None,
        similarityScore=score,
        similarityPercentage=None if score is None else round(score * 100),
    )


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

    def similar_jobs(self, job_id: Any, limit: int = 10, now: datetime | None = None) -> SimilarJobsResponse:
        """Similar jobs of ``job_id``; raises InvalidRequestError / NotFoundError."""
        mongo_id = parse_job_id(job_id, self.settings.string_ids)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= self.settings.max_limit:
            raise InvalidRequestError(f"limit must be an integer in 1..{self.settings.max_limit}")
        now = now or datetime.now(timezone.utc)
        job = self.reads.subject(mongo_id)
        if job is None or job.get("isDeleted") is True:
            raise NotFoundError("job not found")
        embedding = job.get("embedding") if isinstance(job.get("embedding"), dict) else {}
        status = embedding.get("status")
        stored = stored_items(job.get("similarJobs"))
        if status == "completed" and stored:
            return self._semantic(job, stored, limit, now)
        data = self._fallback(job, [job["_id"]], min(limit, self.settings.fallback_limit), now)
        return SimilarJobsResponse(
            data=data, total=len(data), method="fallback",
            message=IN_PROGRESS if status in PENDING_STATUSES else None,
        )

    def _semantic(
        self, job: dict[str, Any], stored: list[tuple[Any, float]], limit: int, now: datetime
    ) -> SimilarJobsResponse:
        wanted: list[tuple[Any, float]] = []
        seen = {job_key(job["_id"])}
        for other, score in stored:
            if job_key(other) not in seen:
                seen.add(job_key(other))
                wanted.append((other, score))
        live = self.reads.live_cards([other for other, _ in wanted], now)
        data = [card(live[job_key(o)], score) for o, score in wanted if job_key(o) in live]
        message = None
        if len(data) < self.settings.min_semantic:
            # Recompute only helps when neighbours dropped out since the run (and the job
            # itself is still shown); a short list the run produced is topped up as is.
            if len(data) < len(wanted) and is_active(job, now):
                self._request_recompute(job["_id"], len(data), len(stored), now)
                message = REFRESHING
            data = data[:limit]
            room = min(limit, self.settings.fallback_limit) - len(data)
            exclude = [job["_id"], *(o for o, _ in wanted)]
            data += self._fallback(job, exclude, room, now)
        else:
            data = data[:limit]
        return SimilarJobsResponse(data=data, total=len(data), method="semantic", message=message)

    def _fallback(self, job: dict[str, Any], exclude: list[Any], limit: int, now: datetime) -> list[SimilarJob]:
        loc = job.get("location") if isinstance(job.get("location"), dict) else {}
        docs = self.reads.fallback_cards(
            _str(job.get("category")), _str(loc.get("city")), exclude, now, limit
        )
        return [card(doc) for doc in docs]

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
