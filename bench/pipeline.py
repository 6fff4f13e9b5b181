"""End-to-end pipeline benchmark: a full run, then an incremental run after some churn.

    .venv/bin/python bench/pipeline.py [--n 10000] [--latency 0.1] [--vectors local] [--json F]

Everything is real and runs on this machine: a SecantusDB server in its own process
(``jobsim.localdb.start``), our OpenAI-compatible test server (``tests/embedding_server.py``)
in its own process with ``--latency`` seconds per request, the ``openai`` client
(``JOBSIM_EMBEDDING__PROVIDER=openai``), and Prefect (an ephemeral API server under a
temporary ``PREFECT_HOME``). Steps:

1. generate ``--n`` synthetic jobs (``jobsim.synthetic.generate_jobs``) and bulk-load them
   as the importer leaves new ones (``JobsRepository.insert_new``: ``insert_many``, because on
   SecantusDB each importer upsert scans the collection; dated an hour ago, so the incremental run
   does not re-read them through the watermark overlap);
2. ``similarity_refresh(mode="full")``;
3. churn: 1% of the jobs edited (description changed: 3 through ``upsert_imported`` to
   measure it, the rest by ``_id`` as the web app edits), 0.5% new jobs, 0.5% expirations:
   time passing, not an edit — those jobs were loaded with an ``expiresAt`` a few seconds after
   the full run's start, so they expire between the two runs without any write;
4. ``similarity_refresh(mode="incremental")``, then once more with nothing changed (the
   no-change run);
4b. the app gives ``--expiring`` listed jobs an expiry (``expiresAt`` and ``updatedAt`` set, as an
   edit); past the watermark overlap an incremental run re-reads them (the expiry-edit run:
   lists recomputed, few change); once they have expired, one more run (the time-only run:
   nothing to re-read, the lists recomputed because those jobs' roles changed with time);
5. the same MongoDB server's raw rates, with plain pymongo, for the operations the
   pipeline does (find with the pull projection, bulk UpdateOne, vector ReplaceOne upserts,
   vector reads), so the pipeline's overhead over the server is visible.

Every MongoDB command the pipeline sends is timed with a pymongo ``CommandListener`` and
attributed to the repository method that sent it; stage wall times come from the flow's
own ``summary["timings"]``. The test server's CPU time is read from /proc (a real API
spends it on its side). The client-side token limit is raised (``--tpm``) so that the
embed stage shows the pipeline, not OpenAI's tier-1 rate limit (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pymongo import monitoring
from pymongo.errors import PyMongoError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("pull", "prepare", "embed", "load_vectors", "neighbours", "write_back")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- MongoDB command timing --------------------------------------------------------
class MongoTimer(monitoring.CommandListener):
    """pymongo CommandListener: time, docs and commands per (repository method, command)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[tuple[int, int], str] = {}
        self.reset()

    def reset(self) -> dict[str, dict[str, float]]:
        with getattr(self, "lock", threading.Lock()):
            old = getattr(self, "ops", {})
            self.ops: dict[str, dict[str, float]] = defaultdict(lambda: {"commands": 0, "docs": 0, "seconds": 0.0})
        return dict(old)

    @staticmethod
    def _caller() -> str:
        frame, label = sys._getframe(2), "other"
        while frame is not None:  # the outermost storage/ frame: the repository method called
            path = frame.f_code.co_filename
            if f"{os.sep}storage{os.sep}" in path and path.startswith(str(ROOT)):
                owner = frame.f_locals.get("self")
                name = type(owner).__name__.replace("Repository", "") if owner is not None else Path(path).stem
                label = f"{name}.{frame.f_code.co_name}"
            frame = frame.f_back
        return label

    # CommandListener interface
    def started(self, event: Any) -> None:
        with self.lock:
            self.pending[(event.request_id, event.connection_id[1] if event.connection_id else 0)] = (
                f"{self._caller()} {event.command_name}")

    def succeeded(self, event: Any) -> None:
        key = (event.request_id, event.connection_id[1] if event.connection_id else 0)
        reply = event.reply or {}
        cursor = reply.get("cursor") or {}
        docs = len(cursor.get("firstBatch", cursor.get("nextBatch", ()))) if cursor else int(reply.get("n", 0) or 0)
        with self.lock:
            label = self.pending.pop(key, f"other {event.command_name}")
            op = self.ops[label]
            op["commands"] += 1
            op["docs"] += docs
            op["seconds"] += event.duration_micros / 1e6

    def failed(self, event: Any) -> None:
        with self.lock:
            self.pending.pop((event.request_id, event.connection_id[1] if event.connection_id else 0), None)


