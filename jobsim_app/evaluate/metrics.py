"""Metrics over neighbour lists: precision@k (duplicates counted or excluded), the share of
duplicate entries, the exact random baseline, per-category precision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def codes_of(values: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Integer code of each value (first-seen order) and the distinct values."""
    index: dict[Any, int] = {}
    codes = np.array([index.setdefault(v, len(index)) for v in values], dtype=np.int64)
    return codes, list(index)


def overlap_matrix(sets: Sequence[frozenset[str]]) -> np.ndarray:
    """(u, u) bool: distinct label sets ``a`` and ``b`` share at least one base category."""
    return np.array([[bool(a & b) for b in sets] for a in sets], dtype=bool)


def hits_at_k(neighbours: np.ndarray, codes: np.ndarray, match: np.ndarray, k: int) -> np.ndarray:
    """(n,) number of neighbours ``j`` among the first ``k`` with ``match[code_i, code_j]``.

    ``neighbours`` is (n, ≥k) row indices, -1 = no neighbour (a miss).
    """
    nb = neighbours[:, :k]
    valid = nb >= 0
    return (match[codes[:, None], codes[np.where(valid, nb, 0)]] & valid).sum(axis=1)


def precision_at_k(neighbours: np.ndarray, codes: np.ndarray, match: np.ndarray, k: int) -> float:
    """Mean over rows of (neighbours among the first ``k`` with a matching label) / k."""
    if not len(neighbours):
        return float("nan")
    return float(hits_at_k(neighbours, codes, match, k).mean() / k)


def exclude_duplicates(neighbours: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` entries of each ranked row once duplicates are taken out.

    Dropped: members of the subject's own duplicate group, and every later member of a
    group already listed (the first, best-ranked one stays). Deeper entries refill the
    list; -1 pads it when the ranking runs out.
    """
    out = np.full((len(neighbours), k), -1, dtype=np.int64)
    for i, row in enumerate(neighbours):
        seen = {int(groups[i])}
        filled = 0
        for j in row:
            if j < 0:
                break
            g = int(groups[j])
            if g in seen:
                continue
            seen.add(g)
            out[i, filled] = j
            filled += 1
            if filled == k:
                break
    return out


def duplicate_shares(neighbours: np.ndarray, groups: np.ndarray, k: int) -> tuple[float, float]:
    """Shares of the first-``k`` list entries that duplicate the subject / an earlier entry."""
    nb = neighbours[:, :k]
    valid = nb >= 0
    total = int(valid.sum())
    if total == 0:
        return 0.0, 0.0
    g = np.where(valid, groups[np.where(valid, nb, 0)], -1)
    of_subject = valid & (g == groups[:, None])
    of_other = np.zeros_like(valid)
    for c in range(1, nb.shape[1]):  # same group as any earlier entry (that is not the subject's)
        of_other[:, c] = valid[:, c] & ~of_subject[:, c] & (g[:, :c] == g[:, c : c + 1]).any(axis=1)
    return float(of_subject.sum() / total), float(of_other.sum() / total)


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


def per_category(hits: np.ndarray, label_sets: Sequence[frozenset[str]], k: int) -> dict[str, float]:
    """Mean precision@k of the rows holding each base category (a multi-label row counts for each)."""
    rows: dict[str, list[int]] = {}
    for i, labels in enumerate(label_sets):
        for label in labels:
            rows.setdefault(label, []).append(i)
    return {label: float(hits[idx].mean() / k) for label, idx in rows.items()}
