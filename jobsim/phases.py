"""Progress and per-phase timings of long searches (for the log and the benchmarks)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 10.0


class Progress:
    """Logs "done/total" every ``PROGRESS_EVERY_S`` seconds of a long search."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done = what, total, 0
        self.started = self.last = time.perf_counter()

    def step(self, n: int = 1) -> None:
        self.done += n
        if time.perf_counter() - self.last > PROGRESS_EVERY_S:
            self.last = time.perf_counter()
            log.info("%s: %d/%d, %.1f s", self.what, self.done, self.total, self.last - self.started)


class PhaseClock:
    """Seconds spent per phase (``with clock("gemm"): ...``), for the log and benchmarks."""

    def __init__(self, into: dict[str, float] | None = None) -> None:
        self.spent: dict[str, float] = into if into is not None else {}
        self._phase, self._started = "", 0.0

    def __call__(self, phase: str) -> PhaseClock:
        self._phase = phase
        return self

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        self.spent[self._phase] = self.spent.get(self._phase, 0.0) + time.perf_counter() - self._started
