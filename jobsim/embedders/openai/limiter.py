"""Client-side rate limiter: requests/minute and tokens/minute buckets plus a shared pause."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets for requests/minute and tokens/minute, plus a shared pause.

    Holds only numbers (monotonic clock), so it outlives the event loop of one ``embed``
    call; it must be used from one loop at a time. Each bucket holds one minute's worth and
    refills continuously; a pause (a 429's Retry-After) stops every sender until it ends.
    """

    def __init__(self, requests_per_minute: int, tokens_per_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = (float(requests_per_minute), float(tokens_per_minute))
        self.level = list(self.capacity)
        self.clock = clock
        self.stamp = clock()
        self.paused_until = 0.0

    def _refill(self, now: float) -> None:
        elapsed = now - self.stamp
        self.stamp = now
        for k in (0, 1):
            self.level[k] = min(self.capacity[k], self.level[k] + elapsed * self.capacity[k] / 60)

    def pause(self, seconds: float) -> None:
        """Hold every sender for ``seconds`` from now (a longer pause already set wins)."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)

    def wait_time(self, tokens: int) -> float:
        """Seconds until one request of ``tokens`` may go (0 = now, and it is then charged)."""
        now = self.clock()
        if now < self.paused_until:
            return self.paused_until - now
        self._refill(now)
        need = (1.0, min(float(tokens), self.capacity[1]))
        waits = [max(0.0, (need[k] - self.level[k]) * 60 / self.capacity[k]) for k in (0, 1)]
        if max(waits) > 0:
            return max(waits)
        self.level[0] -= need[0]
        self.level[1] -= need[1]
        return 0.0

    async def acquire(self, tokens: int) -> None:
        """Wait until one request of ``tokens`` may go, and charge it."""
        while (wait := self.wait_time(tokens)) > 0:
            await asyncio.sleep(wait)
