"""One evaluation: every method's lists on one data set, scored, and the printed report."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from jobsim.errors import ConfigError
from jobsim.scoring import Context
from jobsim.text import content_hash
from jobsim_app.evaluate import metrics as m
from jobsim_app.evaluate.datasets import Dataset
from jobsim_app.evaluate.lists import (
    ListBuilder, ListRequest, default_list_builder, duplicate_groups, unknown_context,
)
from jobsim_app.evaluate.methods import embed, tfidf_matrix

log = logging.getLogger(__name__)
DEPTH = 50  # ranked entries per list: the duplicates-excluded lists refill from them


@dataclass
class Result:
    embedder: str
    precision_overlap: float  # duplicates counted; neighbour shares ≥ 1 base category
    precision_exact: float  # duplicates counted; same label string
    precision_overlap_dedup: float  # duplicates of the subject and repeats of a group excluded
    precision_exact_dedup: float
    duplicates_of_subject: float  # share of list entries in the subject's duplicate group
    duplicates_of_each_other: float  # share of entries in the group of an earlier entry
    seconds: float  # embedding (fit included) + lists
    no_features: int = 0  # rows the embedder could not embed (zero vector)
    per_category: dict[str, float] = field(default_factory=dict)  # dedup, overlap


@dataclass
class Report:
    dataset: str
    rows: int
    labels: int
    base_categories: int
    duplicate_rows: int  # rows in a duplicate group of ≥ 2
    dropped: dict[str, int]
    k: int
    blend: str
    random_overlap: float
    random_exact: float
    sum_p_squared: float
    results: list[Result]
    category_sizes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _score(kind: str, idx: np.ndarray, data: Dataset, groups: np.ndarray, k: int,
           seconds: float, no_features: int) -> Result:
    set_codes, sets = m.codes_of(data.label_sets)
    exact_codes, uniq = m.codes_of(data.labels)
    overlap, exact = m.overlap_matrix(sets), np.eye(len(uniq), dtype=bool)
    dedup = m.exclude_duplicates(idx, groups, k)
    of_subject, of_other = m.duplicate_shares(idx, groups, k)
    return Result(
        embedder=kind,
        precision_overlap=m.precision_at_k(idx, set_codes, overlap, k),
        precision_exact=m.precision_at_k(idx, exact_codes, exact, k),
        precision_overlap_dedup=m.precision_at_k(dedup, set_codes, overlap, k),
        precision_exact_dedup=m.precision_at_k(dedup, exact_codes, exact, k),
        duplicates_of_subject=of_subject, duplicates_of_each_other=of_other,
        seconds=round(seconds, 2), no_features=no_features,
        per_category=m.per_category(m.hits_at_k(dedup, set_codes, overlap, k), data.label_sets, k),
    )


def evaluate(
    data: Dataset, embedders: Sequence[str], k: int = 10, candidates: int = DEPTH,
    cosine_weight: float = 1.0, dimensions: int = 512, list_builder: ListBuilder = default_list_builder,
) -> Report:
    """precision@k of every method on ``data`` (duplicates counted and excluded), the
    duplicate shares of its lists, and the random baseline."""
    n = len(data.texts)
    if n <= k:
        raise ConfigError(f"{data.name}: {n} rows; precision@{k} needs more than {k}")
    groups = duplicate_groups(data.texts, tfidf_matrix(data.texts, data.corpus()[0]), data.companies)
    use_context = data.context is not None and cosine_weight < 1.0
    context = data.context if use_context else unknown_context(n)
    # the label is never part of the bonus
    context = Context(np.full(n, -1, np.int32), context.level, context.city, context.remote)
    results = []
    for kind in embedders:
        started = time.perf_counter()
        vectors, no_features = embed(data, kind, dimensions)
        request = ListRequest(vectors, k, max(k, candidates), context, cosine_weight if use_context else 1.0,
                              groups, data.companies, [content_hash(t, "evaluate", 0) for t in data.texts])
        idx = list_builder(request)
        results.append(_score(kind, idx, data, groups, k, time.perf_counter() - started, no_features))
        log.info("%s: %s p@%d %.3f", data.name, kind, k, results[-1].precision_overlap_dedup)
    set_codes, sets = m.codes_of(data.label_sets)
    exact_codes, uniq = m.codes_of(data.labels)
    sizes = np.bincount(groups, minlength=n)
    return Report(
        dataset=data.name, rows=n, labels=len(uniq), base_categories=len(set().union(*data.label_sets)),
        duplicate_rows=int((sizes[groups] >= 2).sum()), dropped=data.dropped, k=k,
        blend=f"{cosine_weight}·cosine + {1 - cosine_weight:.2g}·bonus(level, city, remote)"
        if use_context else "cosine only",
        random_overlap=m.random_baseline(set_codes, m.overlap_matrix(sets)),
        random_exact=m.random_baseline(exact_codes, np.eye(len(uniq), dtype=bool)),
        sum_p_squared=m.sum_p_squared(data.labels), results=results,
        category_sizes={c: sum(c in s for s in data.label_sets) for c in set().union(*data.label_sets)},
    )


def format_report(report: Report, categories: int = 20) -> str:
    """The summary table, then the per-category table (largest categories first)."""
    multi = report.base_categories != report.labels
    k = report.k
    lines = [
        f"{report.dataset}: {report.rows} rows ({report.duplicate_rows} in duplicate groups), "
        f"{report.labels} labels" + (f" ({report.base_categories} base categories)" if multi else "")
        + f"; dropped {report.dropped}; neighbours by {report.blend}",
        f"{'method':<22}{'p@%d' % k:>8}{'p@%d dedup' % k:>12}"
        + (f"{'exact':>8}{'exact dedup':>13}" if multi else "")
        + f"{'dup subj':>10}{'dup other':>10}{'× random':>10}{'seconds':>9}",
    ]
    for r in report.results:
        name = r.embedder + (f" ({r.no_features} w/o f.)" if r.no_features else "")
        lines.append(
            f"{name:<22}{r.precision_overlap:>8.3f}{r.precision_overlap_dedup:>12.3f}"
            + (f"{r.precision_exact:>8.3f}{r.precision_exact_dedup:>13.3f}" if multi else "")
            + f"{r.duplicates_of_subject:>10.3f}{r.duplicates_of_each_other:>10.3f}"
            + f"{r.precision_overlap_dedup / report.random_overlap:>9.1f}×{r.seconds:>9.1f}")
    lines.append(f"{'random (exact, i≠j)':<22}{report.random_overlap:>8.3f}{'':>12}"
                 + (f"{report.random_exact:>8.3f}" if multi else ""))
    lines.append(f"Σ p_c² over label strings: {report.sum_p_squared:.3f}")
    lines += _category_table(report, categories)
    return "\n".join(lines)


def _category_table(report: Report, limit: int) -> list[str]:
    if not report.results or not report.category_sizes:
        return []
    cats = sorted(report.category_sizes, key=lambda c: (-report.category_sizes[c], c))
    lines = [f"per category (p@{report.k} dedup; {min(limit, len(cats))} largest of {len(cats)}):",
             f"{'category':<36}{'rows':>6}" + "".join(f"{r.embedder[:11]:>12}" for r in report.results)]
    for c in cats[:limit]:
        lines.append(f"{c[:35]:<36}{report.category_sizes[c]:>6}"
                     + "".join(f"{r.per_category.get(c, float('nan')):>12.3f}" for r in report.results))
    return lines
