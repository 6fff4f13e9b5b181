"""Retry policy: what a failed embedding request means, and how long to wait before the next.

Every failure is one of three kinds:

- **transient** (429, 408, 409, 5xx, timeout, connection error, unreadable response): not
  about the inputs; retried with backoff, and when the retries run out the batch's rows
  come back *transient* (the caller leaves them pending). Never split.
- **input** (any other 4xx, e.g. 400 for one bad input): about the batch's inputs; never
  retried as is, the batch is split in halves down to the offending input.
- **fatal** (401/403/404: credentials, permission, model): no input can succeed; the whole
  ``embed`` call stops and raises ``EmbeddingError``.

Waits: what the server asks for (``retry-after-ms``, ``Retry-After`` in seconds or as an
HTTP date, then the exhausted limit's ``x-ratelimit-reset-*``), else exponential backoff
``base·2^n`` with equal jitter; both capped at ``retry_max_delay_s``.
"""

from __future__ import annotations

import email.utils
import enum
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import openai

FATAL_STATUSES = frozenset({401, 403, 404})  # credentials or model: no input can succeed
RETRY_STATUSES = frozenset({408, 409})  # request timeout, conflict: transient 4xx (as openai's own)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
RATE_LIMITED = "rate limited (429)"


class Kind(enum.Enum):
    """What a failed request says about its batch."""

    TRANSIENT = "transient"
    INPUT = "input"
    FATAL = "fatal"


@dataclass(frozen=True)
class Failure:
    """One failed request, classified. ``cause`` is short and stable (it groups failures)."""

    kind: Kind
    cause: str  # "HTTP 500", "rate limited (429)", "request timeout", "connection error", ...
    detail: str = ""  # the server's message, the exception's class, ...
    wait: float | None = None  # what the server asked us to wait (uncapped), None = unsaid

    def reason(self, requests: int = 1) -> str:
        """One line for the operator, e.g. ``rate limited (429) 3 times``."""
        text = self.cause if requests == 1 else f"{self.cause} {requests} times"
        if self.kind is Kind.INPUT:
            text = f"embedding request rejected: {text}"
        elif self.kind is Kind.FATAL:
            text = f"embedding request refused: {text}"
        return f"{text} ({self.detail})" if self.detail else text


def classify(exc: Exception, timeout_s: float) -> Failure | None:
    """The failure ``exc`` (raised by one request) stands for; None when it is not a
    request failure at all (a bug: the caller re-raises it)."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = short(getattr(exc, "message", "") or str(exc))
        if status == 429:
            return Failure(Kind.TRANSIENT, RATE_LIMITED, wait=retry_after_seconds(exc.response.headers))
        if status in FATAL_STATUSES:
            return Failure(Kind.FATAL, f"HTTP {status}", detail)
        if status < 500 and status not in RETRY_STATUSES:
            return Failure(Kind.INPUT, f"HTTP {status}", detail)
        return Failure(Kind.TRANSIENT, f"HTTP {status}", detail,
                       wait=retry_after_seconds(exc.response.headers))  # a 503 may say when
    if isinstance(exc, openai.APITimeoutError):
        return Failure(Kind.TRANSIENT, "request timeout", f"no answer within {timeout_s:g} s")
    if isinstance(exc, openai.APIConnectionError):
        name = type(exc.__cause__ or exc).__name__
        return Failure(Kind.TRANSIENT, "connection error", f"cannot reach the embedding server: {name}")
    if isinstance(exc, (openai.APIResponseValidationError, ValueError)):
        return Failure(Kind.TRANSIENT, "unreadable response", short(str(exc)))
    return None


def retry_delay(failure: Failure, streak: int, base: float, cap: float,
                rng: random.Random) -> float:
    """Seconds to hold every sender after ``failure``, the ``streak``-th failure in a row.

    The server's wait when it gave one (capped, plus up to 10 % / 1 s of jitter so paused
    senders do not return in lockstep), else exponential backoff on the streak.
    """
    if failure.wait is not None:
        wait = min(failure.wait, cap)
        return wait + rng.uniform(0, min(0.1 * wait, 1.0))
    return backoff_delay(max(0, streak - 1), base, cap, rng)


def backoff_delay(retry: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: uniform in [d/2, d], d = min(cap, base·2^retry)."""
    delay = min(cap, base * (2 ** min(retry, 60)))
    return delay / 2 + rng.uniform(0, delay / 2)


def parse_duration(value: str) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` value such as ``1s``, ``6m0s``, ``20ms``, ``0.5``."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """How long a response asks us to wait, from its headers; None when they don't say.

    Order: ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date), then the
    ``x-ratelimit-reset-*`` of the exhausted limit (both when neither says it is exhausted).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            return max(0.0, float(lower["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    if "retry-after" in lower:
        seconds = _retry_after_value(lower["retry-after"], now)
        if seconds is not None:
            return seconds
    resets = []
    for kind in ("requests", "tokens"):
        reset = lower.get(f"x-ratelimit-reset-{kind}")
        remaining = lower.get(f"x-ratelimit-remaining-{kind}")
        seconds = parse_duration(reset) if reset else None
        if seconds is not None:
            resets.append((remaining is not None and remaining.strip() == "0", seconds))
    exhausted = [s for flag, s in resets if flag]
    if exhausted:
        return max(exhausted)
    return max((s for _, s in resets), default=None)


def _retry_after_value(value: str, now: float | None) -> float | None:
    """A ``Retry-After`` value (delay seconds or HTTP date) in seconds from now."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def short(text: str, width: int = 160) -> str:
    """``text`` on one line, at most ``width`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
