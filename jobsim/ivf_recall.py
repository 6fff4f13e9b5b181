"""The ANN tuning's simulation: each sample row's recall under every probe setting and keep.

Pure arrays in, arrays out. A sample row's search finds a candidate when the row probes
the candidate's list or the candidate probes the row's list (both sides of a block,
:mod:`jobsim.ivf_search`), each within its own depth (:mod:`jobsim.probe_depth`), and keeps
it when fewer than ``keep`` found candidates score higher in the search space; a true
neighbour kept stays in the final top-10 (the canonical rescoring cannot push it out).
"""

from __future__ import annotations

import numpy as np

from jobsim.ivf import Lists, gather

Above = list[tuple[np.ndarray, np.ndarray]]  # per sample row: positions scoring at least its lowest true neighbour,
# and their scores (what the recall simulation reads of the row, :func:`sample_recall`)


def probe_meets(probes: np.ndarray, home: np.ndarray, row: int, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``cand``: the rank of its list among ``row``'s probes, and the rank (≥ 1)
    at which it probes ``row``'s list (``probes.shape[1]``: never; self: never either)."""
    pmax = probes.shape[1]
    mine = home[cand][:, None] == probes[row][None, :]
    theirs = probes[cand, 1:] == home[row]
    rank_mine = np.where(mine.any(axis=1), mine.argmax(axis=1), pmax)
    rank_theirs = np.where(theirs.any(axis=1), theirs.argmax(axis=1) + 1, pmax)
    rank_mine[cand == row] = rank_theirs[cand == row] = pmax
    return rank_mine, rank_theirs


def sample_recall(
    y: np.ndarray, lists: Lists, probes: np.ndarray, sample: np.ndarray, truth: np.ndarray,
    keeps: tuple[int, ...], block: int = 64, rows: np.ndarray | None = None,
    above: Above | None = None, depths: np.ndarray | None = None,
) -> np.ndarray:
    """(len(keeps), settings, m): for every number of candidates kept and every probe
    setting (``depths``: each row's number of lists probed per setting, (n, settings); None:
    one count for all rows, 1 … ``probes.shape[1]``), each sample row's recall@10,
    simulating its search exactly. Only the candidates scoring at least its lowest true
    neighbour can rank above one: those are the few looked at. Scores: one GEMM per row
    block (against all of ``y``; with ``rows``, the rows are ``y[rows]``), or ``above`` (per
    sample row, the positions scoring at least its lowest true neighbour and their scores,
    as :func:`jobsim.ann_truth.sample_truth` found them in this space)."""
    pmax, home = probes.shape[1], lists.home
    if depths is None:
        depths = np.broadcast_to(np.arange(1, pmax + 1, dtype=np.uint8), (len(probes), pmax))
    number = None
    if rows is not None:  # column of y -> position in rows (-1: not a row of the index)
        number = np.full(len(y), -1, dtype=np.int64)
        number[rows] = np.arange(len(rows))
    out = np.ones((len(keeps), depths.shape[1], len(sample)))
    keep_axis = np.asarray(keeps)[:, None, None]
    for b0 in range(0, len(sample), block):
        g = gather(y, rows, sample[b0 : b0 + block]) @ y.T if above is None else None
        for i in range(b0, min(len(sample), b0 + block)):
            row, t = int(sample[i]), truth[i][truth[i] >= 0]
            if len(t) == 0:
                continue
            if g is None:
                cand, sc = above[i]
            else:
                scores = g[i - b0]
                cols = np.flatnonzero(scores >= scores[t if rows is None else rows[t]].min())
                cand = cols if number is None else number[cols]
                sc, cand = scores[cols[cand >= 0]], cand[cand >= 0]
            order = np.lexsort((cand, -sc))
            cand = cand[order]
            mine, theirs = probe_meets(probes, home, row, cand)
            met = (mine[None, :] < depths[row][:, None]) | (theirs[None, :] < depths[cand].T)  # (settings, cand)
            where = np.flatnonzero((cand[:, None] == t[None, :]).any(axis=1))  # (np.isin: 3x slower here)
            before = np.cumsum(met, axis=1)[:, where]  # (settings, hits): found candidates up to each hit
            found = met[:, where][None] & (before[None] <= keep_axis)  # (keeps, settings, hits)
            out[:, :, i] = found.sum(axis=2) / len(t)
    return out
