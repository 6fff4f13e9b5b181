"""The job data contract and validation of raw job documents into typed records.

Pure: takes plain dicts (as read from MongoDB or an import file) and returns typed
records or a rejection with reasons an operator can read. Never raises on bad input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from jobsim.language import detect_language
from jobsim.text import build_embedding_text, clean_text

EXPERIENCE_LEVELS = ("entry", "junior", "mid", "senior", "lead", "executive")
JOB_STATUSES = ("active", "closed", "draft")
EMBEDDING_STATUSES = ("pending", "processing", "completed", "failed")
TITLE_MIN, TITLE_MAX = 3, 200
DESCRIPTION_MIN = 20
MAX_LIST_ITEMS = 100


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A valid, active job ready for embedding and scoring."""

    id: str
    title: str
    description: str
    category: str = ""
    tags: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    city: str = ""
    remote: bool = False
    experience_level: str = ""
    expires_at: datetime | None = None

    def embedding_text(self) -> str:
        return build_embedding_text(
            self.title, self.description, self.category, self.tags, self.requirements
        )

    def language(self) -> str:
        """The posting's language (``embedding.language`` on the job)."""
        return detect_language(self.title + " " + self.description)


@dataclass(frozen=True, slots=True)
class Checked:
    """Outcome of checking one raw document: valid ``job``, ``inactive`` or ``reasons``."""

    job_id: str
    job: JobRecord | None = None
    inactive: str | None = None
    reasons: tuple[str, ...] = field(default_factory=tuple)


def as_utc(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from a BSON date or ISO string; None when absent.

    Raises ValueError when the value is present but is not a date.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise ValueError(f"expected a date, got {type(value).__name__}")
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _text_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of strings, got {type(value).__name__}")
    items = (clean_text(v) for v in value[:MAX_LIST_ITEMS] if isinstance(v, str))
    return tuple(v for v in items if v)


def _optional_text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} is not text (got {type(value).__name__})")
    return clean_text(value)


def check_job(doc: dict[str, Any], now: datetime) -> Checked:
    """Validate one raw job document against the contract at time ``now`` (UTC-aware)."""
    job_id = str(doc.get("_id"))
    status = doc.get("status")
    if doc.get("isDeleted") is True:
        return Checked(job_id, inactive="deleted")
    if status != "active":
        return Checked(job_id, inactive=f"status {status!r}"[:60])
    reasons: list[str] = []
    try:
        expires_at = as_utc(doc.get("expiresAt"))
    except (ValueError, TypeError) as exc:
        reasons.append(f"expiresAt is not a date ({exc})"[:120])
        expires_at = None
    if expires_at is not None and expires_at <= now:
        return Checked(job_id, inactive="expired")

    raw_title, raw_desc = doc.get("title"), doc.get("description")
    title = description = ""
    if not isinstance(raw_title, str):
        reasons.append(f"title is missing or not text (got {type(raw_title).__name__})")
    else:
        title = clean_text(raw_title)
        if not TITLE_MIN <= len(title) <= TITLE_MAX:
            reasons.append(f"title must be {TITLE_MIN}-{TITLE_MAX} characters (got {len(title)})")
    if not isinstance(raw_desc, str):
        reasons.append(f"description is missing or not text (got {type(raw_desc).__name__})")
    else:
        description = clean_text(raw_desc)
        if len(description) < DESCRIPTION_MIN:
            reasons.append(
                f"description must be at least {DESCRIPTION_MIN} characters (got {len(description)})"
            )

    fields: dict[str, Any] = {}
    for key, name, parse in (
        ("category", "category", lambda v: _optional_text(v, "category")),
        ("tags", "tags", _text_list),
        ("requirements", "requirements", _text_list),
    ):
        try:
            fields[key] = parse(doc.get(name))
        except ValueError as exc:
            reasons.append(f"{name}: {exc}")

    location = doc.get("location")
    city, remote = "", False
    if isinstance(location, dict):
        city_value = location.get("city")
        city = clean_text(city_value).casefold() if isinstance(city_value, str) else ""
        remote = location.get("remote") is True
    elif location is not None:
        reasons.append(f"location is not an object (got {type(location).__name__})")

    level = doc.get("experienceLevel")
    if level is not None and level not in EXPERIENCE_LEVELS:
        reasons.append(f"experienceLevel {str(level)[:30]!r} is not one of {', '.join(EXPERIENCE_LEVELS)}")

    if reasons:
        return Checked(job_id, reasons=tuple(reasons))
    job = JobRecord(
        id=job_id,
        title=title,
        description=description,
        category=fields["category"],
        tags=fields["tags"],
        requirements=fields["requirements"],
        city=city,
        remote=remote,
        experience_level=level or "",
        expires_at=expires_at,
    )
    return Checked(job_id, job=job)
