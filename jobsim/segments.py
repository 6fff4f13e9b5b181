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
