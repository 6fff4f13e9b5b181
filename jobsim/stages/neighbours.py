"""Neighbours: the listed jobs' vectors in, every changed list out (the search itself is
:mod:`jobsim.similarity`)."""

from __future__ import annotations

from datetime import datetime

from jobsim.corpus import Corpus, build_corpus
from jobsim.lists import diff_lists
from jobsim.repositories import EmbeddingsRepo, JobsRepo
from jobsim.similarity import NeighbourResult
from jobsim.summary import WriteStats


def load_corpus(jobs: JobsRepo, embeddings: EmbeddingsRepo, model: str, dims: int, now: datetime,
                closed_days: int) -> tuple[Corpus, int]:
    """Every job that gets a list (active, or closed less than ``closed_days`` ago) whose
    stored vector has its current hash, as corpus rows; and how many vectors are stored."""
    contexts = jobs.listing_context(now, closed_days)
    vectors = embeddings.load(model, dims)
    return build_corpus(vectors, contexts), len(vectors)


def write_changed_lists(jobs: JobsRepo, result: NeighbourResult, now: datetime,
                        recompute_days: int) -> WriteStats:
    """Write the lists that differ from the stored ones (jobs that no longer get a list
    are emptied); a list the server refuses is reported, the others are written."""
    changes, unchanged = diff_lists(result.lists, jobs.stored_lists())
    outcome = jobs.write_lists(changes, now, len(result.lists), recompute_days) if changes else None
    cleared = sum(1 for job_list in changes.values() if not job_list.items)
    refused = outcome.refused if outcome else {}
    return WriteStats(written=len(changes) - len(refused), cleared=cleared, unchanged=unchanged, refused=refused)
