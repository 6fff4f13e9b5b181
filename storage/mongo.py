"""The MongoDB connection shared by the repositories."""

from __future__ import annotations

from functools import lru_cache

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
