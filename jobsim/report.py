"""Run report for the Prefect UI: tables, markdown and the score-distribution plot (pure).

Everything here turns a run summary (``RunSummary.as_dict()``, possibly with extra keys
added later such as ``search``) into text; missing keys are shown as absent, never guessed.
The plot is an SVG built here and embedded as a ``data:`` URI, so the artifact needs no
file server and no network.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from jobsim.ids import display_id



@dataclass(frozen=True)
class Histogram:
    edges: list[float]  # len(counts) + 1
    counts: list[int]
    lists: int  # lists the scores came from (empty ones included)
    empty: int  # lists with no neighbour

    @property
    def scores(self) -> int:
        return sum(self.counts)


def histogram_of(scores: np.ndarray, lists: int, empty: int, bins: int = 20,
                 low: float = 0.0, high: float = 1.0) -> Histogram:
    """Histogram of the neighbour ``scores`` of ``lists`` lists (``empty`` of them with none)."""
    # bin by integer index with a tiny tolerance: stored scores are rounded to 0.01, so many sit
    # exactly on an edge, and float edges (0.30000000000000004) would push them a bin down
    position = (np.clip(scores, low, high) - low) / (high - low) * bins
    index = np.clip(np.floor(position + 1e-9).astype(np.int64), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    edges = [round(low + (high - low) * i / bins, 6) for i in range(bins + 1)]
    return Histogram(edges, counts.astype(int).tolist(), lists, empty)


def histogram_svg(hist: Histogram, title: str = "Neighbour score distribution",
                  width: int = 640, height: int = 260) -> str:
    """A bar chart of ``hist`` as a standalone SVG document."""
    left, right, top, bottom = 56, 16, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(hist.counts, default=0) or 1
    n = max(len(hist.counts), 1)
    bar_w = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{width / 2:.0f}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>',
    ]
    for i, count in enumerate(hist.counts):
        h = plot_h * count / peak
        x = left + i * bar_w
        parts.append(f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="#2a6fdb"><title>{hist.edges[i]:.2f}–{hist.edges[i + 1]:.2f}: '
                     f'{count}</title></rect>')
    for tick in range(0, n + 1, max(n // 5, 1)):
        x = left + tick * bar_w
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                     f'{hist.edges[tick]:.2f}</text>')
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{round(peak * frac)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">'
                 f'blended score ({hist.scores} scores over {hist.lists} lists, {hist.empty} empty)</text>')
    parts.append("</svg>")
    return "".join(parts)


def data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if value else "0"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def counts_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per headline count (the table artifact): metric, value."""
    s = summary
    inactive = s.get("inactive") or {}
    rows: list[tuple[str, Any]] = [
        ("mode", s.get("mode")),
        ("jobs seen", s.get("seen")),
        ("valid", s.get("valid")),
        ("inactive (skipped)", sum(inactive.values()) if inactive else 0),
        ("rejected", s.get("rejected")),
        *((f"rejected: {reason}", n) for reason, n in (s.get("rejected_reasons") or {}).items()),
        ("embedded", s.get("embedded")),
        ("vector reused", s.get("reused")),
        ("failed", s.get("failed")),
        *((f"failed: {reason}", n) for reason, n in (s.get("failed_reasons") or {}).items()),
        ("requests", s.get("requests")),
        ("tokens", s.get("tokens")),
        ("cost (USD)", s.get("cost_usd")),
        ("active jobs with vectors", s.get("active_vectors")),
        ("lists written", s.get("lists_written")),
        ("lists cleared", s.get("lists_cleared")),
        ("lists unchanged", s.get("lists_unchanged")),
        ("writes refused by MongoDB", s.get("refused")),
        *((f"refused: {reason}", n) for reason, n in (s.get("refused_reasons") or {}).items()),
    ]
    return [{"metric": k, "value": v} for k, v in rows if v is not None]


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    header = list(header)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return out


def search_rows(search: Mapping[str, Any] | None) -> list[tuple[str, Any]]:
    """Neighbour-search facts worth a glance (mode, ANN recall, incremental churn)."""
    if not search:
        return []
    keys = [("mode", "mode"), ("jobs", "jobs"), ("full pass because", "full_pass_reason"), ("exact or ANN", "plan"),
            ("ANN index", "ann_index"), ("ANN effort", "ann_param"), ("ANN effort value", "ann_value"),
            ("ANN lists probed per row", "ann_mean_probes"), ("ANN probe margin", "ann_probe_margin"),
            ("ANN recall@10", "recall_at_10"), ("recall sample", "recall_sample"),
            ("vectors added", "added"), ("vectors removed", "removed"),
            ("lists recomputed", "recomputed"), ("churn", "churn"), ("shards", "shards"), ("seconds", "seconds")]
    skip = set()
    if search.get("mode") != "incremental":
        skip |= {"added", "removed", "recomputed"}
    if search.get("recall_at_10") is None:
        skip.add("recall_sample")
    if not search.get("shards"):
        skip.add("shards")
    return [(label, search[key]) for label, key in keys if key not in skip and search.get(key) not in (None, "")]


