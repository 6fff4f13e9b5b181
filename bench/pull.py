"""The incremental pull on SecantusDB: the former single ``$or`` filter against the indexed
pull (``JobsRepository.changed_since``: single-field queries, the contract's rule sorts what
they return), as a ratio measured in one run.

    .venv/bin/python bench/pull.py [--n 100000] [--reps 3]

Data: ``--n`` synthetic postings (``generate_jobs``, seed 7) in the states a board settles
into: every listed job ``completed``, 2 % rejected (``failed``, ``rejected: true``), the
others (drafts, deleted, expired: imported as ``pending`` and never embedded) ``pending``;
1.5 % edited inside the watermark window. The indexes are the pipeline's (``updatedAt``,
``embedding.status``). Both methods must return the same jobs; they are interleaved, min
of ``--reps``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymongo import MongoClient  # noqa: E402

from bench.machine import cpu_model  # noqa: E402
from jobsim.contract import UNSETTLED, is_active  # noqa: E402
from jobsim.synthetic import generate_jobs  # noqa: E402
from jobsim_app.localdb import kill, start  # noqa: E402
from storage.ids import to_key  # noqa: E402
from storage.jobs import JobsRepository  # noqa: E402
from storage.queries import PULL_PROJECTION, active_filter, pull_indexes  # noqa: E402


def former_filter(since: datetime, max_attempts: int, now: datetime) -> dict[str, Any]:
    """The pull filter before the indexed pull (one ``$or``: a collection scan)."""
    return {"$or": [
        {"updatedAt": {"$gte": since}}, {"updatedAt": {"$not": {"$type": "date"}}},
        {"embedding": {"$not": {"$type": "object"}}},
        {"embedding.status": {"$in": list(UNSETTLED)}, **active_filter(now)},
        {"embedding.status": "failed", "embedding.rejected": {"$ne": True},
         "embedding.attempts": {"$gte": 0, "$lt": max_attempts}},
    ]}


def board(n: int, now: datetime) -> list[dict[str, Any]]:
    rng, settled = random.Random(1), now - timedelta(hours=2)
    docs = generate_jobs(n, seed=7)
    for i, d in enumerate(docs):
        d["updatedAt"] = now - timedelta(minutes=5) if i % 67 == 0 else settled
        if rng.random() < 0.02:
            d["embedding"] = {"status": "failed", "rejected": True, "attempts": 0, "error": "invalid: too short"}
        elif is_active(d, now) or d.get("status") == "closed":
            d["embedding"] = {"status": "completed", "contentHash": f"{i:016x}", "attempts": 0, "model": "m"}
        else:
            d["embedding"] = {"status": "pending", "attempts": 0}
    return docs


def loaded_board(server: Any, n: int, now: datetime) -> tuple[Any, list[dict[str, Any]]]:
    """The ``bench`` database of a started server with :func:`board`'s ``n`` postings and the
    pipeline's indexes; returns it and the documents."""
    db = MongoClient(port=server.port).bench
    docs = board(n, now)
    for i in range(0, len(docs), 5000):
        db.jobs.insert_many(docs[i:i + 5000])
    for name in pull_indexes():
        db.jobs.create_index(name)
    return db, docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    server = start(Path(tempfile.mkdtemp()) / "db")
    try:
        now = datetime.now(timezone.utc)
        since = now - timedelta(minutes=10)
        db, _ = loaded_board(server, args.n, now)
        repo, times = JobsRepository(db), {"former $or filter": [], "indexed pull": []}
        for _ in range(args.reps):
            t = time.perf_counter()
            former = {to_key(d["_id"]) for d in db.jobs.find(former_filter(since, 3, now), PULL_PROJECTION)}
            times["former $or filter"].append(time.perf_counter() - t)
            t = time.perf_counter()
            indexed = {d["_id"] for d in repo.changed_since(since, 3, now)}
            times["indexed pull"].append(time.perf_counter() - t)
            assert former == indexed, (len(former), len(indexed))
        waiting = db.jobs.count_documents({"embedding.status": {"$in": ["pending", "failed"]}})
        print(f"{args.n:,} jobs, {len(indexed):,} pulled, {waiting:,} pending or failed; {cpu_model()}, "
              f"load {os.getloadavg()[0]:.2f}")
        for name, values in times.items():
            print(f"  {name:18s} min {min(values):6.2f} s   reps {', '.join(f'{v:.2f}' for v in values)}")
        print(f"  former / indexed: {min(times['former $or filter']) / min(times['indexed pull']):.1f}x")
    finally:
        kill(server)


if __name__ == "__main__":
    main()
