"""Reading import and evaluation files into polars frames."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from jobsim.errors import ImportFileError


def read_table(path: Path) -> pl.DataFrame:
    """Read CSV (all columns as text), JSON Lines or Parquet."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema_length=0, encoding="utf8-lossy")
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path)
        if suffix == ".parquet":
            return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ImportFileError(f"cannot read {path.name}: {exc}") from exc
    raise ImportFileError(f"unsupported file type {suffix!r} (use .csv, .jsonl, .ndjson or .parquet)")
