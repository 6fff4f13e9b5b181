"""The writer lease: at most one run writes to a database at a time, whatever launched it
(CLI, worker, tests), held in the database itself so every writer sees it.

A run takes the lease before its first read and keeps it alive with a heartbeat until its
last write. A second run waits (polling, at most ``wait_s``) and then gives up with a clear
error; a lease whose holder died (no heartbeat for ``ttl_s``) is taken over, and the dead
run's record is marked "crashed".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from types import TracebackType

from jobsim.errors import BusyError
from jobsim.repositories import StateRepo

log = logging.getLogger(__name__)

WRITER = "writer"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class WriterLease:
    """``with WriterLease(state, owner, ...):`` holds the database's writer lease."""

    def __init__(self, state: StateRepo, owner: str, ttl_s: float, wait_s: float, poll_s: float = 2.0,
                 clock: Callable[[], datetime] = _now) -> None:
        self.state, self.owner, self.clock = state, owner, clock
        self.ttl, self.wait_s, self.poll_s = timedelta(seconds=ttl_s), wait_s, poll_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> "WriterLease":
        deadline, logged = time.monotonic() + self.wait_s, 0.0
        while self.state.acquire_lease(WRITER, self.owner, self.clock(), self.ttl) is None:
            holder = self.state.lease(WRITER) or {}
            if time.monotonic() >= deadline:
                raise BusyError(f"another run ({holder.get('owner', '?')}, holding the writer lease since "
                                f"{holder.get('acquiredAt', '?')}) is writing to this database; waited "
                                f"{self.wait_s:g} s (JOBSIM_OPS__WRITER_WAIT_S)")
            if time.monotonic() - logged > 30:
                log.info("waiting for the writer lease held by run %s", holder.get("owner", "?"))
                logged = time.monotonic()
            time.sleep(self.poll_s)
        crashed = self.state.mark_crashed(self.owner, self.clock())
        if crashed:
            log.warning("%d earlier run records were still 'running' without the lease: marked crashed", crashed)
        self._beat = threading.Thread(target=self._heartbeat, name="writer-lease", daemon=True)
        self._beat.start()
        return self

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 3):
            try:
                if not self.state.renew_lease(WRITER, self.owner, self.clock(), self.ttl):
                    self.lost.set()
                    log.error("the writer lease was taken over (no heartbeat within %s)", self.ttl)
                    return
            except Exception as exc:  # noqa: BLE001 - a failed heartbeat is retried at the next beat
                log.warning("writer lease heartbeat failed (%s); retrying", type(exc).__name__)

    def check(self) -> None:
        """Raise before writing when the lease was lost (another run took it over)."""
        if self.lost.is_set():
            raise BusyError("this run lost the writer lease to another run; it stopped before writing")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        if not self.lost.is_set():
            self.state.release_lease(WRITER, self.owner)
