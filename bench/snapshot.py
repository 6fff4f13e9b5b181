"""The local snapshot's per-run work on an incremental run (issue 17), current against former:

- the cycle of an incremental run that re-read jobs: ``SnapshotStore.load``, ``jobsim.snapshot.updated``
  (the re-read jobs into the snapshot), ``corpus_at`` (the corpus the run searches) and
  ``SnapshotStore.save``, each step timed, each cycle in a fresh process as a run's is (on this
  VM memory a process frees goes back to the host, and touching it again costs ≈ 2 ms per MB):
  the former (5aa00ad) gathered the whole matrix anew in
  ``updated`` (566 MB at 100k × 1536, then gathered again for the corpus) and wrote every doc and the
  whole matrix again in ``save``; the current keeps the matrix in pieces (``jobsim.pieces``: the rows
  read become one new piece, the matrix is gathered once, for the corpus, and a save writes only the
  new piece) and appends the changed docs to the saved ones (a log, rewritten past a quarter);
- ``jobsim.listset.list_fingerprint`` over every list as read from MongoDB (a full read's stored
  lists): the former (7a51989) hashed ``marshal.dumps(..., 2)`` of the objects; the current hashes
  the words a run's lists are fingerprinted by from their arrays (``ListSet.fingerprints``, timed
  in ``bench/rerank.py``), so this path pays one key hash per entry;
- ``storage.jobs.list_updates`` of ``--written`` lists (the write-back's operations): the former
  left Python's cyclic GC on while building them, the current pauses it
  (``jobsim.allocation.collector_paused``); the heap holds the snapshot and the lists, as a
  run's does;
- ``storage.local_cache.SnapshotStore.save`` after a run that changed only lists (jobs expired
  by time, nothing re-read): the former wrote every part, the current links the docs and
  vectors it loaded (:attr:`jobsim.snapshot.Snapshot.parts`) and writes the lists;
- the corpus rows' vector fingerprints (``jobsim.corpus.Corpus.row_fingerprints``): the former
  hashed every row each run, the current carries each row's from when its vector was read.

    .venv/bin/python bench/snapshot.py [--n 100000] [--dims 1536] [--changed 1500] [--written 22000] [--reps 3]

Each timed call starts after a full ``gc.collect()`` (the list-updates pair then measures the
collections the call itself triggers). Data: ``--n`` synthetic postings (``generate_jobs``, seed 7)
as the snapshot keeps them, a random unit vector each; ``--changed`` re-read: two thirds edited (new
hash and vector), one sixth new, one sixth deleted. Lists: one of 10 entries per job. Methods
interleaved, min of ``--reps``; both must return the same snapshot (and, for fingerprints, distinct
values for distinct lists; for saves, the same snapshot loaded back).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import marshal
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import child_env, cpu_model  # noqa: E402
from jobsim.repositories import JobList, Neighbour, VectorSet  # noqa: E402
from jobsim.candidates import fingerprints  # noqa: E402
from jobsim.listset import list_fingerprint  # noqa: E402
from jobsim.pieces import PiecedRows  # noqa: E402
from jobsim.snapshot import Snapshot, kept, updated  # noqa: E402
from jobsim.stages.neighbours import corpus_at  # noqa: E402
from storage.local_cache import SnapshotStore  # noqa: E402
from jobsim.synthetic import generate_jobs  # noqa: E402
from storage import jobs as jobs_module  # noqa: E402


def former_updated(snapshot: Snapshot, fresh: dict, vectors: VectorSet, lists: dict) -> Snapshot:
    """``updated`` at 5aa00ad (the baseline): the same rows, the matrix gathered anew (from the
    mapped file and the re-read vectors, in one gather with the re-read rows patched in)."""
    got = updated(snapshot, fresh, vectors, lists)  # (and no stored copy named: a save writes every part)
    return replace(got, parts={}, docs_changes={}, vectors=replace(got.vectors, vectors=got.vectors.dense()))


def _matrix(vectors: VectorSet) -> np.ndarray:
    """The matrix as the former kept it: a loaded snapshot's one piece is its mapped file."""
    rows = vectors.vectors
    if not isinstance(rows, PiecedRows):
        return rows
    single = len(rows.pieces) == 1 and len(rows.pieces[0]) == len(rows)
    return rows.pieces[0] if single and np.array_equal(rows.at, np.arange(len(rows))) else rows.dense()


def former_fingerprint(job_list: JobList) -> bytes:
    plain = (tuple(map(tuple, job_list.items)), job_list.group)
    return hashlib.blake2b(marshal.dumps(plain, 2), digest_size=16).digest()


