"""Fixtures: real servers on 127.0.0.1, on free ports, always stopped."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chat.limits import Limits
from chat.server import ENGINES as ENGINE_CLASSES
from chat.server import ChatServer, create_server

#: The server engines every server test runs against: each test that uses the
#: ``server`` or ``make_server`` fixture runs once per engine.  A test about one
#: engine's internals says so with ``@pytest.mark.engines("threads")``.
ENGINES = list(ENGINE_CLASSES)


def pytest_addoption(parser: pytest.Parser) -> None:
    # Declared here because pytest reads options only from the top conftest;
    # tests/exercises/conftest.py is where it is used.
    parser.addoption(
        "--exercises",
        action="store_true",
        help="run tests/exercises against your code in exercises/ instead of solutions/",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engines(*names): run this server test only on the named engines"
    )


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Make threads take turns far more often than usual, so that races show up.

    Used by the race tests of the exercises and of the widget.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the engine variants a test's ``engines`` marker leaves out."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("engines")
        callspec = getattr(item, "callspec", None)
        engine = callspec.params.get("engine") if callspec else None
        if marker and engine is not None and engine not in marker.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def no_history_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``python -m chat.server`` keeps history in the user's data folder by default.

    Every server program the tests start (they inherit this environment)
    keeps it in a temporary folder instead: tests leave no files behind.
    """
    saved = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("data"))
    yield
    if saved is None:
        del os.environ["XDG_DATA_HOME"]
    else:
        os.environ["XDG_DATA_HOME"] = saved


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_server(engine: str) -> Iterator[Callable[..., ChatServer]]:
    """Start servers: ``make_server(limits=Limits(...))``; ``ssl_context=`` etc. pass on."""
    started: list[ChatServer] = []

    def start(limits: Limits | None = None, **options: Any) -> ChatServer:
        server = create_server(engine, "127.0.0.1", 0, limits=limits, **options)
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
