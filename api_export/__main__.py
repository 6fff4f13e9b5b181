"""Command line of the read side.

``python -m api_export serve [--host H] [--port P]``   start the HTTP API (uvicorn)
``python -m api_export export --out DIR [--vectors]``  write a snapshot of every neighbour list
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

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
                        help="keep lists of jobs no longer active and their inactive neighbours")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
        if args.command == "serve":
            import uvicorn

            from api_export.app import create_app

            uvicorn.run(create_app(settings), host=args.host or settings.api.host,
                        port=args.port or settings.api.port)
            return 0
        from api_export.export import export_snapshot

        manifest = export_snapshot(settings, args.out, vectors=args.vectors,
                                   active_only=not args.include_inactive)
        print(json.dumps({k: manifest[k] for k in ("runId", "model", "dims", "counts")}, default=str))
        return 0
    except JobsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
