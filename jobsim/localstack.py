"""The local stack record: where the MongoDB that a user started locally runs.

``.jobsim/local.json`` relative to the working directory (the project root for the demo,
the CLI and the flows of ``scripts/stack.sh``'s worker). Written by ``jobsim db start``,
``jobsim demo`` and ``scripts/stack.sh up`` (through ``jobsim db start``); read by the
settings tree as its lowest-priority source, so every entry point finds the local server
and its database when the environment does not say otherwise::

    {"mongo": {"uri": "mongodb://127.0.0.1:41234/?directConnection=true",
               "database": "jobsim_demo", "pid": 12345,
               "storage": "/abs/.jobsim/mongo", "started_at": "2026-12-01T12:00:00+00:00"}}

The local server has no password, so the file holds no secret.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RECORD = Path(".jobsim") / "local.json"


def read(path: Path = RECORD) -> dict[str, Any]:
    """The whole record ({} when absent or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def mongo(path: Path = RECORD) -> dict[str, Any] | None:
    """The recorded local MongoDB (``uri``, ``database``, ``pid``, ...), or None."""
    entry = read(path).get("mongo")
    return entry if isinstance(entry, dict) and isinstance(entry.get("uri"), str) else None


def _write(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def record_mongo(uri: str, database: str, pid: int, storage: str, path: Path = RECORD) -> dict[str, Any]:
    """Record the local server (replacing any earlier one); returns the entry."""
    entry = {"uri": uri, "database": database, "pid": pid, "storage": storage,
             "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _write({**read(path), "mongo": entry}, path)
    return entry


def set_database(database: str, path: Path = RECORD) -> None:
    """Point the recorded server's entry at another database."""
    data = read(path)
    if isinstance(data.get("mongo"), dict):
        data["mongo"]["database"] = database
        _write(data, path)


def forget_mongo(path: Path = RECORD) -> None:
    """Drop the server's entry (it was stopped)."""
    data = read(path)
    if data.pop("mongo", None) is not None:
        if data:
            _write(data, path)
        else:
            path.unlink(missing_ok=True)
