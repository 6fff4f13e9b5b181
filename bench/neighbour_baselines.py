"""The previous ANN pass (faiss HNSW), kept only as a benchmark baseline.

Built as ``jobsim/ann.py`` built it before the IVF pass replaced it: ``IndexHNSWFlat``
(inner product, M 32, efConstruction 40), efSearch the smallest of a ladder whose recall@10
on a 500-row sample reaches 0.95, then every row searched for ``depth + 1`` candidates,
self dropped by index, candidates rescored canonically and ordered (score desc, index asc).
"""

from __future__ import annotations

import numpy as np

EF_LADDER = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def _search(index, x: np.ndarray, rows: np.ndarray, depth: int) -> np.ndarray:
    from jobsim.neighbours import order_rows, rescore

    out = np.full((len(rows), depth), -1, dtype=np.int64)
    for b0 in range(0, len(rows), 4096):
        r = rows[b0 : b0 + 4096]
        _, cand = index.search(np.ascontiguousarray(x[r]), depth + 1)
        cand = np.where(cand == r[:, None], -1, cand)  # self, by index
        scores = rescore(x[r], x, cand)
        order_rows(scores, cand)
        out[b0 : b0 + len(r)] = cand[:, :depth]
    return out


def hnsw_topk(x: np.ndarray, depth: int, truth: np.ndarray, target: float = 0.95) -> tuple[np.ndarray, int, float]:
    """(top-``depth`` ids of every row, efSearch chosen, recall@10 on the sample)."""
    import faiss

    from jobsim.ann import recall_at

    index = faiss.IndexHNSWFlat(x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    index.add(x)
    sample = np.sort(np.random.default_rng(1).choice(len(x), size=min(500, len(x)), replace=False))
    chosen, recall = EF_LADDER[-1], 0.0
    for ef in EF_LADDER:
        if ef < depth + 1:
            continue
        index.hnsw.efSearch = ef
        recall = recall_at(_search(index, x, sample, depth), truth[sample])
        if recall >= target:
            chosen = ef
            break
    index.hnsw.efSearch = chosen
    return _search(index, x, np.arange(len(x)), depth), chosen, recall
