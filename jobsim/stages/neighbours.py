"""Neighbours: the listed jobs' vectors in (from a full read, or from the local snapshot plus
what this run changed), every changed list out. The search itself is :mod:`jobsim.similarity`."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from jobsim.contract import embedding_state
from jobsim.corpus import Corpus, build_corpus
from jobsim.repositories import EmbeddingsRepo, JobsRepo, StateRepo, VectorSet
from jobsim.similarity import NeighbourResult
from jobsim.snapshot import UNREADABLE, Snapshot, diff_fingerprints, stored_fingerprints, updated
from jobsim.summary import WriteStats

def full_snapshot(jobs: JobsRepo, embeddings: EmbeddingsRepo, model: str, dims: int, now: datetime,
                  closed_days: int) -> Snapshot:
    """Everything the neighbour stage reads, from the database (O(jobs))."""
    return updated(Snapshot("", {}, _no_vectors(dims)), jobs.listed_docs(now, closed_days),
                   embeddings.load(model, dims), stored_fingerprints(jobs.stored_lists()))


def _no_vectors(dims: int) -> VectorSet:
    return VectorSet(np.zeros(0, dtype=object), np.zeros(0, dtype=object), np.zeros((0, dims), np.float32))


def refreshed_snapshot(jobs: JobsRepo, embeddings: EmbeddingsRepo, snapshot: Snapshot, pulled: list[str],
                       model: str, dims: int) -> tuple[Snapshot, int]:
    """The snapshot with this run's pulled jobs re-read (O(changed)): their fields, their
    vectors when their hash changed, and what is stored on them (an app may copy or clear
    pipeline fields when it edits a posting). Returns it and how many vectors were read."""
    fresh = jobs.listing_docs(pulled)
    have = dict(zip(snapshot.vectors.ids.tolist(), snapshot.vectors.hashes.tolist()))
    need = [k for k, d in fresh.items() if d is not None and embedding_state(d).get("contentHash") != have.get(k)]
    vectors = embeddings.load(model, dims, need) if need else _no_vectors(dims)
    lists = {k: v for k, v in snapshot.lists.items() if k not in fresh} | stored_fingerprints(jobs.stored_lists(pulled))
    return updated(snapshot, fresh, vectors, lists), len(need)


def corpus_at(snapshot: Snapshot, now: datetime, closed_days: int) -> Corpus:
    """The jobs that get a list at ``now`` and their vectors, one row per distinct text."""
    return build_corpus(snapshot.vectors, snapshot.contexts(now, closed_days))


def write_changed_lists(jobs: JobsRepo, state: StateRepo, result: NeighbourResult, snapshot: Snapshot,
                        run_id: str, now: datetime, recompute_days: int) -> tuple[WriteStats, Snapshot]:
    """Write the lists that differ from the stored ones (jobs that no longer get a list are
    emptied) and the snapshot that now matches the database. A list the server refuses is
    reported and tried again next run. The database records which run's write-back it
    reflects, before and after, so a snapshot of an interrupted write-back is never used."""
    changes, unchanged, after = diff_fingerprints(result.lists, snapshot.lists)
    refused: dict[str, str] = {}
    if changes:
        state.mark_write_back(run_id, "writing")
        refused = jobs.write_lists(changes, now, len(result.lists), recompute_days).refused
    state.mark_write_back(run_id, "written")
    after.update(dict.fromkeys(refused, UNREADABLE))
    cleared = sum(1 for job_list in changes.values() if not job_list.items)
    stats = WriteStats(written=len(changes) - len(refused), cleared=cleared, unchanged=unchanged, refused=refused)
    return stats, Snapshot(token=run_id, docs=snapshot.docs, vectors=snapshot.vectors, lists=after)
