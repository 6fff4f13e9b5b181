"""MongoDB implementations of the repository interfaces (:mod:`jobsim.repositories`):
one repository class per collection. Nothing here loads faiss or polars."""

from __future__ import annotations

from jobsim.repositories import Repositories
from jobsim.settings import Settings
from storage.embeddings import EmbeddingsRepository
from storage.job_imports import JobImportsRepository
from storage.jobs import JobsRepository
from storage.mongo import connect
from storage.recompute_requests import RecomputeRequestsRepository
from storage.state import StateRepository


def repositories(settings: Settings) -> Repositories:
    """The pipeline's repositories on the configured database."""
    mongo = settings.mongo
    db = connect(mongo)
    return Repositories(
        jobs=JobsRepository(db, mongo.jobs_collection, mongo.write_batch_size),
        embeddings=EmbeddingsRepository(db, mongo.embeddings_collection, mongo.write_batch_size),
        state=StateRepository(db, mongo.state_collection),
        requests=RecomputeRequestsRepository(db, settings.api.recompute_collection),
    )


def imports(settings: Settings) -> JobImportsRepository:
    """The jobs collection as the bulk import uses it."""
    return JobImportsRepository(connect(settings.mongo), settings.mongo.jobs_collection,
                                settings.mongo.write_batch_size)


__all__ = [
    "EmbeddingsRepository", "JobImportsRepository", "JobsRepository", "RecomputeRequestsRepository",
    "StateRepository", "connect", "imports", "repositories",
]
