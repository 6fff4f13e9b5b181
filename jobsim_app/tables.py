"""Reading import and evaluation files into polars frames.

CSV and JSON Lines are checked line by line first, so that every problem is reported in
jobsim's words with the line it is on: text that is not in the expected encoding (UTF-8
unless ``encoding`` says otherwise), a header without rows, a row with more or fewer
fields than the header, a line that is not a JSON object. CSV cells are all read as text
(empty cells as null), as the import's converters expect.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import polars as pl

from jobsim.errors import ImportFileError

csv.field_size_limit(64 * 1024 * 1024)  # long descriptions are normal; 64 MB per cell at most


def read_table(path: Path, encoding: str = "utf-8") -> pl.DataFrame:
    """Read CSV (all columns as text), JSON Lines or Parquet."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson", ".parquet"):
        raise ImportFileError(f"unsupported file type {suffix!r} (use .csv, .jsonl, .ndjson or .parquet)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    if suffix == ".parquet":
        try:
            return pl.read_parquet(io.BytesIO(raw))
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise ImportFileError(f"cannot read {path.name}: not a readable Parquet file "
                                  f"({_short(exc)})") from None
    text = decode(raw, path.name, encoding)
    return read_csv_text(text, path.name) if suffix == ".csv" else read_jsonl_text(text, path.name)


def decode(raw: bytes, name: str, encoding: str = "utf-8") -> str:
    """``raw`` as text; a decoding error names its line and suggests ``--encoding``."""
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return raw.decode(codec)
    except LookupError:
        raise ImportFileError(f"unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        hint = ("; if it is Latin-1 or Windows-1252 text, re-run with --encoding latin-1 "
                "(or --encoding cp1252)" if codec == "utf-8-sig" else "")
        shown = "UTF-8" if codec == "utf-8-sig" else encoding
        raise ImportFileError(f"{name} line {line}: not {shown} text (byte 0x{raw[exc.start]:02x} "
                              f"at column {column}){hint}") from None


def read_csv_text(text: str, name: str) -> pl.DataFrame:
    """A CSV text with a header row → a frame of text columns; ragged rows are refused."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise ImportFileError(f"{name} is empty: expected a header row and at least one row")
        header = [h.strip() for h in header]
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise ImportFileError(f"{name} line 1: column(s) {dupes} appear more than once in the header")
        columns: list[list[str | None]] = [[] for _ in header]
        for row in reader:
            if not row:
                continue  # blank line
            if len(row) != len(header):
                raise ImportFileError(
                    f"{name} line {reader.line_num}: {len(row)} fields where the header has "
                    f"{len(header)} (a ragged CSV: check that line's quotes and separators)")
            for values, cell in zip(columns, row):
                values.append(cell if cell != "" else None)
    except csv.Error as exc:
        raise ImportFileError(f"{name} line {reader.line_num}: not readable as CSV ({exc})") from None
    if not columns[0]:
        raise ImportFileError(f"{name} has a header but no rows")
    return pl.DataFrame({h: v for h, v in zip(header, columns)}, schema={h: pl.String for h in header})


def read_jsonl_text(text: str, name: str) -> pl.DataFrame:
    """JSON Lines (one object per line) → a frame; a broken line is named."""
    count = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            col = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise ImportFileError(f"{name} line {line_no}: not valid JSON ({detail}{col})") from None
        if not isinstance(value, dict):
            raise ImportFileError(f"{name} line {line_no}: expected a JSON object, got "
                                  f"{type(value).__name__}")
        count += 1
    if not count:
        raise ImportFileError(f"{name} has no rows (expected one JSON object per line)")
    try:
        return pl.read_ndjson(io.BytesIO(text.encode("utf-8")), infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        raise ImportFileError(f"cannot read {name}: {_short(exc)} (the same field must have "
                              "the same type on every line)") from None


def _short(exc: Exception) -> str:
    """The first sentence of a library's message, without its advice on its own options."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.split(r"\s*(?:You might want|Hint:|Consider)", first)[0][:200]
