"""A float32 matrix kept in pieces: the local snapshot's vectors.

Row ``i`` is row ``at[i]`` of piece ``piece[i]``. A run that re-reads a few vectors adds them
as one new piece and points their rows at it: the matrix is never copied to be updated (at
100k × 1536 that copy is 566 MB of fresh memory per run). Rows are copied once, when a run
gathers the ones it searches (:meth:`PiecedRows.take`), and a store writes only the pieces it
does not hold yet (:attr:`PiecedRows.names`), rewriting the matrix as one piece when dead rows
or pieces pile up (:meth:`PiecedRows.worth_compacting`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_PIECES = 16  # more, and a store writes the matrix as one piece again
MAX_DEAD = 0.25  # rows held in pieces but no longer pointed at, as a share of the rows


@dataclass(frozen=True)
class PiecedRows:
    """An (n, d) float32 matrix as rows of pieces; ``names`` says which pieces a store holds
    ("" = not stored yet)."""

    pieces: tuple[np.ndarray, ...]  # each (m, d) float32, C-contiguous (in memory or mapped from a file)
    piece: np.ndarray  # (n,) int32: the piece of each row
    at: np.ndarray  # (n,) int64: its row in that piece
    names: tuple[str, ...]  # one per piece

    @classmethod
    def of(cls, matrix: np.ndarray, name: str = "") -> PiecedRows:
        """A matrix as one piece."""
        n = len(matrix)
        return cls((matrix,), np.zeros(n, np.int32), np.arange(n, dtype=np.int64), (name,))

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.piece), int(self.pieces[0].shape[1])

    def __len__(self) -> int:
        return len(self.piece)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows``, as one contiguous float32 matrix (one gather from the piece most rows
        are in; the others' rows patched in)."""
        return np.ascontiguousarray(gather(list(self.pieces), self.piece[rows], self.at[rows]), dtype=np.float32)

    def dense(self) -> np.ndarray:
        """Every row, in order."""
        return self.take(np.arange(len(self), dtype=np.int64))

    def select(self, piece: np.ndarray, at: np.ndarray, extra: np.ndarray | None = None) -> PiecedRows:
        """Rows given as (piece, at) of these pieces, ``piece == len(self.pieces)`` meaning ``extra``;
        pieces no row points at are dropped."""
        pieces, names = list(self.pieces), list(self.names)
        if extra is not None:
            pieces.append(np.ascontiguousarray(extra, dtype=np.float32))
            names.append("")
        used = np.bincount(piece, minlength=len(pieces)) > 0 if len(piece) else np.zeros(len(pieces), bool)
        used[0] |= not used.any()  # keep one piece (its width) when no row is left
        renumber = np.cumsum(used, dtype=np.int32) - 1
        keep = np.flatnonzero(used)
        return PiecedRows(tuple(pieces[i] for i in keep), renumber[piece].astype(np.int32),
                          at.astype(np.int64, copy=False), tuple(names[i] for i in keep))

    def worth_compacting(self) -> bool:
        """Whether the pieces hold too many rows nobody points at, or are too many."""
        held = sum(len(p) for p in self.pieces)
        return len(self.pieces) > MAX_PIECES or held > (1 + MAX_DEAD) * len(self)


def gather(arrays: list[np.ndarray], src: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Row ``idx[i]`` of ``arrays[src[i]]`` for each i: one gather from the source most rows
    come from (copied once), the others' rows patched in."""
    counts = np.bincount(src, minlength=len(arrays))
    main = int(counts.argmax()) if len(src) else 0
    out = arrays[main][np.where(src == main, idx, 0)] if len(src) else arrays[main][:0]
    for s, array in enumerate(arrays):
        if s != main and counts[s]:
            out[src == s] = array[idx[src == s]]
    return out
