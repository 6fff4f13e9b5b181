"""Neighbours: the active vectors in, every changed list out (the search itself is
:mod:`jobsim.similarity`)."""

from __future__ import annotations

from datetime import datetime

from jobsim.repositories import EmbeddingsRepo, JobsRepo
from jobsim.similarity import ActiveSet, NeighbourResult, active_set, diff_lists
from jobsim.summary import WriteStats


def load_active(jobs: JobsRepo, embeddings: EmbeddingsRepo, model: str, dims: int,
                now: datetime) -> tuple[ActiveSet, int]:
    """Every active job whose stored vector has its current hash, as one float32 matrix
    (rows in key order), and how many vectors were stored in all."""
    contexts = jobs.active_context(now)
    vectors = embeddings.load(model, dims)
    return active_set(vectors, contexts), len(vectors)


def write_changed_lists(jobs: JobsRepo, result: NeighbourResult, now: datetime,
                        recompute_days: int) -> WriteStats:
    """Write the lists that differ from the stored ones (lists of jobs no longer active
    are emptied)."""
    changes, unchanged = diff_lists(result.lists, jobs.stored_lists())
    written = jobs.write_lists(changes, now, len(result.lists), recompute_days) if changes else 0
    cleared = sum(1 for items in changes.values() if not items)
    return WriteStats(written=written, cleared=cleared, unchanged=unchanged)
