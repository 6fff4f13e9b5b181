"""What touching fresh memory costs in numpy's two page policies (``jobsim.allocation.numpy_huge_pages``):
huge pages (numpy's own default: ``madvise`` for arrays of 4 MB and more) and small pages.

    .venv/bin/python bench/pages.py [--mb 64 256 566] [--reps 3] [--idle 4]

Each measurement allocates an array of that size and writes one byte per 4 KB page (every page
faulted in once), after ``--idle`` seconds without allocating: on a VM that hands free memory
back to its host (Firecracker here, free page reporting), that is the state a run's process
meets. Policies interleaved, min of ``--reps``. 566 MB is the 100k × 1,536 float32 matrix an
incremental run gathers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402
from jobsim.allocation import numpy_huge_pages  # noqa: E402


def touch(mb: int) -> float:
    started = time.perf_counter()
    array = np.empty(mb << 20, dtype=np.uint8)
    array[::4096] = 1
    seconds = time.perf_counter() - started
    del array
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", nargs="+", type=int, default=[64, 256, 566])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--idle", type=float, default=4.0)
    args = parser.parse_args()
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    times: dict[tuple[int, str], list[float]] = {}
    for _ in range(args.reps):
        for mb in args.mb:
            for policy in ("huge", "small"):
                numpy_huge_pages(policy == "huge")
                time.sleep(args.idle)
                times.setdefault((mb, policy), []).append(touch(mb))
    print(f"fresh memory, {cpu_model()}, load {os.getloadavg()[0]:.2f}, THP "
          f"{thp.read_text().strip() if thp.exists() else '?'}, {args.idle:.0f} s idle before each")
    for mb in args.mb:
        best = {p: min(times[mb, p]) for p in ("huge", "small")}
        reps = {p: ", ".join(f"{t:.3f}" for t in times[mb, p]) for p in best}
        print(f"  {mb:>5} MB  huge {best['huge']:.3f} s ({reps['huge']})  small {best['small']:.3f} s "
              f"({reps['small']})  huge / small {best['huge'] / best['small']:.1f}x  "
              f"({best['huge'] / mb * 1e3:.2f} vs {best['small'] / mb * 1e3:.2f} ms/MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