class NeighbourLog(logging.Handler):
    """Keeps the args of jobsim.similarity's 'neighbours: ... (search X s)' record."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.last: tuple | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("neighbours:") and isinstance(record.args, tuple):
            self.last = record.args


# -- processes -----------------------------------------------------------------------
def start_embedding_server(latency: float, vectors: str, dims: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.embedding_server", "--latency", str(latency), "--vectors", vectors,
         "--dimensions", str(dims)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit("embedding server did not start")
    return proc, url


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (from /proc), 0 when unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def server_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url.rsplit("/v1", 1)[0] + "/stats", timeout=10) as resp:
        return json.loads(resp.read())


# -- the run -----------------------------------------------------------------------------
def run_flow(mode: str, timer: MongoTimer, nlog: NeighbourLog, emb_pid: int, emb_url: str,
             mongo_pid: int) -> dict[str, Any]:
    from flows.refresh import similarity_refresh

    timer.reset()
    nlog.last = None
    before_stats, before_cpu, before_db = server_stats(emb_url), cpu_seconds(emb_pid), cpu_seconds(mongo_pid)
    own_cpu = time.process_time()
    started = time.perf_counter()
    summary = asyncio.run(similarity_refresh(mode=mode))
    wall = time.perf_counter() - started
    after = server_stats(emb_url)
    return {
        "mode": mode, "wall": wall, "summary": summary, "mongo_ops": timer.reset(),
        "neighbours_log": nlog.last,
        "server_requests": after["requests"] - before_stats["requests"],
        "server_tokens": after["tokens"] - before_stats["tokens"],
        "embedding_server_cpu": cpu_seconds(emb_pid) - before_cpu,
        "mongo_server_cpu": cpu_seconds(mongo_pid) - before_db,
        "client_cpu": time.process_time() - own_cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def open_jobs(docs: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The loaded jobs that are open at ``now`` (as generated: active, not deleted, not expired)."""
    return [d for d in docs if d["status"] == "active" and not d["isDeleted"] and d["expiresAt"] > now]


