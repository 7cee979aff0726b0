"""Exercise 25: a name claimed in a real Redis -- once, whatever the case, and only for a while."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from chat.cluster.local import LocalRedis, redis_server_path
from tests.helpers import TIMEOUT

redis_py = pytest.importorskip("redis")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRedis]:
    if redis_server_path() is None:
        message = "redis-server is not installed (apt install redis-server; brew install redis)"
        if os.environ.get("CHAT_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with LocalRedis() as local:
        yield local


@pytest.fixture
def redis(server: LocalRedis) -> Iterator[Any]:
    server.flush()
    client = redis_py.Redis.from_url(server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex25_name_claim")


class SlowReads:
    """A client whose reads take a while: a check-then-write claim races on it."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name in ("get", "exists", "mget"):

            def slow(*args: Any, **kwargs: Any) -> Any:
                answer = attribute(*args, **kwargs)
                time.sleep(0.05)
                return answer

            return slow
        return attribute


def test_a_free_name_is_claimed_for_its_node(ex, redis):
    assert ex.claim(redis, "alice", "node-a", ttl=10) is True
    assert ex.holder(redis, "alice") == "node-a"


def test_a_held_name_is_refused_to_another_node(ex, redis):
    assert ex.claim(redis, "alice", "node-a", ttl=10) is True
    assert ex.claim(redis, "alice", "node-b", ttl=10) is False
    assert ex.holder(redis, "alice") == "node-a"


def test_names_are_claimed_without_regard_to_case(ex, redis):
    assert ex.claim(redis, "Alice", "node-a", ttl=10) is True
    assert ex.claim(redis, "aLICE", "node-b", ttl=10) is False


def test_a_claim_expires_when_its_node_stops_renewing_it(ex, redis):
    assert ex.claim(redis, "alice", "node-a", ttl=0.2) is True
    assert 0 < redis.pttl(ex.name_key("alice")) <= 200
    time.sleep(0.3)
    assert ex.holder(redis, "alice") is None
    assert ex.claim(redis, "alice", "node-b", ttl=10) is True


def test_a_released_name_is_free_again(ex, redis):
    ex.claim(redis, "alice", "node-a", ttl=10)
    assert ex.release(redis, "alice", "node-b") is False  # not node-b's to give back
    assert ex.release(redis, "alice", "node-a") is True
    assert ex.claim(redis, "alice", "node-b", ttl=10) is True


def test_twenty_claims_racing_for_one_name_make_exactly_one_winner(ex, redis):
    slow = SlowReads(redis)  # a check before the write would let several through
    barrier = threading.Barrier(20)
    wins: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def race(index: int) -> None:
        barrier.wait(TIMEOUT)
        try:
            won = ex.claim(slow, ["racer", "Racer", "RACER"][index % 3], f"node-{index}", ttl=10)
        except BaseException as exc:  # shown below, in the test's own thread
            with lock:
                errors.append(exc)
            return
        if won:
            with lock:
                wins.append(f"node-{index}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    if errors:
        raise errors[0]
    assert len(wins) == 1
    assert ex.holder(redis, "racer") == wins[0]
