"""Exact top-k inner-product search of every vector against all others.

Pure arrays in, arrays out (in the spirit of faiss ``contrib/exhaustive_search.py``):
numpy GEMM over row blocks sized from a memory budget, the running top-k kept in
faiss's C++ heap (``float_minheap_array_t.addn``), which avoids a full sort.
A row never matches itself: the self entry is masked by index, so duplicate
postings (other ids, identical vectors) remain valid neighbours.
"""

from __future__ import annotations

import logging
import time

import faiss
import numpy as np

log = logging.getLogger(__name__)


def block_rows_for(n: int, memory_budget_bytes: int) -> int:
    """Rows per score block so that one (rows × n) float32 block fits the budget."""
    return int(max(1, min(n, memory_budget_bytes // max(1, 4 * n))))


def exact_topk(
    vectors: np.ndarray, k: int, memory_budget_bytes: int = 256 << 20
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``vectors``, the ``k`` largest inner products with the *other* rows.

    Returns ``(scores, indices)``, each (n, k), sorted by descending score; slots with
    no neighbour (n - 1 < k) hold index -1 and score -inf.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = x.shape[0]
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    indices = np.full((n, k), -1, dtype=np.int64)
    if n == 0 or k == 0:
        return scores, indices
    rows = block_rows_for(n, memory_budget_bytes)
    started, last_log = time.perf_counter(), time.perf_counter()
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        block = x[r0:r1] @ x.T  # (b, n) GEMM
        block[np.arange(r1 - r0), np.arange(r0, r1)] = -np.inf  # self, by index
        d, i = scores[r0:r1], indices[r0:r1]
        heap = faiss.float_minheap_array_t()
        heap.k, heap.nh = k, r1 - r0
        heap.val, heap.ids = faiss.swig_ptr(d), faiss.swig_ptr(i)
        heap.heapify()
        heap.addn(n, faiss.swig_ptr(np.ascontiguousarray(block)), 0, 0, r1 - r0)
        heap.reorder()
        if time.perf_counter() - last_log > 10:
            last_log = time.perf_counter()
            log.info("exact search: %d/%d rows, %.1f s", r1, n, last_log - started)
    # heapify fills empty slots with -FLT_MAX: report them as -inf / -1
    empty = indices < 0
    scores[empty] = -np.inf
    return scores, indices
