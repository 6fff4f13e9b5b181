"""``jobsim db start|stop``: the local MongoDB-compatible server, and its entry in the local
stack record (``.jobsim/local.json``, :mod:`jobsim.localstack`) that every entry point reads."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from jobsim import localstack
from jobsim_app import localdb
from jobsim_app.failures import DONE

STATE_DIR = localstack.RECORD.parent
DEFAULT_DATABASE = "jobsim"
LEGACY = STATE_DIR / "mongo.json"  # the record of earlier versions (URI only)


def running(entry: dict[str, Any] | None) -> bool:
    """Whether the recorded server still runs: its pid is alive and is a SecantusDB server
    (a pid reused by another program after a reboot is not)."""
    if not entry or not isinstance(entry.get("pid"), int):
        return False
    pid = entry["pid"]
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid
    return b"secantus" in cmdline.lower()


def ensure_started(storage: Path | None = None, port: int | None = None,
                   database: str | None = None) -> tuple[dict, bool]:
    """The recorded local server, started (and recorded) if it does not run, on ``storage``
    (default: the recorded one, else ``.jobsim/mongo``); with ``database``, the record points
    at that database. Returns (entry, started now)."""
    entry = localstack.mongo()
    if running(entry):
        if database and entry.get("database") != database:
            localstack.set_database(database)
            entry = {**entry, "database": database}
        return entry, False
    storage = storage or Path((entry or {}).get("storage") or STATE_DIR / "mongo")
    server = localdb.start(storage.resolve(), port=port)
    previous = (entry or {}).get("database")
    entry = localstack.record_mongo(server.uri, database or previous or DEFAULT_DATABASE, server.pid,
                                    str(storage.resolve()))
    return entry, True


def cmd_db_start(args: argparse.Namespace) -> int:
    entry, started = ensure_started(Path(args.dir) if args.dir else None, args.port, args.database)
    state = "started" if started else "already running"
    print(f"local MongoDB {state} (pid {entry['pid']}), database {entry['database']}; recorded in "
          f"{localstack.RECORD}: jobsim commands, the stack's flows and the read side use it "
          "unless JOBSIM_MONGO__URI is set")
    print(entry["uri"])
    return DONE


def cmd_db_stop(args: argparse.Namespace) -> int:
    entry = localstack.mongo()
    if running(entry):
        localdb.stop_pid(entry["pid"])
        print(f"stopped local MongoDB (pid {entry['pid']})")
    else:
        print("no local MongoDB running")
    localstack.forget_mongo()
    if LEGACY.exists():  # a server started by an earlier version
        try:
            legacy = json.loads(LEGACY.read_text())
        except ValueError:
            legacy = {}
        if running(legacy):
            localdb.stop_pid(legacy["pid"])
            print(f"stopped local MongoDB (pid {legacy['pid']}, from {LEGACY})")
        LEGACY.unlink()
    return DONE