def churn(docs: list[dict[str, Any]], n: int, seed: int) -> tuple[list[dict], list[dict], list[Any]]:
    """1% edited copies (with their ``_id``), 0.5% new jobs, 0.5% ``_id``s that will expire."""
    from jobsim.synthetic import generate_jobs

    rng = random.Random(seed)
    live = open_jobs(docs, datetime.now(timezone.utc))
    picked = rng.sample(live, max(1, n // 100) + max(1, n // 200))
    edits = [dict(d, description=d["description"] + " Updated: the team now also works remotely on Fridays.")
             for d in picked[: max(1, n // 100)]]
    expire = [d["_id"] for d in picked[max(1, n // 100):]]
    new = generate_jobs(max(1, n // 200), seed=seed + 1, source="bench-new")
    return edits, new, expire


IMPORTER_SAMPLE = 3  # churn edits sent through upsert_imported (the rest by _id: it scans per document)


def apply_churn(db: Any, repos: Any, edits: list[dict], new: list[dict], expire: list[Any]) -> dict[str, Any]:
    """Edits as the web app makes them (``$set`` by ``_id`` of the changed field and
    ``updatedAt``), a few through the importer to measure its rate, new jobs bulk-loaded
    (the expirations happen by themselves: :func:`expire_soon`)."""
    now = datetime.now(timezone.utc)
    stored_only = ("_id", "embedding", "createdAt", "updatedAt")  # fields the importer sets itself
    sample = [{k: v for k, v in d.items() if k not in stored_only} for d in edits[:IMPORTER_SAMPLE]]
    t = time.perf_counter()
    repos.upsert_imported(sample, now)
    importer_s = time.perf_counter() - t
    t = time.perf_counter()
    for d in edits[IMPORTER_SAMPLE:]:
        db.jobs.update_one({"_id": d["_id"]}, {"$set": {"description": d["description"], "updatedAt": now}})
    repos.insert_new(new, now)
    return {"churn_upserts": len(sample), "churn_upsert_seconds": importer_s,
            "churn_by_id": len(edits) - len(sample), "churn_new": len(new),
            "churn_other_seconds": time.perf_counter() - t, "churn_expired": len(expire)}


def expire_by_app(db: Any, docs: list[dict[str, Any]], count: int, seconds: float, seed: int,
                  skip: set[Any]) -> datetime:
    """An app edit that gives ``count`` open jobs (not in ``skip``) an expiry ``seconds`` from
    now (``updatedAt`` bumped, so the next incremental run re-reads them)."""
    now = datetime.now(timezone.utc)
    live = [d["_id"] for d in open_jobs(docs, now) if d["_id"] not in skip]
    at = now + timedelta(seconds=seconds)
    db.jobs.update_many({"_id": {"$in": random.Random(seed + 2).sample(live, count)}},
                        {"$set": {"expiresAt": at, "updatedAt": now}})
    return at


def expire_soon(db: Any, ids: list[Any], seconds: float) -> datetime:
    """Give ``ids`` an expiry ``seconds`` from now, as loaded data (before the full run): they
    are open for the full run and expire before the incremental one, with no write between."""
    at = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    db.jobs.update_many({"_id": {"$in": ids}}, {"$set": {"expiresAt": at}})
    return at


def warm_up_prefect() -> None:
    """Start Prefect's ephemeral API server with a no-op flow, so the timed runs do not
    include its start (10-15 s here, once per process)."""
    from prefect import flow

    @flow(name="bench-warm-up")
    def noop() -> None:
        return None

    t = time.perf_counter()
    noop()
    print(f"prefect ephemeral server up in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)


def prefect_argument_cost(docs: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds of one ``@task`` call taking ``docs`` as argument, plain and wrapped in
    ``quote`` (which tells Prefect not to walk the argument for dependency tracking)."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.utilities.annotations import quote

    @task(cache_policy=NO_CACHE, persist_result=False)
    def count(items: Any) -> int:
        return len(items)

    @flow(name="bench-task-arguments")
    def measure() -> dict[str, float]:
        out = {}
        for name, arg in ((f"task({len(docs):,} documents)", docs),
                          (f"task(quote({len(docs):,} documents))", quote(docs))):
            t = time.perf_counter()
            count(arg)
            out[name] = time.perf_counter() - t
        return out

    return measure()


def raw_rates(db: Any, n: int) -> dict[str, float]:
    """Docs/s of plain pymongo doing what the pipeline does, on the same server and data."""
    import numpy as np
    from bson import Binary
    from pymongo import ReplaceOne, UpdateOne, WriteConcern

    from storage.queries import PULL_PROJECTION

    out: dict[str, float] = {}
    jobs = db.get_collection("jobs", write_concern=WriteConcern(w=1, j=True))
    t = time.perf_counter()
    ids = [d["_id"] for d in jobs.find({}, PULL_PROJECTION, batch_size=2000).limit(n)]
    out["find jobs (pull projection)"] = len(ids) / (time.perf_counter() - t)
    t = time.perf_counter()
    for s in range(0, len(ids), 500):
        jobs.bulk_write([UpdateOne({"_id": i}, {"$set": {"benchTouch": s}}) for i in ids[s : s + 500]],
                        ordered=False)
    out["bulk UpdateOne by _id ($set, 500/batch, j=true)"] = len(ids) / (time.perf_counter() - t)
    keys = list(jobs.find({}, {"source": 1, "externalId": 1}).limit(200))
    t = time.perf_counter()
    for doc in keys:
        jobs.find_one({"_id": doc["_id"]}, {"_id": 1})
    out["find_one by _id (200 lookups)"] = len(keys) / (time.perf_counter() - t)
    t = time.perf_counter()
    slow = keys[: 200 if jobs.estimated_document_count() <= 20_000 else 10]  # each one scans the collection
    try:
        for doc in slow:  # the importer's upsert key; a unique index exists on it
            jobs.find_one({"source": doc["source"], "externalId": doc["externalId"]}, {"_id": 1})
        out[f"find_one by (source, externalId) ({len(slow)} lookups)"] = len(slow) / (time.perf_counter() - t)
    except PyMongoError as exc:  # at 100k a scan can outlast the socket timeout: say so, keep the run's results
        print(f"find_one by (source, externalId): {type(exc).__name__} after {time.perf_counter() - t:.0f} s",
              file=sys.stderr, flush=True)
        out[f"find_one by (source, externalId) ({len(slow)} lookups)"] = float("nan")
    scratch = db.get_collection("bench_vectors", write_concern=WriteConcern(w=1, j=True))
    blob = Binary(np.random.default_rng(0).standard_normal(1536).astype("<f4").tobytes())
    t = time.perf_counter()
    for s in range(0, len(ids), 500):
        scratch.bulk_write([ReplaceOne({"_id": i}, {"model": "m", "dims": 1536, "contentHash": "h" * 64,
                                                     "vector": blob}, upsert=True) for i in ids[s : s + 500]],
                           ordered=False)
    out["bulk ReplaceOne upsert of 6 KB vectors"] = len(ids) / (time.perf_counter() - t)
    t = time.perf_counter()
    count = sum(1 for _ in scratch.find({"model": "m", "dims": 1536}, {"contentHash": 1, "vector": 1},
                                        batch_size=5000))
    out["find 6 KB vectors"] = count / (time.perf_counter() - t)
    db.drop_collection("bench_vectors")
    jobs.update_many({}, {"$unset": {"benchTouch": ""}})
    return out


# -- report ------------------------------------------------------------------------------
STAGE_OPS = {  # repository methods whose MongoDB time belongs to each stage
    "pull": ("Jobs.changed_since",),
    "prepare": ("Jobs.mark_rejected",),
    "embed": ("Embeddings.hashes", "Embeddings.upsert", "Jobs.mark_embedded", "Jobs.mark_failed", "Jobs.mark_pending"),
    "load_vectors": ("Jobs.listed_docs", "Jobs.listing_docs", "Jobs.stored_lists", "Embeddings.load", "State.written_by"),
    "neighbours": (),
    "write_back": ("Jobs.write_lists", "State.mark_write_back"),
}


def by_method(ops: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"commands": 0, "docs": 0, "seconds": 0.0})
    for label, op in ops.items():
        method = label.split(" ")[0]
        for key in op:
            out[method][key] += op[key]
    return out


RUNS = ("full", "incr", "idle", "exp-edit", "time-only")  # column names, in run order
TITLES = ("full run", "incremental run", "no-change run", "expiry-edit run", "time-only run")


def report(n: int, load: dict[str, float], runs: list[dict[str, Any]], raw: dict[str, float],
           args: argparse.Namespace) -> str:
    names = RUNS[:len(runs)]
    lines = [f"pipeline benchmark: {n:,} synthetic jobs, embedding server latency {args.latency * 1000:.0f} ms, "
             f"{args.vectors} vectors of {args.dims} dims, client limit {args.tpm:,} tokens/min",
             f"load: {load['docs']:,} jobs inserted (insert_many) in {load['seconds']:.1f} s ({load['docs'] / load['seconds']:,.0f}/s); "
             f"churn: {load['churn_upserts']} upsert_imported in {load['churn_upsert_seconds']:.2f} s "
             f"({load['churn_upserts'] / load['churn_upsert_seconds']:,.2f}/s); {load['churn_by_id']} edits "
             f"by _id + {load['churn_new']} new jobs in {load['churn_other_seconds']:.1f} s; "
             f"{load['churn_expired']} expired by time alone; {load.get('expiring', 0)} given an expiry by the app", ""]
    head = (f"{'stage':<14}" + "".join(f"{name + ' s':>12}" for name in names)
            + "".join(f"{name + '/full':>15}" for name in names[1:]) + "   MongoDB s (" + " / ".join(names) + ")")
    lines += [head, "-" * len(head)]
    methods = [by_method(r["mongo_ops"]) for r in runs]
    for stage in STAGES:
        t = [r["summary"]["timings"].get(stage, 0.0) for r in runs]
        mongo = [sum(op["seconds"] for name, op in m.items() if name in STAGE_OPS[stage]) for m in methods]
        lines.append(f"{stage:<14}" + "".join(f"{v:>12.2f}" for v in t) + "".join(f"{_ratio(v, t[0]):>15}" for v in t[1:])
                     + "   " + " / ".join(f"{v:.2f}" for v in mongo))
    walls = [r["wall"] for r in runs]
    lines.append(f"{'flow total':<14}" + "".join(f"{v:>12.2f}" for v in walls)
                 + "".join(f"{_ratio(v, walls[0]):>15}" for v in walls[1:]) + "   (wall incl. Prefect task/flow overhead)")
    lines.append("")
    for name, r in zip(names, runs):
        s = r["summary"]
        search = (f"{a[0]} in {a[3]:.2f} s (search {a[4]:.2f} s)" if (a := r["neighbours_log"])
                  else s["search"].get("mode", "?"))
        lines.append(
            f"{name:<10} {s.get('headline', '')}; seen {s['seen']:,}, embedded {s['embedded']:,}, requests "
            f"{s['requests']} (server saw {r['server_requests']}), tokens {s['tokens']:,}; neighbours {search}; "
            f"client CPU {r['client_cpu']:.1f} s, MongoDB server CPU {r['mongo_server_cpu']:.1f} s, "
            f"peak RSS so far {r['peak_rss_mb']:.0f} MB")
    for title, m in zip(TITLES, methods):
        lines += ["", f"{'MongoDB operations, ' + title:<40}{'docs':>9}{'cmds':>6}{'s':>8}{'docs/s':>10}"]
        for method, op in sorted(m.items(), key=lambda kv: -kv[1]["seconds"]):
            rate = op["docs"] / op["seconds"] if op["seconds"] else 0
            lines.append(f"{method:<40}{int(op['docs']):>9,}{int(op['commands']):>6}{op['seconds']:>8.2f}{rate:>10,.0f}")
    lines += ["", "raw pymongo on the same server, same run:"]
    lines += [f"  {name:<52}{rate:>10,.0f} docs/s" for name, rate in raw.items()]
    return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "–"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency", type=float, default=0.1, help="test server seconds per request")
    parser.add_argument("--vectors", choices=("local", "hash"), default="local",
                        help="test server vectors: 'local' (similar texts similar) or 'hash' (random)")
    parser.add_argument("--dims", type=int, default=1536)
    parser.add_argument("--tpm", type=int, default=100_000_000, help="client-side tokens/minute limit")
    parser.add_argument("--raw-n", type=int, default=10_000, help="docs per raw-rate measurement")
    parser.add_argument("--expiring", type=int, default=20, help="jobs the app gives an expiry after the no-change run")
    parser.add_argument("--json", type=Path, help="write all measurements here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="jobsim-bench-pipeline-"))
    os.environ.update({
        "PREFECT_HOME": str(tmp / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    })
    from jobsim_app import localdb

    timer = MongoTimer()
    monitoring.register(timer)
    nlog = NeighbourLog()
    sim_log = logging.getLogger("jobsim.similarity")
    sim_log.setLevel(logging.INFO)
    sim_log.addHandler(nlog)

    mongo = localdb.start(tmp / "mongo")
    emb_proc = None
    try:
        emb_proc, url = start_embedding_server(args.latency, args.vectors, args.dims)
        os.environ.update({
            "JOBSIM_MONGO__URI": mongo.uri, "JOBSIM_MONGO__DATABASE": "bench",
            "JOBSIM_EMBEDDING__PROVIDER": "openai", "JOBSIM_EMBEDDING__BASE_URL": url,
            "JOBSIM_EMBEDDING__API_KEY": "bench-key", "JOBSIM_EMBEDDING__DIMENSIONS": str(args.dims),
            "JOBSIM_EMBEDDING__TOKENS_PER_MINUTE": str(args.tpm),
            "JOBSIM_NEIGHBOURS__STATE_DIR": str(tmp / "state"),
        })
        from jobsim.settings import Settings
        from jobsim.synthetic import generate_jobs
        from storage import connect, imports

        settings = Settings()
        repos = imports(settings)
        print(f"generating {args.n:,} jobs ...", file=sys.stderr, flush=True)
        now = datetime.now(timezone.utc)
        jobs = generate_jobs(args.n, seed=args.seed, now=now)
        repos.ensure_indexes()
        db = connect(settings.mongo)
        t = time.perf_counter()
        docs = repos.insert_new(jobs, now - timedelta(hours=1))
        load = {"docs": len(jobs), "seconds": time.perf_counter() - t}
        timer.reset()
        warm_up_prefect()
        edits, new, expire = churn(docs, args.n, args.seed)
        expires_at = expire_soon(db, expire, 20)

        print("full run ...", file=sys.stderr, flush=True)
        full = run_flow("full", timer, nlog, emb_proc.pid, url, mongo.pid)
        if full["summary"]["timings"] and datetime.now(timezone.utc) < expires_at:
            time.sleep((expires_at - datetime.now(timezone.utc)).total_seconds() + 1)

        load.update(apply_churn(db, repos, edits, new, expire))
        timer.reset()

        print("incremental run ...", file=sys.stderr, flush=True)
        inc = run_flow("incremental", timer, nlog, emb_proc.pid, url, mongo.pid)
        # (the churn edits were made within the watermark overlap before the incremental run's start,
        # so the no-change run re-reads them, unchanged)
        overlap = float(settings.watermark_overlap_s) + 1
        time.sleep(overlap)
        print("no-change run ...", file=sys.stderr, flush=True)
        idle = run_flow("incremental", timer, nlog, emb_proc.pid, url, mongo.pid)
        # the edit run starts past the watermark overlap (so the run after it re-reads nothing) and
        # the jobs expire after it (it takes about an incremental run)
        expiry = expire_by_app(db, docs, args.expiring, overlap + 2 * inc["wall"] + 10, args.seed,
                               set(expire) | {d["_id"] for d in edits})
        load["expiring"] = args.expiring
        time.sleep(overlap)
        print("expiry-edit run ...", file=sys.stderr, flush=True)
        edit = run_flow("incremental", timer, nlog, emb_proc.pid, url, mongo.pid)
        time.sleep(max(0.0, (expiry - datetime.now(timezone.utc)).total_seconds() + 1))
        print("time-only run ...", file=sys.stderr, flush=True)
        timed = run_flow("incremental", timer, nlog, emb_proc.pid, url, mongo.pid)
        runs = [full, inc, idle, edit, timed]

        if args.json:  # the runs first: the raw rates below can fail on a slow server
            args.json.write_text(json.dumps({"n": args.n, "load": load, "runs": runs}, indent=1, default=str))
        print(report(args.n, load, runs, {}, args), file=sys.stderr, flush=True)
        print("raw MongoDB rates ...", file=sys.stderr, flush=True)
        raw = raw_rates(db, min(args.raw_n, args.n))
        prefect_args = prefect_argument_cost(jobs)
        text = report(args.n, load, runs, raw, args)
        text += "\n\nPrefect task-argument cost (one @task call, same process):\n" + "\n".join(
            f"  {name:<52}{secs:>10.3f} s" for name, secs in prefect_args.items())
        text += (f"\n\npeak RSS: benchmark+flow process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
                 f"MongoDB server {peak_rss_mb(mongo.pid):.0f} MB, embedding server {peak_rss_mb(emb_proc.pid):.0f} MB")
        print(text)
        if args.json:
            args.json.write_text(json.dumps({"n": args.n, "args": {k: str(v) for k, v in vars(args).items()},
                                             "load": load, "runs": runs, "raw": raw,
                                             "prefect_args": prefect_args}, indent=1,
                                            default=str))
    finally:
        if emb_proc is not None:
            emb_proc.terminate()
            try:
                emb_proc.wait(10)
            except subprocess.TimeoutExpired:
                emb_proc.kill()
        localdb.stop_pid(mongo.pid)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
