"""The similar-jobs response: models (documented in the OpenAPI schema) and result cards
built from stored documents, which may be dirty (every field is type-checked)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobsim.ids import STRING, display_id
from storage.ids import to_key as job_key
from storage.job_reads import StoredEntry

IN_PROGRESS = "Semantic matching in progress"
NO_LONGER_OPEN = "This job is no longer open — similar open jobs"
REFRESHING = "Some similar jobs are no longer available; the list is being refreshed"

MatchCode = Literal["category", "level", "adjacentLevel", "city", "remote"]
IdType = Literal["objectId", "string"]


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
    """One result card. Semantic results carry scores; fallback results carry none."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(serialization_alias="_id", description=(
        "The job's id as the web app writes it: 24 hex digits for an ObjectId, the string "
        "itself for a string id."))
    idType: IdType = Field(description="Type of the job's stored `_id`.")
    title: str | None = None
    company: str | None = None
    location: Location | None = None
    salary: Salary | None = None
    category: str | None = None
    postedAt: datetime | None = Field(None, description="When the job was posted (createdAt).")
    similarityScore: float | None = Field(None, ge=0, le=1, description=(
        "Blended similarity (0..1, 2 decimals): cosine plus a small context bonus "
        "(by default 0.9 × cosine + 0.1 × bonus). "
        "Null for fallback results."))
    similarityPercentage: int | None = Field(
        None, ge=0, le=100, description="similarityScore as a whole percentage (null for fallback results).")
    semanticScore: float | None = Field(None, ge=0, le=1, description=(
        "The semantic part of the score: cosine similarity of the two postings' texts (0..1, "
        "2 decimals). Null for fallback results and for lists computed before it was stored."))
    semanticPercentage: int | None = Field(None, ge=0, le=100, description=(
        "semanticScore as a whole percentage, e.g. 78 for \"78% match\"."))
    match: list[MatchCode] | None = Field(None, description=(
        "Context bonuses that applied, as codes: `category` (same category), `level` (same "
        "experience level), `adjacentLevel` (neighbouring level), `city` (same city), `remote` "
        "(remote job in another city). [] = none applied. Null for fallback results and for "
        "lists computed before it was stored."))


class SimilarJobsResponse(BaseModel):
    success: bool = True
    data: list[SimilarJob] = Field(description=(
        "Semantic results first (stored order, best first), then fallback results "
        "(newest first) when the list was topped up."))
    total: int = Field(description="Number of results in data.")
    method: Literal["semantic", "fallback"] = Field(description=(
        "`semantic`: the job's stored list was served (possibly topped up with fallback "
        "results); `fallback`: newest open jobs of the same category or city."))
    jobOpen: bool = Field(True, description=(
        "Whether the job asked about is open (active, not expired). False for closed, expired "
        "and draft jobs: their results are similar open jobs."))
    message: str | None = Field(None, description=(
        f"\"{IN_PROGRESS}\": an open job still being embedded (fallback results); "
        f"\"{NO_LONGER_OPEN}\": a closed, expired or draft job; "
        f"\"{REFRESHING}\": a recompute was requested (topped-up results); otherwise null."))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _percent(value: float | None) -> int | None:
    return None if value is None else round(value * 100)


def shown_id(key: str) -> tuple[str, IdType]:
    """A job key as shown to people (never the internal ``s:`` key), and its id type."""
    return display_id(key), "string" if key.startswith(STRING) else "objectId"


def id_fields(mongo_id: Any) -> tuple[str, IdType]:
    """A stored ``_id`` as shown, and its id type."""
    return shown_id(job_key(mongo_id))


def _location(loc: Any) -> Location | None:
    if not isinstance(loc, dict):
        return None
    return Location(city=_str(loc.get("city")), region=_str(loc.get("region")),
                    remote=_bool(loc.get("remote")), hybrid=_bool(loc.get("hybrid")))


def _salary(sal: Any) -> Salary | None:
    if not isinstance(sal, dict):
        return None
    return Salary(min=_num(sal.get("min")), max=_num(sal.get("max")), currency=_str(sal.get("currency")))


def card(doc: dict[str, Any], entry: StoredEntry | None = None) -> SimilarJob:
    """A result card from a stored job document; ``entry`` = its stored list entry (semantic)."""
    shown, id_type = id_fields(doc["_id"])
    created = doc.get("createdAt")
    score = None if entry is None else entry.score
    cosine = None if entry is None else entry.cosine
    return SimilarJob(
        id=shown, idType=id_type,
        title=_str(doc.get("title")),
        company=_str(doc.get("company")),
        location=_location(doc.get("location")),
        salary=_salary(doc.get("salary")),
        category=_str(doc.get("category")),
        postedAt=created if isinstance(created, datetime) else None,
        similarityScore=score, similarityPercentage=_percent(score),
        semanticScore=cosine, semanticPercentage=_percent(cosine),
        match=None if entry is None or entry.match is None else list(entry.match),
    )
