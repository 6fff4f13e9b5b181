"""Labelled rows to evaluate: a CSV/Parquet file, synthetic jobs, or the shared real sets.

A :class:`Dataset` holds the embedding texts (label removed), the label of each row, the
company of each row when the file has one (near-duplicates need it) and the corpus the
fitted methods are fitted on (every row of the file that has text, labelled or not: the
pipeline fits on its whole active corpus, not on the labelled part).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from jobsim.errors import ConfigError, ImportFileError
from jobsim.scoring import Context, encode
from jobsim.text import build_embedding_text, clean_text
from jobsim_app.tables import read_table

log = logging.getLogger(__name__)

SHARED_DATA = Path(os.environ.get("JOBSIM_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
NYC_FILE = "nyc_jobs_2019.csv"
LINKEDIN_FILE = "linkedin_postings_2023_sample.csv"


@dataclass
class Dataset:
    """Texts (label removed) with their label sets and optional non-label context."""

    name: str
    texts: list[str]
    labels: list[str]  # the label string of each row
    label_sets: list[frozenset[str]]  # its base categories (one element unless multi-label)
    context: Context | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    companies: list[str | None] | None = None  # per row, when the source has a company column
    fit_texts: list[str] | None = None  # corpus the fitted methods learn from (None = texts)
    fit_companies: list[str | None] | None = None

    def corpus(self) -> tuple[list[str], list[str | None] | None]:
        """(texts, companies) to fit corpus-fitted methods on."""
        if self.fit_texts is None:
            return self.texts, self.companies
        return self.fit_texts, self.fit_companies


# -- labels ----------------------------------------------------------------------
def split_concatenated(labels: Sequence[str]) -> dict[str, frozenset[str]]:
    """Base categories of labels made of other labels joined by a space (no separator).

    A label is a base when it cannot be split at spaces into ≥ 2 other labels of the set;
    each label maps to its split with the fewest bases (itself when it is a base).
    """
    def best(words: list[str], bases: set[str]) -> tuple[str, ...] | None:
        # fewest-pieces segmentation of words into members of ``bases`` (dynamic programming)
        dp: list[tuple[str, ...] | None] = [()] + [None] * len(words)
        for end in range(1, len(words) + 1):
            for start in range(end):
                piece = " ".join(words[start:end])
                prev = dp[start]
                if prev is not None and piece in bases:
                    cand = prev + (piece,)
                    if dp[end] is None or len(cand) < len(dp[end]):  # type: ignore[arg-type]
                        dp[end] = cand
        return dp[-1]

    # shorter labels first: a base is a label no combination of *other* labels spells
    bases: set[str] = set()
    for label in sorted(set(labels), key=lambda s: (len(s.split()), s)):
        pieces = best(label.split(), bases)
        if pieces is None or len(pieces) < 2:
            bases.add(label)
    return {label: frozenset(best(label.split(), bases) or (label,)) for label in set(labels)}


def label_sets_of(labels: Sequence[str], multi_label: str, sep: str) -> list[frozenset[str]]:
    if multi_label == "none":
        return [frozenset([label]) for label in labels]
    if multi_label == "split":
        return [frozenset(p.strip() for p in label.split(sep) if p.strip()) for label in labels]
    if multi_label == "concat":
        table = split_concatenated(sorted(set(labels)))
        return [table[label] for label in labels]
    raise ConfigError(f"--multi-label must be none, split or concat (got {multi_label!r})")


# -- files: jobsim_app.tables.read_table (the importer's reader) ----------------------


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value if v is not None)
    return str(value)


def _column(frame: Any, name: str) -> list[str]:
    return [clean_text(_cell_text(v)) for v in frame[name].to_list()]


def texts_of(frame: Any, text_columns: Sequence[str]) -> list[str]:
    """The pipeline's embedding text of every row: first column = title, others = description."""
    cols = {c: _column(frame, c) for c in text_columns}
    texts = []
    for i in range(frame.height):
        title = cols[text_columns[0]][i]
        description = " ".join(cols[c][i] for c in text_columns[1:] if cols[c][i])
        texts.append(build_embedding_text(title, description) if title or description else "")
    return texts


