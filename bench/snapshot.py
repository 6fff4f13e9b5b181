"""The local snapshot's per-run work on an incremental run (issue 17), current against former:

- ``jobsim.snapshot.updated`` (the re-read jobs into the snapshot): the former decided every
  row again in a Python loop and stacked the matrix row by row; the current decides only the
  re-read jobs' rows;
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
import marshal
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import cpu_model  # noqa: E402
from jobsim.contract import embedding_state  # noqa: E402
from jobsim.repositories import JobList, Neighbour, VectorSet  # noqa: E402
from jobsim.candidates import fingerprints  # noqa: E402
from jobsim.listset import list_fingerprint  # noqa: E402
from jobsim.snapshot import Snapshot, kept, updated  # noqa: E402
from jobsim.stages.neighbours import corpus_at  # noqa: E402
from storage.local_cache import SnapshotStore  # noqa: E402
from jobsim.synthetic import generate_jobs  # noqa: E402
from storage import jobs as jobs_module  # noqa: E402


def former_updated(snapshot: Snapshot, fresh: dict, vectors: VectorSet, lists: dict) -> Snapshot:
    """``updated`` before this change (the baseline)."""
    docs = {k: v for k, v in snapshot.docs.items() if k not in fresh}
    docs.update({k: kept(doc) for k, doc in fresh.items() if doc is not None})
    wanted = {k: embedding_state(d).get("contentHash") for k, d in docs.items()}
    rows: dict = {}
    for source in (snapshot.vectors, vectors):
        for i, key in enumerate(source.ids.tolist()):
            if key in wanted and source.hashes[i] == wanted[key]:
                rows[key] = (source.hashes[i], source.vectors[i])
    keys = sorted(rows)
    dims = snapshot.vectors.vectors.shape[1]
    matrix = np.stack([rows[k][1] for k in keys]) if keys else np.zeros((0, dims), np.float32)
    return Snapshot(token=snapshot.token, docs=docs, lists=lists, vectors=VectorSet(
        ids=np.array(keys, dtype=object), hashes=np.array([rows[k][0] for k in keys], dtype=object),
        vectors=np.ascontiguousarray(matrix, dtype=np.float32)))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=1536)
    parser.add_argument("--changed", type=int, default=1500)
    parser.add_argument("--written", type=int, default=22_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    snap, fresh, vectors, lists = scene(args.n, args.dims, args.changed)
    times: dict[str, list[float]] = {"updated, former": [], "updated, current": [],
                                     "fingerprints, former (marshal)": [], "fingerprints, current (words)": [],
                                     "list updates, GC on": [], "list updates, GC paused": [],
                                     "save, former (every part)": [], "save, current (lists; rest linked)": [],
                                     "row fingerprints, former (hashed)": [], "row fingerprints, current (carried)": []}
    written = dict(zip(sorted(snap.docs)[: args.written], lists))
    now = datetime.now(timezone.utc)
    store = SnapshotStore(tempfile.mkdtemp(prefix="jobsim-bench-snapshot-"), "bench")
    store.save(replace(snap, lists={k: list_fingerprint(x) for k, x in zip(sorted(snap.docs), lists)}))
    new_lists = {k: list_fingerprint(x) for k, x in zip(sorted(snap.docs)[1:], lists)}  # every list moved along
    expected = former_updated(snap, fresh, vectors, {})
    corpus = corpus_at(updated(snap, fresh, vectors, {}), now, 90)
    assert corpus.fingerprints is not None
    for _ in range(args.reps):
        for name, fn in (("updated, former", former_updated), ("updated, current", updated)):
            gc.collect()
            t = time.perf_counter()
            got = fn(snap, fresh, vectors, {})
            times[name].append(time.perf_counter() - t)
            assert got.docs == expected.docs and got.vectors.ids.tolist() == expected.vectors.ids.tolist()
            assert got.vectors.hashes.tolist() == expected.vectors.hashes.tolist()
            assert np.array_equal(got.vectors.vectors, expected.vectors.vectors)
            del got  # each call starts with the same memory held (another live 614 MB result slows the next one)
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
            after = replace(loaded, token=name, lists=new_lists, parts=loaded.parts if keep_parts else {})
            gc.collect()
            t = time.perf_counter()
            store.save(after)
            times[name].append(time.perf_counter() - t)
            back = store.load(args.dims)
            assert back is not None and back.token == name and back.lists == new_lists and back.docs == loaded.docs
            assert np.array_equal(back.vectors.vectors, loaded.vectors.vectors)
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
    names = list(times)
    print(f"  updated      former / current: {min(times[names[0]]) / min(times[names[1]]):.1f}x")
    print(f"  fingerprints former / current: {min(times[names[2]]) / min(times[names[3]]):.1f}x")
    print(f"  list updates former / current: {min(times[names[4]]) / min(times[names[5]]):.1f}x")
    print(f"  save         former / current: {min(times[names[6]]) / min(times[names[7]]):.1f}x")
    print(f"  row fingerprints: hashed {min(times[names[8]]):.3f} s, carried {min(times[names[9]]) * 1e3:.1f} ms")
    shutil.rmtree(store.path.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
