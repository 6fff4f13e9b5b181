"""Approximate all-pairs top-k with a faiss index, tuned each run to a recall target.

Pure arrays in, arrays out. The index (HNSW, IVF-Flat or IVF-SQ8, optionally on
PCA-reduced vectors) is built over all rows; its search parameter (``efSearch`` or
``nprobe``) is raised step by step until recall@10 on a random sample of rows, measured
against the exact search of those rows, reaches the target; then every row is searched
with that parameter. Candidates are rescored with exact full-dimension inner products,
so scores are true cosines and only *which* neighbours were found is approximate.
Self is removed by index (duplicates stay), as in the exact path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import faiss
import numpy as np

from jobsim.neighbours import PROGRESS_EVERY_S, _order_rows, topk_of_rows

log = logging.getLogger(__name__)

HNSW_EF_LADDER = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
IVF_NPROBE_LADDER = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512, 1024)


@dataclass
class AnnReport:
    """What the ANN pass did: index, chosen parameter and the recall measured this run."""

    index: str
    param: str
    value: int
    recall_at_10: float
    recall_sample: int
    pca_dims: int
    build_s: float
    tune_s: float
    search_s: float
    tried: dict[int, float] = field(default_factory=dict)


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean |found[:k] ∩ truth[:k]| / |truth[:k]| over rows (ignoring empty truth slots)."""
    hits = total = 0
    for f, t in zip(found[:, :k], truth[:, :k]):
        t = t[t >= 0]
        hits += len(np.intersect1d(f[f >= 0], t))
        total += len(t)
    return hits / total if total else 1.0


def _pca(x: np.ndarray, dims: int, rng: np.random.Generator, sample: int = 20_000) -> np.ndarray:
    """(d, dims) projection on the top principal directions of a row sample (numpy BLAS)."""
    rows = x[rng.choice(len(x), size=min(sample, len(x)), replace=False)]
    centred = rows - rows.mean(axis=0)
    _, vecs = np.linalg.eigh(centred.T @ centred)
    return np.ascontiguousarray(vecs[:, ::-1][:, :dims], dtype=np.float32)


def _build(kind: str, xs: np.ndarray, nlist: int, hnsw_m: int, ef_construction: int,
           rng: np.random.Generator) -> faiss.Index:
    d = xs.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
    else:
        quantizer = faiss.IndexFlatIP(d)
        if kind == "ivf_flat":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:  # ivf_sq8
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        train = xs[rng.choice(len(xs), size=min(len(xs), 64 * nlist), replace=False)]
        index.train(np.ascontiguousarray(train))
    index.add(xs)
    return index


def _set_param(index: faiss.Index, kind: str, value: int) -> None:
    if kind == "hnsw":
        index.hnsw.efSearch = int(value)
    else:
        index.nprobe = int(value)


def _search(index: faiss.Index, xs: np.ndarray, x: np.ndarray, rows: np.ndarray, k: int,
            fetch: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """ANN candidates of ``rows`` (self dropped by index), rescored exactly, top ``k``."""
    out_s = np.full((len(rows), k), -np.inf, dtype=np.float32)
    out_i = np.full((len(rows), k), -1, dtype=np.int64)
    step = max(1, min(4096, budget // max(1, 4 * fetch * x.shape[1])))
    started = last_log = time.perf_counter()
    for b0 in range(0, len(rows), step):
        r = rows[b0 : b0 + step]
        _, cand = index.search(np.ascontiguousarray(xs[r]), fetch)
        cand = np.where(cand == r[:, None], -1, cand)  # self, by index
        safe = np.where(cand < 0, 0, cand)
        cos = np.einsum("bd,bkd->bk", x[r], x[safe], optimize=False).astype(np.float32)
        cos = np.where(cand < 0, -np.inf, cos).astype(np.float32)
        _order_rows(cos, cand)
        out_s[b0 : b0 + len(r)], out_i[b0 : b0 + len(r)] = cos[:, :k], cand[:, :k]
        if time.perf_counter() - last_log > PROGRESS_EVERY_S:
            last_log = time.perf_counter()
            log.info("ann search: %d/%d rows, %.1f s", b0 + len(r), len(rows), last_log - started)
    return out_s, out_i


def ann_topk(
    vectors: np.ndarray,
    k: int,
    *,
    kind: str = "hnsw",
    recall_target: float = 0.95,
    recall_sample: int = 500,
    hnsw_m: int = 32,
    ef_construction: int = 40,
    nlist: int = 0,
    pca_dims: int = 0,
    memory_budget_bytes: int = 256 << 20,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, AnnReport]:
    """Approximate :func:`jobsim.neighbours.exact_topk` (same shapes, order and padding)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    use_pca = 0 < pca_dims < d
    xs = np.ascontiguousarray(x @ _pca(x, pca_dims, rng)) if use_pca else x
    nl = nlist or int(max(1, min(n // 39, 4 * np.sqrt(n))))
    index = _build(kind, xs, nl, hnsw_m, ef_construction, rng)
    build_s = time.perf_counter() - started

    started = time.perf_counter()
    sample = np.sort(rng.choice(n, size=min(recall_sample, n), replace=False))
    _, truth = topk_of_rows(x, sample, 10, memory_budget_bytes)
    ladder = HNSW_EF_LADDER if kind == "hnsw" else tuple(v for v in IVF_NPROBE_LADDER if v <= nl) or (nl,)
    fetch = min(n, k + 1)
    tried: dict[int, float] = {}
    chosen = ladder[-1]
    for value in ladder:
        if kind == "hnsw" and value < fetch:
            continue
        _set_param(index, kind, value)
        _, found = _search(index, xs, x, sample, 10, fetch, memory_budget_bytes)
        tried[value] = recall_at(found, truth)
        if tried[value] >= recall_target:
            chosen = value
            break
    _set_param(index, kind, chosen)
    recall = tried.get(chosen, 0.0)
    if recall < recall_target:
        log.warning("ann %s: recall@10 %.3f below target %.2f at %s=%d", kind, recall,
                    recall_target, "efSearch" if kind == "hnsw" else "nprobe", chosen)
    tune_s = time.perf_counter() - started

    started = time.perf_counter()
    scores, indices = _search(index, xs, x, np.arange(n), k, fetch, memory_budget_bytes)
    search_s = time.perf_counter() - started
    report = AnnReport(
        index=kind, param="efSearch" if kind == "hnsw" else "nprobe", value=int(chosen),
        recall_at_10=round(float(recall), 4), recall_sample=len(sample),
        pca_dims=pca_dims if use_pca else 0, build_s=round(build_s, 3), tune_s=round(tune_s, 3),
        search_s=round(search_s, 3), tried={int(a): round(b, 4) for a, b in tried.items()},
    )
    log.info("ann %s: %s=%d recall@10=%.3f (sample %d), build %.1f s, tune %.1f s, search %.1f s",
             kind, report.param, chosen, recall, len(sample), build_s, tune_s, search_s)
    return scores, indices, report