def finish_dataset(
    name: str, texts: list[str], labels: list[str], multi_label: str = "none", sep: str = ";",
    collapse_duplicates: bool = False, context_cols: dict[str, list[Any]] | None = None,
    companies: list[str | None] | None = None,
) -> Dataset:
    """Drop rows without label or text (and identical texts when asked), build label sets.

    The fit corpus is every row with text, before the label filter.
    """
    dropped = {"no label": 0, "no text": 0, "duplicate text": 0}
    keep: list[int] = []
    seen: set[str] = set()
    for i, (text, label) in enumerate(zip(texts, labels)):
        if not label:
            dropped["no label"] += 1
        elif not text.strip():
            dropped["no text"] += 1
        elif collapse_duplicates and text in seen:
            dropped["duplicate text"] += 1
        else:
            seen.add(text)
            keep.append(i)
    has_text = [i for i, t in enumerate(texts) if t.strip()]
    data = Dataset(
        name, [texts[i] for i in keep], [labels[i] for i in keep], [], None, dropped,
        [companies[i] for i in keep] if companies else None,
        [texts[i] for i in has_text], [companies[i] for i in has_text] if companies else None,
    )
    data.label_sets = label_sets_of(data.labels, multi_label, sep)
    if context_cols:
        data.context = _context(context_cols, keep)
    return data


def _context(cols: dict[str, list[Any]], keep: list[int]) -> Context:
    n = len(keep)
    level = np.array([cols["level"][i] for i in keep], dtype=np.int8) if "level" in cols \
        else np.full(n, -1, np.int8)
    city = encode([cols["city"][i] for i in keep]) if "city" in cols else np.full(n, -1, np.int32)
    remote = np.array([bool(cols["remote"][i]) for i in keep]) if "remote" in cols else np.zeros(n, bool)
    return Context(category=np.full(n, -1, np.int32), level=level, city=city, remote=remote)


def file_dataset(
    path: Path, label_column: str, text_columns: Sequence[str] | None, multi_label: str = "none",
    sep: str = ";", collapse_duplicates: bool = False, city_column: str | None = None,
    level_column: str | None = None, company_column: str | None = None,
) -> Dataset:
    """Rows of a CSV/Parquet file: text from ``text_columns`` (first = title), label apart."""
    from jobsim.jobs import EXPERIENCE_LEVELS

    frame = read_table(path)
    if not text_columns:
        text_columns = [c for c in ("title", "description") if c in frame.columns]
    wanted = [label_column, *text_columns, *(c for c in (city_column, level_column, company_column) if c)]
    missing = [c for c in wanted if c not in frame.columns]
    if missing or not text_columns:
        raise ImportFileError(
            f"{path.name}: column(s) {missing or '(no --text-columns)'} not found; "
            f"columns are {', '.join(frame.columns[:40])}"
        )
    if label_column in text_columns:
        raise ConfigError("the label column cannot also be a text column")
    context: dict[str, list[Any]] = {}
    if city_column:
        context["city"] = [v.casefold() or None for v in _column(frame, city_column)]
    if level_column:
        order = {lvl: i for i, lvl in enumerate(EXPERIENCE_LEVELS)}
        context["level"] = [order.get(_cell_text(v), -1) for v in frame[level_column].to_list()]
    companies = [v.casefold() or None for v in _column(frame, company_column)] if company_column else None
    return finish_dataset(path.name, texts_of(frame, text_columns), _column(frame, label_column),
                          multi_label, sep, collapse_duplicates, context or None, companies)


def synthetic_dataset(n: int, seed: int = 7, label_column: str = "category",
                      collapse_duplicates: bool = False) -> Dataset:
    """Valid active synthetic jobs (jobsim.synthetic), prepared by the pipeline's own
    ``prepare`` with the label field removed from each document first."""
    from jobsim.jobs import EXPERIENCE_LEVELS
    from jobsim.stages.prepare import prepare
    from jobsim.synthetic import generate_jobs

    now = datetime.now(timezone.utc)
    docs, labels_by_id, company_by_id = [], {}, {}
    for i, job in enumerate(generate_jobs(n, seed=seed, now=now)):
        doc = dict(job, _id=f"job-{i}")
        labels_by_id[doc["_id"]] = _cell_text(doc.pop(label_column, None))
        company_by_id[doc["_id"]] = _cell_text(doc.get("company")).casefold() or None
        docs.append(doc)
    jobs = (prepared := prepare(docs, now, "evaluate", 0)).jobs
    order = {lvl: i for i, lvl in enumerate(EXPERIENCE_LEVELS)}
    context = {"city": [j.city or None for j in jobs], "remote": [j.remote for j in jobs],
               "level": [order.get(j.experience_level, -1) for j in jobs]}
    data = finish_dataset(f"synthetic n={n} seed={seed}", list(prepared.texts),
                          [labels_by_id[j.id] for j in jobs], "none", ";", collapse_duplicates,
                          context, [company_by_id[j.id] for j in jobs])
    data.dropped["invalid or inactive"] = n - len(jobs)
    return data
