"""Command line of the read side.

``python -m api_export serve [--host H] [--port P]``   start the HTTP API (uvicorn)
``python -m api_export export --out DIR [--vectors]``  write a snapshot of every neighbour list

Both read the ``JOBSIM_*`` settings. A database that cannot be used (unreachable, bad URI,
refused credentials) or a bad setting ends the command with one line naming the setting
to fix and exit code 2 — no traceback, no secret.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from pydantic import ValidationError
from pymongo.errors import PyMongoError

from jobsim.errors import JobsimError
from jobsim.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m api_export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the HTTP API")
    serve.add_argument("--host", help="default: JOBSIM_API__HOST")
    serve.add_argument("--port", type=int, help="default: JOBSIM_API__PORT")
    export = sub.add_parser("export", help="snapshot every neighbour list to Parquet + JSON Lines")
    export.add_argument("--out", required=True, help="output folder (files are replaced atomically)")
    export.add_argument("--vectors", action="store_true", help="also write vectors.parquet")
    export.add_argument("--include-inactive", action="store_true",
                        help="every stored list as stored (deleted jobs and inactive neighbours too)")
    export.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return parser


def setting_problem(exc: ValidationError) -> str:
    """A settings validation error as one line naming the variable (the value is not echoed)."""
    err = exc.errors()[0]
    name = "JOBSIM_" + "__".join(str(part).upper() for part in err.get("loc", ()))
    return f"invalid setting {name}: {err.get('msg', 'invalid value')}"


def serve(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn

    from api_export.app import create_app
    from api_export.database import check_database

    check_database(settings)  # fail at start, with the setting's name, not on every request
    uvicorn.run(create_app(settings), host=host or settings.api.host, port=port or settings.api.port)
    return 0


def export(settings: Settings, args: argparse.Namespace) -> int:
    from api_export.export import export_snapshot, summary_line

    manifest = export_snapshot(settings, args.out, vectors=args.vectors,
                               scope="all" if args.include_inactive else "served")
    if args.json:
        print(json.dumps({k: manifest[k] for k in ("runId", "scope", "model", "dims", "counts")}, default=str))
    else:
        print(summary_line(manifest, args.out))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.command == "serve" else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings: Settings | None = None
    try:
        settings = Settings()
        if args.command == "serve":
            return serve(settings, args.host, args.port)
        return export(settings, args)
    except ValidationError as exc:
        message = setting_problem(exc)
    except JobsimError as exc:
        message = str(exc)
    except PyMongoError as exc:
        from api_export.database import describe_database_error

        message = describe_database_error(exc, settings) if settings else type(exc).__name__
    except OSError as exc:
        message = f"cannot write {getattr(exc, 'filename', None) or args.command}: {exc.strerror or exc}"
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
