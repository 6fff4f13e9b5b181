"""Neighbour search benchmark: the exact pass against the GEMM limit, the IVF ANN pass
against the exact pass, HNSW for reference, and the planner's predictions.

    .venv/bin/python bench/neighbours.py                     # N = 10k, 100k; d = 512, 1536; clustered + text; 3 reps
    .venv/bin/python bench/neighbours.py --quick             # N = 10k, clustered only, 1 rep
    .venv/bin/python bench/neighbours.py --data text --n 100000 --d 512 --reps 3 --hnsw --before aa1ff11

Every measurement runs in its own child process; its peak RSS is ``VmHWM`` read from
``/proc/self/status`` inside the child (data included). Methods are interleaved: each rep
runs the sgemm peak, then every method on every shape; ratios are taken between the
minimum times of ≥ 3 reps. Per shape:

- **exact**: ``jobsim.neighbours.exact_topk`` (depth 66 = 50 candidates + 16 margin, memory
  budget 512 MB, the pipeline's defaults) vs the GEMM limit ``2·N²·d / peak``, where peak =
  numpy's sgemm rate on 4096² float32 measured at the start of the same rep (best of 4);
- **ann**: ``jobsim.ann.build_ivf`` + ``search_ivf`` (recall target 0.95, 500-row sample)
  vs the exact pass; recall@10 measured on **all** rows against the exact lists (ids).
  The exact pass searches each distinct vector once (bit-identical rows, ``jobsim.identical``),
  the ANN pass too when enough rows repeat (``ann_twins``), as the pipeline's full pass does
  (``jobsim.fullpass.full_topk``);
- **hnsw** (``--hnsw``, first ``--hnsw-reps`` reps): faiss ``IndexHNSWFlat`` (M 32,
  efConstruction 40, the previous ANN), efSearch the smallest of a ladder reaching
  recall@10 0.95 on a 500-row sample, then every row searched and its 67 candidates
  rescored canonically;
- **before** (``--before REV``): ``exact_topk`` with that git revision's ``jobsim`` package
  (``git archive``); **ann_before** (``--ann-before REV``): the ANN pass with it; their time, RSS and
  whether their lists are identical (a hash of scores and ids).

Data (cached under ``$JOBSIM_BENCH_CACHE``): ``clustered`` = synthetic unit vectors (300 topic
centres, spread in a 96-dim latent subspace, small noise; seeded); ``text`` = real postings with
variations embedded by the v3 offline embedder and ``text-fitted`` = the same texts embedded by
the corpus-fitted default (``bench/text_vectors.py``; both skipped when ``../shared`` is
missing). ``--fit``: the planner's cost constants, least squares.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench.machine import child_env, cpu_model  # noqa: E402

DEPTH = 66  # candidates 50 + margin 16: what the pass keeps per job
BUDGET = 512 << 20  # NeighbourSettings.memory_budget_mb default
SCRATCH = Path(os.environ.get("JOBSIM_BENCH_CACHE", "/tmp/jobsim-bench"))


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


KINDS = {"clustered": None, "text": "v3", "text-fitted": "fitted"}  # data kind → text embedder


def matrix_path(kind: str, n: int, d: int) -> Path:
    return SCRATCH / f"{kind.replace('-', '_')}_{n}_{d}.npy"


def load(kind: str, n: int, d: int) -> np.ndarray:
    """The benchmark matrix, read from its cache file (made by :func:`prepare`): a child's
    peak RSS then holds the matrix itself, not the temporaries that generated it. Read
    straight into its array (a copy out of a memory map counted the map's pages too: 2×
    the matrix in ``VmHWM`` before the pass began), then the peak is reset."""
    x = np.load(matrix_path(kind, n, d))
    reset_peak_rss()
    return x


def reset_peak_rss() -> None:
    """Start ``VmHWM`` again from the current RSS (Linux: ``5`` into ``/proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # not Linux, or not allowed: the peak then includes the load
        pass


def step_prepare(p: dict) -> dict:
    """Cache the matrix of one shape (generated, or the first rows of the text vectors)."""
    from text_vectors import text_vectors

    n, d, kind = p["n"], p["d"], p["data"]
    path = matrix_path(kind, n, d)
    if not path.exists():
        SCRATCH.mkdir(parents=True, exist_ok=True)
        x = data(n, d) if kind == "clustered" else text_vectors(max(n, 100_000), d, KINDS[kind])[:n]
        np.save(path, np.ascontiguousarray(x))
    return {"path": str(path)}


def vm_hwm_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def truth_path(p: dict) -> Path:
    return SCRATCH / f"exact10_{p['data']}_{p['n']}_{p['d']}.npy"


# -- child steps: each returns a dict ------------------------------------------------------------
def step_peak(p: dict) -> dict:
    from jobsim.planner import gemm_rate

    from scaling import _gemm_peak  # bench/scaling.py: best 4096² sgemm rate

    return {"gflops": _gemm_peak(), "calib": {d: gemm_rate(d) for d in p["dims"]}}


def lists_hash(scores: np.ndarray, idx: np.ndarray) -> str:
    digest = hashlib.sha1(np.ascontiguousarray(scores).data)  # read in place: no copy in the peak RSS
    digest.update(np.ascontiguousarray(idx).data)
    return digest.hexdigest()[:12]


def step_exact(p: dict) -> dict:
    from jobsim.neighbours import exact_topk

    x = load(p["data"], p["n"], p["d"])
    t = time.perf_counter()
    scores, idx = exact_topk(x, DEPTH, BUDGET)
    sec = time.perf_counter() - t
    out = {"s": sec, "rss_mb": vm_hwm_mb(), "matrix_mb": x.nbytes / 2**20, "hash": lists_hash(scores, idx)}
    path = truth_path(p)
    if not path.exists():
        SCRATCH.mkdir(parents=True, exist_ok=True)
        np.save(path, idx[:, :10])
    return out


def use_revision(rev: str) -> None:
    """Import ``jobsim`` from git revision ``rev`` (the whole package, extracted once)."""
    root = SCRATCH / f"jobsim_{rev}"
    if not (root / "jobsim").exists():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "jobsim"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    for name in [m for m in sys.modules if m == "jobsim" or m.startswith("jobsim.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))


def step_before(p: dict) -> dict:
    """:func:`step_exact` with the ``jobsim`` package of git revision ``p["rev"]``."""
    use_revision(p["rev"])
    return step_exact(p)


def step_ann(p: dict) -> dict:
    from jobsim.ann import build_ivf, recall_at, search_ivf
    from jobsim.identical import expand_topk, identical_rows
    from jobsim.planner import confirm_ann, plan_full_pass

    try:
        from jobsim.identical import ann_twins
    except ImportError:  # a revision before it: the ANN searched each distinct vector once
        ann_twins = lambda twins: twins  # noqa: E731
    x = load(p["data"], p["n"], p["d"])
    t = time.perf_counter()
    every = identical_rows(x)
    twins = ann_twins(every)  # as jobsim.fullpass.full_topk: the distinct vectors when enough rows repeat
    n, d = (len(x) if twins is None else len(twins.first)), x.shape[1]
    distinct = len(x) if every is None else len(every.first)
    index = build_ivf(x, recall_target=0.95, recall_sample=500, twins=twins)
    scores, idx, report = search_ivf(x, index, DEPTH)
    del index
    if twins is not None:
        scores, idx = expand_topk(x, scores, idx, twins, DEPTH)
    sec = time.perf_counter() - t
    truth = np.load(truth_path(p))
    plan = plan_full_pass(n, d, nlist=report.nlist)
    after = confirm_ann(plan, n, d, scored_pairs=report.scored_pairs, nprobe=report.value,
                        search_dims=report.search_dims)
    return {"s": sec, "rss_mb": vm_hwm_mb(), "recall_all": recall_at(idx, truth), "recall_sample": report.recall_at_10,
            "distinct": distinct, "searched": n, "hash": lists_hash(scores, idx),
            "nprobe": report.value, "nlist": report.nlist, "build_s": report.build_s, "tune_s": report.tune_s,
            "search_s": report.search_s, "pairs": report.scored_pairs, "dims": report.search_dims,
            "keep": getattr(report, "keep", 0), "plan": plan.__dict__, "confirm": after.__dict__,
            "mean_probes": getattr(report, "mean_probes", 0.0) or report.value,
            "margin": getattr(report, "probe_margin", 0.0)}


def step_ann_before(p: dict) -> dict:
    """:func:`step_ann` with the ``jobsim`` package of git revision ``p["ann_rev"]``."""
    use_revision(p["ann_rev"])
    return step_ann(p)


def step_hnsw(p: dict) -> dict:
    from neighbour_baselines import hnsw_topk

    x = load(p["data"], p["n"], p["d"])
    truth = np.load(truth_path(p))
    t = time.perf_counter()
    idx, ef, recall_sample = hnsw_topk(x, DEPTH, truth)
    sec = time.perf_counter() - t
    from jobsim.ann import recall_at

    return {"s": sec, "rss_mb": vm_hwm_mb(), "recall_all": recall_at(idx, truth), "ef": ef, "recall_sample": recall_sample}


STEPS = {"peak": step_peak, "exact": step_exact, "ann": step_ann, "hnsw": step_hnsw, "before": step_before,
         "ann_before": step_ann_before, "prepare": step_prepare}


HUGE_PAGES = [False]  # --huge-pages: the children keep numpy's own page policy


def child(step: str, params: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", step, json.dumps(params)], capture_output=True, text=True,
                          env=child_env(HUGE_PAGES[0]))
    if proc.returncode != 0:
        raise SystemExit(f"step {step} {params} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict:
    from text_vectors import available

    kinds = [k for k in args.data if KINDS[k] is None or available()]
    if len(kinds) < len(args.data):
        print("text vectors skipped: ../shared/data is missing")
    for stale in SCRATCH.glob("exact10_*.npy"):
        stale.unlink()
    shapes = [(k, n, d) for k in kinds for n in args.n for d in args.d]
    for kind, n, d in shapes:
        child("prepare", {"data": kind, "n": n, "d": d})
    res: dict = {"peaks": [], "runs": {}, "cpu": cpu_model()}
    for rep in range(args.reps):
        res["peaks"].append(child("peak", {"dims": args.d}))
        for kind, n, d in shapes:
            p = {"data": kind, "n": n, "d": d}
            rec = res["runs"].setdefault(f"{kind} {n} {d}", {"data": kind, "n": n, "d": d})
            methods = ["exact"] + (["before"] if args.before else []) + ["ann"] + (
                ["ann_before"] if args.ann_before else []) + (
                ["hnsw"] if args.hnsw and n >= args.hnsw_min_n and rep < args.hnsw_reps else [])
            for m in methods:
                rec.setdefault(m, []).append(child(m, {**p, "rev": args.before, "ann_rev": args.ann_before}))
            print(f"rep {rep + 1}/{args.reps} {kind} {n}×{d}: " + ", ".join(
                f"{m} {rec[m][-1]['s']:.2f} s" for m in methods) + f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    return res


def report(res: dict) -> None:
    peak = max(p["gflops"] for p in res["peaks"])
    per_rep = ", ".join(f"{p['gflops']:.0f}" for p in res["peaks"])
    print(f"\nCPU {res['cpu']}; sgemm peak (numpy, 4096², best of the run) {peak:.0f} GFLOP/s "
          f"(per rep: {per_rep}); load at the end {os.getloadavg()}")
    print("| data | N × d | exact (min) | limit 2N²d/peak | exact/limit | peak RSS / bound | ANN (min) | "
          "exact/ANN | recall@10 all rows (sample) | nprobe (mean per row) / nlist | ANN RSS | HNSW exact/HNSW (recall) | before/limit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for rec in res["runs"].values():
        n, d = rec["n"], rec["d"]
        ex, ann = min(r["s"] for r in rec["exact"]), min(r["s"] for r in rec["ann"])
        limit = 2 * n * n * d / (peak * 1e9)
        bound = 1.5 * rec["exact"][0]["matrix_mb"] + 200
        a = min(rec["ann"], key=lambda r: r["s"])
        hn = (f"{ex / min(r['s'] for r in rec['hnsw']):.2f}× ({min(r['recall_all'] for r in rec['hnsw']):.3f})"
              if "hnsw" in rec else "—")
        bf = (f"{min(r['s'] for r in rec['before']) / limit:.2f}"
              + ("" if {r["hash"] for r in rec["before"]} == {r["hash"] for r in rec["exact"]} else " (lists differ)")
              if "before" in rec else "—")
        print(f"| {rec['data']} | {n:,} × {d} | {ex:.2f} s | {limit:.2f} s | **{ex / limit:.2f}** | "
              f"{max(r['rss_mb'] for r in rec['exact']):.0f} / {bound:.0f} MB | {ann:.2f} s | **{ex / ann:.1f}×** | "
              f"{min(r['recall_all'] for r in rec['ann']):.3f} ({a['recall_sample']:.3f}) | {a['nprobe']} ({a.get('mean_probes', a['nprobe']):.1f}) / {a['nlist']} | "
              f"{max(r['rss_mb'] for r in rec['ann']):.0f} MB | {hn} | {bf} |")
    for rec in res["runs"].values():
        a = min(rec["ann"], key=lambda r: r["s"])
        print(f"{rec['data']} {rec['n']}×{rec['d']}: {a.get('distinct', rec['n']):,} distinct vectors, the ANN "
              f"searched {a.get('searched', a.get('distinct', rec['n'])):,}; "
              f"ANN build {a['build_s']} s, tune {a['tune_s']} s, search "
              f"{a['search_s']} s, {a['pairs'] / rec['n']:.0f} scores/row in {a['dims']} dims, {a.get('keep', 0)} kept, probe margin {a.get('margin', 0.0)}; plan: {a['plan']['reason']}; "
              f"after tuning: {a['confirm']['reason']}")
        if "ann_before" in rec:
            b = min(r["s"] for r in rec["ann_before"])
            same = {r["hash"] for r in rec["ann"]} == {r["hash"] for r in rec["ann_before"]}
            print(f"  ANN of the revision before: {b:.2f} s (min) → {a['s']:.2f} s, **{b / a['s']:.2f}×**; "
                  f"RSS {max(r['rss_mb'] for r in rec['ann_before']):.0f} → {max(r['rss_mb'] for r in rec['ann']):.0f} MB; "
                  f"identical lists: {'yes' if same else 'no'}")


def fit(res: dict) -> None:
    """Least-squares per-pair / per-row constants of jobsim.planner.Costs (at ref 150 GFLOP/s)."""
    from jobsim.planner import COSTS

    rows_e, y_e, rows_a, y_a = [], [], [], []
    for rec in res["runs"].values():
        n, d = rec["ann"][0].get("distinct", rec["n"]), rec["d"]  # the passes search the distinct vectors
        rate = max(float(p["calib"][str(d)]) for p in res["peaks"]) * 1e9
        unit = COSTS.ref_gflops * 1e9 / rate
        pairs = n * (n - 1) / 2
        rows_e.append([pairs * unit, n * d / 512 * unit])
        y_e.append(min(r["s"] for r in rec["exact"]) - pairs * 2 * d / rate - COSTS.fixed_s)
        a = min(rec["ann"], key=lambda r: r["s"])
        nl, r = a["nlist"], a["dims"]
        flops = ((20_000 * d + n * r) * d + (10 * 32 * nl * nl + n * nl + a["pairs"]) * r + 500 * n * d) * 2
        rows_a.append([a["pairs"] * unit, n * d / 512 * unit])
        y_a.append(a["s"] - flops / rate - COSTS.fixed_s)
    ce = np.linalg.lstsq(np.array(rows_e), np.array(y_e), rcond=None)[0]
    ca = np.linalg.lstsq(np.array(rows_a), np.array(y_a), rcond=None)[0]
    print(f"\nfitted: exact_pair_s={ce[0]:.3g}, exact_row_s={ce[1]:.3g}, ivf_pair_s={ca[0]:.3g}, ivf_row_s={ca[1]:.3g}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="N = 10k, clustered only, 1 rep")
    ap.add_argument("--data", nargs="+", default=["clustered", "text", "text-fitted"], choices=list(KINDS))
    ap.add_argument("--n", nargs="+", type=int, default=[10_000, 100_000])
    ap.add_argument("--d", nargs="+", type=int, default=[512, 1536])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hnsw", action="store_true", help="also the previous ANN (faiss HNSW)")
    ap.add_argument("--hnsw-min-n", type=int, default=100_000)
    ap.add_argument("--hnsw-reps", type=int, default=1, help="reps that also run HNSW (the slowest method)")
    ap.add_argument("--before", help="also exact_topk of this git revision (its whole jobsim package)")
    ap.add_argument("--ann-before", help="also the ANN pass (build, search, expansion) of this git revision")
    ap.add_argument("--fit", action="store_true", help="fit the planner's cost constants")
    ap.add_argument("--json", help="write the raw measurements here")
    ap.add_argument("--huge-pages", action="store_true", help="numpy's own page policy (default: small pages, as "
                    "a pipeline run with JOBSIM_EXECUTION__NUMPY_HUGE_PAGES off)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    HUGE_PAGES[0] = args.huge_pages
    if args.child:
        print(json.dumps(STEPS[args.child[0]](json.loads(args.child[1]))))
        return
    if args.quick:
        args.data, args.n, args.reps = ["clustered"], [10_000], 1
    started = time.perf_counter()
    res = run(args)
    report(res)
    if args.fit:
        fit(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    print(f"benchmark wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
