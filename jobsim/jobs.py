"""Validation of raw job documents into typed records.

Pure: takes plain dicts (as read from MongoDB, ``_id`` already turned into a key by
storage) and returns a typed record, an "inactive" reason, or a rejection with reasons an
operator can read. Never raises on bad input. The rules themselves live in
:mod:`jobsim.contract`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobsim.contract import ACTIVE, EXPERIENCE_LEVELS, as_date, inactive_reason, listing_role, normalise_label
from jobsim.ids import unsupported_id_reason
from jobsim.language import detect_language
from jobsim.text import build_embedding_text, clean_text

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
    company: str = ""
    active: bool = True  # False: closed or expired less than closed_days ago (it gets a list, is never listed)

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


def _title_and_description(doc: dict[str, Any], reasons: list[str]) -> tuple[str, str]:
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
            reasons.append(f"description must be at least {DESCRIPTION_MIN} characters (got {len(description)})")
    return title, description


def _optional_fields(doc: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, parse in (
        ("category", lambda v: _optional_text(v, "category")),
        ("company", lambda v: _optional_text(v, "company")),
        ("tags", _text_list),
        ("requirements", _text_list),
    ):
        try:
            fields[name] = parse(doc.get(name))
        except ValueError as exc:
            reasons.append(f"{name}: {exc}")
    location = doc.get("location")
    fields["city"], fields["remote"] = "", False
    if isinstance(location, dict):
        fields["city"] = normalise_label(location.get("city"))
        fields["remote"] = location.get("remote") is True
    elif location is not None:
        reasons.append(f"location is not an object (got {type(location).__name__})")
    level = doc.get("experienceLevel")
    if level is not None and level not in EXPERIENCE_LEVELS:
        reasons.append(f"experienceLevel {str(level)[:30]!r} is not one of {', '.join(EXPERIENCE_LEVELS)}")
    fields["experience_level"] = level if level in EXPERIENCE_LEVELS else ""
    return fields


def check_job(doc: dict[str, Any], now: datetime, closed_days: int = 0) -> Checked:
    """Validate one raw job document against the contract at time ``now`` (UTC-aware).

    Jobs that get a list are checked: active ones, and closed or expired ones less than
    ``closed_days`` ago (their record says ``active=False``); the others are inactive."""
    job_id = str(doc.get("_id"))
    unsupported = unsupported_id_reason(job_id)
    if unsupported:
        return Checked(job_id, reasons=(unsupported,))
    reasons: list[str] = []
    expires_at = None
    try:
        expires_at = as_date(doc.get("expiresAt"))
    except ValueError as exc:
        reasons.append(f"expiresAt {exc}")
    inactive = inactive_reason(doc, now)
    role = listing_role(doc, now, closed_days)
    if inactive is not None and inactive != "invalid expiresAt" and role is None:
        return Checked(job_id, inactive=inactive)
    title, description = _title_and_description(doc, reasons)
    fields = _optional_fields(doc, reasons)
    if reasons:
        return Checked(job_id, reasons=tuple(reasons))
    return Checked(job_id, job=JobRecord(id=job_id, title=title, description=description,
                                         expires_at=expires_at, active=role == ACTIVE, **fields))
