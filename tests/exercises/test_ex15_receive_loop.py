"""Exercise 15: receive_loop delivers every message in order and reports the end exactly once."""

from __future__ import annotations

import queue
import socket
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from chat import protocol
from tests.exercises.support import Background, reset, tcp_pair


class Recorder:
    """Collects what the loop reports, in order, across threads."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def on_message(self, message: dict[str, Any]) -> None:
        self.events.put(("message", message))

    def on_disconnect(self, reason: str) -> None:
        self.events.put(("disconnect", reason))

    def everything(self, loop: Background) -> list[tuple[str, Any]]:
        """Wait for the loop to return; then all it reported."""
        loop.result()
        events = []
        while not self.events.empty():
            events.append(self.events.get_nowait())
        return events


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex15_receive_loop")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(the client's socket, the server's socket): real TCP, so a reset is possible."""
    client, server = tcp_pair()
    yield client, server
    client.close()
    server.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def start_loop(ex: ModuleType, sock: socket.socket, recorder: Recorder) -> Background:
    return Background(ex.receive_loop, sock, recorder.on_message, recorder.on_disconnect)


def messages(events: list[tuple[str, Any]]) -> list[Any]:
    return [value for kind, value in events if kind == "message"]


def test_each_message_is_handed_to_the_callback(ex, pair, recorder):
    client, server = pair
    loop = start_loop(ex, client, recorder)
    server.sendall(protocol.encode({"type": "pong"}))
    server.close()
    assert messages(recorder.everything(loop)) == [{"type": "pong"}]


def test_messages_arrive_whole_and_in_order_however_they_are_cut(ex, pair, recorder):
    client, server = pair
    loop = start_loop(ex, client, recorder)
    sent = [protocol.chat_broadcast("bob", f"message {n} 👋", 1.5) for n in range(5)]
    data = b"".join(protocol.encode(m) for m in sent)
    for start in range(0, len(data), 7):  # pieces that cut frames and characters
        server.sendall(data[start : start + 7])
    server.close()
    assert messages(recorder.everything(loop)) == sent


def test_end_of_stream_is_reported_once_after_the_last_message(ex, pair, recorder):
    client, server = pair
    loop = start_loop(ex, client, recorder)
    server.sendall(protocol.encode({"type": "pong"}) * 3)
    server.close()
    events = recorder.everything(loop)
    assert [kind for kind, _ in events] == ["message"] * 3 + ["disconnect"]
    assert events[-1][1].startswith("Server closed the connection")


def test_connection_reset_is_reported_as_lost(ex, pair, recorder):
    client, server = pair
    loop = start_loop(ex, client, recorder)
    client.sendall(b"unread by the server")  # pending input makes close send a reset
    reset(server)
    events = recorder.everything(loop)
    assert [kind for kind, _ in events] == ["disconnect"]
    assert events[0][1].startswith("Connection lost")


def test_bad_frame_ends_the_loop_with_a_reason(ex, pair, recorder):
    client, server = pair
    loop = start_loop(ex, client, recorder)
    server.sendall(protocol.encode({"type": "pong"}) + b"this is not json\n")
    events = recorder.everything(loop)  # the server's socket is still open
    assert [kind for kind, _ in events] == ["message", "disconnect"]
    assert events[-1][1].startswith("The server sent a bad frame")


def test_failing_callback_is_logged_and_the_loop_goes_on(ex, pair, recorder, caplog):
    client, server = pair
    delivered = []

    def fragile(message: dict[str, Any]) -> None:
        delivered.append(message)
        if len(delivered) == 1:
            raise RuntimeError("bug in the display code")

    loop = Background(ex.receive_loop, client, fragile, recorder.on_disconnect)
    server.sendall(protocol.encode({"type": "pong"}) * 2)
    server.close()
    loop.result()
    assert len(delivered) == 2
    assert "bug in the display code" in caplog.text
    assert len(recorder.everything(loop)) == 1  # the disconnect, once
