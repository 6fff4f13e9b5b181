"""Read side benchmark: similar-jobs latency (one ``$in`` vs one query per neighbour) and
snapshot export throughput (polars writers vs a per-row ``json.dumps`` baseline).

    .venv/bin/python bench/bench_api_export.py [--jobs 5000] [--requests 300]

Starts its own local SecantusDB in a temporary folder and stops it (by PID) at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from bson import ObjectId

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api_export.cards import card  # noqa: E402
from api_export.export import lists_frame, write_snapshot  # noqa: E402
from api_export.similar import SimilarJobsService  # noqa: E402
from jobsim.contract import is_active  # noqa: E402
from jobsim_app import localdb  # noqa: E402
from jobsim.settings import Settings  # noqa: E402
from storage.job_reads import (  # noqa: E402
    ACTIVITY_PROJECTION, CARD_PROJECTION, JobReadsRepository, parse_entry,
)
from storage.queries import active_filter  # noqa: E402


def seed(coll, n: int, rng: np.random.Generator) -> list[ObjectId]:
    now = datetime.now(timezone.utc)
    ids = [ObjectId() for _ in range(n)]
    docs = []
    for i, _id in enumerate(ids):
        picks = rng.choice(n, size=10, replace=False)
        docs.append({
            "_id": _id, "title": f"Job {i}", "company": "Acme", "category": f"c{i % 12}",
            "location": {"city": f"city{i % 9}", "region": "r", "remote": False, "hybrid": False},
            "salary": {"min": 500, "max": 900, "currency": "EUR"}, "status": "active",
            "isDeleted": False, "expiresAt": now + timedelta(days=30), "createdAt": now - timedelta(minutes=i),
            "embedding": {"status": "completed"},
            "similarJobs": [{"jobId": ids[p], "score": round(0.9 - k / 50, 2),
                             "cosine": round(0.86 - k / 50, 2), "match": ["category", "city"][: k % 3],
                             "computedAt": now}
                            for k, p in enumerate(picks) if p != i],
            "similarityMetadata": {"lastComputed": now},
        })
    for start in range(0, n, 2000):
        coll.insert_many(docs[start:start + 2000])
    return ids


def per_neighbour_baseline(reads: JobReadsRepository, job_id: ObjectId) -> list:
    """The naive read: one ``_id`` query per stored neighbour (activity checked here too)."""
    now = datetime.now(timezone.utc)
    job = reads.subject([job_id])
    out = []
    projection = {**CARD_PROJECTION, **ACTIVITY_PROJECTION}
    for item in job["similarJobs"]:
        doc = reads.collection.find_one({"_id": item["jobId"]}, projection)
        if doc is not None and is_active(doc, now):
            out.append(card(doc, parse_entry(item)))
    return out


def server_filter_baseline(reads: JobReadsRepository, job_id: ObjectId) -> list:
    """One ``$in`` with the activity predicates in the query (SecantusDB scans for this)."""
    now = datetime.now(timezone.utc)
    job = reads.subject([job_id])
    wanted = [item["jobId"] for item in job["similarJobs"]]
    docs = {d["_id"]: d for d in reads.collection.find({"_id": {"$in": wanted}, **active_filter(now)},
                                                      CARD_PROJECTION)}
    return [card(docs[i["jobId"]], parse_entry(i)) for i in job["similarJobs"] if i["jobId"] in docs]


def timed(fn, items) -> list[float]:
    times = []
    for item in items:
        started = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    tmp = Path(tempfile.mkdtemp(prefix="jobsim-bench-api-"))
    server = localdb.start(tmp / "mongo")
    try:
        settings = Settings(mongo={"uri": server.uri, "database": "bench_api"})
        service = SimilarJobsService.from_settings(settings)
        coll = service.reads.collection
        started = time.perf_counter()
        ids = seed(coll, args.jobs, rng)
        print(f"seeded {args.jobs} jobs in {time.perf_counter() - started:.1f}s")
        sample = [ids[i] for i in rng.choice(len(ids), size=args.requests, replace=False)]
        reads = JobReadsRepository(coll.database)
        service.similar_jobs(str(sample[0]))  # warm up the pool
        ours = timed(lambda i: service.similar_jobs(str(i)), sample)
        base = timed(lambda i: per_neighbour_baseline(reads, i), sample)
        filtered = timed(lambda i: server_filter_baseline(reads, i), sample[: max(10, len(sample) // 5)])
        few = sample[: max(10, len(sample) // 5)]
        coll.update_many({"_id": {"$in": few}}, {"$set": {"status": "closed"}})
        closed = timed(lambda i: service.similar_jobs(str(i)), few)
        coll.update_many({"_id": {"$in": few}}, {"$set": {"status": "active", "embedding.status": "pending"}})
        fallback = timed(lambda i: service.similar_jobs(str(i)), few)
        rows = (("one _id $in (ours)", ours), ("_id query per neighbour", base),
                ("$in + status filter", filtered), ("closed job, stored list", closed),
                ("fallback (pending job)", fallback))
        for name, t in rows:
            print(f"similar_jobs {name:26s} p50 {statistics.median(t) * 1e3:7.2f} ms  "
                  f"p95 {np.percentile(t, 95) * 1e3:7.2f} ms")
        for name, t in rows[1:3]:
            print(f"  ratio p50 {name} / ours: {statistics.median(t) / statistics.median(ours):.1f}x")

        started = time.perf_counter()
        lists = list(reads.stored_lists(datetime.now(timezone.utc)))
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        snapshot = lists_frame(lists)
        frame_s = time.perf_counter() - started
        out = tmp / "export"
        started = time.perf_counter()
        write_snapshot(out, snapshot, {})
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        with open(tmp / "baseline.jsonl", "w", encoding="utf-8") as fh:
            for s in lists:
                fh.write(json.dumps({"job_id": s.job_id, "job_open": s.open,
                                     "computed_at": s.computed_at.isoformat(),
                                     "neighbours": [{"job_id": e.key, "score": e.score, "cosine": e.cosine,
                                                     "match": e.match} for e in s.items]}) + "\n")
        baseline_s = time.perf_counter() - started
        print(f"export {len(lists)} lists: mongo read {read_s:.2f}s ({len(lists) / read_s:,.0f}/s), "
              f"frame {frame_s:.2f}s, parquet+jsonl+manifest (atomic) {write_s:.2f}s")
        print(f"  json.dumps-per-row JSONL only {baseline_s:.2f}s; ratio baseline/polars-both: "
              f"{baseline_s / write_s:.1f}x")
    finally:
        localdb.stop_pid(server.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
