"""Fixtures: real servers on 127.0.0.1, on free ports, always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from chat.limits import Limits
from chat.server import ChatServer

#: The server engines every server test runs against.
ENGINES = ["threads"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_server(engine: str) -> Iterator[Callable[..., ChatServer]]:
    """Start servers with custom limits: ``make_server(limits=Limits(...))``."""
    started: list[ChatServer] = []

    def start(limits: Limits | None = None) -> ChatServer:
        server = ChatServer("127.0.0.1", 0, limits=limits)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., ChatServer]) -> ChatServer:
    """A running server with the default limits."""
    return make_server()
