"""Command line: local database, sample data, bulk import, pipeline runs, the demo.

A thin layer over the library: settings are loaded once here and passed down.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from jobsim.errors import JobsimError
from jobsim.settings import Settings
from jobsim_app import localdb

log = logging.getLogger("jobsim")
STATE_DIR = Path(".jobsim")


def _db_state() -> dict | None:
    path = STATE_DIR / "mongo.json"
    return json.loads(path.read_text()) if path.exists() else None


def cmd_db_start(args: argparse.Namespace) -> int:
    state = _db_state()
    if state and _alive(state["pid"]):
        print(state["uri"])
        return 0
    server = localdb.start(Path(args.dir).resolve(), port=args.port)
    STATE_DIR.mkdir(exist_ok=True)
    (STATE_DIR / "mongo.json").write_text(json.dumps({"pid": server.pid, "uri": server.uri}))
    print(server.uri)
    return 0


def cmd_db_stop(args: argparse.Namespace) -> int:
    state = _db_state()
    if state:
        localdb.stop_pid(state["pid"])
        (STATE_DIR / "mongo.json").unlink()
        print(f"stopped local MongoDB (pid {state['pid']})")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def import_docs(settings: Settings, docs: list[dict]) -> tuple[int, int]:
    from storage import imports

    jobs = imports(settings)
    jobs.ensure_indexes()
    return jobs.upsert_imported(docs, datetime.now(timezone.utc))


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from jobsim.importer import PRESETS, map_rows
    from jobsim.jobs import check_job
    from jobsim_app.tables import read_table

    path = Path(args.file)
    batch = map_rows(read_table(path), PRESETS[args.preset], args.source or args.preset,
                     ignore_expiry=args.ignore_expiry)
    inserted, updated = import_docs(settings, batch.docs)
    now = datetime.now(timezone.utc)
    unusable = Counter(r.split("(")[0].strip() for d in batch.docs
                       for r in check_job({"_id": d["externalId"], **d}, now).reasons)
    print(f"{path.name}: {len(batch.docs)} rows imported ({inserted} new, {updated} updated), "
          f"{len(batch.rejected)} rejected")
    for reason, count in Counter(r for _, _, r in batch.rejected).most_common(10):
        print(f"  rejected {count:6d}  {reason}")
    for reason, count in unusable.most_common(10):
        print(f"  imported but will not be embedded {count:6d}  {reason}")
    if settings.ops.emit_import_events:
        emit_import_completed(args.source or args.preset, path.name, len(batch.docs), inserted, updated,
                              len(batch.rejected))
    return 0


def emit_import_completed(source: str, file: str, rows: int, inserted: int, updated: int,
                          rejected: int) -> str | None:
    """Emit ``jobsim.import.completed`` (the after-import deployment's trigger) when a Prefect
    API is configured; returns the import id, or None when no API is configured."""
    import uuid

    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        return None  # no server to tell (emitting would start a throwaway ephemeral one)
    import_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    emit_event(
        event="jobsim.import.completed",
        resource={"prefect.resource.id": f"jobsim.import.{import_id}", "prefect.resource.name": file},
        payload={"import_id": import_id, "source": source, "file": file, "rows": rows,
                 "inserted": inserted, "updated": updated, "rejected": rejected},
    )
    EventsWorker.drain_all(timeout=30)  # the CLI exits right after: send it now
    print(f"  emitted jobsim.import.completed (import {import_id})")
    return import_id


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    from jobsim.synthetic import generate_jobs

    inserted, updated = import_docs(settings, generate_jobs(args.n, seed=args.seed))
    print(f"synthetic jobs: {inserted} new, {updated} updated")
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from flows.refresh import similarity_refresh

    summary = similarity_refresh(mode=args.mode)
    print_summary(summary, settings)
    return 0


def print_summary(summary: dict, settings: Settings) -> None:
    from jobsim.ids import display_id
    from storage import imports

    s = summary
    print(f"\nrun {s['run_id']} ({s['mode']})")
    print(f"  jobs seen {s['seen']}, valid {s['valid']}, rejected {s['rejected']}, "
          f"inactive {sum(s['inactive'].values())} {dict(s['inactive'])}")
    for reason, count in s["rejected_reasons"].items():
        print(f"    rejected {count:5d}  {reason}")
    print(f"  embedded {s['embedded']} (reused {s['reused']}, failed {s['failed']}), "
          f"{s['requests']} requests, {s['tokens']} tokens, ${s['cost_usd']:.4f}")
    for reason, count in s["failed_reasons"].items():
        print(f"    failed {count:5d}  {reason}")
    print(f"  active jobs with vectors {s['active_vectors']}; lists written {s['lists_written']} "
          f"(cleared {s['lists_cleared']}), unchanged {s['lists_unchanged']}")
    print("  timings " + ", ".join(f"{k} {v:.2f}s" for k, v in s["timings"].items()))
    jobs = imports(settings)
    example = jobs.example_with_list()
    if example:
        job_id, items = example
        titles = jobs.titles([job_id, *[i for i, _ in items]])
        print(f"\n  example: {titles.get(job_id)!r} ({display_id(job_id)}) is similar to")
        for other, score in items[:5]:
            print(f"    {score:.2f}  {titles.get(other)!r}")


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the local database, load sample data, run the flow, print a summary."""
    state = _db_state()
    if not (state and _alive(state["pid"])):
        cmd_db_start(argparse.Namespace(dir=str(STATE_DIR / "mongo"), port=None))
        state = _db_state()
    # Hand the local database to the flow the way production does: through settings.
    os.environ["JOBSIM_MONGO__URI"] = state["uri"]
    os.environ.setdefault("JOBSIM_MONGO__DATABASE", "jobsim_demo")
    settings = Settings()
    cmd_seed(argparse.Namespace(n=args.n, seed=args.seed), settings)
    cmd_run(argparse.Namespace(mode="incremental"), settings)
    print(f"\nlocal MongoDB: {state['uri']} (database {settings.mongo.database}); "
          "stop it with: .venv/bin/jobsim db stop")
    print("Prefect UI on this run: PREFECT_HOME=.jobsim/prefect .venv/bin/prefect server start "
          "then open http://127.0.0.1:4200/runs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobsim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="local MongoDB-compatible server (SecantusDB, dev extra)")
    db_sub = db.add_subparsers(dest="action", required=True)
    start = db_sub.add_parser("start")
    start.add_argument("--dir", default=str(STATE_DIR / "mongo"))
    start.add_argument("--port", type=int, default=None)
    db_sub.add_parser("stop")
    imp = sub.add_parser("import", help="bulk import CSV / JSON Lines / Parquet")
    imp.add_argument("file")
    imp.add_argument("--preset", choices=["native", "linkedin", "nyc"], default="native")
    imp.add_argument("--source", help="source name stored with each job (default: the preset)")
    imp.add_argument("--ignore-expiry", action="store_true",
                     help="drop expiry dates (to try historic datasets)")
    seed = sub.add_parser("seed", help="insert synthetic sample postings")
    seed.add_argument("n", type=int)
    seed.add_argument("--seed", type=int, default=7)
    run = sub.add_parser("run", help="run the similarity-refresh flow once")
    run.add_argument("--mode", choices=["incremental", "full"], default="incremental")
    demo = sub.add_parser("demo", help="local database + sample data + one run + summary")
    demo.add_argument("--n", type=int, default=500)
    demo.add_argument("--seed", type=int, default=7)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        if args.command == "db":
            return cmd_db_start(args) if args.action == "start" else cmd_db_stop(args)
        if args.command == "demo":
            return cmd_demo(args)
        settings = Settings()
        handler = {"import": cmd_import, "seed": cmd_seed, "run": cmd_run}[args.command]
        return handler(args, settings)
    except JobsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