def unit(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    x = rng.standard_normal((n, dims), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def scene(n: int, dims: int, changed: int) -> tuple[Snapshot, dict, VectorSet, list[JobList]]:
    rng, pick = np.random.default_rng(0), random.Random(0)
    docs = {f"s:{i:07d}": kept(d) | {"embedding": {"status": "completed", "contentHash": f"h{i}"}}
            for i, d in enumerate(generate_jobs(n, seed=7))}
    keys = sorted(docs)
    matrix = unit(rng, n, dims)  # with its fingerprints, as a loaded snapshot has them
    snap = Snapshot("t", docs, VectorSet(np.array(keys, dtype=object),
                                         np.array([docs[k]["embedding"]["contentHash"] for k in keys], dtype=object),
                                         matrix, fingerprints(matrix)))
    touched = pick.sample(keys, changed * 5 // 6)
    edited, gone = touched[: changed * 4 // 6], touched[changed * 4 // 6:]
    new = [f"s:n{i:06d}" for i in range(changed // 6)]
    fresh = {k: dict(docs[k], embedding={"status": "completed", "contentHash": f"e{k}"}) for k in edited}
    fresh |= {k: dict(docs[keys[0]], embedding={"status": "completed", "contentHash": f"n{k}"}) for k in new}
    fresh |= dict.fromkeys(gone)
    read = sorted(edited + new)
    vectors = VectorSet(np.array(read, dtype=object),
                        np.array([fresh[k]["embedding"]["contentHash"] for k in read], dtype=object),
                        unit(rng, len(read), dims))
    lists = [JobList(tuple(Neighbour(pick.choice(keys), round(pick.random(), 2), round(pick.random(), 2),
                                     ("category", "city")[: pick.randint(0, 2)]) for _ in range(10)),
                     None if pick.random() < 0.95 else pick.choice(keys)) for _ in range(n)]
    return snap, fresh, vectors, lists


STEPS = ("load", "updated", "corpus_at", "save", "total")


def cycle(folder: str, dims: int, who: str) -> dict:
    """One incremental run's snapshot work, in this process: load the saved snapshot, the re-read
    jobs into it, the corpus, the save. Its step times and a digest of the corpus and of the
    snapshot loaded back."""
    with open(Path(folder) / "changes.pkl", "rb") as source:
        fresh, vectors, now = pickle.load(source)
    store = SnapshotStore(folder, "bench")
    t0 = time.perf_counter()
    loaded = store.load(dims)
    t1 = time.perf_counter()
    got = (former_updated if who == "former" else updated)(loaded, fresh, vectors, loaded.lists)
    t2 = time.perf_counter()
    rows = corpus_at(got, now, 90)
    t3 = time.perf_counter()
    store.save(got)
    t4 = time.perf_counter()
    back = store.load(dims)
    digest = hashlib.blake2b(repr((rows.row_ids.tolist(), rows.job_ids.tolist(), sorted(back.docs.items()),
                                   back.vectors.ids.tolist())).encode())
    digest.update(rows.vectors.tobytes())
    digest.update(back.vectors.dense().tobytes())
    return {"seconds": [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0], "digest": digest.hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=1536)
    parser.add_argument("--changed", type=int, default=1500)
    parser.add_argument("--written", type=int, default=22_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--huge-pages", action="store_true", help="numpy's own page policy in the cycles (default: "
                        "small pages, as a pipeline run with JOBSIM_EXECUTION__NUMPY_HUGE_PAGES off)")
    parser.add_argument("--cycle", choices=("former", "current"), help=argparse.SUPPRESS)  # a child's step
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cycle:
        print(json.dumps(cycle(args.dir, args.dims, args.cycle)))
        return
    snap, fresh, vectors, lists = scene(args.n, args.dims, args.changed)
    times: dict[str, list[float]] = {f"cycle {step}, {who}": [] for step in STEPS for who in ("former", "current")}
    times |= {"fingerprints, former (marshal)": [], "fingerprints, current (words)": [],
              "list updates, GC on": [], "list updates, GC paused": [],
              "save, former (every part)": [], "save, current (lists; rest linked)": [],
              "row fingerprints, former (hashed)": [], "row fingerprints, current (carried)": []}
    written = dict(zip(sorted(snap.docs)[: args.written], lists))
    now = datetime.now(timezone.utc)
    store = SnapshotStore(tempfile.mkdtemp(prefix="jobsim-bench-snapshot-"), "bench")
    store.save(replace(snap, lists={k: list_fingerprint(x) for k, x in zip(sorted(snap.docs), lists)}))
    pristine = store.path.with_name("pristine")
    shutil.copytree(store.path, pristine, copy_function=os.link)  # each cycle starts from this saved snapshot
    new_lists = {k: list_fingerprint(x) for k, x in zip(sorted(snap.docs)[1:], lists)}  # every list moved along
    corpus = corpus_at(updated(snap, fresh, vectors, {}), now, 90)
    assert corpus.fingerprints is not None
    with open(store.path.parent / "changes.pkl", "wb") as out:
        pickle.dump((fresh, vectors, now), out)
    for _ in range(args.reps):
        digests = []
        for who in ("former", "current"):  # each in a fresh process, as a run is
            shutil.rmtree(store.path)
            shutil.copytree(pristine, store.path, copy_function=os.link)
            child = subprocess.run([sys.executable, __file__, "--cycle", who, "--dir", str(store.path.parent),
                                    "--dims", str(args.dims)], check=True, capture_output=True, text=True,
                                   env=child_env(args.huge_pages))
            got = json.loads(child.stdout.splitlines()[-1])
            for step, seconds in zip(STEPS, got["seconds"]):
                times[f"cycle {step}, {who}"].append(seconds)
            digests.append(got["digest"])
        assert digests[0] == digests[1], digests  # the same corpus, and the same snapshot saved
        prints = []
        for name, fn in (("fingerprints, former (marshal)", former_fingerprint),
                         ("fingerprints, current (words)", list_fingerprint)):
            gc.collect()
            t = time.perf_counter()
            prints.append([fn(x) for x in lists])
            times[name].append(time.perf_counter() - t)
        assert all(len(set(p)) == len(set(map(tuple, lists))) for p in prints)
        del prints
        ops = []
        for name, pause in (("list updates, GC on", contextlib.nullcontext), ("list updates, GC paused", None)):
            current = jobs_module.collector_paused
            jobs_module.collector_paused = pause or current
            try:
                gc.collect()
                t = time.perf_counter()
                ops.append(jobs_module.list_updates(written, now, len(lists), 7))
                times[name].append(time.perf_counter() - t)
            finally:
                jobs_module.collector_paused = current
        assert len(ops[0]) == len(ops[1]) == len(written) and ops[0][-1] == ops[1][-1]
        del ops
        for name, keep_parts in (("save, current (lists; rest linked)", True), ("save, former (every part)", False)):
            loaded = store.load(args.dims)
            assert loaded is not None
            dense = replace(loaded.vectors, vectors=_matrix(loaded.vectors))  # the former's matrix: written again
            after = replace(loaded, token=name, lists=new_lists) if keep_parts else replace(
                loaded, token=name, lists=new_lists, parts={}, vectors=dense)
            gc.collect()
            t = time.perf_counter()
            store.save(after)
            times[name].append(time.perf_counter() - t)
            back = store.load(args.dims)
            assert back is not None and back.token == name and back.lists == new_lists and back.docs == loaded.docs
            assert np.array_equal(back.vectors.dense(), loaded.vectors.dense())
            del loaded, after, back
        t = time.perf_counter()
        hashed = fingerprints(corpus.vectors)
        times["row fingerprints, former (hashed)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        carried = corpus.row_fingerprints()
        times["row fingerprints, current (carried)"].append(time.perf_counter() - t)
        assert np.array_equal(hashed, carried)
    print(f"{args.n:,} jobs x {args.dims} dims, {args.changed:,} re-read, {len(lists):,} lists; {cpu_model()}, "
          f"load {os.getloadavg()[0]:.2f}; results equal")
    for name, values in times.items():
        print(f"  {name:37s} min {min(values):6.3f} s   reps {', '.join(f'{v:.3f}' for v in values)}")
    for step in STEPS:
        ratio = min(times[f"cycle {step}, former"]) / min(times[f"cycle {step}, current"])
        print(f"  cycle {step:9s} former / current: {ratio:.1f}x")
    for what, former, current in (("fingerprints", "fingerprints, former (marshal)", "fingerprints, current (words)"),
                                  ("list updates", "list updates, GC on", "list updates, GC paused"),
                                  ("save", "save, former (every part)", "save, current (lists; rest linked)")):
        print(f"  {what:15s} former / current: {min(times[former]) / min(times[current]):.1f}x")
    print(f"  row fingerprints: hashed {min(times['row fingerprints, former (hashed)']):.3f} s, "
          f"carried {min(times['row fingerprints, current (carried)']) * 1e3:.1f} ms")
    shutil.rmtree(store.path.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
