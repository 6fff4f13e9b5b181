"""I/O adapters: one repository class per MongoDB collection."""

from __future__ import annotations

from dataclasses import dataclass

from jobsim.settings import MongoSettings
from storage.embeddings import EmbeddingsRepository, VectorSet
from storage.jobs import EmbeddedMark, JobsRepository, Neighbours
from storage.mongo import connect, job_key, to_mongo_id
from storage.state import StateRepository


@dataclass(frozen=True)
class Repositories:
    jobs: JobsRepository
    embeddings: EmbeddingsRepository
    state: StateRepository


def repositories(settings: MongoSettings) -> Repositories:
    """The three repositories on the configured database."""
    db = connect(settings)
    return Repositories(
        jobs=JobsRepository(db, settings.jobs_collection, settings.write_batch_size),
        embeddings=EmbeddingsRepository(db, settings.embeddings_collection, settings.write_batch_size),
        state=StateRepository(db, settings.state_collection),
    )


__all__ = [
    "EmbeddedMark", "EmbeddingsRepository", "JobsRepository", "Neighbours", "Repositories",
    "StateRepository", "VectorSet", "connect", "job_key", "repositories", "to_mongo_id",
]
