"""The ANN tuning's truth: the exact top-10 of a sample of rows, pruned in the search space.

Pure arrays in, arrays out. The tuning measures recall against each sample row's exact
top-10; a GEMM of the sample against the full vectors costs 2·m·n·d (500 rows at
100k × 1536: ≈ 0.9 s, a seventh of the pass). The search space holds every row's
projection ``y = x·B`` on an orthonormal basis, and ``x_r·x_c = y_r·y_c + e_r·e_c`` with ``e``
the residual off the basis, so ``|x_r·x_c − y_r·y_c| ≤ |e_r|·|e_c|`` (Cauchy–Schwarz) and
``|e|² = |x|² − |y|²``. A sample row's ``k``-th best canonical score among its ``PROBE`` best
rows by ``y`` score is a lower bound ``L`` of its true ``k``-th best; a row whose ``y`` score plus
``|e_r|·|e_c|`` and the float32 error stays below ``L`` cannot be in its top-``k``. The rest —
tens of rows for most sample rows — are rescored canonically (:func:`jobsim.rescoring.rescore`,
the scores of every path) and ordered (score desc, index asc): exact, not approximate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from jobsim.heaps import new_heaps, push_dense
from jobsim.ivf import gather
from jobsim.ivf_recall import Above
from jobsim.rescoring import UNIT_ROUNDOFF, rescore
from jobsim.segments import width_classes, within

PROBE = 64  # rows per sample row rescored first, for the lower bound (32: 25 % more rows rescored after it at
# text-fitted 100k x 1536; most sample rows then rescore 20-40 rows, a few with large residuals thousands)
HEAVY = 2048  # more rows than this left to rescore: the sample row goes to the GEMM (at text-fitted 100k x 1536,
# 10 of 500 rows held 4/5 of the rows to rescore)
BLOCK = 128  # sample rows per GEMM against the search space


def basis_slack(basis: np.ndarray) -> float:
    """A relative allowance (of ``|x_r|·|x_c|``) for what float32 leaves out of the bound: the
    basis's departure from orthonormality (the largest eigenvalue of BᵀB above 1, which
    makes ``I − BBᵀ`` indefinite) and the rounding of the norms and scores (4·d·u)."""
    d, r = basis.shape
    gram = basis.T.astype(np.float64) @ basis.astype(np.float64)
    excess = max(0.0, float(np.linalg.eigvalsh(gram)[-1]) - 1.0) if r else 0.0
    return excess + 4 * d * UNIT_ROUNDOFF


def residual_norms(squares: np.ndarray, y: np.ndarray, slack: float) -> np.ndarray:
    """Per row, a bound on ``|e|`` from its ``|x|²`` (``squares``) and its projection ``y``,
    raised by ``slack·|x|²`` under the root (rounding and non-orthogonality)."""
    left = squares - np.einsum("ij,ij->i", y, y, dtype=np.float64)
    return np.sqrt(np.maximum(left, 0.0) + slack * squares).astype(np.float32)


def _above(g: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions whose ``y`` score (row ``g``, self -inf) is at least the lowest of the
    row's true neighbours, and those scores: all the recall simulation reads of the row."""
    found = truth[truth >= 0]
    if len(found) == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    cols = np.flatnonzero(g >= g[found].min())
    return cols, g[cols]


