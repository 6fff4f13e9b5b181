"""The read side's database connection, and its failures as one line naming the setting to fix.

Messages never carry the URI, the host or a password: only the setting's name and the
error's type (pymongo's own messages may echo parts of the URI).
"""

from __future__ import annotations

import logging

from pymongo.database import Database
from pymongo.errors import (
    ConfigurationError, ConnectionFailure, OperationFailure, PyMongoError,
)

from jobsim.errors import ConfigError
from jobsim.settings import Settings
from storage.job_reads import JobReadsRepository
from storage.mongo import connect

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 2.0  # /health answers 503 within about this when the database is away
_AUTH_CODES = {18, 11}  # AuthenticationFailed, UserNotFound
_DENIED_CODES = {13}  # Unauthorized


def uri_setting(settings: Settings) -> str:
    """The environment variable holding the URI the read side uses."""
    return "JOBSIM_API__MONGO_URI" if settings.api.mongo_uri is not None else "JOBSIM_MONGO__URI"


def read_side_db(settings: Settings) -> Database:
    """The database as the read side's user sees it (``JOBSIM_API__MONGO_URI`` when set).

    A malformed URI raises :class:`ConfigError` naming the setting (pymongo parses it here).
    """
    mongo = settings.mongo
    if settings.api.mongo_uri is not None:
        mongo = mongo.model_copy(update={"uri": settings.api.mongo_uri})
    try:
        return connect(mongo)
    except ConfigurationError as exc:
        raise ConfigError(describe_database_error(exc, settings)) from None


def describe_database_error(exc: PyMongoError, settings: Settings) -> str:
    """One line saying what went wrong and which setting to fix (no URI, host or secret)."""
    setting, kind = uri_setting(settings), type(exc).__name__
    if isinstance(exc, ConfigurationError):
        return f"{setting} is not a usable MongoDB URI ({kind}): fix {setting}"
    if isinstance(exc, OperationFailure) and exc.code in _AUTH_CODES:
        return f"MongoDB refused the credentials in {setting} (authentication failed): fix the user/password in {setting}"
    if isinstance(exc, OperationFailure) and exc.code in _DENIED_CODES:
        return (f"the MongoDB user of {setting} may not read database {settings.mongo.database!r} "
                f"(unauthorized): grant it read access or fix {setting} / JOBSIM_MONGO__DATABASE")
    if isinstance(exc, ConnectionFailure):
        return (f"cannot reach MongoDB at the URI in {setting} ({kind}): check {setting} "
                "and that the server is running")
    return f"MongoDB error ({kind}) on the database of {setting}: check {setting}"


def check_database(settings: Settings, timeout_s: float | None = None) -> None:
    """Ping the read side's database; :class:`ConfigError` (one line) when it cannot be used."""
    timeout_s = timeout_s if timeout_s is not None else settings.mongo.timeout_ms / 1000
    try:
        db = read_side_db(settings)
        JobReadsRepository(db, settings.mongo.jobs_collection).ping(timeout_s)
    except PyMongoError as exc:
        raise ConfigError(describe_database_error(exc, settings)) from None
