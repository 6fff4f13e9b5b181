"""Every error a command can end with, as one line that names what to fix, and an exit code.

Exit codes: 0 done; 1 the command ran but could not do its work (nothing importable, a run
that failed); 2 bad input (arguments, a setting, an unreadable file); 3 a service could not
be reached or refused us (MongoDB, the embedding service, the Prefect API); 130 interrupted.
Secrets (a URI's password, an API key) are removed from every line printed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from jobsim import localstack
from jobsim.errors import ConfigError, EmbeddingError, ImportFileError, JobsimError
from jobsim.settings import Settings

DONE, FAILED, BAD_INPUT, SERVICE, INTERRUPTED = 0, 1, 2, 3, 130
_URI_USER = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}")


@dataclass(frozen=True)
class Failure:
    code: int
    line: str


def secrets_of(settings: Settings | None) -> list[str]:
    """The secret values in ``settings`` (URIs, their passwords, the API key)."""
    if settings is None:
        return []
    found = []
    for secret in (settings.mongo.uri, settings.api.mongo_uri, settings.embedding.api_key):
        value = secret.get_secret_value() if secret is not None else ""
        if value:
            found.append(value)
            password = _password(value)
            if password:
                found.append(password)
    return sorted(found, key=len, reverse=True)


def _password(uri: str) -> str | None:
    try:
        return urlsplit(uri).password
    except ValueError:
        match = re.search(r"://[^:/@]*:([^@/]+)@", uri)
        return match.group(1) if match else None


def scrub(text: str, settings: Settings | None) -> str:
    """``text`` without any secret: known values, credentials in URIs, API-key-like tokens."""
    for secret in secrets_of(settings):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return _KEY.sub("sk-***", _URI_USER.sub(r"\g<scheme>***@", text))


def where(uri: str) -> str:
    """A MongoDB URI as it may be shown: scheme and hosts, never user or password."""
    try:
        parts = urlsplit(uri)
        hosts = parts.netloc.rsplit("@", 1)[-1]
        return f"{parts.scheme}://{hosts}" if parts.scheme and hosts else "(unparseable URI)"
    except ValueError:
        return "(unparseable URI)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def describe(exc: BaseException, settings: Settings | None) -> Failure:
    """The one line and exit code for ``exc``; secrets scrubbed."""
    for kinds, explain in _rules():
        if isinstance(exc, kinds):
            failure = explain(exc, settings)
            break
    else:
        failure = Failure(FAILED, f"unexpected {type(exc).__name__}: {_first_line(exc)} "
                                  "(run again with --debug for the traceback)")
    notes = " — ".join(getattr(exc, "__notes__", []) or [])
    line = f"{failure.line} — {notes}" if notes else failure.line
    return Failure(failure.code, scrub(line, settings))


def _mongo_place(settings: Settings | None) -> str:
    if settings is None:
        return "MongoDB"
    uri = settings.mongo.uri.get_secret_value()
    recorded = localstack.mongo()
    if recorded and recorded["uri"] == uri:
        return (f"the local MongoDB recorded in {localstack.RECORD} ({where(uri)}; "
                "`jobsim db start` restarts it)")
    return f"MongoDB at {where(uri)}"


def _mongo(exc: BaseException, settings: Settings | None) -> Failure:
    from pymongo import errors

    place = _mongo_place(settings)
    timeout = settings.mongo.timeout_ms if settings else "?"
    if isinstance(exc, (errors.InvalidURI, errors.ConfigurationError)):
        return Failure(BAD_INPUT, f"JOBSIM_MONGO__URI is not a valid MongoDB URI ({_first_line(exc)})")
    if isinstance(exc, errors.OperationFailure) and exc.code == 13:
        return Failure(SERVICE, f"{place}: the user in JOBSIM_MONGO__URI may not do this "
                                f"({_first_line(exc)})")
    if isinstance(exc, errors.OperationFailure) and (exc.code == 18 or "authentication" in str(exc).lower()):
        return Failure(SERVICE, f"{place} refused the user name or password (authentication "
                                "failed): fix the credentials in JOBSIM_MONGO__URI")
    if isinstance(exc, (errors.NetworkTimeout, errors.ExecutionTimeout, errors.WTimeoutError)):
        return Failure(SERVICE, f"{place} did not answer in time (JOBSIM_MONGO__TIMEOUT_MS={timeout})")
    if isinstance(exc, errors.ConnectionFailure):
        return Failure(SERVICE, f"cannot reach {place} within {timeout} ms: is it running? "
                                "Set JOBSIM_MONGO__URI to a running server")
    return Failure(SERVICE, f"{place} failed: {_first_line(exc)} (JOBSIM_MONGO__URI)")


def _embedding(exc: BaseException, settings: Settings | None) -> Failure:
    import openai

    cfg = settings.embedding if settings else None
    service = f"the embedding service at {getattr(exc, 'service', None) or (cfg and cfg.base_url) or 'api.openai.com'}"
    status = getattr(exc, "status_code", None)
    if status is None:
        found = re.search(r"HTTP (\d{3})", str(exc))
        status = int(found.group(1)) if found else None
    if status in (401, 403):
        return Failure(SERVICE, f"{service} refused the API key (HTTP {status}): set "
                                "JOBSIM_EMBEDDING__API_KEY")
    if status == 404:
        model = cfg.model if cfg else "?"
        return Failure(SERVICE, f"{service} has no model {model!r} (HTTP 404): set "
                                "JOBSIM_EMBEDDING__MODEL (or JOBSIM_EMBEDDING__BASE_URL)")
    if isinstance(exc, (openai.APIConnectionError,)) or "unavailable" in str(exc) or "cannot reach" in str(exc):
        return Failure(SERVICE, f"cannot reach {service}: set JOBSIM_EMBEDDING__BASE_URL to a "
                                "running OpenAI-compatible server")
    return Failure(SERVICE, f"{service} failed: {_first_line(exc)}")


def _validation(exc: BaseException, settings: Settings | None) -> Failure:
    error = exc.errors()[0]  # type: ignore[attr-defined]
    name = "JOBSIM_" + "__".join(str(part) for part in error["loc"]).upper()
    return Failure(BAD_INPUT, f"invalid setting {name}: {error['msg']}")  # never the value


def _prefect(exc: BaseException, settings: Settings | None) -> Failure:
    text = _first_line(exc)
    if "ephemeral" in text.lower():
        return Failure(SERVICE, "the temporary Prefect server did not start in time: raise "
                                "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or set PREFECT_API_URL "
                                "to a running server (scripts/stack.sh up)")
    return Failure(SERVICE, f"cannot reach the Prefect API ({text}): check PREFECT_API_URL "
                            "(scripts/stack.sh status) or unset it to use a temporary server")


def _rules() -> list[tuple[type | tuple[type, ...], Callable[[BaseException, Settings | None], Failure]]]:
    import httpx
    import openai
    import pydantic
    from pymongo.errors import PyMongoError

    return [
        (KeyboardInterrupt, lambda e, s: Failure(INTERRUPTED, "interrupted")),
        (pydantic.ValidationError, _validation),
        ((ImportFileError, ConfigError), lambda e, s: Failure(BAD_INPUT, _first_line(e))),
        (PyMongoError, _mongo),
        ((EmbeddingError, openai.OpenAIError), _embedding),
        (httpx.HTTPError, _prefect),
        (RuntimeError, lambda e, s: _prefect(e, s) if "prefect" in str(e).lower() else
         Failure(FAILED, f"unexpected RuntimeError: {_first_line(e)} (run again with --debug)")),
        (JobsimError, lambda e, s: Failure(FAILED, _first_line(e))),
    ]



