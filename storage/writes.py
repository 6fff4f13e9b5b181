"""Bulk writes where one document can never fail the others.

Each chunk goes as one unordered bulk write. A document the server refuses is retried
once in its fallback shape when it has one — the pipeline's own field replaced whole
instead of updated into, for a field that holds the wrong type (error 28: "Cannot create
field 'status' in element {embedding: "garbage"}") — and otherwise reported with the
server's reason (e.g. 10334: the document would exceed 16 MB) for the run report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pymongo import UpdateOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from jobsim.repositories import WriteOutcome

log = logging.getLogger(__name__)

PATH_NOT_VIABLE = 28  # an update into a field whose parent holds a non-document
Fallback = Callable[[str], UpdateOne | None]


KNOWN = {10334: "document would exceed 16 MB", 17419: "document would exceed 16 MB",
         PATH_NOT_VIABLE: "a field holds the wrong type"}


def refusal(error: dict[str, Any]) -> str:
    """One readable line from a server write error, its gist first (summaries group by it)."""
    message = str(error.get("errmsg", "")).split(":: caused by ::")[-1].strip()
    code = error.get("code")
    return f"MongoDB refused the write: {KNOWN.get(code, 'write error')} (code {code}: {message[:160]})"


def _write(collection: Collection, ops: list[tuple[str, UpdateOne]]) -> tuple[int, list[tuple[str, dict]]]:
    """One unordered bulk write: (documents modified, [(key, write error)])."""
    try:
        result = collection.bulk_write([op for _, op in ops], ordered=False)
        return result.modified_count + result.upserted_count, []
    except BulkWriteError as exc:
        details = exc.details
        written = int(details.get("nModified", 0)) + int(details.get("nUpserted", 0))
        return written, [(ops[e["index"]][0], e) for e in details.get("writeErrors", [])]


def bulk_isolated(collection: Collection, ops: list[tuple[str, UpdateOne]], batch_size: int,
                  fallback: Fallback | None = None) -> WriteOutcome:
    """Write ``ops`` (key, operation) in chunks; refused documents never fail the others."""
    outcome = WriteOutcome()
    for start in range(0, len(ops), batch_size):
        written, errors = _write(collection, ops[start : start + batch_size])
        outcome.written += written
        retry = []
        for key, error in errors:
            second = fallback(key) if fallback and error.get("code") == PATH_NOT_VIABLE else None
            if second is None:
                outcome.refused[key] = refusal(error)
            else:
                retry.append((key, second))
        if retry:
            written, errors = _write(collection, retry)
            outcome.written += written
            outcome.refused.update({key: refusal(error) for key, error in errors})
    if outcome.refused:
        log.warning("%d documents refused by the server (first: %s)", len(outcome.refused),
                    next(iter(outcome.refused.values())))
    return outcome
