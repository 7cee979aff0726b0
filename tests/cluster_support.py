"""What the scale-out tests share: a real redis-server, nodes on it, and clients that record.

No mock stands in for Redis: :func:`local_redis` starts Debian's (or brew's)
``redis-server`` on a free loopback port with its own temporary folder, once
per test module, and every test starts from an empty one.  Without
redis-server the tests are skipped -- except where ``CHAT_REQUIRE_REDIS=1``
(CI sets it), where that is a failure.

Heartbeats are fast here (``FAST``): a dead node is noticed within 2 s
instead of 20 s, by the same mechanism.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chat.cluster import ClusterConfig
from chat.cluster.local import LocalRedis, redis_server_path
from chat.limits import Limits
from chat.server import ServerBase, create_server
from tests.helpers import ALL_FEATURES, TIMEOUT, RawPeer

#: Heartbeats and expiry for tests: the mechanism of the 15 s default, ten times faster.
FAST = {"heartbeat": 0.25, "presence_ttl": 1.5, "backoff_max": 0.2}

#: Every extension; a client without them is a v1 client.


@pytest.fixture(scope="module")
def local_redis() -> Iterator[LocalRedis]:
    if redis_server_path() is None:
        message = "redis-server is not installed (apt install redis-server; brew install redis)"
        if os.environ.get("CHAT_REQUIRE_REDIS") == "1":
            pytest.fail(f"{message}, and CHAT_REQUIRE_REDIS=1 says the scale-out tests must run")
        pytest.skip(message)
    with LocalRedis() as redis:
        yield redis


@pytest.fixture
def redis_url(local_redis: LocalRedis) -> str:
    """An empty Redis (started again if a test stopped it)."""
    if not local_redis.running:
        local_redis.start()
    local_redis.flush()
    return local_redis.url


@pytest.fixture
def make_node(redis_url: str) -> Iterator[Callable[..., ServerBase]]:
    """Start nodes of one chat: ``make_node("asyncio")``; stopped at the end."""
    started: list[ServerBase] = []

    def start(engine: str = "threads", limits: Limits | None = None, **config: Any) -> ServerBase:
        cluster = ClusterConfig(redis_url, **{**FAST, **config})
        server = create_server(
            engine, "127.0.0.1", 0, limits=limits or Limits(rate_limit=0), redis=cluster
        )
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class Recorder:
    """A client whose frames a thread records as they come, with their arrival time."""

    def __init__(self, address: tuple[str, int], name: str, features: list[str] | None) -> None:
        self.name = name
        self.peer = RawPeer(address)
        join: dict[str, Any] = {"type": "join", "username": name}
        if features is not None:
            join["features"] = features
        self.peer.send(join)
        self.welcome = self.peer.recv_frame()
        assert self.welcome["type"] == "welcome", self.welcome
        self.frames: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.peer.recv_frame(0.2)
            except TimeoutError:
                continue
            except (EOFError, OSError):
                return
            with self._lock:
                self.frames.append((time.monotonic(), frame))

    def send(self, frame: dict[str, Any]) -> None:
        self.peer.send(frame)

    def of(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        """The frames of type ``kind`` so far (whose fields have these values)."""
        with self._lock:
            frames = [f for _, f in self.frames]
        return [
            f
            for f in frames
            if f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())
        ]

    def first(self, kind: str, timeout: float = TIMEOUT, **fields: Any) -> tuple[float, dict]:
        """Wait for the first frame of ``kind`` (with these fields): its arrival time and itself."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for at, frame in self.frames:
                    if frame.get("type") == kind and all(
                        frame.get(k) == v for k, v in fields.items()
                    ):
                        return at, frame
            time.sleep(0.01)
        raise AssertionError(f"{self.name}: no {kind} {fields} within {timeout} s")

    def wait(self, predicate: Callable[[Recorder], bool], timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: condition not met within {timeout} s")
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self.peer.close()
        self._thread.join(TIMEOUT)


@pytest.fixture
def connect() -> Iterator[Callable[..., Recorder]]:
    """Join a recording client: ``connect(server.address, "alice")``; closed at the end."""
    clients: list[Recorder] = []

    def join(
        address: tuple[str, int], name: str, features: list[str] | None = ALL_FEATURES
    ) -> Recorder:
        client = Recorder(address, name, features)
        clients.append(client)
        return client

    yield join
    for client in clients:
        client.close()
