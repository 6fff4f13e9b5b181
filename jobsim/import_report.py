"""What an import will lead to, row by row: rejected by the import, or imported but not going
to be embedded (by the pipeline's own rule, :func:`jobsim.jobs.check_job`), with the
reasons counted and a few example rows of each. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from jobsim.importer import ImportBatch
from jobsim.jobs import check_job

EXAMPLES = 3
IMPORTED_ID = "0" * 24  # imported postings get ObjectIds: the id itself is never a reason


@dataclass(frozen=True)
class Example:
    row: int
    external_id: str
    title: str


@dataclass
class ReasonGroup:
    rows: int = 0
    examples: list[Example] = field(default_factory=list)

    def add(self, example: Example) -> None:
        self.rows += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)


@dataclass
class ImportOutlook:
    read: int  # rows in the file
    imported: int
    embeddable: int  # imported rows the pipeline will embed
    rejected: dict[str, ReasonGroup] = field(default_factory=dict)
    not_embedded: dict[str, ReasonGroup] = field(default_factory=dict)
    primary: dict[str, int] = field(default_factory=dict)  # one reason per row that will not be embedded
    expired_valid: int = 0  # expired rows that would be embedded without their expiry

    def headline(self, ignore_expiry: bool = False) -> str:
        """"N of M rows will be embedded", and when not all: why, with what to do about it."""
        text = f"{self.embeddable:,} of {self.read:,} rows will be embedded"
        if self.embeddable == self.read:
            return text
        why = ", ".join(f"{n:,} {reason}" for reason, n in
                        sorted(self.primary.items(), key=lambda kv: (-kv[1], kv[0])))
        text += f": {why}"
        expired, valid = self.primary.get("expired", 0), self.expired_valid
        if valid and not ignore_expiry:
            whom = "them" if valid == expired == self.read - self.embeddable else (
                "the expired ones" if valid == expired else f"the {valid:,} expired ones that are otherwise valid")
            text += f"; re-import with --ignore-expiry to keep {whom}"
        return text


def reason_key(reason: str) -> str:
    """A reason without its details (quoted values, counts in parentheses), for grouping."""
    if reason.startswith("status "):
        return reason.removeprefix("status ").strip("'\"")  # closed, draft, ...
    key = re.split(r"['(]", reason, maxsplit=1)[0].strip().rstrip(":,").strip()
    return key[:70] or reason[:70]


def outlook(batch: ImportBatch, now: datetime, closed_days: int = 0) -> ImportOutlook:
    """Count every row of ``batch`` as rejected, not to be embedded (and why) or embeddable
    (active, or closed less than ``closed_days`` ago: those get lists too)."""
    out = ImportOutlook(read=batch.read, imported=len(batch.docs), embeddable=0)
    for row, external_id, reason in batch.rejected:
        example = Example(row, external_id, _short(batch.titles.get(row, "")))
        keys = list(dict.fromkeys(reason_key(part) for part in reason.split("; ")))
        for key in keys:
            out.rejected.setdefault(key, ReasonGroup()).add(example)
        out.primary["rejected"] = out.primary.get("rejected", 0) + 1
    for row, doc in zip(batch.rows, batch.docs):
        checked = check_job({**doc, "_id": IMPORTED_ID}, now, closed_days)
        reasons = [checked.inactive] if checked.inactive else list(checked.reasons)
        if not reasons:
            out.embeddable += 1
            continue
        example = Example(row, doc["externalId"], _short(str(doc.get("title", ""))))
        keys = list(dict.fromkeys(reason_key(r) for r in reasons))
        for key in keys:
            out.not_embedded.setdefault(key, ReasonGroup()).add(example)
        out.primary[keys[0]] = out.primary.get(keys[0], 0) + 1
        if checked.inactive == "expired" and check_job({**doc, "_id": IMPORTED_ID, "expiresAt": None}, now).job:
            out.expired_valid += 1
    return out


def _short(title: str, width: int = 40) -> str:
    title = " ".join(title.split())
    return title if len(title) <= width else title[: width - 1] + "…"
