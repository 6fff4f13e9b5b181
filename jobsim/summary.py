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
    deferred: list[str] = field(default_factory=list)  # transient failures, left pending
    seconds: float = 0.0


@dataclass
class WriteStats:
    written: int = 0
    cleared: int = 0
    unchanged: int = 0


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
        total.deferred.extend(part.deferred)
    return total
