"""The real labelled sets derived from the shared data folder (nothing derived is stored).

- ``nyc-titles``: NYC Jobs 2019, ``Business Title`` only, label ``Job Category`` (multi-label,
  base categories joined by a space), company = ``Agency``.
- ``linkedin-head``: LinkedIn 2023 sample, **description only** (the title cannot leak), label =
  the title's head noun: the last word before the first ``- – , ( / |`` ("Senior Software
  Engineer, Backend" → engineer), kept when ≥ 5 postings share it; company = ``company_name``.
- ``linkedin-field``: the same without heads that name no field of work (rank and kind-of-post
  words such as manager, specialist, coordinator, assistant, and "executive").
- ``nyc-civil-service``: NYC titles again, label = the city's ``Civil Service Title`` (the formal
  classification of the post, 300+ classes), kept when ≥ 5 postings share it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from jobsim.errors import ConfigError
from jobsim_app.evaluate.datasets import (
    LINKEDIN_FILE, NYC_FILE, SHARED_DATA, Dataset, _column, finish_dataset, read_table, texts_of,
)

REAL_SETS = ("nyc-titles", "linkedin-head", "linkedin-field", "nyc-civil-service")
DEFAULT_SETS = REAL_SETS
MIN_LABEL_ROWS = 5
_HEAD_CUT = re.compile(r"[-–,(/|]")
_WORD = re.compile(r"[A-Za-z]+")
# heads that are a word of a longer post name, not the post ("Sales", "II", "Lead", "Operations")
_NOT_HEADS = frozenset({"ii", "sales", "lead", "operations"})


def title_head(title: str) -> str:
    """The last word of the title before the first separator, lower-cased ("" when none)."""
    words = _WORD.findall(_HEAD_CUT.split(title)[0])
    return words[-1].lower() if words else ""


def linkedin_labels(titles: list[str], field_only: bool) -> list[str]:
    """Head labels shared by ≥ MIN_LABEL_ROWS postings ("" = unlabelled)."""
    from jobsim.embedders.local import V3_GENERIC_WORDS

    heads = [title_head(t) for t in titles]
    count = Counter(heads)
    keep = [h if count[h] >= MIN_LABEL_ROWS and h not in _NOT_HEADS else "" for h in heads]
    if field_only:
        keep = [h if h not in V3_GENERIC_WORDS and h != "executive" else "" for h in keep]
    return keep


def _frequent(labels: list[str]) -> list[str]:
    count = Counter(labels)
    return [label if count[label] >= MIN_LABEL_ROWS else "" for label in labels]


def real_dataset(name: str, data_dir: Path = SHARED_DATA, collapse_duplicates: bool = False) -> Dataset:
    """One of :data:`REAL_SETS`; raises FileNotFoundError when its file is absent."""
    if name not in REAL_SETS:
        raise ConfigError(f"unknown data set {name!r}; choose from {', '.join(REAL_SETS)}")
    path = data_dir / (NYC_FILE if name.startswith("nyc") else LINKEDIN_FILE)
    if not path.exists():
        raise FileNotFoundError(path)
    frame = read_table(path)
    if name.startswith("nyc"):
        texts = texts_of(frame, ["Business Title"])
        companies = [v.casefold() or None for v in _column(frame, "Agency")]
        if name == "nyc-titles":
            labels, multi = _column(frame, "Job Category"), "concat"
        else:
            labels, multi = _frequent(_column(frame, "Civil Service Title")), "none"
    else:
        import polars as pl

        # description only: an empty title column, so the label (from the title) cannot leak
        texts = texts_of(frame.with_columns(pl.lit("").alias("_title")), ["_title", "description"])
        companies = [v.casefold() or None for v in _column(frame, "company_name")]
        labels, multi = linkedin_labels(_column(frame, "title"), name == "linkedin-field"), "none"
    return finish_dataset(name, texts, labels, multi, ";", collapse_duplicates, None, companies)
