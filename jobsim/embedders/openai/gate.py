"""Admission of one ``embed`` call's requests: rate limits, shared backoff, probing, breaker.

Every request passes :meth:`Gate.enter` before it is sent and :meth:`Gate.report` after:

- the client-side limiter (requests and tokens per minute, a 429's Retry-After) holds it;
- after a transient failure every sender waits the policy's delay (the server's wait, or
  backoff on the number of failures in a row): a struggling service is not hammered by
  ``concurrency`` workers retrying each on its own schedule;
- while the last requests failed, one request at a time probes the service; the first
  success lets every worker go again;
- once the circuit breaker opens, ``enter`` returns None and nothing more is sent. Every
  wait ends at the breaker's deadline, so no sender sleeps past the end of an outage.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from jobsim.embedders.openai.breaker import CircuitBreaker
from jobsim.embedders.openai.limiter import RateLimiter
from jobsim.embedders.openai.policy import RATE_LIMITED, Failure, Kind, retry_delay


@dataclass(frozen=True)
class Ticket:
    """Leave to send one request."""

    sent_at: float
    probe: bool  # sent while the service was failing: the only request in flight then


class Gate:
    """Decides when each request of one ``embed`` call may go (one event loop)."""

    def __init__(self, limiter: RateLimiter, breaker: CircuitBreaker, base_delay_s: float,
                 max_delay_s: float, rng: random.Random,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limiter = limiter
        self.breaker = breaker
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.rng = rng
        self.clock = clock
        self.resume_at = 0.0  # every sender waits until then (backoff after a failure)
        self.probing = False
        self.closed = False  # nothing more may be sent (a fatal failure)
        self._wake = asyncio.Event()

    async def enter(self, tokens: int) -> Ticket | None:
        """Wait until one request of ``tokens`` may go; None once the breaker is open or
        the gate closed."""
        while not self.closed and not self.breaker.check():
            now = self.clock()
            wait: float | None = self.resume_at - now
            if wait <= 0:
                if self.breaker.streak and self.probing:
                    wait = None  # until the probe in flight has an outcome
                else:
                    wait = self.limiter.wait_time(tokens)  # charges the request when 0
                    if wait <= 0:
                        probe = self.breaker.streak > 0
                        self.probing = self.probing or probe
                        return Ticket(now, probe)
            await self._sleep(wait)
        return None

    def report(self, ticket: Ticket, failure: Failure | None) -> float:
        """Record how the request of ``ticket`` ended (None = it got vectors back).

        Returns the seconds every sender now waits (0 unless it failed transiently).
        """
        delay = 0.0
        if failure is None:
            self.breaker.succeeded()
        elif failure.kind is Kind.TRANSIENT:
            self.breaker.failed(failure, ticket.sent_at)
            delay = retry_delay(failure, self.breaker.streak, self.base_delay_s,
                                self.max_delay_s, self.rng)
            self.resume_at = max(self.resume_at, self.clock() + delay)
            if failure.cause == RATE_LIMITED and failure.wait is not None:
                self.limiter.pause(min(failure.wait, self.max_delay_s))  # for later calls too
        self.release(ticket)
        return delay

    def close(self) -> None:
        """Let nothing more through (the call is over: credentials, permission or model)."""
        self.closed = True
        self._wake.set()

    def release(self, ticket: Ticket) -> None:
        """The request of ``ticket`` is over (reported or abandoned): wake the waiters."""
        if ticket.probe:
            self.probing = False
        self._wake.set()
        self._wake = asyncio.Event()

    async def _sleep(self, wait: float | None) -> None:
        """Sleep ``wait`` seconds (None: until woken), never past the breaker's deadline;
        any report wakes the sleeper early to look again."""
        deadline = self.breaker.deadline
        if deadline is not None:
            left = max(0.0, deadline - self.clock())
            wait = left if wait is None else min(wait, left)
        try:
            await asyncio.wait_for(self._wake.wait(), wait)
        except TimeoutError:
            pass
