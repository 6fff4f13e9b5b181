"""Stored ``similarJobs`` lists read back defensively (any field may hold any type)."""

from __future__ import annotations

import math
from typing import Any

from jobsim.repositories import MATCH_CODES, JobList, Neighbour, Neighbours
from storage.ids import to_key


def stored_entries(raw: Any) -> list[tuple[Any, float]] | None:
    """``similarJobs`` as (raw jobId, score) in stored order; None when it is not a list of
    entries with an id and a finite numeric score (an unreadable list)."""
    if not isinstance(raw, list):
        return None
    items: list[tuple[Any, float]] = []
    for item in raw:
        if not isinstance(item, dict):
            return None
        other, score = item.get("jobId"), item.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            return None
        if other is None or isinstance(other, (dict, list, bool)):
            return None
        items.append((other, float(score)))
    return items


def _explanation(item: dict[str, Any]) -> tuple[float, tuple[str, ...]]:
    cosine, match = item.get("cosine"), item.get("match")
    cosine = float(cosine) if isinstance(cosine, (int, float)) and not isinstance(cosine, bool) else 0.0
    codes = tuple(m for m in match if m in MATCH_CODES) if isinstance(match, list) else ()
    return cosine, codes


def read_stored_list(raw: Any) -> Neighbours | None:
    """A stored list as :class:`Neighbour` entries, or None when it is unreadable (it is
    then rewritten or cleared). Entries stored before explanations existed read as cosine
    0 with no match codes (so the next run rewrites them with their explanation)."""
    entries = stored_entries(raw)
    if entries is None:
        return None
    return tuple(Neighbour(to_key(other), score, *_explanation(item))
                 for (other, score), item in zip(entries, raw))


def read_job_list(doc: dict[str, Any]) -> JobList | None:
    """What the pipeline wrote on a job (list and duplicate group), None when unreadable."""
    items = read_stored_list(doc.get("similarJobs", []))
    group = doc.get("duplicateGroup")
    if items is None or isinstance(group, (dict, list, bool, float)):
        return None
    return JobList(items, None if group is None else to_key(group))
