"""Running the ``jobsim`` command line as a user does: a subprocess, in a folder of its own,
with no JOBSIM_ setting but those a test gives."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOBSIM = ROOT / ".venv" / "bin" / "jobsim"
PASSWORD = "Pw-41c7e2-never-print-me"


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without JOBSIM_ settings (and without a Prefect API), plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSIM_") and k != "PREFECT_API_URL"}
    env.update(settings)
    return env


def jobsim(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(JOBSIM), *args], cwd=cwd, env=env if env is not None else clean_env(),
                          capture_output=True, text=True, timeout=timeout)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_one_clean_line(result: subprocess.CompletedProcess, code: int, *names: str,
                          secrets: tuple[str, ...] = (PASSWORD,)) -> str:
    """Exit ``code``; stderr is one ``error:`` line naming every one of ``names``; no
    traceback, no secret anywhere in the output. Returns the line."""
    everything = result.stdout + result.stderr
    assert result.returncode == code, everything
    lines = error_lines(result)
    assert len(lines) == 1, everything
    assert "Traceback" not in everything, everything
    for name in names:
        assert name in lines[0], lines[0]
    for secret in secrets:
        assert secret not in everything, everything
    return lines[0]
