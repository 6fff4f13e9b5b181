"""What the command line prints while it works: its own progress and the pipeline's, not the
libraries' loader chatter, and no tracebacks unless asked for (``--debug``).

Also the Prefect defaults a command-line run needs (set only when the user has not set
them): a temporary Prefect server that may take minutes to start on a loaded machine, and no
telemetry from that throwaway server.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

# A CLI flow run without PREFECT_API_URL starts a temporary Prefect server; on a loaded 2-core
# machine it was measured to need up to 90–180 s (Prefect's default: 20 s).
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# (logger name, message start): lines that say nothing on a normal command-line run
NOISE = (
    ("EventsWorker", "Still processing items"),  # events still being sent at exit: normal
    ("prefect.task_runs", "Finished in state Completed"),  # one per task: the steps log their own
)
# a CLI run on a temporary server: the shared writer limit exists only on a real server
NO_SERVER_NOISE = ("prefect.flow_runs", "Concurrency limits")


def prefect_defaults() -> None:
    """Set the Prefect settings above unless the user did (before prefect is imported)."""
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)


class _Quiet(logging.Filter):
    def __init__(self, noise: tuple[tuple[str, str], ...]) -> None:
        super().__init__()
        self.noise = noise

    def filter(self, record: logging.LogRecord) -> bool:
        if any(record.name == name and str(record.msg).startswith(start) for name, start in self.noise):
            return False
        name, start = NO_SERVER_NOISE
        return not (record.name == name and str(record.msg).startswith(start) and _temporary_server())


def _temporary_server() -> bool:
    from prefect.settings import get_current_settings  # loaded already: a flow is running

    return not get_current_settings().api.url


class _Console(logging.Formatter):
    """Console lines with secrets scrubbed and, unless ``debug``, without tracebacks (only
    this handler's copy: the Prefect API keeps them)."""

    def __init__(self, scrub: Callable[[str], str], debug: bool) -> None:
        super().__init__(FORMAT, "%H:%M:%S")
        self.scrub, self.debug = scrub, debug

    def format(self, record: logging.LogRecord) -> str:
        if self.debug:
            return self.scrub(super().format(record))
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        head = text.split("\nTraceback (most recent call last)", 1)[0]
        return self.scrub(head + (" (traceback: --debug)" if saved[0] or head != text else ""))


def setup(debug: bool = False, scrub: Callable[[str], str] = lambda text: text) -> None:
    """Console logging for a CLI command: INFO, quiet libraries, tracebacks only with
    ``debug``, every line passed through ``scrub`` (which removes secrets)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Console(scrub, debug))
    handler.addFilter(_Quiet(NOISE))
    handler.jobsim_cli = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "jobsim_cli", False)]:
        root.removeHandler(old)  # a second main() in one process (tests) replaces it
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("faiss", "httpx", "httpx2", "httpcore", "openai"):  # loader lines, one line per request
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
