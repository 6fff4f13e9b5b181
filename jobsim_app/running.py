"""``jobsim run`` and ``jobsim demo``: one run of the similarity-refresh flow and its summary."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from jobsim import localstack
from jobsim.settings import MongoSettings, Settings
from jobsim_app import preflight
from jobsim_app.failures import BAD_INPUT, DONE, where
from jobsim_app.importing import cmd_seed
from jobsim_app.local import ensure_started

DEMO_DATABASE = "jobsim_demo"


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    preflight.check_mongo(settings)
    preflight.check_embedding_service(settings.embedding)
    print(f"running similarity-refresh ({args.mode}) on database {settings.mongo.database} at "
          f"{where(settings.mongo.uri.get_secret_value())} ...", flush=True)
    from flows.refresh import similarity_refresh

    summary = asyncio.run(similarity_refresh(mode=args.mode))
    print_summary(summary, settings)
    return DONE


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in counts.items())


def print_summary(summary: dict[str, Any], settings: Settings) -> None:
    """The run's headline first, then its counts with reasons, timings and one example list."""
    s: dict[str, Any] = {"timings": {}, "rejected_reasons": {}, "failed_reasons": {}, "inactive": {},
                         "cost_usd": 0.0, **{k: v for k, v in summary.items() if v is not None}}
    n = lambda key: f"{s.get(key) or 0:,}"  # noqa: E731
    print()
    if s.get("headline"):
        print(f"{s.get('status', 'ok')} — {s['headline']}")
    print(f"run {s.get('run_id', '?')} ({s.get('mode', '?')})")
    inactive = s["inactive"]
    print(f"  jobs pulled {n('seen')}: valid {n('valid')}, inactive {sum(inactive.values()):,}"
          + (f" ({_reasons(inactive)})" if inactive else "") + f", rejected {n('rejected')}")
    for reason, count in s["rejected_reasons"].items():
        print(f"    rejected {count:6,}  {reason}")
    print(f"  embedded {n('embedded')} (reused {n('reused')}, failed {n('failed')}"
          + (f", left pending {n('deferred')}" if s.get("deferred") else "")
          + f"), {n('requests')} requests, {n('tokens')} tokens, ${s['cost_usd']:.4f}")
    for reason, count in s["failed_reasons"].items():
        print(f"    failed {count:6,}  {reason}")
    print(f"  active jobs with vectors {n('active_vectors')}; lists written {n('lists_written')} "
          f"(cleared {n('lists_cleared')}), unchanged {n('lists_unchanged')}")
    _print_lists(s.get("lists_check") or {}, s.get("search") or {})
    print("  timings " + ", ".join(f"{k} {v:.2f}s" for k, v in s["timings"].items()))
    _print_example(settings)


def _print_lists(check: dict[str, Any], search: dict[str, Any]) -> None:
    """What the lists look like: duplicates in them (goal 0) and their length."""
    if not check:
        return
    print(f"  lists {check.get('lists', 0):,} ({check.get('closed_job_lists', 0):,} of closed or expired jobs); "
          f"holding their own job's duplicate {check.get('with_own_duplicate', 0)}, two of one duplicate group "
          f"{check.get('with_repeated_group', 0)}; median length {check.get('median_length', 0):g}; "
          f"duplicate groups {search.get('duplicate_groups', 0):,} ({search.get('grouped_jobs', 0):,} postings)")


def _print_example(settings: Settings) -> None:
    from jobsim.ids import display_id
    from storage import imports

    jobs = imports(settings)
    example = jobs.example_with_list()
    if example:
        job_id, items = example
        titles = jobs.titles([job_id, *[n.job_id for n in items]])
        print(f"\n  example: {titles.get(job_id)!r} ({display_id(job_id)}) is similar to")
        for n in items[:5]:
            why = " · ".join(n.match)
            print(f"    {n.score:.2f}  {titles.get(n.job_id)!r}  ({round(n.cosine * 100)}% match{' · ' + why if why else ''})")


def cmd_demo(args: argparse.Namespace) -> int:
    """Start (or reuse) the local database, load sample data, run the flow, print a summary."""
    before = Settings()
    recorded = localstack.mongo()
    expected = recorded["uri"] if recorded else MongoSettings().uri.get_secret_value()
    if before.mongo.uri.get_secret_value() != expected:
        print("error: JOBSIM_MONGO__URI is set, and settings in the environment win: the demo would "
              "load its sample postings there. Unset it to run the demo on the local server.")
        return BAD_INPUT
    entry, started = ensure_started(database=DEMO_DATABASE)
    print(f"local MongoDB {'started' if started else 'already running'}: {entry['uri']}, database "
          f"{entry['database']} (recorded in {localstack.RECORD})", flush=True)
    settings = Settings()  # now with the record
    print(f"loading {args.n:,} synthetic postings ...", flush=True)
    cmd_seed(argparse.Namespace(n=args.n, seed=args.seed), settings)
    print("running the flow with the offline embedder (a temporary Prefect server starts first: "
          "up to a minute) ...", flush=True)
    cmd_run(argparse.Namespace(mode="incremental"), settings)
    prefect_home = Path(".jobsim/prefect")
    print(f"\nlocal MongoDB: {entry['uri']} (database {settings.mongo.database}); every jobsim "
          f"command run here uses it (see {localstack.RECORD}); stop it with: .venv/bin/jobsim db stop")
    print(f"next: scripts/stack.sh up (Prefect UI, deployments, a worker on this database), or "
          f"this run in the UI: PREFECT_HOME={prefect_home} .venv/bin/prefect server start")
    return DONE
