"""Command line: local database, sample data, bulk import, pipeline runs, the demo.

A thin layer over the library: settings are loaded once here and passed down. Errors end
as one line naming the setting to fix (exit codes in jobsim_app.failures); --debug or
JOBSIM_DEBUG=1 prints the traceback too.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from jobsim_app import failures, logs
from jobsim_app.local import STATE_DIR

EXIT_CODES = ("exit codes: 0 done; 1 nothing could be done (e.g. every row rejected); 2 bad "
              "input (arguments, a setting, an unreadable file); 3 a service unreachable or "
              "refusing (MongoDB, the embedding service, Prefect)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobsim", description=__doc__, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    either = argparse.ArgumentParser(add_help=False)  # --debug also after the command
    either.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    common = {"parents": [either]}
    db = sub.add_parser("db", help="local MongoDB-compatible server (SecantusDB, dev extra)", **common)
    db_sub = db.add_subparsers(dest="action", required=True)
    start = db_sub.add_parser("start", help=f"start (or find) it; recorded in {STATE_DIR}/local.json", **common)
    start.add_argument("--dir", help=f"storage folder (default: the recorded one, else {STATE_DIR}/mongo)")
    start.add_argument("--port", type=int, default=None, help="default: a free port")
    start.add_argument("--database", help="database to record (default: the recorded one, else jobsim)")
    db_sub.add_parser("stop", help="stop it and forget it", **common)
    imp = sub.add_parser("import", help="bulk import CSV / JSON Lines / Parquet", **common)
    imp.add_argument("file")
    imp.add_argument("--preset", choices=["native", "linkedin", "nyc"], default="native")
    imp.add_argument("--source", help="source name stored with each job (default: the preset)")
    imp.add_argument("--ignore-expiry", action="store_true",
                     help="drop expiry dates, and clear those stored by an earlier import of the same rows")
    imp.add_argument("--encoding", default="utf-8", help="text encoding of CSV / JSON Lines (e.g. latin-1)")
    seed = sub.add_parser("seed", help="insert synthetic sample postings", **common)
    seed.add_argument("n", type=int)
    seed.add_argument("--seed", type=int, default=7)
    run = sub.add_parser("run", help="run the similarity-refresh flow once", **common)
    run.add_argument("--mode", choices=["incremental", "full"], default="incremental")
    demo = sub.add_parser("demo", help="local database + sample data + one run + summary", **common)
    demo.add_argument("--n", type=int, default=500)
    demo.add_argument("--seed", type=int, default=7)
    return parser


def dispatch(args: argparse.Namespace, settings) -> int:
    from jobsim_app import importing, local, running

    if args.command == "db":
        return local.cmd_db_start(args) if args.action == "start" else local.cmd_db_stop(args)
    if args.command == "demo":
        return running.cmd_demo(args)
    handler = {"import": importing.cmd_import, "seed": importing.cmd_seed, "run": running.cmd_run}
    return handler[args.command](args, settings)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.prefect_defaults()
    settings = None
    debug = args.debug
    try:
        from jobsim.settings import Settings

        settings = Settings()
        debug = debug or settings.debug
        logs.setup(debug, scrub=lambda text: failures.scrub(text, settings))
        return dispatch(args, settings)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - every error ends as one line
        failure = failures.describe(exc, settings)
        if debug:
            text = "".join(traceback.format_exception(exc))
            print(failures.scrub(text, settings), file=sys.stderr, end="")
        print(f"error: {failure.line}", file=sys.stderr)
        return failure.code


if __name__ == "__main__":
    sys.exit(main())
