"""What the benchmarks print about the machine they ran on."""

from __future__ import annotations

import os


def cpu_model() -> str:
    """The CPU model name(s) and the number of CPUs, e.g. ``AMD EPYC × 2``."""
    names = {line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")}
    return f"{', '.join(sorted(names)) or '?'} × {os.cpu_count()}"