def report_markdown(
    summary: Mapping[str, Any],
    hist: Histogram | None = None,
    failed_jobs: list[Mapping[str, Any]] | None = None,
    search: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> str:
    """The whole run report as one markdown document."""
    s = summary
    search = search or s.get("search")
    failed = s.get("failed") or 0
    status = s.get("status") or ("with failures" if failed else "ok")
    lines = [
        f"# similarity refresh `{s.get('mode', '?')}` — {status}",
        "",
        f"**{s.get('headline') or status}**",
        "",
        f"Run `{s.get('run_id', '?')}`: **{_fmt(s.get('seen'))}** jobs seen, **{_fmt(s.get('embedded'))}** "
        f"embedded, **{_fmt(s.get('rejected'))}** rejected, **{_fmt(failed)}** failed; "
        f"**{_fmt(s.get('lists_written'))}** lists written. Tokens {_fmt(s.get('tokens'))}, "
        f"cost **${s.get('cost_usd', 0) or 0:.4f}**.",
        "",
    ]
    if context:
        lines += ["## Trigger", "", *_table(["parameter", "value"], context.items()), ""]
    lines += ["## Counts", "", *_table(["metric", "value"], ((r["metric"], r["value"]) for r in counts_rows(s))), ""]
    timings = s.get("timings") or {}
    if timings:
        total = sum(timings.values()) or 1.0
        lines += ["## Timings", "", *_table(
            ["stage", "seconds", "share"],
            ((k, round(v, 3), f"{100 * v / total:.0f}%") for k, v in timings.items())), ""]
    rows = search_rows(search)
    if rows:
        lines += ["## Neighbour search", "", *_table(["", "value"], rows), ""]
    check = s.get("lists_check") or {}
    if check:
        lines += ["## Lists", "", *_table(["", "value"], [
            ("lists (jobs with a list)", check.get("lists")), ("of closed or expired jobs", check.get("closed_job_lists")),
            ("holding a duplicate of their own job (goal 0)", check.get("with_own_duplicate")),
            ("holding two postings of one group (goal 0)", check.get("with_repeated_group")),
            ("median length (jobs with enough open candidates)", check.get("median_length")),
            ("duplicate groups / postings in them", f"{_fmt(search.get('duplicate_groups') if search else None)} / "
                                                    f"{_fmt(search.get('grouped_jobs') if search else None)}")]), ""]
    if hist is not None:
        lines += ["## Score distribution", ""]
        if hist.scores:
            lines += [f"![score distribution]({data_uri(histogram_svg(hist))})", ""]
            mean = sum(c * (a + b) / 2 for c, a, b in zip(hist.counts, hist.edges, hist.edges[1:])) / hist.scores
            lines += [f"{hist.scores:,} scores over {hist.lists:,} lists ({hist.empty:,} empty), "
                      f"mean ≈ {mean:.2f}.", ""]
        else:
            lines += ["No neighbour scores in this run.", ""]
    if failed_jobs:
        lines += [f"## This run's failed, rejected and refused jobs (first {len(failed_jobs)})", "",
                  *_table(["job", "title", "kind", "reason"],
                          ((j.get("id"), str(j.get("title") or "")[:60], j.get("kind"), str(j.get("error") or "")[:200])
                           for j in failed_jobs)), ""]
    return "\n".join(lines)


def run_failures(titles: Mapping[str, Any], rejected: Mapping[str, tuple[str, ...]], failed: Mapping[str, str],
                 refused: Mapping[str, str], deferred: Mapping[str, str], limit: int) -> list[dict[str, Any]]:
    """This run's jobs that did not make it, with their reasons (for the report; no query)."""
    rows = [("rejected", k, "invalid: " + "; ".join(r)) for k, r in rejected.items()]
    rows += [("failed", k, r) for k, r in failed.items()] + [("refused", k, r) for k, r in refused.items()]
    rows += [("pending", k, r) for k, r in deferred.items()]
    return [{"id": display_id(k), "title": titles.get(k) if isinstance(titles.get(k), str) else None,
             "kind": kind, "error": reason} for kind, k, reason in rows[:limit]]
