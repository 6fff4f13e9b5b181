"""Circuit breaker of one ``embed`` call: when the service is down, stop sending.

It opens, for the rest of the call, when ``max_failures`` requests in a row failed for a
transient cause (429, 5xx, timeout, connection, unreadable response), or when no request
has succeeded for ``max_outage_s`` since the failures began. A success resets both; a
request rejected for its input (400) neither counts nor resets. The clock of an outage
starts when its first failed request was *sent* (a hanging server is noticed only one
timeout later), so a sustained outage ends within ``max_outage_s`` + one request timeout.

Pure state on a monotonic clock; :class:`jobsim.embedders.openai.gate.Gate` drives it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from jobsim.embedders.openai.policy import RATE_LIMITED, Failure

UNAVAILABLE = "embedding service unavailable"


class CircuitBreaker:
    """Consecutive transient failures and time without success, and the reason once open."""

    def __init__(self, max_failures: int, max_outage_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.max_outage_s = max_outage_s
        self.clock = clock
        self.streak = 0  # consecutive transient failures
        self.since: float | None = None  # when the streak's first failed request was sent
        self.last_ok: float | None = None  # when the last success was seen
        self.successes = 0  # requests that succeeded so far
        self.causes: Counter[str] = Counter()
        self.retry_after: float | None = None  # the streak's last server-requested wait
        self.reason: str | None = None  # set once open

    @property
    def is_open(self) -> bool:
        return self.reason is not None

    @property
    def deadline(self) -> float | None:
        """When the current outage reaches ``max_outage_s`` (None while nothing fails)."""
        return None if self.since is None else self.since + self.max_outage_s

    def succeeded(self) -> None:
        """A request got a response with vectors: the service is up."""
        self.streak, self.since, self.retry_after = 0, None, None
        self.causes.clear()
        self.last_ok = self.clock()
        self.successes += 1

    def failed(self, failure: Failure, sent_at: float) -> None:
        """A request sent at ``sent_at`` failed transiently; may open the breaker."""
        if self.is_open:
            return
        if self.streak == 0:
            self.since = sent_at if self.last_ok is None else max(sent_at, self.last_ok)
        self.streak += 1
        self.causes[failure.cause] += 1
        if failure.wait is not None:
            self.retry_after = failure.wait
        if self.streak >= self.max_failures:
            self.reason = self._describe(timed_out=False)
        else:
            self.check()

    def check(self) -> bool:
        """Open the breaker if the current outage has lasted too long; True when open."""
        deadline = self.deadline
        if not self.is_open and deadline is not None and self.clock() >= deadline:
            self.reason = self._describe(timed_out=True)
        return self.is_open

    def _describe(self, timed_out: bool) -> str:
        """One line: what failed, how often, and for how long when that was the trigger."""
        n = self.streak
        if len(self.causes) == 1:
            what = f"{next(iter(self.causes))} on {n} consecutive request{'s' * (n != 1)}"
        else:
            mix = ", ".join(f"{cause} ×{k}" for cause, k in self.causes.most_common())
            what = f"{n} consecutive failed requests ({mix})"
        if timed_out and self.since is not None:
            what += f", none succeeded for {self.clock() - self.since:.3g} s"
        if self.retry_after is not None:
            what += f" (Retry-After {self.retry_after:.3g} s)"
        elif RATE_LIMITED in self.causes:
            what += " (no Retry-After)"
        if set(self.causes) == {RATE_LIMITED}:
            return what
        return f"{UNAVAILABLE}: {what}"
