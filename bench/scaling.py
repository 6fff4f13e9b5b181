"""Scaling benchmark: the measured inputs of docs/scaling.md (per-worker throughput of the
sharded exact search, exact vs IVF / IVF-PQ, Dask overhead) and the projections built on them.

    .venv/bin/python bench/scaling.py                 # ≈ 9 min on 2 cores (+3.5 min to embed once)
    .venv/bin/python bench/scaling.py --quick         # small sizes, a few minutes (smoke test)
    .venv/bin/python bench/scaling.py --json out.json

Every measurement runs in its own child process (own peak RSS, own BLAS thread setting):

- **pair**: ``jobsim.shards.search_pair`` on one diagonal pair (a, a) and one cross pair (a, b)
  of shards of ``s`` rows, d = 512 / 1536, depth 66 (the pipeline's 50 candidates + 16 margin),
  with BLAS/OpenMP limited to 1 thread (``threadpoolctl``; a Dask worker with
  ``threads_per_worker=1`` runs like this) and with all threads; seconds, vector pairs scored
  per second, effective GFLOP/s (2·d FLOP per distinct pair: the symmetric half counts once),
  peak extra RSS of the task (peak reset through ``/proc/self/clear_refs`` just before it) next to
  the analytic size, and the merge cost of its result (``TopKMerger.add``). Baseline in the same
  child: the unsharded ``exact_topk`` of the same 2·s rows vs the three pair tasks + merges
  (results checked equal), and the sgemm peak (4096², numpy).
  Vectors: bench/neighbours.py's clustered synthetic unit vectors.
- **ann**: exact ``exact_topk`` (depth 66) vs faiss ``IVF{nlist},Flat`` and ``IVF{nlist},PQ{m}x8``
  (``index_factory``, inner product; m = 64 at d=512, 96 at d=1536; polysemous training off) on *embedded synthetic job text* (``generate_jobs`` →
  ``build_embedding_text`` → the offline hashed n-gram embedder, identical vectors collapsed):
  random Gaussian vectors are a worst case for ANN, text vectors are clustered. The embedding
  is cached (``--cache``); a first run spends ≈ 3 ms per text per dimension setting on it. nprobe is the
  smallest of a ladder reaching recall@10 ≥ 0.95 on 1,000 sampled rows; then all N rows are
  searched (67 candidates each, rescored exactly) and recall@10 is measured on all N against
  the exact lists. Recall counts a found neighbour as a hit when its exact score reaches the
  exact 10th score (ties between duplicate-like postings are not misses). For IVF-PQ the recall
  of its own PQ ranking (no rescoring) is shown too. Index bytes per vector from
  ``faiss.serialize_index``.
- **dask**: ``sharded_topk`` in process vs through ``distributed.LocalCluster(n_workers=2,
  threads_per_worker=1)`` (plain Dask; Prefect's per-task overhead is not in it).

Then it prints the projections of docs/scaling.md from these numbers (formulas in the doc).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEPTH = 66  # NeighbourSettings.candidates 50 + candidate_margin 16
BUDGET = 512 << 20  # NeighbourSettings.memory_budget_mb default
NPROBE_LADDER = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _neighbours_bench():
    spec = importlib.util.spec_from_file_location("bench_neighbours", ROOT / "bench" / "neighbours.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    return _neighbours_bench().data(n, d, seed)


# -- memory: peak RSS of one step ---------------------------------------------------------
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> int:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); returns the RSS in KB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_kb("VmRSS")


def _peak_extra_mb(rss0_kb: int) -> float:
    return (_status_kb("VmHWM") - rss0_kb) / 1024


def _threads(limit: int | None):
    """Limit BLAS and OpenMP (numpy's OpenBLAS, faiss's OpenMP) to ``limit`` threads."""
    import faiss
    from threadpoolctl import threadpool_info, threadpool_limits

    ctl = threadpool_limits(limits=limit) if limit else None
    if limit:
        faiss.omp_set_num_threads(limit)
    info = sorted({f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info()})
    return ctl, info


def _gemm_peak() -> float:
    a = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * 4096**3 / best / 1e9


# -- child steps ----------------------------------------------------------------------------
def step_pair(p: dict) -> dict:
    from jobsim.neighbours import exact_topk, square_block_for
    from jobsim.shards import TopKMerger, search_pair

    s, d = p["s"], p["d"]
    x = clustered(2 * s, d)
    _, info = _threads(p["threads"])
    block = square_block_for(10**7, BUDGET)  # the block a large run uses (4,096)
    a, b = (0, s), (s, 2 * s)
    out: dict = {"s": s, "d": d, "threads": p["threads"] or os.cpu_count(), "thread_pools": info, "block": block,
                 "gemm_peak_gflops": _gemm_peak()}
    merger = TopKMerger(2 * s, DEPTH)
    total = 0.0
    for kind, args in (("diag", (x[:s], a, None, None)), ("diag_b", (x[s:], b, None, None)),
                       ("cross", (x[:s], a, x[s:], b))):
        rss0 = _reset_peak()
        t = time.perf_counter()
        part = search_pair(*args, DEPTH, BUDGET, block)
        sec = time.perf_counter() - t
        peak = _peak_extra_mb(rss0)
        t = time.perf_counter()
        merger.add(part)
        merge = time.perf_counter() - t
        total += sec + merge
        if kind == "diag_b":
            continue
        pairs = s * (s - 1) / 2 if kind == "diag" else s * s
        out[kind] = {"seconds": sec, "pairs_per_s": pairs / sec, "gflops": 2 * d * pairs / sec / 1e9,
                     "peak_extra_mb": peak, "merge_s": merge}
    out["sharded_total_s"] = total
    if p.get("baseline"):
        t = time.perf_counter()
        ref_s, ref_i = exact_topk(x, DEPTH, BUDGET, block=block)
        out["unsharded_s"] = time.perf_counter() - t
        got_s, got_i = merger.result()
        out["equal_to_unsharded"] = bool(np.array_equal(got_i, ref_i) and np.array_equal(got_s, ref_s))
    return out


def _embedded(n: int, cache: Path) -> dict[int, np.ndarray]:
    """Embedded synthetic job texts at 512 and 1,536 dims (cached as .npy), identical vectors
    collapsed: ``generate_jobs`` → ``build_embedding_text`` → ``LocalEmbedder`` (hashed n-grams,
    model pinned to ``jobsim-hash-ngram-v2`` so the cache stays comparable)."""
    from jobsim.embedders.local import LocalEmbedder
    from jobsim.synthetic import generate_jobs
    from jobsim.text import build_embedding_text

    files = {d: cache / f"synthetic_v2_{n}_{d}.npy" for d in (512, 1536)}
    if all(f.exists() for f in files.values()):
        return {d: np.load(f) for d, f in files.items()}
    jobs = generate_jobs(n, seed=7)
    texts = [build_embedding_text(j["title"], j["description"], tags=j["tags"], requirements=j["requirements"])
             for j in jobs]
    vecs = {}
    for d in (512, 1536):
        emb = LocalEmbedder(model="jobsim-hash-ngram-v2", dimensions=d)
        vecs[d] = np.concatenate([emb.embed(texts[b0 : b0 + 5000]).vectors for b0 in range(0, n, 5000)])
    keep = np.ones(n, dtype=bool)
    seen: set[bytes] = set()
    for i, row in enumerate(vecs[1536]):
        key = row.tobytes()
        keep[i] = key not in seen and bool(row.any())
        seen.add(key)
    cache.mkdir(parents=True, exist_ok=True)
    for d, f in files.items():
        np.save(f, vecs[d][keep])
    return {d: vecs[d][keep] for d in (512, 1536)}


def step_embed(p: dict) -> dict:
    t = time.perf_counter()
    vecs = _embedded(p["n"], Path(p["cache"]))
    return {"rows": int(len(vecs[512])), "seconds": time.perf_counter() - t}


def _ivf_search(index, x: np.ndarray, rows: np.ndarray, fetch: int, k: int,
                timing: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` ids by the index's own ranking and after exact rescoring of ``fetch`` candidates
    (``timing["index_s"]`` accumulates the time inside ``index.search``)."""
    from jobsim.neighbours import order_rows

    raw_out = np.empty((len(rows), k), dtype=np.int64)
    res_out = np.empty((len(rows), k), dtype=np.int64)
    step = max(1, (256 << 20) // (4 * fetch * x.shape[1]))
    for b0 in range(0, len(rows), step):
        r = rows[b0 : b0 + step]
        t = time.perf_counter()
        _, cand = index.search(np.ascontiguousarray(x[r]), fetch)
        if timing is not None:
            timing["index_s"] = timing.get("index_s", 0.0) + time.perf_counter() - t
        cand = np.where(cand == r[:, None], -1, cand)  # self, by index
        order = np.argsort(cand < 0, axis=1, kind="stable")
        raw_out[b0 : b0 + len(r)] = np.take_along_axis(cand, order, axis=1)[:, :k]
        safe = np.where(cand < 0, 0, cand)
        cos = np.einsum("bd,bkd->bk", x[r], x[safe], optimize=False).astype(np.float32)
        cos = np.where(cand < 0, -np.inf, cos).astype(np.float32)
        order_rows(cos, cand)
        res_out[b0 : b0 + len(r)] = cand[:, :k]
    return raw_out, res_out


def _recall(x: np.ndarray, rows: np.ndarray, found: np.ndarray, truth_s: np.ndarray, k: int = 10) -> float:
    """Mean over rows of min(k, #found with exact score ≥ exact k-th score − 1e-5) / k."""
    safe = np.where(found < 0, 0, found)
    sc = np.einsum("bd,bkd->bk", x[rows], x[safe], optimize=False)
    hit = (found >= 0) & (sc >= truth_s[rows, k - 1 : k] - 1e-5)
    return float(np.minimum(hit.sum(axis=1), k).mean() / k)


def step_ann(p: dict) -> dict:
    import faiss

    from jobsim.neighbours import exact_topk

    x = np.ascontiguousarray(_embedded(p["n"], Path(p["cache"]))[p["d"]])
    n, d = x.shape
    _, info = _threads(None)
    out: dict = {"n": n, "d": d, "thread_pools": info, "rss_data_mb": x.nbytes / 2**20}
    t = time.perf_counter()
    truth_s, _ = exact_topk(x, DEPTH, BUDGET)
    out["exact_s"] = time.perf_counter() - t
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=min(1000, n), replace=False))
    nlist = int(max(1, min(n // 39, 4 * math.sqrt(n))))
    every = np.arange(n)
    pq_m = d // 8 if d <= 512 else d // 16  # bytes per code: 64 at d=512, 96 at d=1536
    for name, spec in (("ivf_flat", f"IVF{nlist},Flat"), ("ivf_pq", f"IVF{nlist},PQ{pq_m}x8")):
        rss0 = _reset_peak()
        t = time.perf_counter()
        index = faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
        if name == "ivf_pq":  # the factory turns on polysemous training (minutes, unused here)
            ivf = faiss.downcast_index(index)
            ivf.do_polysemous_training = False
            ivf.pq.cp.max_points_per_centroid, ivf.pq.cp.niter = 64, 15  # 16k training rows per sub-quantizer
        index.train(np.ascontiguousarray(x[rng.choice(n, size=min(n, 64 * nlist), replace=False)]))
        train_s = time.perf_counter() - t
        fixed_bytes = len(faiss.serialize_index(index))  # quantizer + codebooks, before any vector
        t = time.perf_counter()
        index.add(x)
        add_s = time.perf_counter() - t
        tried, chosen = {}, None
        t = time.perf_counter()
        for nprobe in (v for v in NPROBE_LADDER if v <= nlist):
            index.nprobe = nprobe
            _, res = _ivf_search(index, x, sample, DEPTH + 1, 10)
            tried[nprobe] = round(_recall(x, sample, res, truth_s), 4)
            chosen = nprobe
            if tried[nprobe] >= 0.95:
                break
        tune_s = time.perf_counter() - t
        index.nprobe = chosen
        timing: dict = {}
        t = time.perf_counter()
        raw, res = _ivf_search(index, x, every, DEPTH + 1, 10, timing)
        search_s = time.perf_counter() - t
        out[name] = {
            "spec": spec, "nlist": nlist, "nprobe": chosen, "tried": tried, "train_s": train_s, "add_s": add_s,
            "tune_s": tune_s, "search_s": search_s, "index_search_s": timing["index_s"], "recall_at_10": _recall(x, every, res, truth_s),
            "recall_at_10_index_ranking": _recall(x, every, raw, truth_s),
            "bytes_per_vector": (len(faiss.serialize_index(index)) - fixed_bytes) / n,
            "fixed_mb": fixed_bytes / 2**20, "peak_extra_mb": _peak_extra_mb(rss0),
        }
        del index
    return out


def step_dask(p: dict) -> dict:
    from distributed import Client, LocalCluster, as_completed
    from threadpoolctl import threadpool_info

    from jobsim.shards import sharded_topk

    n, d, s = p["n"], p["d"], p["s"]
    x = clustered(n, d, seed=3)
    budget = s * d * 4
    out: dict = {"n": n, "d": d, "shard_rows": s}
    t = time.perf_counter()
    ref = sharded_topk(x, DEPTH, budget, BUDGET)
    out["in_process_s"] = time.perf_counter() - t
    t = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0", processes=True)
    client = Client(cluster)
    out["cluster_start_s"] = time.perf_counter() - t
    workers = client.run(lambda: sorted({f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info()}))
    out["worker_thread_pools"] = sorted({w for v in workers.values() for w in v})

    def run(fn, jobs):
        futures = [client.submit(fn, *job, pure=False) for job in jobs]
        for future in as_completed(futures):
            yield future.result()

    t = time.perf_counter()
    got = sharded_topk(x, DEPTH, budget, BUDGET, run=run)
    out["dask_s"] = time.perf_counter() - t
    out["equal"] = bool(np.array_equal(got[1], ref[1]))
    client.close()
    cluster.close()
    return out


STEPS = {"pair": step_pair, "embed": step_embed, "ann": step_ann, "dask": step_dask}


def child(step: str, params: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", step, json.dumps(params)],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"child {step} {params} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- projections ------------------------------------------------------------------------------
def projections(pairs: list[dict], ann: list[dict]) -> dict:
    """docs/scaling.md's projected numbers from this run's measurements (formulas there)."""
    from jobsim.neighbours import square_block_for
    from jobsim.shards import min_shards_for, shard_bounds

    out: dict = {"exact": [], "ann": []}
    for d in sorted({p["d"] for p in pairs}):
        one = max((p for p in pairs if p["d"] == d and p["threads"] == 1), key=lambda p: p["s"])
        g = one["cross"]["gflops"]  # per 1-thread worker, cross pair of the largest shard measured
        merge_per_row = one["cross"]["merge_s"] / (2 * one["s"])
        for n in (1_000_000, 10_000_000):
            block = square_block_for(n, BUDGET)
            for k in (1, 8, 32, 128):
                # as plan_neighbours: shard_memory_mb = 256 (default), ≥ 2 pair tasks per worker
                bounds = shard_bounds(n, d, 256 << 20, block, min_shards=min_shards_for(k))
                s = bounds[0][1]
                npairs = len(bounds) * (len(bounds) + 1) // 2
                formula_h = n * n * d / (g * 1e9 * k) / 3600
                # whole waves of pair tasks (a cross pair = 2·s²·d FLOP; diagonal ones are half)
                waves_h = math.ceil(npairs / k) * 2 * s * s * d / (g * 1e9) / 3600
                merge_h = npairs * 2 * s * merge_per_row / 3600
                out["exact"].append({
                    "n": n, "d": d, "workers": k, "gflops_per_worker": round(g, 1), "compute_h": round(formula_h, 2),
                    "waves_h": round(waves_h, 2),
                    "driver_merge_h": round(merge_h, 2), "shard_rows": s, "shards": len(bounds), "pair_tasks": npairs,
                    "shipped_tb": round(npairs * 2 * s * d * 4 / 1e12, 2),
                    "worker_mb": round((2 * s * d * 4 + 10 * block * block + 2 * s * (DEPTH + 4) * 12 * 2) / 2**20),
                    "driver_gb": round((n * d * 4 + n * DEPTH * 12) / 1e9, 1),
                })
    for a in ann:
        for name in ("ivf_flat", "ivf_pq"):
            r = a[name]
            q_index = r["index_search_s"] / a["n"]  # inside index.search: grows with N
            q_rest = (r["search_s"] - r["index_search_s"]) / a["n"]  # rescoring 67 candidates: constant
            for n in (1_000_000, 10_000_000):
                grow = n / a["n"]
                out["ann"].append({
                    "n": n, "d": a["d"], "index": name, "nprobe": r["nprobe"],
                    "index_gb": round(r["bytes_per_vector"] * n / 1e9, 1),
                    # nprobe fixed while nlist = 4·√N: each query scans ∝ √N vectors
                    "search_h_sqrt": round((q_index * math.sqrt(grow) + q_rest) * n / 3600, 2),
                    # scanned fraction nprobe/nlist fixed: each query scans ∝ N vectors
                    "search_h_linear": round((q_index * grow + q_rest) * n / 3600, 2),
                })
    return out


# -- main ---------------------------------------------------------------------------------
def print_projections(proj: dict) -> None:
    """The projection tables, as docs/scaling.md quotes them."""
    print("\n# projected exact sharded all-pairs (compute = N²·d / (GFLOP/s per 1-thread worker · k); "
          "merge = pair tasks · 2s · merge s per row, in the driver)")
    print("  N           d     k   compute h (whole waves)  driver merge h  shard rows  pair tasks  shipped TB  "
          "worker MB  driver GB")
    for r in proj["exact"]:
        print(f"  {r['n']:<11,} {r['d']:<5} {r['workers']:<3} {r['compute_h']:9.2f} ({r['waves_h']:7.2f})    "
              f"{r['driver_merge_h']:15.2f} "
              f"{r['shard_rows']:11,} {r['pair_tasks']:11,} {r['shipped_tb']:11.2f} {r['worker_mb']:10,} "
              f"{r['driver_gb']:10.1f}")
    if proj["ann"]:
        print("\n# projected IVF all-N search on 2 cores (per-query time × N, scaled by √(N/N0) or N/N0)")
        for r in proj["ann"]:
            print(f"  {r['n']:<11,} {r['d']:<5} {r['index']:<9} index {r['index_gb']:6.1f} GB  search "
                  f"{r['search_h_sqrt']:8.2f} h (√N) – {r['search_h_linear']:9.2f} h (N)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[8192, 16384], help="shard rows")
    ap.add_argument("--dims", type=int, nargs="*", default=[512, 1536], help="dims of the pair tasks (none = skip)")
    ap.add_argument("--ann-n", type=int, default=30_000, help="synthetic jobs embedded for exact vs IVF")
    ap.add_argument("--ann-dims", type=int, nargs="+", default=[512, 1536])
    ap.add_argument("--dask-n", type=int, default=24_576, help="rows of the Dask comparison (0 = skip)")
    ap.add_argument("--cache", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "jobsim-scaling"))
    ap.add_argument("--json", help="write every measurement and projection to this file")
    ap.add_argument("--project-from", help="no measuring: print the projections again from a --json file "
                    "(after a change of the shard planner or the formulas)")
    args = ap.parse_args()
    if args.project_from:
        measured = json.loads(Path(args.project_from).read_text())
        print_projections(projections(measured["pairs"], measured["ann"]))
        return
    if args.child:
        out = STEPS[args.child[0]](json.loads(args.child[1]))
        out["child_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    if args.quick:
        args.sizes, args.ann_n, args.dask_n = [2048, 4096], 4000, 8192
    started = time.perf_counter()
    biggest = max(args.sizes)

    print(f"# per shard-pair task (search_pair, depth {DEPTH}; diag = pair (a, a), cross = (a, b))")
    print("  d     s rows  thr | diag s  Mpairs/s  GFLOP/s  +MB | cross s  Mpairs/s  GFLOP/s  +MB  merge s |"
          " sgemm GFLOP/s | 3 tasks+merges vs unsharded 2s rows")
    pairs = []
    for d in args.dims:
        for s in args.sizes:
            for threads in (1, 0):
                r = child("pair", {"s": s, "d": d, "threads": threads, "baseline": threads == 0})
                pairs.append(r)
                dg, cr = r["diag"], r["cross"]
                base = (f"{r['sharded_total_s']:.1f} s vs {r['unsharded_s']:.1f} s = "
                        f"{r['sharded_total_s'] / r['unsharded_s']:.2f}× (equal: {r['equal_to_unsharded']})"
                        if "unsharded_s" in r else "")
                print(f"  {d:<5} {s:>6} {r['threads']:>4} | {dg['seconds']:6.2f} {dg['pairs_per_s'] / 1e6:8.0f} "
                      f"{dg['gflops']:8.1f} {dg['peak_extra_mb']:4.0f} | {cr['seconds']:7.2f} "
                      f"{cr['pairs_per_s'] / 1e6:8.0f} {cr['gflops']:8.1f} {cr['peak_extra_mb']:4.0f} "
                      f"{cr['merge_s']:8.3f} | {r['gemm_peak_gflops']:13.0f} | {base}", flush=True)
                print(f"        pools: {', '.join(r['thread_pools'])}; analytic task memory 2·s·d·4 = "
                      f"{2 * s * d * 4 / 2**20:.0f} MB vectors (copied by ascontiguousarray only if not contiguous)"
                      f" + blocks ≤ {10 * r['block'] ** 2 / 2**20:.0f} MB + heaps/lists "
                      f"{2 * s * (DEPTH + 4) * 12 * 2 / 2**20:.0f} MB", flush=True)

    anns = []
    if args.ann_n:
        e = child("embed", {"n": args.ann_n, "cache": args.cache})
        print(f"\n# exact vs IVF on {e['rows']:,} embedded synthetic jobs (of {args.ann_n:,}; identical vectors "
              f"collapsed; embedding {e['seconds']:.0f} s, cached in {args.cache})")
        print("  d     exact s | index                nprobe/nlist  train s  add s  search s (in index)  vs exact  "
              "recall@10 (index ranking)  B/vector  +MB")
        for d in args.ann_dims:
            a = child("ann", {"n": args.ann_n, "d": d, "cache": args.cache})
            anns.append(a)
            for name in ("ivf_flat", "ivf_pq"):
                r = a[name]
                print(f"  {d:<5} {a['exact_s']:7.1f} | {r['spec']:<20} {r['nprobe']:>5}/{r['nlist']:<6} "
                      f"{r['train_s']:7.1f} {r['add_s']:6.1f} {r['search_s']:6.1f} ({r['index_search_s']:.1f}) "
                      f"{a['exact_s'] / r['search_s']:6.1f}×  "
                      f"{r['recall_at_10']:.3f} ({r['recall_at_10_index_ranking']:.3f})"
                      f"{'':13}{r['bytes_per_vector']:8.0f} {r['peak_extra_mb']:4.0f}   fixed {r['fixed_mb']:.1f} MB, tried {r['tried']}", flush=True)

    dask = None
    if args.dask_n:
        dask = child("dask", {"n": args.dask_n, "d": 1536, "s": min(8192, biggest // 2 or 1)})
        print(f"\n# sharded_topk {dask['n']:,} × {dask['d']}, shards of {dask['shard_rows']:,} rows: in process "
              f"{dask['in_process_s']:.1f} s; Dask LocalCluster(2 workers × 1 thread) {dask['dask_s']:.1f} s "
              f"({dask['dask_s'] / dask['in_process_s']:.2f}×, equal: {dask['equal']}), cluster start "
              f"{dask['cluster_start_s']:.1f} s; worker pools: {', '.join(dask['worker_thread_pools'])}")

    proj = projections(pairs, anns)
    print_projections(proj)
    wall = time.perf_counter() - started
    print(f"\nbenchmark wall time {wall:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"pairs": pairs, "ann": anns, "dask": dask, "projections": proj,
                                               "wall_s": wall, "cpus": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
