"""MongoDB connection and id conversion shared by the repositories."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from bson import ObjectId
from pymongo import MongoClient
from pymongo.database import Database

from jobsim.settings import MongoSettings


@lru_cache(maxsize=8)
def _client(uri: str, timeout_ms: int) -> MongoClient:
    return MongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms, 60_000),
        appname="jobsim",
    )


def connect(settings: MongoSettings) -> Database:
    """The configured database (clients are pooled per URI within a process)."""
    return _client(settings.uri.get_secret_value(), settings.timeout_ms)[settings.database]


def job_key(mongo_id: Any) -> str:
    """A job's id as the pipeline carries it: the string form of ``_id``."""
    return str(mongo_id)


def to_mongo_id(key: str) -> Any:
    """Back from :func:`job_key`: 24-hex strings are ObjectIds, other ids stay strings."""
    return ObjectId(key) if len(key) == 24 and ObjectId.is_valid(key) else key
