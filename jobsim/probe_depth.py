"""How many of its best lists each row probes: the settings the ANN tuning chooses from.

Pure arrays in, arrays out. A setting gives every row a *depth* (its first lists probed,
best first, :func:`jobsim.ivf.probe_order`): either one count for all rows (``nprobe``
= 1 … pmax), or, per row, the lists whose centroid score is within a ``margin`` of its
best list's, at most ``cap``. A row near its list's centre needs few lists, one between
lists needs several: on the fitted text vectors at 100k × 512 a margin reaches the
recall target with about a third fewer scores than one count for all (BENCHMARKS.md
"Neighbours"); on other data one count wins, and the tuning (:mod:`jobsim.ann_tuning`)
simulates both families on its sample and takes the cheapest. Every row probes enough lists for a
full list of candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MARGIN_QUANTILES = np.linspace(0.01, 0.5, 24)  # the margins tried: these quantiles of the rows' score gaps
MARGIN_CAPS = (8, 16, 32)  # the most lists a row probes under a margin (a few rows far from every centroid
# would otherwise probe them all)
_BLOCK = 8192  # rows counted at a time (bounded temporaries)


@dataclass
class Depths:
    """Probe settings: column ``j`` of ``table`` is each row's number of lists probed under
    setting ``j``; ``nprobe[j]`` the most any row probes, ``margin[j]`` its margin (0: one
    count for all rows), ``pairs[j]`` the scores its search computes."""

    table: np.ndarray  # (n, settings) uint8
    nprobe: np.ndarray  # (settings,) int64
    margin: np.ndarray  # (settings,) float32
    pairs: np.ndarray  # (settings,) int64: Σ over rows of the sizes of the lists they probe

    def of(self, j: int) -> np.ndarray | None:
        """Each row's depth under setting ``j`` (None: every row probes ``nprobe[j]`` lists)."""
        column = self.table[:, j]
        return None if (column == self.nprobe[j]).all() else np.ascontiguousarray(column)


def probe_depths(probes: np.ndarray, sizes: np.ndarray, least: int, gaps: np.ndarray | None = None) -> Depths:
    """Each row's depth under every setting: one count for all rows, 1 … ``probes.shape[1]``,
    then, given the rows' ``gaps`` (best list's score less each probed list's, ascending
    along a row), each ``MARGIN_QUANTILES`` quantile of them as a margin under each of
    ``MARGIN_CAPS`` (1 + the later probes within the margin; ascending gaps: under a cap,
    the lesser of the two). Every row probes at least the lists that give it ``least``
    candidates besides itself (where its lists hold them): a row in a small list keeps a
    full list."""
    n, pmax = probes.shape
    margins = np.empty(0, np.float32)
    if gaps is not None and pmax > 1 and n:
        margins = np.unique(np.quantile(gaps[:: max(1, n // 4096), 1:], MARGIN_QUANTILES).astype(np.float32))
        margins = margins[margins > 0]
    caps, g = sorted({min(c, pmax) for c in MARGIN_CAPS} - {1}) if len(margins) else [], len(margins)
    table = np.empty((n, pmax + g * len(caps)), dtype=np.uint8)

    def block(b0: int) -> np.ndarray:
        """Rows ``b0 …`` of the table; Σ over them of each setting's scores."""
        cum = np.cumsum(sizes.astype(np.int32)[probes[b0 : b0 + _BLOCK]], axis=1, dtype=np.int32)
        m, out = len(cum), table[b0 : b0 + _BLOCK]
        need = np.minimum(1 + (cum <= least).sum(axis=1, dtype=np.uint8), pmax).astype(np.uint8)[:, None]
        np.maximum(np.arange(1, pmax + 1, dtype=np.uint8)[None, :], need, out=out[:, :pmax])  # lists for ``least``
        if g:
            first = np.searchsorted(margins, gaps[b0 : b0 + m, 1:])  # the first margin taking each later probe
            cells = (np.arange(m)[:, None] * (g + 1) + first).ravel()
            within = np.bincount(cells, minlength=m * (g + 1)).reshape(m, g + 1)[:, :g].cumsum(axis=1, dtype=np.uint8)
            within += 1
            for i, cap in enumerate(caps):
                np.maximum(np.minimum(within, cap), need, out=out[:, pmax + i * g : pmax + (i + 1) * g])
        at = (np.arange(0, m * pmax, pmax)[:, None] + out) - 1  # each row's and setting's last list probed
        return cum.ravel().take(at).sum(axis=0, dtype=np.int64)

    pairs = sum(map(block, range(0, n, _BLOCK)), np.zeros(table.shape[1], np.int64))  # (on 2 threads: no faster,
    # and their arenas kept 19 MB to the search's peak at text-fitted 100k x 512)
    return Depths(table=table, nprobe=table.max(axis=0).astype(np.int64) if n else np.zeros(table.shape[1], np.int64),
                  margin=np.r_[np.zeros(pmax), np.tile(margins, len(caps))].astype(np.float32), pairs=pairs)
