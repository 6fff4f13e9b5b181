"""Vector sanity for every embedder: reject degenerate vectors, normalise the rest once.

:func:`sanitize` checks each row not already in ``errors``; it becomes an error (not
transient: the provider answered, and asking again would likely give the same vector) when

- it has a NaN or an infinity;
- it is all zeros;
- its L2 norm, computed in float64 (so 3e38 entries do not overflow), is outside
  [:data:`MIN_NORM`, :data:`MAX_NORM`] = [1e-6, 1e6]. Real embedding models return unit
  vectors (OpenAI, our local embedder, MiniLM with normalisation) or norms of order 1–100
  (unnormalised sentence encoders); a norm below 1e-6 is noise whose direction means
  nothing, one above 1e6 is a broken provider (3e38 entries filled whole neighbour lists
  before this check existed).

Every good row is L2-normalised once (float32, C-contiguous), so cosine = dot product
downstream. Rows already in ``errors`` keep their reason, and their vector is zeroed.
Vectors of the wrong dimension never get here: the decoders reject them per row, and a
matrix of the wrong width is a configuration error (``EmbeddingError``).

Pure: returns a new result, never modifies its argument.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter

import numpy as np

from jobsim.embedders import EmbeddingResult
from jobsim.errors import EmbeddingError

log = logging.getLogger(__name__)

MIN_NORM = 1e-6
MAX_NORM = 1e6
_BLOCK_ROWS = 2048  # rows per float64 block


def sanitize(result: EmbeddingResult, dimensions: int) -> EmbeddingResult:
    """``result`` with degenerate vectors moved to ``errors`` and the others normalised."""
    vectors = np.asarray(result.vectors)
    if vectors.ndim != 2 or vectors.shape[1] != dimensions:
        raise EmbeddingError(f"embedder returned vectors of shape {vectors.shape}, expected "
                             f"(n, {dimensions}): check JOBSIM_EMBEDDING__DIMENSIONS / MODEL")
    errors = dict(result.errors)
    good = np.ones(len(vectors), dtype=bool)
    good[[r for r in errors if 0 <= r < len(vectors)]] = False
    finite, norms = _row_norms(vectors)
    rejected, kinds = _rejections(finite, norms, good)
    if rejected:
        errors.update(rejected)
        good[list(rejected)] = False
        log.warning("%d of %d vectors rejected (%s)", len(rejected), len(vectors),
                    ", ".join(f"{kind}: {n}" for kind, n in kinds.items()))
    out = _normalised(vectors, norms, good)
    return dataclasses.replace(result, vectors=out, errors=errors, transient=set(result.transient))


def _row_norms(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: all values finite, and the L2 norm of the finite rows (float64, else 0).

    In blocks of rows, so the float64 copy stays small (a 16,384 × 1,536 batch would
    otherwise take 200 MB twice)."""
    finite = np.empty(len(vectors), dtype=bool)
    norms = np.zeros(len(vectors), dtype=np.float64)
    for start in range(0, len(vectors), _BLOCK_ROWS):
        block = vectors[start : start + _BLOCK_ROWS].astype(np.float64)
        ok = np.isfinite(block).all(axis=1)
        finite[start : start + len(block)] = ok
        norms[start : start + len(block)][ok] = np.linalg.norm(block[ok], axis=1)
    return finite, norms


def _normalised(vectors: np.ndarray, norms: np.ndarray, good: np.ndarray) -> np.ndarray:
    """float32 C-contiguous copy: ``good`` rows divided by their norm (in float64), others 0."""
    out = np.zeros(vectors.shape, dtype=np.float32)
    for start in range(0, len(vectors), _BLOCK_ROWS):
        rows = good[start : start + _BLOCK_ROWS]
        if rows.any():
            block = vectors[start : start + _BLOCK_ROWS][rows].astype(np.float64)
            out[start : start + len(rows)][rows] = block / norms[start : start + len(rows)][rows, None]
    return out


def _rejections(finite: np.ndarray, norms: np.ndarray,
                checked: np.ndarray) -> tuple[dict[int, str], Counter[str]]:
    """Reasons for the ``checked`` rows that cannot be used, and a count of them by kind."""
    bad = checked & (~finite | (norms < MIN_NORM) | (norms > MAX_NORM))
    reasons: dict[int, str] = {}
    kinds: Counter[str] = Counter()
    for row in np.flatnonzero(bad).tolist():
        if not finite[row]:
            kind, reasons[row] = "non-finite", "invalid vector: NaN or infinite values"
        elif norms[row] == 0.0:
            kind, reasons[row] = "zero", "invalid vector: all zeros"
        elif norms[row] < MIN_NORM:
            kind = "tiny"
            reasons[row] = f"invalid vector: norm {norms[row]:.3g} below {MIN_NORM:g}, not normalisable"
        else:
            kind = "huge"
            reasons[row] = f"invalid vector: norm {norms[row]:.3g} above {MAX_NORM:g}, absurd"
        kinds[kind] += 1
    return reasons, kinds
