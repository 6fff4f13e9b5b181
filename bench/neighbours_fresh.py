"""An incremental run's neighbour computation (``compute_neighbours`` from the previous run's
candidate state: the state's update, then ``final_lists``) once per fresh process, as a
pipeline run meets it, the current code against a git revision, interleaved.

    .venv/bin/python bench/neighbours_fresh.py --before REV [--n 100000] [--reps 6]

``bench/rerank.py`` repeats the lists step in one process, where each rep reuses the memory
the previous one freed. A run is a new process, and on this VM (Firecracker) memory that has
been free for more than about a second is handed back to the host, so every MB a step touches
for the first time costs ≈ 2 ms in huge pages, ≈ 0.3 ms in small ones (``bench/pages.py``).
Each child loads the corpus,
the previous state and the changed corpus (pickled once, by the current code), waits 3 s for
the memory its loading freed to go back, then times one ``compute_neighbours``. Two cases: one
posting edited, and 2 % churn (1 % edited, 0.5 % new, 0.5 % gone, as ``bench/pipeline.py``).
Data: the corpus of ``bench/rerank.py`` (clustered vectors, random contexts, 3,000 companies)
in ``--dims`` dimensions (32 by default, so the searches are cheap and the rest shows; 1,536 as
``text-embedding-3-small``), its exact candidate state computed once. Both codes give the
same lists and state (digests compared every rep). Both run with the same numpy page policy:
small pages, as a pipeline run has them, or numpy's own with ``--huge-pages``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = Path(os.environ.get("JOBSIM_BENCH_CACHE", "/tmp/jobsim-bench"))


SCENE_VERSION = 2  # of make_scene's output: a cached scene of another version is made again


def scene_path(n: int, d: int) -> Path:
    return SCRATCH / f"incremental_scene_{n}_{d}_v{SCENE_VERSION}.pkl"


def make_scene(n: int, d: int) -> dict:
    """The corpus, its exact state, and per case the changed corpus."""
    from bench.rerank import scene
    from jobsim.candidates import fingerprints
    from jobsim.corpus import corpus_from_arrays
    from jobsim.scoring import Context

    corpus, state, cfg = scene(n, d)
    rng = np.random.default_rng(1)
    ids, x, ctx = corpus.job_ids, corpus.vectors, corpus.context
    cases = {}
    for case, (edited, new, gone) in {"one edit": (1, 0, 0), "2% churn": (n // 100, n // 200, n // 200)}.items():
        pick = rng.permutation(len(ids))
        edit, drop = pick[:edited], pick[edited:edited + gone]
        keep = np.setdiff1d(np.arange(len(ids)), drop)
        vectors, hashes = x.copy(), ids.astype(str).astype(object)
        unit = lambda v: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
        vectors[edit] = unit(vectors[rng.integers(0, len(ids), edited)] + 0.1 * rng.standard_normal((edited, d)))
        hashes[edit] = [f"{h}-e" for h in hashes[edit]]
        extra = unit(x[rng.integers(0, len(ids), new)] + 0.1 * rng.standard_normal((new, d)))
        vectors = np.concatenate([vectors[keep], extra])
        new_ids = np.concatenate([ids[keep], np.array([f"s:n{i:07d}" for i in range(new)], dtype=object)])
        pick_ctx = np.concatenate([keep, rng.integers(0, len(ids), new)])
        changed = corpus_from_arrays(
            new_ids, vectors, Context(*(np.asarray(getattr(ctx, f))[pick_ctx] for f in ("category", "level", "city",
                                                                                        "remote"))),
            np.concatenate([hashes[keep], new_ids[len(keep):]]), company=[f"co{i % 3000}" for i in pick_ctx])
        # with its rows' fingerprints, as a run's corpus has them (kept in the local snapshot)
        cases[case] = replace(changed, fingerprints=fingerprints(changed.vectors))
    return {"state": state, "cfg": cfg, "cases": cases}


def child(rev: str, path: str, case: str) -> dict:
    if rev != "current":
        sys.path.insert(0, str(ROOT / "bench"))
        from neighbours import use_revision  # bench/neighbours.py: the jobsim package of a revision

        use_revision(rev)
    else:
        sys.path.insert(0, str(ROOT))
    from jobsim.similarity import compute_neighbours

    with open(path, "rb") as source:
        scene = pickle.load(source)
    corpus = scene["cases"][case]
    del scene["cases"]
    time.sleep(3)  # the memory the load freed goes back to the host, as between runs
    started = time.perf_counter()
    result = compute_neighbours(corpus, scene["cfg"], previous=scene["state"])
    seconds = time.perf_counter() - started
    digest = hashlib.sha1()
    lists, state = result.lists, result.state
    for array in (lists.jobs, lists.starts, lists.entry, lists.score, lists.cosine, lists.bits, state.scores,
                  state.cand, state.depth):
        digest.update(np.ascontiguousarray(array).tobytes())
    return {"s": seconds, "update": result.stats.search_seconds, "lists": result.stats.rerank_seconds,
            "mode": result.stats.mode, "digest": digest.hexdigest()[:12]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="git revision to compare with (required)")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=32)
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--huge-pages", action="store_true", help="numpy's own page policy in both (default: small "
                        "pages, as a pipeline run with JOBSIM_EXECUTION__NUMPY_HUGE_PAGES off)")
    parser.add_argument("--child", nargs=3, metavar=("REV", "SCENE", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    if not args.before:
        parser.error("--before REV is required")
    path = scene_path(args.n, args.dims)
    sys.path.insert(0, str(ROOT))
    if not path.exists():
        SCRATCH.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as sink:
            pickle.dump(make_scene(args.n, args.dims), sink)
    from bench.machine import child_env, cpu_model

    cases = ("one edit", "2% churn")
    times: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.reps):
        for case in cases:
            digests = {}
            for name, rev in (("before", args.before), ("current", "current")):
                out = subprocess.run([sys.executable, __file__, "--child", rev, str(path), case], capture_output=True,
                                     text=True, check=True, env=child_env(args.huge_pages))
                result = json.loads(out.stdout.splitlines()[-1])
                assert result["mode"] == "incremental", result
                times.setdefault((case, name), []).append(result)
                digests[name] = result["digest"]
            assert digests["before"] == digests["current"], f"{case}: the results differ: {digests}"
    print(f"compute_neighbours from the previous state, {args.n:,} jobs ({args.dims} dims), fresh processes, "
          f"{'huge' if args.huge_pages else 'small'} pages, {cpu_model()}, load {os.getloadavg()[0]:.2f}; same lists "
          "and state")
    for case in cases:
        for name in ("before", "current"):
            reps = times[case, name]
            listed = ", ".join(f"{r['s']:.2f}" for r in reps)
            print(f"  {case:<9} {name:<8} min {min(r['s'] for r in reps):.2f} s  (reps {listed}; update "
                  f"{min(r['update'] for r in reps):.2f} s, lists {min(r['lists'] for r in reps):.2f} s at their minimum)")
        best = {name: min(r["s"] for r in times[case, name]) for name in ("before", "current")}
        print(f"  {case:<9} before ({args.before}) / current: {best['before'] / best['current']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
