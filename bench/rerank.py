"""From candidate lists to what a run writes (``final_lists``, then the diff against the stored
lists' fingerprints, the checks and the score histogram), the current way against the former
one. Former (main 7a51989): ``rerank_jobs`` built every list as JobList objects, each list was
fingerprinted by marshal + blake2b, and the checks and histogram walked the objects. Current:
the lists stay arrays (:class:`jobsim.listset.ListSet`), fingerprints, checks and histogram are
computed from them, and only the lists that changed become objects. Two cases: **unchanged**
(the stored lists are the run's own: a run that must recompute but changes little, e.g. a few
expiries) and **all new** (nothing stored: a first run writes every list). Same state, methods
interleaved, min of ``--reps``; both give the same changes, checks and histogram.

    .venv/bin/python bench/rerank.py [--n 100000] [--dims 32] [--reps 3] [--before REV]

``--before REV`` adds a third method: the current step with ``jobsim/lists.py`` and
``jobsim/scoring.py`` of git revision REV (loaded beside the current modules, their
``final_lists`` functions swapped in), to measure a change to the rerank itself.

Data: ``--n`` jobs on clustered unit vectors (500 clusters), random category / level / city,
3,000 companies; the exact candidate state is computed once (not timed).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import marshal
import os
import subprocess
import sys
import types
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402
from jobsim import lists as lists_module  # noqa: E402
from jobsim import similarity  # noqa: E402
from jobsim.allocation import collector_paused  # noqa: E402
from jobsim.corpus import corpus_from_arrays  # noqa: E402
from jobsim.lists import ranked  # noqa: E402
from jobsim.listset import CODE_OBJECTS  # noqa: E402
from jobsim.report import histogram_of  # noqa: E402
from jobsim.snapshot import diff_fingerprints  # noqa: E402
from tests.test_listset import reference_checks  # noqa: E402  (the former jobsim.lists.list_checks)
from jobsim.repositories import JobList, Neighbour  # noqa: E402
from jobsim.scoring import Context  # noqa: E402
from jobsim.settings import NeighbourSettings  # noqa: E402


class _Lists(dict):
    def concat(self, *others: dict) -> _Lists:
        out = _Lists(self)
        for other in others:
            out.update(other)
        return out


def former_rerank_jobs(corpus, groups, jobs, pool_cos, pool_rows, cfg):
    """``rerank_jobs`` of 7a51989: the same rerank arrays, then every list as objects."""
    if not len(jobs):
        return _Lists()
    if pool_rows.shape[1] == 0:
        return _Lists({str(corpus.job_ids[j]): JobList((), groups.original[j]) for j in jobs.tolist()})
    r = ranked(corpus, groups, jobs, pool_cos, pool_rows, cfg)
    kept = np.nonzero(r.keep)
    counts = r.keep.sum(axis=1)
    ends = np.cumsum(counts)
    starts, ends = (ends - counts).tolist(), ends.tolist()
    with collector_paused():
        items = list(map(Neighbour, map(str, corpus.job_ids[r.chosen[kept]].tolist()),
                         np.round(r.blended[kept].astype(np.float64), 2).tolist(),
                         np.round(r.cosine[kept].astype(np.float64), 2).tolist(), CODE_OBJECTS[r.bits[kept]].tolist()))
        keys = map(str, corpus.job_ids[jobs].tolist())
        return _Lists({key: JobList(tuple(items[start:end]), groups.original[j])
                       for key, j, start, end in zip(keys, jobs.tolist(), starts, ends)})


def former_fingerprint(job_list: JobList) -> bytes:
    plain = (tuple(map(tuple, job_list.items)), job_list.group)
    return hashlib.blake2b(marshal.dumps(plain, 2), digest_size=16).digest()


def former(corpus, state, cfg, stored: dict[str, bytes]):
    """The lists' step of 7a51989: objects, marshal fingerprints, checks and histogram from objects."""
    similarity.rerank_jobs = former_rerank_jobs
    try:
        lists = similarity.final_lists(corpus, state, cfg)[0]
    finally:
        similarity.rerank_jobs = lists_module.rerank_jobs
    empty = former_fingerprint(JobList(()))
    changes, after = {}, {}
    for key, job_list in lists.items():
        fp = former_fingerprint(job_list)
        if fp != stored.get(key, empty):
            changes[key] = job_list
        if fp != empty:
            after[key] = fp
    checks = reference_checks(lists, set(corpus.job_ids[corpus.active].tolist()), cfg.k)
    scores = np.fromiter((n.score for job_list in lists.values() for n in job_list.items), dtype=np.float64)
    hist = histogram_of(scores, len(lists), sum(1 for job_list in lists.values() if not job_list.items))
    return changes, after, checks, hist


