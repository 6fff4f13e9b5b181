"""What issue 14's list features cost in a full neighbour pass: lists for closed jobs (extra
query rows) and duplicate grouping, each as a ratio to the same pass without them, in one run.

    .venv/bin/python bench/lists.py [--n 100000] [--dims 512] [--closed 0.2] [--reps 3]

Data: ``--n`` listed jobs on clustered unit vectors with
realistic duplication: 3 % exact reposts (same text: one corpus row), 3 % near-duplicates of
an earlier posting (cosine ≈ 0.98, same company) and ``--closed`` of the jobs closed within the
window. Variants (methods interleaved, min of ``--reps``):

- ``base``: active jobs only, near-duplicates off (``near_duplicate_cosine`` > 1: identical texts
  still share a row, as they always do);
- ``+closed``: the closed jobs' rows searched too (query rows);
- ``+groups``: near-duplicate grouping on (the default 0.97);
- ``both``: the pipeline's default.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402
from jobsim.corpus import Corpus, corpus_from_arrays  # noqa: E402
from jobsim.scoring import Context  # noqa: E402
from jobsim.settings import NeighbourSettings  # noqa: E402
from jobsim.similarity import compute_neighbours  # noqa: E402


def clustered(n: int, d: int, clusters: int, spread: float, seed: int) -> np.ndarray:
    """Unit vectors around random centres: the structure real embeddings have."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def corpus(n: int, dims: int, closed: float, seed: int = 0) -> tuple[Corpus, Corpus]:
    """(every listed job, the active ones only) with reposts and near-duplicates."""
    rng = np.random.default_rng(seed)
    x = clustered(n, dims, max(10, n // 200), 0.35, seed=seed)
    hashes = np.array([f"h{i}" for i in range(n)], dtype=object)
    company = [f"co{rng.integers(500)}" for _ in range(n)]
    for i in range(1, n):
        roll = rng.random()
        if roll < 0.03:  # a repost: the same text
            j = int(rng.integers(i))
            x[i], hashes[i], company[i] = x[j], hashes[j], company[j]
        elif roll < 0.06:  # a near-duplicate: the same job, a few words changed
            j = int(rng.integers(i))
            y = x[j] + 0.15 * rng.standard_normal(dims).astype(np.float32) / np.sqrt(dims)
            x[i], company[i] = y / np.linalg.norm(y), company[j]
    ctx = Context(category=rng.integers(0, 12, n).astype(np.int32), level=rng.integers(0, 5, n).astype(np.int8),
                  city=rng.integers(0, 12, n).astype(np.int32), remote=rng.random(n) < 0.1)
    active = rng.random(n) >= closed
    ids = np.array([f"j{i:07d}" for i in range(n)], dtype=object)
    every = corpus_from_arrays(ids, x, ctx, hashes, active, company)
    keep = np.flatnonzero(active)
    only = corpus_from_arrays(ids[keep], x[keep], Context(ctx.category[keep], ctx.level[keep], ctx.city[keep],
                              ctx.remote[keep]), hashes[keep], None, [company[i] for i in keep])
    return every, only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("--closed", type=float, default=0.2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--path", choices=["planner", "exact"], default="planner",
                        help="full pass of the base rows: as the pipeline plans it (ANN at 100k), or exact")
    args = parser.parse_args()
    every, only = corpus(args.n, args.dims, args.closed)
    on = NeighbourSettings(incremental=False, exact_max_jobs=10**9 if args.path == "exact" else 0)
    off = on.model_copy(update={"near_duplicate_cosine": 1.01})
    variants = {"base": (only, off), "+closed": (every, off), "+groups": (only, on), "both": (every, on)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    stats = {}
    for rep in range(args.reps):
        for name, (data, cfg) in variants.items():
            started = time.perf_counter()
            result = compute_neighbours(data, cfg)
            times[name].append(time.perf_counter() - started)
            stats[name] = (result.stats, result.checks)
            print(f"rep {rep} {name}: {times[name][-1]:.1f} s", file=sys.stderr, flush=True)
    print(f"{args.n:,} jobs ({every.rows:,} rows, {every.rows - every.base:,} closed-only), d={args.dims}; "
          f"{cpu_model()}, load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}, "
          f"path {args.path}")
    print("| variant | min s | ratio to base | pass | search s | rerank s | groups | deeper rows | own dup / repeated |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = min(times["base"])
    for name in variants:
        s, checks = stats[name]
        print(f"| {name} | {min(times[name]):.1f} | {min(times[name]) / base:.2f}× | {s.mode} | {s.search_seconds:.1f} | "
              f"{s.rerank_seconds:.1f} | {s.duplicate_groups:,} | {s.deeper_rows:,} | "
              f"{checks['with_own_duplicate']} / {checks['with_repeated_group']} |")


if __name__ == "__main__":
    main()
