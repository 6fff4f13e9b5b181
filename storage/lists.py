"""Stored ``similarJobs`` lists read back defensively (any field may hold any type)."""

from __future__ import annotations

import math
from typing import Any

from jobsim.repositories import Neighbours
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


def read_stored_list(raw: Any) -> Neighbours | None:
    """A stored list as (neighbour key, score) pairs, or None when it is unreadable."""
    entries = stored_entries(raw)
    return None if entries is None else tuple((to_key(other), score) for other, score in entries)
