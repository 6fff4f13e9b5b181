"""What the benchmarks print about the machine they ran on."""

from __future__ import annotations

import os


def cpu_model() -> str:
    """The CPU model name(s) and the number of CPUs, e.g. ``AMD EPYC × 2``."""
    names = {line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")}
    return f"{', '.join(sorted(names)) or '?'} × {os.cpu_count()}"


def child_env(huge_pages: bool = False) -> dict[str, str]:
    """The environment of a benchmark's child process, with numpy's page policy set at its
    import (``NUMPY_MADVISE_HUGEPAGE``): small pages, as a run of the pipeline has them
    (``JOBSIM_EXECUTION__NUMPY_HUGE_PAGES`` off), unless ``huge_pages`` (numpy's own default).
    Any revision of the code gets the same policy this way."""
    return {**os.environ, "NUMPY_MADVISE_HUGEPAGE": "1" if huge_pages else "0"}
