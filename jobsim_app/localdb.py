"""Start and stop a local MongoDB-compatible server (SecantusDB) as a separate process.

For demos and tests only. SecantusDB is GPL-2.0: it is run as its own process via its
``secantusd-py`` launcher and never imported. Production points JOBSIM_MONGO__URI at
any MongoDB.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jobsim.errors import ConfigError

LAUNCHER = "secantusd-py"


@dataclass
class LocalMongo:
    pid: int
    port: int
    storage_path: Path
    process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher_path() -> str:
    """The launcher next to this interpreter (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name(LAUNCHER)
    found = str(beside) if beside.exists() else shutil.which(LAUNCHER)
    if not found:
        raise ConfigError(f"{LAUNCHER} not found: install the dev extra (pip install -e '.[dev]')")
    return found


def _ping(port: int) -> bool:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client = MongoClient(port=port, host="127.0.0.1", serverSelectionTimeoutMS=300, directConnection=True)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def start(storage_path: Path, port: int | None = None, timeout_s: float = 60.0,
          log_file: Path | None = None) -> LocalMongo:
    """Start a server on a free loopback port and wait until it answers ``ping``."""
    storage_path.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = open(log_file or storage_path / "server.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        [launcher_path(), "--host", "127.0.0.1", "--port", str(port), "--storage-path",
         str(storage_path), "--log-level", "WARNING", "--standalone"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        cwd=storage_path, start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"local MongoDB exited with code {process.returncode}; see {log.name}")
        if _ping(port):
            return LocalMongo(process.pid, port, storage_path, process)
        time.sleep(0.2)
    stop_pid(process.pid)
    raise ConfigError(f"local MongoDB did not answer within {timeout_s:.0f} s")


def stop_pid(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            if _reaped(pid) or _zombie(pid):
                return
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reaped(pid)


def _zombie(pid: int) -> bool:
    """Exited, waiting for its parent (not us) to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:  # not our child: liveness is checked with kill(pid, 0)
        return False


def kill(server: LocalMongo) -> None:
    """SIGKILL (crash simulation): the server gets no chance to flush."""
    try:
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reaped(server.pid)