def current(corpus, state, cfg, stored: dict[str, bytes]):
    lists = similarity.final_lists(corpus, state, cfg)[0]
    changes, _, after = diff_fingerprints(lists, stored)
    checks = lists.checks(corpus.active, cfg.k)
    return changes, after, checks, histogram_of(lists.score, len(lists), int((lists.counts == 0).sum()))


def revision_lists(rev: str):
    """``jobsim/lists.py`` of git revision ``rev`` as a module, on that revision's ``pair_bonus``."""
    modules = {}
    for name in ("scoring", "lists"):
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:jobsim/{name}.py"], check=True,
                                capture_output=True, text=True).stdout
        module = types.ModuleType(f"before_{name}")
        exec(compile(source, f"{rev}:jobsim/{name}.py", "exec"), module.__dict__)  # noqa: S102 - our own history
        modules[name] = module
    modules["lists"].pair_bonus = modules["scoring"].pair_bonus
    return modules["lists"]


def swapped(lists_module):
    """:func:`current` with ``final_lists`` using the given module's functions."""
    names = ("pool_ends", "pools", "rerank_jobs", "rows_needing_more")

    def run(corpus, state, cfg, stored):
        saved = {name: getattr(similarity, name) for name in names}
        for name in names:
            setattr(similarity, name, getattr(lists_module, name))
        try:
            return current(corpus, state, cfg, stored)
        finally:
            for name, fn in saved.items():
                setattr(similarity, name, fn)

    return run


def scene(n: int, d: int):
    """The benchmark's corpus (clustered unit vectors, random contexts, 3,000 companies), its
    exact candidate state and the settings."""
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((500, d)).astype(np.float32)
    x = centers[rng.integers(0, 500, n)] + 0.3 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ctx = Context(category=rng.integers(0, 20, n).astype(np.int32), level=rng.integers(0, 5, n).astype(np.int32),
                  city=rng.integers(0, 30, n).astype(np.int32), remote=rng.random(n) < 0.1)
    corpus = corpus_from_arrays(np.array([f"s:{i:08d}" for i in range(n)], dtype=object), x, ctx,
                                company=[f"co{i % 3000}" for i in range(n)])
    cfg = NeighbourSettings(state_dir="", exact_max_jobs=10**7)
    return corpus, similarity.compute_neighbours(corpus, cfg).state, cfg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--before", help="also the rerank of this git revision (its lists.py and scoring.py)")
    args = parser.parse_args()
    n, d = args.n, args.dims
    corpus, state, cfg = scene(n, d)
    methods = {"former": former, "current": current} | ({"before": swapped(revision_lists(args.before))}
                                                         if args.before else {})
    stored = {name: dict(fn(corpus, state, cfg, {})[1]) for name, fn in methods.items()}
    cases = {"unchanged": stored, "all new": dict.fromkeys(methods, {})}
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.reps):
        for case, case_stored in cases.items():
            results = {}
            for name, fn in methods.items():
                gc.collect()
                started = time.perf_counter()
                results[name] = fn(corpus, state, cfg, case_stored[name])
                times.setdefault((case, name), []).append(time.perf_counter() - started)
            outcome = {name: (r[0], r[-2], r[-1]) for name, r in results.items()}  # changes, checks, histogram
            assert all(o == outcome["current"] for o in outcome.values()), f"{case}: the methods differ"
            del results, outcome
    print(f"lists step over {n:,} jobs ({d} dims), {cpu_model()}, "
          f"load {os.getloadavg()[0]:.2f}; same changes, checks and histogram")
    for case in cases:
        best = {name: min(times[case, name]) for name in methods}
        for name in best:
            print(f"  {case:<10} {name:<8} min {best[name]:.2f} s  "
                  f"(reps {', '.join(f'{t:.2f}' for t in times[case, name])})")
        for name in (name for name in best if name != "current"):
            print(f"  {case:<10} {name} / current: {best[name] / best['current']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
