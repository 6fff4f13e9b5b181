"""The local snapshot's matrix in pieces (jobsim.pieces): gathers equal a dense matrix's,
updates copy no row, a store writes only new pieces and compacts when dead rows pile up."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest

from jobsim.pieces import MAX_PIECES, PiecedRows
from jobsim.repositories import VectorSet
from jobsim.snapshot import Snapshot, updated
from storage.local_cache import SnapshotStore
from tests.test_kept_lists import piece_files

DIMS = 6
EMPTY = Snapshot("t", {}, VectorSet(np.zeros(0, object), np.zeros(0, object), np.zeros((0, DIMS), np.float32)))


def vector_set(keys: list[str], hashes: list[str], rng: np.random.Generator) -> VectorSet:
    return VectorSet(np.array(keys, dtype=object), np.array(hashes, dtype=object),
                     rng.standard_normal((len(keys), DIMS)).astype(np.float32))


def saved_pieces(store: SnapshotStore) -> list[str]:
    return [p["name"] for p in json.loads((store.path / "meta.json").read_text())["pieces"]]


def doc(content_hash: str) -> dict:
    return {"status": "active", "embedding": {"status": "completed", "contentHash": content_hash}}


def saved_store(tmp_path, keys: list[str], rng: np.random.Generator) -> SnapshotStore:
    """A store holding a full read of ``keys`` (one vector each)."""
    store = SnapshotStore(tmp_path, "uri", "db", "coll", "m", str(DIMS))
    store.save(updated(EMPTY, {k: doc(f"h{k}") for k in keys}, vector_set(keys, [f"h{k}" for k in keys], rng), {}))
    return store


def test_take_gathers_the_rows_of_a_dense_matrix():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal((m, DIMS)).astype(np.float32) for m in (50, 7, 3))
    piece = rng.integers(0, 3, 40).astype(np.int32)
    at = np.array([rng.integers(0, (50, 7, 3)[p]) for p in piece], dtype=np.int64)
    rows = PiecedRows((a, b, c), piece, at, ("x", "", ""))
    dense = np.stack([(a, b, c)[p][i] for p, i in zip(piece, at)])
    assert np.array_equal(rows.dense(), dense) and rows.dense().flags.c_contiguous
    pick = rng.permutation(40)[:13]
    assert np.array_equal(rows.take(pick), dense[pick]) and rows.shape == (40, DIMS)
    kept = rows.select(piece[piece != 1], at[piece != 1])  # nothing points at b any more: dropped
    assert kept.names == ("x", "") and len(kept.pieces) == 2
    assert np.array_equal(kept.dense(), dense[piece != 1])


def test_updates_never_copy_the_matrix_and_equal_a_dense_reference():
    rng, pick = np.random.default_rng(1), random.Random(1)
    keys = [f"s:{i:03d}" for i in range(60)]
    first = vector_set(keys, [f"h{k}" for k in keys], rng)
    snap = updated(EMPTY, {k: doc(f"h{k}") for k in keys}, first, {})
    reference = {k: first.vectors[i] for i, k in enumerate(keys)}
    for run in range(25):  # each run: a few edited (new vector), one gone, one new, one touched
        edited = pick.sample(sorted(reference), 3)
        gone, new = pick.choice(sorted(set(reference) - set(edited))), f"s:n{run:02d}"
        fresh = {k: doc(f"e{run}{k}") for k in (*edited, new)} | {gone: None}
        touched = pick.choice(sorted(set(reference) - set(fresh)))
        fresh[touched] = dict(snap.docs[touched])
        read = vector_set(sorted([*edited, new]), [f"e{run}{k}" for k in sorted([*edited, new])], rng)
        before = snap.vectors.vectors
        snap = updated(snap, fresh, read, {})
        assert isinstance(snap.vectors.vectors, PiecedRows)
        assert all(any(p is q for q in before.pieces) for p in snap.vectors.vectors.pieces[:-1])  # no copy
        reference.pop(gone)
        reference |= {k: read.vectors[i] for i, k in enumerate(read.ids)}
        assert snap.vectors.ids.tolist() == sorted(reference)
        assert np.array_equal(snap.vectors.dense(), np.stack([reference[k] for k in sorted(reference)]))
    assert len(snap.vectors.vectors.pieces) <= 26


def test_the_store_writes_only_new_pieces_and_compacts_dead_rows(tmp_path):
    rng = np.random.default_rng(2)
    keys = [f"s:{i:04d}" for i in range(400)]
    store = saved_store(tmp_path, keys, rng)
    names = saved_pieces(store)
    for run in range(MAX_PIECES + 4):
        snap = store.load(DIMS)
        assert snap is not None
        edited = keys[run * 5: run * 5 + 5]
        read = vector_set(edited, [f"e{run}{k}" for k in edited], rng)
        expected = snap.vectors.dense()
        expected[run * 5: run * 5 + 5] = read.vectors
        inode = (store.path / f"piece-{names[0]}.npy").stat().st_ino
        store.save(replace(updated(snap, {k: doc(f"e{run}{k}") for k in edited}, read, {}), token=f"r{run}"))
        back = store.load(DIMS)
        assert back is not None and np.array_equal(back.vectors.dense(), expected)
        now = saved_pieces(store)
        if len(now) > 1:  # the pieces held linked, this run's vectors one small new piece
            assert now[:-1] == names and (store.path / f"piece-{names[0]}.npy").stat().st_ino == inode
            assert np.load(store.path / f"piece-{now[-1]}.npy").shape == (5, DIMS)
        else:  # too many pieces: written again as one
            assert run == MAX_PIECES - 1 and np.load(store.path / f"piece-{now[0]}.npy").shape == (400, DIMS)
        names = now
    v = back.vectors  # 300 of the 400 jobs gone: their rows dead in the pieces
    alive = VectorSet(v.ids[:100], v.hashes[:100], v.vectors.select(v.vectors.piece[:100], v.vectors.at[:100]),
                      v.fingerprints[:100])
    store.save(replace(back, vectors=alive, parts={}))
    assert [np.load(store.path / f"piece-{name}.npy").shape for name in saved_pieces(store)] == [(100, DIMS)]
    assert np.array_equal(store.load(DIMS).vectors.dense(), alive.dense())


@pytest.mark.parametrize("damage", ["rows", "piece", "meta"])
def test_a_damaged_matrix_costs_a_full_read(tmp_path, damage):
    rng = np.random.default_rng(3)
    keys = [f"s:{i}" for i in range(20)]
    store = saved_store(tmp_path, keys, rng)
    if damage == "rows":  # a row pointing past its piece
        np.save(store.path / "rows.npy", np.stack([np.zeros(20, np.int64), np.arange(20, dtype=np.int64) + 1]))
    elif damage == "piece":  # a truncated piece
        name = piece_files(store)[0]
        np.save(store.path / name, np.load(store.path / name)[:10])
    else:
        (store.path / piece_files(store)[0]).unlink()
    assert store.load(DIMS) is None


def test_the_store_appends_changed_docs_and_rewrites_them_when_the_log_grows(tmp_path):
    rng = np.random.default_rng(4)
    keys = [f"s:{i:03d}" for i in range(100)]
    store = saved_store(tmp_path, keys, rng)
    expected = store.load(DIMS).docs
    for run in range(6):  # each run: 4 edited (same vector), 1 gone, 1 new: 6 log entries
        snap = store.load(DIMS)
        assert snap is not None and snap.docs == expected
        inode = (store.path / "docs.bson").stat().st_ino
        edited = sorted(snap.docs)[run * 5: run * 5 + 4]
        fresh = {k: dict(snap.docs[k], category=f"c{run}") for k in edited}
        fresh |= {sorted(snap.docs)[run * 5 + 4]: None, f"s:new{run}": dict(doc("x"), category="new")}
        store.save(replace(updated(snap, fresh, vector_set([], [], rng), {}), token=f"r{run}"))
        expected = {k: d for k, d in (expected | fresh).items() if d is not None}
        log = json.loads((store.path / "meta.json").read_text())["docs_log"]
        linked = (store.path / "docs.bson").stat().st_ino == inode
        if run != 4:  # 6 entries a run: a quarter of the docs holds four runs' logs (counted again after run 4)
            assert linked and [e["entries"] for e in log] == [6] * (run + 1 if run < 4 else 1)
        else:  # the log would pass a quarter of the docs: every doc written again, no log
            assert not linked and log == []
    assert store.load(DIMS).docs == expected
