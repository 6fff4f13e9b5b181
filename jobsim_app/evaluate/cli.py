"""``python -m jobsim_app.evaluate``: the command line of the evaluation tool."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from jobsim.errors import ConfigError, ImportFileError
from jobsim_app.evaluate.datasets import SHARED_DATA, Dataset, file_dataset, synthetic_dataset
from jobsim_app.evaluate.lists import ListBuilder, default_list_builder, pipeline_list_builder
from jobsim_app.evaluate.methods import METHODS
from jobsim_app.evaluate.real import DEFAULT_SETS, REAL_SETS, real_dataset
from jobsim_app.evaluate.report import DEPTH, evaluate, format_report


def build_parser() -> argparse.ArgumentParser:
    from jobsim_app import evaluate as package

    parser = argparse.ArgumentParser(prog="python -m jobsim_app.evaluate", description=package.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", type=Path, help="labelled CSV or Parquet file")
    parser.add_argument("--synthetic", type=int, metavar="N", help="evaluate N synthetic jobs instead")
    parser.add_argument("--dataset", nargs="+", choices=REAL_SETS, help="real sets of the shared data "
                        f"folder (the default without FILE/--synthetic: {' '.join(DEFAULT_SETS)})")
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA, help="the shared data folder")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic jobs")
    parser.add_argument("--label-column", help="label of FILE (synthetic: default category)")
    parser.add_argument("--text-columns", nargs="+", help="first = title, rest = description "
                        "(default: title description)")
    parser.add_argument("--company-column", help="company of each row (near-duplicates need the same one)")
    parser.add_argument("--embedder", nargs="+", default=["fitted", "tfidf", "local"], choices=METHODS)
    parser.add_argument("--multi-label", choices=("none", "concat", "split"), default="none")
    parser.add_argument("--label-sep", default=";", help="separator for --multi-label split")
    parser.add_argument("--collapse-duplicates", action="store_true",
                        help="keep only the first row of identical texts (before: the default)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=DEPTH, help="ranked entries per list")
    parser.add_argument("--cosine-weight", type=float, default=1.0, help="< 1 blends in the non-label "
                        "context bonus (level, city, remote) like the pipeline (0.9 there)")
    parser.add_argument("--city-column")
    parser.add_argument("--level-column")
    parser.add_argument("--dimensions", type=int, default=512, help="embedding dimension")
    parser.add_argument("--list-builder", metavar="pipeline|plain|MODULE:FUNCTION", default="pipeline",
                        help="how lists are built: pipeline (default: the pipeline's own, without duplicates), "
                        "plain (exact candidates + rerank, duplicates kept) or a jobsim_app.evaluate.lists.ListBuilder")
    parser.add_argument("--categories", type=int, default=20, help="rows of the per-category table")
    parser.add_argument("--json", type=Path, help="also write the reports as JSON here")
    parser.add_argument("--skip-missing", action="store_true",
                        help="exit 0 with a message when FILE does not exist (shared data absent)")
    return parser


def datasets_of(args: argparse.Namespace) -> list[Dataset]:
    """The data sets the arguments name (real sets whose file is absent are skipped, said once)."""
    if args.synthetic is not None:
        return [synthetic_dataset(args.synthetic, args.seed, args.label_column or "category",
                                  args.collapse_duplicates)]
    if args.file is not None:
        if not args.label_column:
            raise ConfigError("FILE needs --label-column")
        return [file_dataset(args.file, args.label_column, args.text_columns, args.multi_label,
                             args.label_sep, args.collapse_duplicates, args.city_column,
                             args.level_column, args.company_column)]
    out = []
    for name in args.dataset or DEFAULT_SETS:
        try:
            out.append(real_dataset(name, args.data_dir, args.collapse_duplicates))
        except FileNotFoundError as exc:
            print(f"note: {name} skipped: {exc} not found (the shared data folder is only beside the "
                  "project in CI/dev; --data-dir names another)")
    return out


def load_list_builder(spec: str | None) -> ListBuilder:
    """The function named ``module:function``; ``pipeline`` (the default) = the pipeline's own
    lists, without duplicates; ``plain`` = exact candidates + rerank, duplicates kept."""
    if not spec or spec == "pipeline":
        return pipeline_list_builder
    if spec == "plain":
        return default_list_builder
    module, _, name = spec.partition(":")
    try:
        builder = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"--list-builder {spec!r}: {exc}") from exc
    if not callable(builder):
        raise ConfigError(f"--list-builder {spec!r} is not callable")
    return builder


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.file is not None and args.synthetic is not None:
        print("error: give FILE or --synthetic N (or neither for the real sets)", file=sys.stderr)
        return 2
    if args.file is not None and not args.file.exists() and args.skip_missing:
        print(f"skipped: {args.file} not found (the shared data folder is only beside the project "
              "in CI/dev)")
        return 0
    reports = []
    try:
        builder = load_list_builder(args.list_builder)
        for data in datasets_of(args):
            report = evaluate(data, args.embedder, args.k, args.candidates, args.cosine_weight,
                              args.dimensions, builder)
            print(format_report(report, args.categories), end="\n\n", flush=True)
            reports.append(report)
    except (ImportFileError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in reports], indent=2))
    return 0
