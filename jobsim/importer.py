"""Bulk import: CSV / JSON Lines / Parquet rows → job documents of the data contract.

Pure mapping (the file is read by ``jobsim_app.tables``): each row becomes a document or a
rejection with reasons. Documents are keyed by (``source``, ``externalId``) so that a
re-import updates instead of duplicating. Presets map known public datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import polars as pl

from jobsim.contract import EXPERIENCE_LEVELS
from jobsim.errors import ImportFileError

Converter = Callable[[Any], Any]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = "\n".join(str(v) for v in value if v not in (None, ""))
    text = str(value).strip()
    return text or None


def _split(sep: str) -> Converter:
    def convert(value: Any) -> list[str] | None:
        if isinstance(value, list):
            return [str(v).strip() for v in value if str(v).strip()]
        text = _text(value)
        return [p.strip() for p in text.split(sep) if p.strip()] if text else None
    return convert


def _number(value: Any) -> float | None:
    text = _text(value)
    return None if text is None else float(text.replace(",", ""))


def _date(value: Any) -> datetime | None:
    """A date from a file cell: epoch seconds or milliseconds, an ISO 8601 text, or a date."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        seconds = float(value)
        return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, timezone.utc)
    text = _text(value)
    if text is None:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _flag(value: Any) -> bool:
    return _text(value) is not None and str(value).strip().lower() in ("1", "1.0", "true", "yes", "y")


def _city(value: Any) -> str | None:
    text = _text(value)
    return text.split(",")[0].strip() or None if text else None


def _level(mapping: dict[str, str]) -> Converter:
    def convert(value: Any) -> str | None:
        text = _text(value)
        if text is None:
            return None
        level = mapping.get(text.lower(), text.lower())
        if level not in EXPERIENCE_LEVELS:
            raise ValueError(f"unknown experience level {text[:40]!r}")
        return level
    return convert


@dataclass(frozen=True)
class Preset:
    """target field (dotted path) → (source column or columns, converter)."""

    id_columns: tuple[str, ...]
    fields: dict[str, tuple[str | tuple[str, ...], Converter]] = field(default_factory=dict)


NATIVE = Preset(("externalId",), {
    "title": ("title", _text), "description": ("description", _text),
    "category": ("category", _text), "company": ("company", _text),
    "tags": ("tags", _split(",")), "requirements": ("requirements", _split("\n")),
    "location": ("location", lambda v: v if isinstance(v, dict) else None),
    "experienceLevel": ("experienceLevel", _level({})),
    "salary": ("salary", lambda v: v if isinstance(v, dict) else None),
    "status": ("status", _text), "isDeleted": ("isDeleted", _flag),
    "expiresAt": ("expiresAt", _date), "createdAt": ("createdAt", _date),
    "postedBy": ("postedBy", _text),
})
LINKEDIN = Preset(("job_id",), {
    "title": ("title", _text), "description": ("description", _text),
    "company": ("company_name", _text), "requirements": ("skills_desc", _split("\n")),
    "location.city": ("location", _city), "location.remote": ("remote_allowed", _flag),
    "experienceLevel": ("formatted_experience_level", _level({
        "internship": "entry", "entry level": "entry", "associate": "junior",
        "mid-senior level": "senior", "director": "lead", "executive": "executive"})),
    "salary.min": ("min_salary", _number), "salary.max": ("max_salary", _number),
    "salary.currency": ("currency", _text),
    "createdAt": ("listed_time", _date), "expiresAt": ("expiry", _date),
})
NYC = Preset(("Job ID", "Posting Type"), {
    "title": ("Business Title", _text),
    "description": (("Job Description", "Minimum Qual Requirements", "Preferred Skills"), _text),
    "category": ("Job Category", _text), "company": ("Agency", _text),
    "location.city": ("Work Location", _text),
    "salary.min": ("Salary Range From", _number), "salary.max": ("Salary Range To", _number),
    "createdAt": ("Posting Date", _date), "expiresAt": ("Post Until", _date),
})
PRESETS = {"native": NATIVE, "linkedin": LINKEDIN, "nyc": NYC}


@dataclass
class ImportBatch:
    docs: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (row, externalId, reason)
    rows: list[int] = field(default_factory=list)  # file row number of each doc (1 = first data row)
    titles: dict[int, str] = field(default_factory=dict)  # row number → title, of rejected rows

    @property
    def read(self) -> int:
        """Rows of the file (imported + rejected)."""
        return len(self.docs) + len(self.rejected)


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        doc = doc.setdefault(key, {})
    doc[leaf] = value


def map_rows(df: pl.DataFrame, preset: Preset, source: str, ignore_expiry: bool = False) -> ImportBatch:
    """Map each row to a contract document keyed by (source, externalId)."""
    missing = [c for c in preset.id_columns if c not in df.columns]
    if missing:
        raise ImportFileError(f"id column(s) {missing} not in file (columns: {df.columns[:30]})")
    batch = ImportBatch()
    seen: set[str] = set()
    for row_no, row in enumerate(df.iter_rows(named=True), start=1):
        parts = [_text(row.get(c)) for c in preset.id_columns]
        title = _title_of(row, preset)
        if title:
            batch.titles[row_no] = title
        if any(p is None for p in parts):
            batch.rejected.append((row_no, "", "missing id"))
            continue
        external_id = "-".join(p for p in parts if p)
        if external_id in seen:
            batch.rejected.append((row_no, external_id, "duplicate id within the file"))
            continue
        seen.add(external_id)
        doc: dict[str, Any] = {"source": source, "externalId": external_id, "status": "active",
                               "isDeleted": False}
        reasons = []
        for target, (columns, convert) in preset.fields.items():
            if ignore_expiry and target == "expiresAt":
                continue
            cols = (columns,) if isinstance(columns, str) else columns
            raw = [row.get(c) for c in cols if row.get(c) not in (None, "")]
            if not raw:
                continue
            try:
                value = convert(raw if len(cols) > 1 else raw[0])
            except (ValueError, TypeError, OverflowError) as exc:
                reasons.append(f"{target}: {exc}"[:160])
                continue
            if value is not None:
                _set_path(doc, target, value)
        if not doc.get("title"):
            reasons.append("title is missing")
        if reasons:
            batch.rejected.append((row_no, external_id, "; ".join(reasons)))
            continue
        batch.docs.append(doc)
        batch.rows.append(row_no)
    return batch


def _title_of(row: dict[str, Any], preset: Preset) -> str:
    columns = preset.fields.get("title", ("", _text))[0]
    for column in (columns,) if isinstance(columns, str) else columns:
        try:
            text = _text(row.get(column))
        except (ValueError, TypeError):
            text = None
        if text:
            return text
    return ""
