"""Runs: the run record, the watermark, and the summary a run leaves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from jobsim.repositories import StateRepo
from jobsim.stages.prepare import Prepared
from jobsim.summary import EmbedStats, RunInfo, RunSummary, WriteStats, headline, reason_counts


def start_run(state: StateRepo, run_id: str, mode: str, now: datetime) -> RunInfo:
    """Record the run as running; incremental runs pull from the watermark, full ones from the start."""
    since = None if mode == "full" else state.watermark()
    state.start_run(run_id, mode, now, {"mode": mode})
    return RunInfo(run_id=run_id, mode=mode, started_at=now, since=since)


def finish_run(state: StateRepo, run: RunInfo, summary: RunSummary, now: datetime, overlap_s: int) -> None:
    """Record the summary; a run that did not fail then advances the watermark to its start
    (less the overlap). A failed run leaves it: the next run redoes its work."""
    failed = summary.status == "failed"
    state.finish_run(run.run_id, "failed" if failed else "completed", now, summary.as_dict())
    if not failed:
        state.set_watermark(run.started_at - timedelta(seconds=overlap_s), run.run_id)


def summarize(
    run: RunInfo, seen: int, prepared: Prepared, embedded: EmbedStats, active: int,
    written: WriteStats, price_per_million: float, timings: dict[str, float],
    search: dict[str, Any] | None = None, lists_check: dict[str, Any] | None = None,
    refused: dict[str, str] | None = None,
) -> RunSummary:
    """The run's summary; ``refused`` = writes the server refused outside the embedding and
    write-back steps (rejection records)."""
    refused = {**(refused or {}), **embedded.refused, **written.refused}
    summary = RunSummary(
        run_id=run.run_id, mode=run.mode, seen=seen, valid=len(prepared.jobs),
        inactive=dict(prepared.inactive), rejected=len(prepared.rejected),
        rejected_reasons=reason_counts([r for rs in prepared.rejected.values() for r in rs]),
        embedded=embedded.embedded, reused=embedded.reused, failed=len(embedded.failed),
        failed_reasons=reason_counts(list(embedded.failed.values())),
        deferred=len(embedded.deferred), requests=embedded.requests, tokens=embedded.tokens,
        retries=embedded.retries, rate_limited=embedded.rate_limited,
        cost_usd=round(embedded.tokens * price_per_million / 1e6, 9),
        active_vectors=active, lists_written=written.written, lists_cleared=written.cleared,
        lists_unchanged=written.unchanged, timings={k: round(v, 3) for k, v in timings.items()},
        search=dict(search or {}), lists_check=dict(lists_check or {}),
        refused=len(refused), refused_reasons=reason_counts(list(refused.values())), unavailable=embedded.unavailable,
    )
    summary.status, summary.headline = headline(summary)
    return summary
