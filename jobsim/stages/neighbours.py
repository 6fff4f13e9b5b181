"""Neighbours: the listed jobs' vectors in (from a full read, or from the local snapshot plus
what this run changed), every changed list out. The search itself is :mod:`jobsim.similarity`."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime

import numpy as np

from jobsim.contract import embedding_state
from jobsim.corpus import Corpus, build_corpus
from jobsim.report import Histogram
from jobsim.repositories import EmbeddingsRepo, JobsRepo, StateRepo, VectorSet
from jobsim.similarity import NeighbourResult, NeighbourStats
from jobsim.snapshot import UNREADABLE, Origin, Snapshot, diff_fingerprints, lists_hold, stored_fingerprints, updated
from jobsim.summary import WriteStats


def full_snapshot(jobs: JobsRepo, embeddings: EmbeddingsRepo, model: str, dims: int, now: datetime,
                  closed_days: int) -> Snapshot:
    """Everything the neighbour stage reads, from the database (O(jobs))."""
    return updated(Snapshot("", {}, _no_vectors(dims)), jobs.listed_docs(now, closed_days),
                   embeddings.load(model, dims), stored_fingerprints(jobs.stored_lists()))


def _no_vectors(dims: int) -> VectorSet:
    return VectorSet(np.zeros(0, dtype=object), np.zeros(0, dtype=object), np.zeros((0, dims), np.float32))


def refreshed_snapshot(jobs: JobsRepo, embeddings: EmbeddingsRepo, snapshot: Snapshot, pulled: list[str],
                       model: str, dims: int) -> tuple[Snapshot, int, bool]:
    """The snapshot with this run's pulled jobs re-read (O(changed)): their fields, their
    vectors when their hash changed, and what is stored on them (an app may copy or clear
    pipeline fields when it edits a posting). Returns it, how many vectors were read, and
    whether anything re-read differs from the snapshot (if not, it is returned as it was)."""
    fresh = jobs.listing_docs(pulled)
    stored = stored_fingerprints(jobs.stored_lists(pulled))
    have = dict(zip(snapshot.vectors.ids.tolist(), snapshot.vectors.hashes.tolist()))
    need = [k for k, d in fresh.items() if d is not None and embedding_state(d).get("contentHash") != have.get(k)]
    if snapshot.holds(fresh, stored) and not any(embedding_state(fresh[k]).get("status") == "completed" for k in need):
        return snapshot, 0, False  # (a job waiting for its first vector has no hash to look up)
    vectors = embeddings.load(model, dims, need) if need else _no_vectors(dims)
    lists = {k: v for k, v in snapshot.lists.items() if k not in fresh} | stored
    return updated(snapshot, fresh, vectors, lists), len(need), True


def kept_lists(snapshot: Snapshot, now: datetime, closed_days: int,
               fingerprint: str) -> tuple[NeighbourResult | None, str]:
    """When nothing that decides a list changed since the snapshot's lists were made (its
    re-read jobs are unchanged: :func:`refreshed_snapshot`), the result that keeps them:
    no lists to write (``lists`` None), the stats and checks of the lists as made. Else
    (None, why they must be recomputed)."""
    why = lists_hold(snapshot, now, closed_days, fingerprint)
    if why:
        return None, why
    origin = snapshot.origin
    assert origin is not None  # lists_hold checked it
    made = NeighbourStats(**origin.stats)
    stats = replace(made, mode="unchanged", seconds=0.0, search_seconds=0.0, rerank_seconds=0.0, full_pass_reason="",
                    added=0, removed=0, recomputed=0, churn=0.0, shards=0,
                    plan=f"the lists made at {origin.at.isoformat()} ({made.mode}) hold: nothing that decides "
                         "a list changed since")
    histogram = Histogram(**origin.histogram) if origin.histogram else None
    return NeighbourResult(lists=None, stats=stats, checks=dict(origin.checks), histogram=histogram), ""


def corpus_at(snapshot: Snapshot, now: datetime, closed_days: int) -> Corpus:
    """The jobs that get a list at ``now`` and their vectors, one row per distinct text."""
    return build_corpus(snapshot.vectors, snapshot.contexts(now, closed_days))


def write_changed_lists(jobs: JobsRepo, state: StateRepo, result: NeighbourResult, snapshot: Snapshot,
                        run_id: str, now: datetime, recompute_days: int,
                        fingerprint: str) -> tuple[WriteStats, Snapshot]:
    """Write the lists that differ from the stored ones (jobs that no longer get a list are
    emptied) and the snapshot that now matches the database, with how its lists were made
    (``fingerprint``: :func:`jobsim.snapshot.lists_fingerprint`). A list the server refuses
    is reported and tried again next run. The database records which run's write-back it
    reflects, before and after, so a snapshot of an interrupted write-back is never used.
    Kept lists (:func:`kept_lists`) write nothing and leave the snapshot as it is."""
    if result.lists is None:
        return WriteStats(unchanged=result.stats.jobs), snapshot
    changes, unchanged, after = diff_fingerprints(result.lists, snapshot.lists)
    refused: dict[str, str] = {}
    if changes:
        state.mark_write_back(run_id, "writing")
        refused = jobs.write_lists(changes, now, len(result.lists), recompute_days).refused
    state.mark_write_back(run_id, "written")
    after.update(dict.fromkeys(refused, UNREADABLE))
    cleared = sum(1 for job_list in changes.values() if not job_list.items)
    stats = WriteStats(written=len(changes) - len(refused), cleared=cleared, unchanged=unchanged, refused=refused)
    origin = Origin(at=now, fingerprint=fingerprint, stats=result.stats.as_dict(), checks=dict(result.checks),
                    histogram=asdict(result.histogram) if result.histogram else None)
    return stats, replace(snapshot, token=run_id, lists=after, origin=origin)
