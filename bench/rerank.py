"""From candidate lists to final lists (``final_lists``: groups, pools, rerank, list objects)
with the current ``rerank_jobs`` against the former one, which built each list's entries in a
Python loop indexing numpy arrays item by item (both rerank with the same ``ranked``). Same state, methods interleaved, min of
``--reps``; the lists must be equal.

    .venv/bin/python bench/rerank.py [--n 100000] [--dims 32] [--reps 3]

Data: ``--n`` jobs on clustered unit vectors (500 clusters), random category / level / city,
3,000 companies; the exact candidate state is computed once (not timed).
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

from jobsim import lists as lists_module  # noqa: E402
from jobsim import similarity  # noqa: E402
from jobsim.corpus import corpus_from_arrays  # noqa: E402
from jobsim.lists import CODES, ranked  # noqa: E402
from jobsim.repositories import JobList, Neighbour  # noqa: E402
from jobsim.scoring import Context  # noqa: E402
from jobsim.settings import NeighbourSettings  # noqa: E402


def former_rerank_jobs(corpus, groups, jobs, pool_cos, pool_rows, cfg):
    """``rerank_jobs`` before this change (the baseline): the same rerank arrays, then one
    Python loop per job indexing numpy arrays per entry, the collector left on."""
    if not len(jobs):
        return {}
    if pool_rows.shape[1] == 0:
        return {str(corpus.job_ids[j]): JobList((), groups.original[j]) for j in jobs.tolist()}
    r = ranked(corpus, groups, jobs, pool_cos, pool_rows, cfg)
    out = {}
    scores = np.round(r.blended.astype(np.float64), 2).tolist()
    cosines = np.round(r.cosine.astype(np.float64), 2).tolist()
    for i, j in enumerate(jobs.tolist()):
        cols = np.flatnonzero(r.keep[i]).tolist()
        items = tuple(Neighbour(str(corpus.job_ids[r.chosen[i, c]]), scores[i][c], cosines[i][c], CODES[r.bits[i, c]])
                      for c in cols)
        out[str(corpus.job_ids[j])] = JobList(items, groups.original[j])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, d = args.n, args.dims
    centers = rng.standard_normal((500, d)).astype(np.float32)
    x = centers[rng.integers(0, 500, n)] + 0.3 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ctx = Context(category=rng.integers(0, 20, n).astype(np.int32), level=rng.integers(0, 5, n).astype(np.int32),
                  city=rng.integers(0, 30, n).astype(np.int32), remote=rng.random(n) < 0.1)
    corpus = corpus_from_arrays(np.array([f"s:{i:08d}" for i in range(n)], dtype=object), x, ctx,
                                company=[f"co{i % 3000}" for i in range(n)])
    cfg = NeighbourSettings(state_dir="", exact_max_jobs=10**7)
    state = similarity.compute_neighbours(corpus, cfg).state
    current = lists_module.rerank_jobs
    times: dict[str, list[float]] = {"former": [], "current": []}
    results = {}
    for _ in range(args.reps):
        for name, fn in (("former", former_rerank_jobs), ("current", current)):
            similarity.rerank_jobs = fn
            started = time.perf_counter()
            results[name] = similarity.final_lists(corpus, state, cfg)[0]
            times[name].append(time.perf_counter() - started)
    similarity.rerank_jobs = current
    assert results["former"] == results["current"], "the lists differ"
    best = {k: min(v) for k, v in times.items()}
    print(f"final_lists over {n:,} jobs ({d} dims), {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; lists equal")
    for name, v in times.items():
        print(f"  {name:<8} min {best[name]:.2f} s  (reps {', '.join(f'{t:.2f}' for t in v)})")
    print(f"  former / current: {best['former'] / best['current']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
