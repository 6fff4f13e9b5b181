"""Shared task options: retries only for transient I/O failures, with backoff and jitter."""

from __future__ import annotations

from typing import Any

import httpx
import openai
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from pymongo.errors import AutoReconnect, ConnectionFailure, NetworkTimeout

from jobsim.errors import TransientError

TRANSIENT = (ConnectionFailure, AutoReconnect, NetworkTimeout, TransientError,
             openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
             openai.InternalServerError, httpx.TransportError)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure was transient."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - classify, then decide
        return is_transient(exc)
    return False


IO_TASK = dict(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
    cache_policy=NO_CACHE,
    persist_result=False,
)
PURE_TASK = dict(cache_policy=NO_CACHE, persist_result=False)
