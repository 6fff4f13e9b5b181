"""By-``_id`` reads and list writes on SecantusDB, as the incremental run does them: the
repository methods with their former settings against the current ones, ratios measured in
one run.

    .venv/bin/python bench/by_id.py [--n 100000] [--ids 1500] [--reps 3]

- reads: ``JobsRepository.listing_docs`` + ``stored_lists`` + ``EmbeddingsRepository.hashes``
  of ``--ids`` random jobs, with one ``$in`` of up to 5,000 ids (former) against
  :data:`storage.ids.ID_BATCH` ids per query (current);
- writes: ``JobsRepository.write_lists`` of ``--ids`` lists, each batch journaled (former)
  against acknowledged batches followed by the one journaled ``mark_write_back`` (current,
  the mark included in its time).

Data: ``--n`` synthetic postings (``bench/pull.py``'s board) with the pipeline's indexes, a
vector document for each. Methods interleaved, min of ``--reps``; each rep draws new jobs, and
both methods of a rep read (or write) the same ones and must return the same documents.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import storage.ids  # noqa: E402
from bench.machine import cpu_model  # noqa: E402
from bench.pull import loaded_board  # noqa: E402
from jobsim.repositories import JobList, Neighbour  # noqa: E402
from jobsim_app.localdb import kill, start  # noqa: E402
from storage.embeddings import EmbeddingsRepository  # noqa: E402
from storage.ids import to_key  # noqa: E402
from storage.jobs import JobsRepository  # noqa: E402
from storage.state import StateRepository  # noqa: E402

FORMER_ID_BATCH = 5000
CURRENT_ID_BATCH = storage.ids.ID_BATCH


def reads(jobs: JobsRepository, embeddings: EmbeddingsRepository, keys: list[str], batch: int) -> tuple:
    storage.ids.ID_BATCH = batch
    try:
        docs = jobs.listing_docs(keys)
        lists = jobs.stored_lists(keys)
        hashes = embeddings.hashes(keys)
    finally:
        storage.ids.ID_BATCH = CURRENT_ID_BATCH
    return sorted(k for k, d in docs.items() if d is not None), sorted(lists), sorted(hashes.items())


def writes(jobs: JobsRepository, state: StateRepository, keys: list[str], journaled: bool, now: datetime) -> int:
    lists = {key: JobList(tuple(Neighbour(other, 0.9 - i / 100, 0.8 - i / 100, ("city",))
                                for i, other in enumerate(random.sample(keys, 10))), None) for key in keys}
    current = jobs._lists
    if journaled:
        jobs._lists = jobs.collection
    try:
        state.mark_write_back("bench", "writing")
        written = jobs.write_lists(lists, now, len(keys), 7).written
        state.mark_write_back("bench", "written")
    finally:
        jobs._lists = current
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--ids", type=int, default=1500)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    server = start(Path(tempfile.mkdtemp()) / "db")
    try:
        now = datetime.now(timezone.utc)
        db, docs = loaded_board(server, args.n, now)
        vector = np.zeros(512, dtype="<f4").tobytes()
        for i in range(0, len(docs), 5000):
            db.job_embeddings.insert_many([{"_id": d["_id"], "model": "m", "dims": 512, "contentHash": "h",
                                            "vector": vector} for d in docs[i:i + 5000]])
        jobs, embeddings, state = JobsRepository(db), EmbeddingsRepository(db), StateRepository(db)
        keys = [to_key(d["_id"]) for d in docs]
        rng = random.Random(3)
        times: dict[str, list[float]] = {f"reads, $in of {FORMER_ID_BATCH:,}": [],
                                         f"reads, $in of {CURRENT_ID_BATCH}": [],
                                         "writes, each batch journaled": [], "writes, one journaled mark": []}
        names = list(times)
        for rep in range(args.reps):
            sample = rng.sample(keys, args.ids)
            got = []
            for name, batch in ((names[0], FORMER_ID_BATCH), (names[1], CURRENT_ID_BATCH)):
                t = time.perf_counter()
                got.append(reads(jobs, embeddings, sample, batch))
                times[name].append(time.perf_counter() - t)
            assert got[0] == got[1] and len(got[0][0]) == args.ids, "both reads must find the same jobs"
            for name, journaled in ((names[2], True), (names[3], False)):
                t = time.perf_counter()
                written = writes(jobs, state, sample, journaled, now + timedelta(seconds=2 * rep + journaled))
                times[name].append(time.perf_counter() - t)
                assert written == args.ids, written
        print(f"{args.n:,} jobs, {args.ids:,} ids a rep; {cpu_model()}, load {os.getloadavg()[0]:.2f}")
        for name, values in times.items():
            print(f"  {name:32s} min {min(values):6.2f} s ({args.ids / min(values):,.0f} docs/s)   "
                  f"reps {', '.join(f'{v:.2f}' for v in values)}")
        print(f"  reads  former / current: {min(times[names[0]]) / min(times[names[1]]):.2f}x")
        print(f"  writes former / current: {min(times[names[2]]) / min(times[names[3]]):.2f}x")
    finally:
        kill(server)


if __name__ == "__main__":
    main()
