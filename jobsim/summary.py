"""What a run did: the run's identity, per-stage counts and the summary they add up to (pure)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    mode: str
    started_at: datetime
    since: datetime | None  # pull jobs changed since (None = all)


@dataclass
class EmbedStats:
    embedded: int = 0
    reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    tokens: int = 0
    retries: int = 0
    rate_limited: int = 0
    deferred: dict[str, str] = field(default_factory=dict)  # transient failures, left pending: key -> why
    seconds: float = 0.0
    refused: dict[str, str] = field(default_factory=dict)  # marks the server refused: job key -> reason
    unavailable: str | None = None  # the embedding service's outage that stopped the run's embedding


@dataclass
class WriteStats:
    written: int = 0
    cleared: int = 0
    unchanged: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # job key -> the server's reason


@dataclass
class RunSummary:
    run_id: str
    mode: str
    seen: int = 0
    valid: int = 0
    inactive: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    embedded: int = 0
    reused: int = 0
    failed: int = 0
    failed_reasons: dict[str, int] = field(default_factory=dict)
    deferred: int = 0
    requests: int = 0
    tokens: int = 0
    retries: int = 0
    rate_limited: int = 0
    cost_usd: float = 0.0
    active_vectors: int = 0
    lists_written: int = 0
    lists_cleared: int = 0
    lists_unchanged: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)  # neighbour pass: mode, recall, ...
    lists_check: dict[str, Any] = field(default_factory=dict)  # duplicates in lists, list lengths
    refused: int = 0  # writes the server refused (one document each), with their reasons
    refused_reasons: dict[str, int] = field(default_factory=dict)
    unavailable: str | None = None  # the embedding service's outage that ended the run
    status: str = "ok"  # "ok" | "with failures" | "failed"
    headline: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reason_counts(reasons: list[str], width: int = 60) -> dict[str, int]:
    """Group free-text reasons by their text before any "(detail)" for summaries."""
    keys = [r.split("(")[0].strip()[:width] for r in reasons]
    return dict(Counter(keys).most_common(20))


def combine_embed_stats(reused: int, parts: list[EmbedStats], seconds: float) -> EmbedStats:
    """One run's embedding stats from its batches' (wall time measured by the caller)."""
    total = EmbedStats(reused=reused, seconds=seconds)
    for part in parts:
        total.embedded += part.embedded
        total.failed.update(part.failed)
        total.requests += part.requests
        total.tokens += part.tokens
        total.retries += part.retries
        total.rate_limited += part.rate_limited
        total.deferred.update(part.deferred)
        total.refused.update(part.refused)
        total.unavailable = total.unavailable or part.unavailable
    return total


def _counts(counts: dict[str, int], limit: int = 3) -> str:
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
    return ", ".join(f"{reason} {n:,}" for reason, n in top)


def _nothing_listed(s: RunSummary) -> str:
    """Why a run that pulled jobs embedded and wrote nothing."""
    parts = []
    inactive = sum(s.inactive.values())
    if inactive:
        parts.append(f"{'all' if inactive == s.seen else f'{inactive:,}'} inactive ({_counts(s.inactive)})")
    if s.rejected:
        parts.append(f"{'all' if s.rejected == s.seen else f'{s.rejected:,}'} rejected ({_counts(s.rejected_reasons)})")
    if s.valid:
        parts.append(f"{s.valid:,} valid with current vectors and unchanged lists")
    return f"nothing to embed: {s.seen:,} pulled, " + "; ".join(parts)


def headline(s: RunSummary) -> tuple[str, str]:
    """(status, one line saying what the run did, and why when it did nothing)."""
    if s.unavailable:
        return "failed", f"embedding service unavailable: {s.unavailable}; {s.deferred:,} jobs left pending"
    status = "with failures" if s.failed or s.refused else "ok"
    problems = []
    if s.failed:
        problems.append(f"{s.failed:,} jobs failed ({_counts(s.failed_reasons)})")
    if s.refused:
        problems.append(f"{s.refused:,} writes refused by MongoDB ({_counts(s.refused_reasons)})")
    if s.seen == 0 and not s.lists_written:
        done = "nothing changed since the last run" if s.mode == "incremental" else "no jobs in the database"
    elif s.embedded == 0 and s.lists_written == 0 and not s.failed:
        done = _nothing_listed(s)
    else:
        done = f"{s.lists_written:,} lists written ({s.seen:,} pulled, {s.embedded:,} embedded"
        done += f", {s.rejected:,} rejected" if s.rejected else ""
        done += f", {sum(s.inactive.values()):,} inactive)" if s.inactive else ")"
    return status, "; ".join([*problems, done])
