"""The seed's blended score, vectorised over a whole candidate matrix.

score = w·cosine + (1-w)·bonus, bonus = category (+0.4) + experience (+0.3 same,
+0.15 adjacent) + location (+0.3 same city, +0.15 remote candidate); scores below
the threshold are dropped; the best ``k`` are kept, rounded to 2 decimals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CATEGORY_BONUS = 0.4
LEVEL_SAME, LEVEL_ADJACENT = 0.3, 0.15
CITY_SAME, REMOTE = 0.3, 0.15


@dataclass(frozen=True)
class Context:
    """Per-row context as integer codes (-1 = unknown) and flags, parallel to the vectors."""

    category: np.ndarray  # (n,) int32
    level: np.ndarray  # (n,) int8/int32, ordinal of EXPERIENCE_LEVELS
    city: np.ndarray  # (n,) int32
    remote: np.ndarray  # (n,) bool


# Which bonus applied, as bits (explanations of a list entry: jobsim.repositories.MATCH_CODES).
MATCH_BITS = {"category": 1, "level": 2, "adjacentLevel": 4, "city": 8, "remote": 16}


def _bonus_of_bits(bits: int) -> float:
    """The bonus of a bit set, summed in the order the bonuses are listed."""
    on = [bool(bits & bit) for bit in MATCH_BITS.values()]
    return (CATEGORY_BONUS * on[0] + LEVEL_SAME * on[1] + LEVEL_ADJACENT * on[2]
            + CITY_SAME * on[3] + REMOTE * on[4])


BONUS_OF_BITS = np.array([_bonus_of_bits(bits) for bits in range(32)], dtype=np.float32)


def pair_bonus(ctx: Context, subjects: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bonus in [0, 1] of each (subject, candidate) pair and the bits of what applied.

    ``subjects`` (n,) and ``cand`` (n, c) index the rows of ``ctx``; cand -1 = none (bonus 0).
    The bits are computed as bytes and the bonus looked up by them (:data:`BONUS_OF_BITS`)."""
    q = np.asarray(subjects)[:, None]
    c = np.where(cand < 0, 0, cand)
    bits = ((ctx.category[q] == ctx.category[c]) & (ctx.category[q] >= 0)).view(np.uint8)
    lq, lc = ctx.level[q].astype(np.int16), ctx.level[c].astype(np.int16)
    known = (lq >= 0) & (lc >= 0)
    bits |= (known & (lq == lc)).view(np.uint8) << 1
    bits |= (known & (np.abs(lq - lc) == 1)).view(np.uint8) << 2
    same_city = (ctx.city[q] == ctx.city[c]) & (ctx.city[q] >= 0)
    bits |= same_city.view(np.uint8) << 3
    bits |= (~same_city & ctx.remote[c]).view(np.uint8) << 4
    bits[cand < 0] = 0
    return BONUS_OF_BITS[bits], bits


def context_bonus(ctx: Context, cand: np.ndarray) -> np.ndarray:
    """Bonus in [0, 1] for each (row, candidate) pair; ``cand`` is (n, c), -1 = none."""
    return pair_bonus(ctx, np.arange(cand.shape[0]), cand)[0]


def match_codes(bits: int) -> tuple[str, ...]:
    """The codes of a bonus bit set, in MATCH_BITS order."""
    return tuple(code for code, bit in MATCH_BITS.items() if bits & bit)


def rerank(
    cosine: np.ndarray,
    cand: np.ndarray,
    ctx: Context,
    k: int,
    cosine_weight: float = 0.9,
    min_score: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend cosine with the context bonus, drop weak pairs, keep the best ``k`` per row.

    ``cosine``/``cand`` are (n, c) candidates (cand -1 = none). Returns ``(scores, idx)``
    of shape (n, k), scores rounded to 2 decimals in [0, 1], sorted descending
    (ties by candidate index); empty slots hold idx -1 and score NaN.
    """
    blended = cosine_weight * np.clip(cosine, 0.0, 1.0) + (1 - cosine_weight) * context_bonus(ctx, cand)
    blended = np.where((cand < 0) | (blended < min_score), -np.inf, blended)
    # sort by descending blended score, ties broken by candidate index (deterministic)
    order = np.lexsort((cand, -blended), axis=1)[:, :k]
    top = np.take_along_axis(blended, order, axis=1)
    idx = np.where(np.isfinite(top), np.take_along_axis(cand, order, axis=1), -1)
    scores = np.where(idx >= 0, np.round(np.clip(top, 0.0, 1.0), 2), np.nan)
    if scores.shape[1] < k:  # fewer candidates than k: pad
        pad = k - scores.shape[1]
        scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=np.nan)
        idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
    return scores.astype(np.float32), idx


def encode(values: list[str | None] | np.ndarray) -> np.ndarray:
    """Integer codes for a column of labels; None/empty → -1."""
    codes: dict[str, int] = {}
    return np.array(
        [codes.setdefault(v, len(codes)) if v else -1 for v in values], dtype=np.int32
    )