def sample_truth(
    x: np.ndarray, rows: np.ndarray | None, y: np.ndarray, residual: np.ndarray, squares: np.ndarray, slack: float,
    sample: np.ndarray, exact: Callable[[np.ndarray], np.ndarray], k: int = 10,
) -> tuple[np.ndarray, Above]:
    """(len(sample), k) positions (of ``y``; row ``i`` of ``y`` is ``x[rows[i]]``, or ``x[i]``):
    each sample position's exact top-``k`` among all positions but itself, by canonical score
    (score desc, position asc; -1 = none), and per sample row :func:`_above` (the recall
    simulation's input, from the same scores: the sample is multiplied once). ``residual``
    and ``squares``: every position's :func:`residual_norms` and ``|x|²``. Positions the bound
    leaves more than ``HEAVY`` rows to rescore (a large residual) go to ``exact`` (positions →
    their top-``k``, by GEMM), together."""
    n, m = len(y), len(sample)
    sample = np.asarray(sample, dtype=np.int64)
    truth = np.full((m, k), -1, dtype=np.int64)
    above: Above = [(np.empty(0, np.int64), np.empty(0, np.float32))] * m
    if n < 2:
        return truth, above
    probe = min(PROBE, n - 1)
    norm_max, heavy = float(np.sqrt(squares.max())), []
    blocks = np.empty((min(BLOCK, m), n), dtype=np.float32)  # one for all: a fresh 41 MB block at 100k took
    # 22-71 ms against 18 for its GEMM (the page faults of fresh memory)
    for b0 in range(0, m, BLOCK):
        s = sample[b0 : b0 + BLOCK]
        g = _scores(y, s, blocks)
        queries = gather(x, rows, s)
        best_s, top = new_heaps(len(s), probe, probe, 0)  # the probe rows: best by y score
        push_dense(g, best_s, top, 0)
        first = rescore(queries, x, top if rows is None else rows[top])
        floor = (np.partition(first, probe - k, axis=1)[:, probe - k] if probe >= k
                 else np.full(len(s), -np.inf, np.float32))
        floor -= 2 * slack * np.sqrt(squares[s]) * norm_max  # what float32 may leave out of the bound
        light, cands = [], []
        for j in range(len(s)):
            cand = np.flatnonzero(g[j] + residual[s[j]] * residual >= floor[j])
            cand = cand[cand != s[j]]
            if len(cand) > HEAVY:
                heavy.append(b0 + j)
            else:
                light.append(j)
                cands.append(cand)
        for j, cand, sc in zip(light, cands, _rescore_ragged(queries[light], x, rows, cands)):
            best = np.lexsort((cand, -sc))[:k]
            truth[b0 + j, : len(best)] = cand[best]
            above[b0 + j] = _above(g[j], truth[b0 + j])
    if heavy:
        truth[heavy] = exact(sample[heavy])
        for h0 in range(0, len(heavy), BLOCK):  # a few rows again
            g = _scores(y, sample[heavy[h0 : h0 + BLOCK]], blocks)
            for j, i in enumerate(heavy[h0 : h0 + BLOCK]):
                above[i] = _above(g[j], truth[i])
    return truth, above


def _rescore_ragged(
    queries: np.ndarray, x: np.ndarray, rows: np.ndarray | None, cands: list[np.ndarray]
) -> list[np.ndarray]:
    """Canonical scores of each query against its own positions ``cands[i]`` (rows of ``x``,
    or ``x[rows]``): one padded :func:`jobsim.rescoring.rescore` per width class, not one
    call per query (500 calls took a third of the truth's time at text-fitted 100k x 512)."""
    counts = np.array([len(c) for c in cands], dtype=np.int64)
    out = [np.empty(0, np.float32)] * len(cands)
    for group, width in width_classes(counts):
        idx = np.full((len(group), width), -1, dtype=np.int64)
        flat = np.concatenate([cands[i] for i in group.tolist()])
        idx[np.repeat(np.arange(len(group)), counts[group]), within(counts[group])] = (
            flat if rows is None else rows[flat])
        scores = rescore(queries[group], x, idx)
        for r, i in enumerate(group.tolist()):
            out[i] = scores[r, : counts[i]]
    return out


def _scores(y: np.ndarray, s: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """The positions ``s`` against every position in the search space, self -inf (in the
    first rows of ``blocks``)."""
    g = np.matmul(y[s], y.T, out=blocks[: len(s)])
    g[np.arange(len(s)), s] = -np.inf
    return g
