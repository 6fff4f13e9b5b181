"""A local snapshot of what the database held after the last write-back, so an incremental
run reads only what changed.

It keeps, for every job that had a list role (active or recently closed) and a completed
embedding, the raw fields the neighbour stage reads and its vector, plus a fingerprint of
every list written. An incremental run re-reads only the jobs it pulled (every edit bumps
``updatedAt``, every embedding state change is made by a run on jobs it pulled) and their
vectors; roles that change with time alone (expiry, the closed-list window) are recomputed
from the kept fields by the contract's own rule. The database stays the truth: storage
keeps the snapshot only while the database says the last write-back was the snapshot's
(a token), so a missing, foreign or stale snapshot costs a full read, never a wrong list.
Jobs deleted from the collection outside the contract (which deletes with ``isDeleted``)
are noticed by the next full run.

It also records how its lists were made (:class:`Origin`): when, under which settings and
code, and what they looked like. A run whose re-read jobs are all as the snapshot has them
keeps the stored lists without recomputing them when :func:`lists_hold` says nothing else
that decides a list changed since (no role changed with time, same settings and code, no
stored list waiting to be rewritten).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from jobsim.candidates import fingerprints
from jobsim.contract import ACTIVE, embedding_state, listing_role
from jobsim.listset import EMPTY, ListSet, list_fingerprint
from jobsim.pieces import PiecedRows, gather
from jobsim.repositories import JobContexts, JobList, VectorSet
from jobsim.settings import NeighbourSettings

# the raw fields kept per job (dotted paths as projected from MongoDB)
FIELDS = ("status", "isDeleted", "expiresAt", "updatedAt", "createdAt", "category", "experienceLevel",
          "location", "company", "embedding")


def kept(doc: dict[str, Any]) -> dict[str, Any]:
    """The fields of a raw job document the snapshot keeps (the embedding's hash and status only)."""
    out = {f: doc[f] for f in FIELDS if f in doc and f != "embedding"}
    state = embedding_state(doc)
    out["embedding"] = {k: state[k] for k in ("status", "contentHash") if k in state}
    return out


UNREADABLE = b"unreadable"  # a stored list that must be rewritten, whatever is computed


def stored_fingerprints(stored: dict[str, JobList | None]) -> dict[str, bytes]:
    """Fingerprints of what a repository's ``stored_lists`` read (None = unreadable)."""
    return {k: UNREADABLE if v is None else list_fingerprint(v) for k, v in stored.items()}


@cache
def _code_digest() -> str:
    """A digest of the core's source (jobsim/**/*.py): new code may make other lists."""
    digest = hashlib.blake2b(digest_size=16)
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def lists_fingerprint(cfg: NeighbourSettings) -> str:
    """What decides a list besides the data: the neighbour settings and the core's code."""
    settings = cfg.model_dump_json(exclude={"state_dir"})
    return hashlib.blake2b(f"{settings}\0{_code_digest()}".encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Origin:
    """How a snapshot's lists were made, and what they looked like (for the run summary)."""

    at: datetime  # the time the lists were computed for (that run's start)
    fingerprint: str  # :func:`lists_fingerprint` of that run
    stats: dict[str, Any]  # jobsim.similarity.NeighbourStats.as_dict() of that pass
    checks: dict[str, Any]  # jobsim.listset.ListSet.checks of the lists
    histogram: dict[str, Any] | None = None  # asdict of jobsim.report.Histogram of their scores


@dataclass
class Snapshot:
    token: str  # the run whose write-back this snapshot reflects
    docs: dict[str, dict[str, Any]]  # job key -> kept fields
    vectors: VectorSet  # the kept jobs' current vectors (keys, hashes, rows)
    lists: dict[str, bytes] = field(default_factory=dict)  # job key -> fingerprint of what is stored
    origin: Origin | None = None  # how the lists behind ``lists`` were made (None: unknown)
    # the stored copies ``docs`` and ``vectors`` were read from ("docs"/"vectors" -> the copy's
    # id, set by the local cache that loaded them); a snapshot whose docs or vectors are new
    # has none for them. A copy named here is reused as it is, not written again; the docs'
    # copy with ``docs_changes`` (job key -> kept fields, None = gone) appended to it.
    parts: dict[str, str] = field(default_factory=dict, compare=False)
    docs_changes: dict[str, dict[str, Any] | None] = field(default_factory=dict, compare=False)

    _roles: dict[tuple[datetime, int], dict[str, str]] = field(default_factory=dict, init=False, repr=False,
                                                                compare=False)

    def roles(self, now: datetime, closed_days: int) -> dict[str, str]:
        """The jobs that get a list at ``now`` and their roles, by the contract's rule (roles
        change with time). Remembered per (now, closed_days): the docs are never changed in place."""
        key = (now, closed_days)
        if key not in self._roles:
            roles = {k: listing_role(doc, now, closed_days) for k, doc in self.docs.items()
                     if embedding_state(doc).get("status") == "completed"}
            self._roles[key] = {k: role for k, role in roles.items() if role is not None}
        return self._roles[key]

    def contexts(self, now: datetime, closed_days: int) -> JobContexts:
        """The jobs that get a list at ``now`` (:meth:`roles`), with their fields."""
        out = JobContexts()
        roles = self.roles(now, closed_days)
        for key in sorted(roles):
            out.append(key, self.docs[key], active=roles[key] == ACTIVE)
        return out

    def holds(self, fresh: dict[str, dict[str, Any] | None], lists: dict[str, bytes]) -> bool:
        """Whether re-read jobs (None = gone) and their stored lists' fingerprints are as kept here."""
        return all((doc is None and key not in self.docs) or (doc is not None and kept(doc) == self.docs.get(key))
                   for key, doc in fresh.items()) and all(lists.get(k) == self.lists.get(k) for k in fresh)


def lists_hold(snapshot: Snapshot, now: datetime, closed_days: int, fingerprint: str) -> str:
    """Why the lists the snapshot reflects may not be this run's ('' = they are), given that
    every job re-read this run is as the snapshot has it (:meth:`Snapshot.holds`)."""
    origin = snapshot.origin
    if origin is None:
        return "no record of how the stored lists were made"
    if origin.fingerprint != fingerprint:
        return "the neighbour settings or the code changed"
    if UNREADABLE in snapshot.lists.values():
        return "a stored list is to be rewritten"
    if snapshot.roles(origin.at, closed_days) != snapshot.roles(now, closed_days):
        return "a job's role changed with time (expired, or past the closed-list window)"
    return ""


def updated(snapshot: Snapshot, fresh: dict[str, dict[str, Any] | None], vectors: VectorSet,
            lists: dict[str, bytes]) -> Snapshot:
    """``snapshot`` with the re-read jobs replaced (None = the job is gone), their vectors and
    the stored lists' fingerprints ``lists``: ``vectors`` holds those read again, the others
    keep theirs when their hash is unchanged."""
    changes = {k: kept(doc) if doc is not None else None for k, doc in fresh.items()}
    docs = {k: v for k, v in snapshot.docs.items() if k not in fresh}
    docs.update({k: doc for k, doc in changes.items() if doc is not None})
    # A snapshot's rows are exactly its jobs whose vector hash is the job's (this function
    # keeps no other), so only the re-read jobs' rows are decided again: O(changed) in Python.
    old = snapshot.vectors
    old_ids = old.ids.tolist()
    at_old = {k: i for i, k in enumerate(old_ids)}
    at_read = {k: i for i, k in enumerate(vectors.ids.tolist())}
    from_old, from_read = [], []
    for key, doc in fresh.items():
        if doc is None:  # gone: no row
            continue
        want, i, j = embedding_state(docs[key]).get("contentHash"), at_read.get(key), at_old.get(key)
        if i is not None and vectors.hashes[i] == want:  # the re-read vector wins
            from_read.append(i)
        elif j is not None and old.hashes[j] == want:
            from_old.append(j)
    untouched = np.flatnonzero(np.fromiter((k not in fresh for k in old_ids), dtype=bool, count=len(old_ids)))
    # the rows in key order: the untouched ones (already in order) with the re-decided ones
    # inserted; each row as (source, index), 0 = the snapshot, 1 = the re-read vectors
    extra_src = np.repeat(np.array([0, 1], dtype=np.int8), [len(from_old), len(from_read)])
    extra_idx = np.array(from_old + from_read, dtype=np.int64)
    extra_keys = np.concatenate([old.ids[from_old], vectors.ids[from_read]])
    by_key = np.argsort(extra_keys, kind="stable")
    extra_src, extra_idx, extra_keys = extra_src[by_key], extra_idx[by_key], extra_keys[by_key]
    n = len(untouched) + len(extra_idx)
    at = np.searchsorted(old.ids[untouched], extra_keys) + np.arange(len(extra_idx))
    src, idx = np.zeros(n, dtype=np.int8), np.empty(n, dtype=np.int64)
    rest = np.ones(n, dtype=bool)
    rest[at] = False
    idx[rest], src[at], idx[at] = untouched, extra_src, extra_idx
    sources = (old, vectors)  # each row's fingerprint is carried with it: computed once, for the rows read
    fps = [x.fingerprints if x.fingerprints is not None else fingerprints(x.dense()) for x in sources]
    # the matrix is not copied: the rows kept point where they did, the rows read into a new piece
    rows = old.vectors if isinstance(old.vectors, PiecedRows) else PiecedRows.of(old.vectors)
    kept_row = src == 0
    piece, row_at = np.full(n, len(rows.pieces), dtype=np.int32), idx.copy()
    piece[kept_row], row_at[kept_row] = rows.piece[idx[kept_row]], rows.at[idx[kept_row]]
    base = {"docs": snapshot.parts["docs"]} if "docs" in snapshot.parts else {}  # the docs' copy, and what changed
    return Snapshot(token=snapshot.token, docs=docs, lists=lists, parts=base,
                    docs_changes=snapshot.docs_changes | changes if base else {}, vectors=VectorSet(
        ids=gather([x.ids for x in sources], src, idx), hashes=gather([x.hashes for x in sources], src, idx),
        vectors=rows.select(piece, row_at, vectors.dense() if len(from_read) else None),
        fingerprints=gather(fps, src, idx)))


def diff_fingerprints(new: Mapping[str, JobList], stored: dict[str, bytes]) -> tuple[dict[str, JobList], int, dict[str, bytes]]:
    """Lists to write against the fingerprints of the stored ones (changed entries,
    explanations or group; unreadable stored ones; jobs that no longer get a list but have
    one stored get an empty one), how many are unchanged, and the fingerprints after the write.
    A :class:`ListSet` is fingerprinted from its arrays and builds only the lists that changed."""
    keys = list(new)
    fps = new.fingerprints() if isinstance(new, ListSet) else [list_fingerprint(v) for v in new.values()]
    changed = [i for i, (key, fp) in enumerate(zip(keys, fps)) if fp != stored.get(key, EMPTY)]
    changes = new.materialize(changed) if isinstance(new, ListSet) else {keys[i]: new[keys[i]] for i in changed}
    after = {key: fp for key, fp in zip(keys, fps) if fp != EMPTY}
    for key in stored.keys() - set(keys):
        if stored[key] != EMPTY:
            changes[key] = JobList(())
    return changes, len(new) - len(changed), after
