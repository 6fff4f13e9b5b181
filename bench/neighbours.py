"""Neighbour stage benchmark: our pass vs the GEMM limit, faiss Flat, the seed's loop, ANN, incremental.

    .venv/bin/python bench/neighbours.py            # N = 10k and 100k, d = 1536 and 512 (~8 min)
    .venv/bin/python bench/neighbours.py --quick    # N = 10k only (~1 min)

Every measurement runs in its own child process (so its peak RSS is its own) on the same
synthetic embeddings: unit vectors around 300 topic centres with most of their spread in a
96-dimensional subspace, like real text embeddings (a decaying spectrum), seeded.

Per (N, d) it prints:
- **ours**: ``compute_neighbours`` full pass (exact top-66 cosine candidates per job with
  numpy GEMM on the upper triangle of blocks + faiss heaps, seed rerank, lists) — search
  time and whole pass;
- **GEMM limit**: ``2·N²·d / peak`` with the sgemm peak measured at the start of the run
  (numpy, 4096² float32), and our search time over it;
- **faiss Flat**: ``IndexFlatIP`` search of every row for its top-67, faiss-cpu in its default
  environment (its bundled OpenBLAS; ``OPENBLAS_CORETYPE`` as found), on a row sample
  extrapolated to N at 100k;
- **row blocks** (the previous implementation: GEMM of row blocks against all, no symmetry),
  at 10k only;
- **seed loop**: per job, cosine against ≤5,000 same-category candidates (one numpy
  matrix-vector product per job — generous to the seed), bonus and sort in Python; a sample
  of jobs, extrapolated;
- **ANN**: ``ann_topk`` (HNSW; and HNSW on 256 PCA dims at d=1536) tuned to recall@10 ≥ 0.95
  on a 500-row sample, plus recall measured on 1,000 other rows against exact;
- **incremental**: 1% churn (0.5% edited vectors, 0.25% new, 0.25% expired) from the saved
  state vs the full pass; at 10k the lists are also compared to a new full pass.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

M_DEPTH = 66  # candidates 50 + margin 16: what the pass keeps per job


def data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Unit vectors: topic centre + spread in a 96-dim latent subspace (decaying) + small noise."""
    rng = np.random.default_rng(seed)
    topics, latent = 300, 96
    centres = np.random.default_rng(100).standard_normal((topics, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    basis = np.random.default_rng(101).standard_normal((latent, d)).astype(np.float32)
    scale = np.linspace(1.6, 0.2, latent, dtype=np.float32)
    x = np.empty((n, d), dtype=np.float32)
    for b0 in range(0, n, 10_000):
        m = min(10_000, n - b0)
        spread = (rng.standard_normal((m, latent)).astype(np.float32) * scale) @ basis
        spread /= np.linalg.norm(spread, axis=1, keepdims=True)
        noise = rng.standard_normal((m, d)).astype(np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        x[b0 : b0 + m] = centres[rng.integers(0, topics, m)] + 0.9 * spread + 0.3 * noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def context(n: int, seed: int = 1):
    from jobsim.scoring import Context

    rng = np.random.default_rng(seed)
    return Context(category=rng.integers(0, 12, n).astype(np.int32), level=rng.integers(-1, 6, n).astype(np.int8),
                   city=rng.integers(-1, 15, n).astype(np.int32), remote=rng.random(n) < 0.2)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- child steps: each returns a dict -------------------------------------------------
def step_peak(_: dict) -> dict:
    a = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    best = min(_timed(lambda: a @ a) for _ in range(4))
    return {"gflops": 2 * 4096**3 / best / 1e9}


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def step_ours(p: dict) -> dict:
    from jobsim.settings import NeighbourSettings
    from jobsim.similarity import ActiveSet, compute_neighbours

    n, d = p["n"], p["d"]
    x = data(n, d)
    ids = np.array([f"j{i:07d}" for i in range(n)], dtype=object)
    cfg = NeighbourSettings(exact_max_jobs=10**9)
    base_rss = rss_mb()
    t = time.perf_counter()
    full = compute_neighbours(ActiveSet(ids=ids, vectors=x, context=context(n)), cfg)
    wall = time.perf_counter() - t
    out = {"search_s": full.stats.search_seconds, "pass_s": wall, "rss_mb": rss_mb(), "data_mb": x.nbytes / 2**20,
           "rss_before_mb": base_rss}
    # incremental: 1% churn
    rng = np.random.default_rng(7)
    edit = rng.choice(n, size=n // 200, replace=False)
    y = x.copy()
    y[edit] = data(len(edit), d, seed=11)
    keep = np.ones(n, dtype=bool)
    keep[rng.choice(np.setdiff1d(np.arange(n), edit), size=n // 400, replace=False)] = False
    new = data(n // 400, d, seed=12)
    ids2 = np.concatenate([ids[keep], np.array([f"k{i:07d}" for i in range(len(new))], dtype=object)])
    y2 = np.ascontiguousarray(np.concatenate([y[keep], new]))
    ctx = context(len(ids2))
    t = time.perf_counter()
    inc = compute_neighbours(ActiveSet(ids=ids2, vectors=y2, context=ctx), cfg, previous=full.state)
    out["incremental_s"] = time.perf_counter() - t
    out["incremental"] = {k: getattr(inc.stats, k) for k in ("mode", "added", "removed", "recomputed", "churn")}
    if p.get("verify"):
        ref = compute_neighbours(ActiveSet(ids=ids2, vectors=y2, context=ctx), cfg.model_copy(update={"incremental": False}))
        out["incremental_full_s"] = ref.stats.seconds
        same = sum(inc.lists[k] == ref.lists[k] for k in ref.lists)
        out["incremental_equal_lists"] = f"{same}/{len(ref.lists)}"
    return out


def step_rowblocks(p: dict) -> dict:
    from jobsim.neighbours import topk_of_rows

    x = data(p["n"], p["d"])
    t = time.perf_counter()
    topk_of_rows(x, np.arange(len(x)), M_DEPTH, 512 << 20)
    return {"search_s": time.perf_counter() - t, "rss_mb": rss_mb()}


def step_faiss(p: dict) -> dict:
    import faiss

    x = data(p["n"], p["d"])
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    q = min(len(x), p.get("sample", len(x)))
    t = time.perf_counter()
    index.search(x[:q], M_DEPTH + 1)
    dt = time.perf_counter() - t
    return {"search_s": dt * len(x) / q, "sample": q, "rss_mb": rss_mb(),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)")}


def step_seed(p: dict) -> dict:
    """The seed's per-job loop, as generous as Python allows: ≤5,000 same-category candidates."""
    from jobsim.scoring import CATEGORY_BONUS

    n, d = p["n"], p["d"]
    x = data(n, d)
    ctx = context(n)
    by_cat: dict[int, np.ndarray] = {c: np.flatnonzero(ctx.category == c)[:5000] for c in np.unique(ctx.category)}
    sample = np.random.default_rng(3).choice(n, size=p["sample"], replace=False)
    t = time.perf_counter()
    for q in sample:
        cands = by_cat[int(ctx.category[q])]
        cands = cands[cands != q]
        cos = x[cands] @ x[q]
        scored = []
        for c, s in zip(cands.tolist(), cos.tolist()):
            bonus = CATEGORY_BONUS
            lq, lc = int(ctx.level[q]), int(ctx.level[c])
            if lq >= 0 and lc >= 0:
                bonus += 0.3 if lq == lc else 0.15 if abs(lq - lc) == 1 else 0.0
            bonus += 0.3 if ctx.city[q] >= 0 and ctx.city[q] == ctx.city[c] else 0.15 if ctx.remote[c] else 0.0
            score = 0.9 * min(1.0, max(0.0, s)) + 0.1 * bonus
            if score >= 0.3:
                scored.append((score, c))
        scored.sort(reverse=True)
        scored[:10]
    dt = time.perf_counter() - t
    return {"search_s": dt * n / len(sample), "sample": len(sample)}


def step_ann(p: dict) -> dict:
    from jobsim.ann import ann_topk, recall_at
    from jobsim.neighbours import topk_of_rows

    x = data(p["n"], p["d"])
    t = time.perf_counter()
    _, idx, report = ann_topk(x, M_DEPTH, kind=p["kind"], pca_dims=p.get("pca", 0), recall_target=0.95,
                              recall_sample=500, memory_budget_bytes=512 << 20, seed=1)
    wall = time.perf_counter() - t
    check = np.random.default_rng(99).choice(len(x), size=1000, replace=False)
    _, truth = topk_of_rows(x, check, 10, 512 << 20)
    return {"search_s": wall, "recall_sample": report.recall_at_10, "recall_check": recall_at(idx[check], truth),
            "param": f"{report.param}={report.value}", "build_s": report.build_s, "tune_s": report.tune_s,
            "rss_mb": rss_mb()}


STEPS = {"peak": step_peak, "ours": step_ours, "rowblocks": step_rowblocks, "faiss": step_faiss,
         "seed": step_seed, "ann": step_ann}


def child(step: str, params: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", step, json.dumps(params)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"step {step} {params} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="N = 10k only")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(STEPS[args.child[0]](json.loads(args.child[1]))))
        return
    started = time.perf_counter()
    peak = child("peak", {})["gflops"]
    print(f"sgemm peak (numpy, 4096² float32): {peak:.0f} GFLOP/s; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}\n")
    configs = [(10_000, 1536), (10_000, 512)] + ([] if args.quick else [(100_000, 1536), (100_000, 512)])
    for n, d in configs:
        big = n >= 50_000
        ours = child("ours", {"n": n, "d": d, "verify": not big})
        limit = 2 * n * n * d / (peak * 1e9)
        faiss_r = child("faiss", {"n": n, "d": d, "sample": 2000 if big else n})
        seed = child("seed", {"n": n, "d": d, "sample": 300 if big else 500})
        anns = [("hnsw", 0)] + ([("hnsw", 256)] if d > 512 else [])
        ann_r = [(kind, pca, child("ann", {"n": n, "d": d, "kind": kind, "pca": pca})) for kind, pca in anns]
        rows = child("rowblocks", {"n": n, "d": d}) if not big else None
        s = ours["search_s"]
        print(f"## N={n:,} d={d}")
        print(f"  ours (exact, symmetric blocks)   search {s:7.1f} s, whole pass {ours['pass_s']:7.1f} s, "
              f"peak RSS {ours['rss_mb']:.0f} MB (vectors {ours['data_mb']:.0f} MB)")
        print(f"  GEMM limit 2·N²·d/peak           {limit:7.1f} s  → ours/limit = {s / limit:.2f}")
        print(f"  faiss IndexFlatIP (default env)  {faiss_r['search_s']:7.1f} s  ({faiss_r['search_s'] / s:.1f}× ours"
              f"{', extrapolated from ' + str(faiss_r['sample']) + ' rows' if faiss_r['sample'] < n else ''})")
        if rows:
            print(f"  row blocks, no symmetry (before) {rows['search_s']:7.1f} s  ({rows['search_s'] / s:.2f}× ours)")
        print(f"  seed per-job loop (≤5k same cat) {seed['search_s']:7.1f} s  ({seed['search_s'] / ours['pass_s']:.0f}× "
              f"our whole pass, extrapolated from {seed['sample']} jobs)")
        for kind, pca, r in ann_r:
            label = f"{kind}{' on PCA ' + str(pca) if pca else ''}"
            print(f"  ANN {label:<28} {r['search_s']:7.1f} s  ({s / r['search_s']:.2f}× speed-up vs exact search), "
                  f"{r['param']}, recall@10 {r['recall_sample']:.3f} (tuning sample) / {r['recall_check']:.3f} "
                  f"(1,000 other rows), build {r['build_s']:.1f} s, peak RSS {r['rss_mb']:.0f} MB")
        inc = ours["incremental"]
        eq = f", lists equal to a new full pass: {ours['incremental_equal_lists']}" if "incremental_equal_lists" in ours else ""
        print(f"  incremental at 1% churn          {ours['incremental_s']:7.1f} s  ({ours['pass_s'] / ours['incremental_s']:.0f}× "
              f"faster than the full pass; {inc['added']} added, {inc['removed']} removed, "
              f"{inc['recomputed']} lists recomputed{eq})\n", flush=True)
    print(f"benchmark wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
