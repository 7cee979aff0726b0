"""The server over real sockets on 127.0.0.1: every message, every error, the hard cases.

Most tests use the ``server`` or ``make_server`` fixture (tests/conftest.py),
so they run once for each server engine.  The peers here are
:class:`tests.helpers.RawPeer`: a socket and ``json``, nothing from ``chat``,
so what they see is exactly what is on the wire.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chat.limits import Limits
from chat.protocol import MAX_FRAME_BYTES
from chat.server import LOG_FORMAT, AddressInUseError, create_server
from tests.helpers import TIMEOUT, RawPeer, read_until, wait_for

ROOT = Path(__file__).resolve().parent.parent

#: The program tests read pipes with select() and send POSIX signals.
posix_only = pytest.mark.skipif(os.name != "posix", reason="select() on pipes and signals")

#: How a line of the server's log starts: "2024-05-01 12:00:00,123 - INFO - ".
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - (DEBUG|INFO|WARNING|ERROR) - ")


def joined(server, name: str) -> RawPeer:
    """A raw peer joined as ``name``; its welcome is already read."""
    peer = RawPeer(server.address)
    welcome = peer.join(name)
    assert welcome["type"] == "welcome", welcome
    return peer


def chat_frame(text: str) -> dict:
    return {"type": "chat", "message": text}


# --------------------------------------------------------------------------
# Every message type


def test_join_is_answered_with_a_welcome_listing_everyone(server):
    with joined(server, "alice"), RawPeer(server.address) as bob:
        welcome = bob.join("bob")
        assert welcome["type"] == "welcome"
        assert welcome["users"] == ["alice", "bob"]
        assert "bob" in welcome["message"]


def test_others_are_told_when_someone_joins(server):
    with joined(server, "alice") as alice, joined(server, "bob"):
        assert alice.recv_frame() == {
            "type": "user_joined",
            "username": "bob",
            "message": "bob joined the chat",
        }


def test_chat_is_broadcast_to_everyone_including_the_sender(server):
    with joined(server, "alice") as alice, joined(server, "bob") as bob:
        alice.recv_until("user_joined")
        before = time.time()
        alice.send(chat_frame("Hello everyone!"))
        for peer in (alice, bob):
            message = peer.recv_frame()
            assert message["type"] == "chat"
            assert message["username"] == "alice"
            assert message["message"] == "Hello everyone!"
            assert isinstance(message["timestamp"], float)
            assert before - 1 <= message["timestamp"] <= time.time() + 1


def test_ping_is_answered_with_pong(server):
    with joined(server, "alice") as alice:
        alice.send({"type": "ping"})
        assert alice.recv_frame() == {"type": "pong"}


def test_ping_is_answered_before_joining(server):
    with RawPeer(server.address) as peer:
        peer.send({"type": "ping"})
        assert peer.recv_frame() == {"type": "pong"}


def test_leaving_is_announced_to_the_others(server):
    with joined(server, "alice") as alice:
        bob = joined(server, "bob")
        alice.recv_until("user_joined")
        bob.close()
        assert alice.recv_frame() == {
            "type": "user_left",
            "username": "bob",
            "message": "bob left the chat",
        }


def test_usernames_lists_who_is_joined(server):
    with joined(server, "alice"), joined(server, "bob"), RawPeer(server.address):
        assert server.usernames() == ["alice", "bob"]


def test_frame_sent_one_byte_at_a_time_arrives_whole(server):
    with joined(server, "alice") as alice:
        alice.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in json.dumps(chat_frame("héllo 👋"), ensure_ascii=False).encode() + b"\n":
            alice.send(bytes([byte]))
        assert alice.recv_frame()["message"] == "héllo 👋"


def test_several_frames_in_one_send_are_all_handled_in_order(server):
    with joined(server, "alice") as alice:
        alice.send(b"".join(json.dumps(chat_frame(f"m{i}")).encode() + b"\n" for i in range(5)))
        assert [alice.recv_frame()["message"] for _ in range(5)] == [f"m{i}" for i in range(5)]


def test_client_that_sends_then_half_closes_still_gets_every_answer(server):
    # What `printf '...' | nc host port` does: send everything, then FIN.
    with joined(server, "watcher") as watcher, RawPeer(server.address) as peer:
        peer.send(b'{"type":"join","username":"nc"}\n{"type":"chat","message":"hi"}\n')
        peer.sock.shutdown(socket.SHUT_WR)
        assert peer.recv_frame()["type"] == "welcome"
        assert peer.recv_frame()["message"] == "hi"
        assert peer.closed_by_server()
        assert watcher.recv_until("chat")["message"] == "hi"
        assert watcher.recv_until("user_left")["username"] == "nc"


def test_everyone_receives_concurrent_messages_in_the_same_order(server):
    peers = [joined(server, name) for name in ("alice", "bob", "carol")]
    try:
        for peer in peers[:2]:
            peer.recv_until("user_joined")  # carol joined last
        peers[0].recv_until("user_joined")  # alice also saw bob join
        barrier = threading.Barrier(len(peers), timeout=TIMEOUT)

        def talk(peer: RawPeer, name: str) -> None:
            barrier.wait()
            for i in range(10):
                peer.send(chat_frame(f"{name} {i}"))

        threads = [
            threading.Thread(target=talk, args=(peer, name))
            for peer, name in zip(peers, ("alice", "bob", "carol"), strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        seen = [[peer.recv_until("chat")["message"] for _ in range(30)] for peer in peers]
        assert seen[0] == seen[1] == seen[2]
        for name in ("alice", "bob", "carol"):  # each sender's own order is kept
            assert [m for m in seen[0] if m.startswith(name)] == [f"{name} {i}" for i in range(10)]
    finally:
        for peer in peers:
            peer.close()


# --------------------------------------------------------------------------
# Errors that keep the connection


def test_duplicate_name_gets_an_error_and_the_connection_stays_usable(server):
    with joined(server, "alice"), RawPeer(server.address) as other:
        assert other.join("alice") == {"type": "error", "message": "Username already taken"}
        assert other.join("alice2")["type"] == "welcome"


def test_joining_twice_gets_an_error(server):
    with joined(server, "alice") as alice:
        error = alice.join("alice")
        assert error["type"] == "error"
        assert "Already joined" in error["message"]


def test_invalid_username_gets_an_error_explaining_the_rule(server):
    with RawPeer(server.address) as peer:
        error = peer.join("not valid!")
        assert error["type"] == "error"
        assert "letters, digits" in error["message"]
        assert peer.join("valid")["type"] == "welcome"


def test_bad_json_gets_an_error_and_the_connection_stays_open(server):
    with joined(server, "alice") as alice:
        alice.send(b"{this is not json\n")
        assert alice.recv_frame() == {"type": "error", "message": "Frame is not valid JSON"}
        alice.send({"type": "ping"})
        assert alice.recv_frame() == {"type": "pong"}


def test_json_that_is_not_an_object_gets_an_error(server):
    with joined(server, "alice") as alice:
        alice.send(b'["chat", "hi"]\n')
        assert alice.recv_frame()["type"] == "error"
        alice.send({"type": "ping"})
        assert alice.recv_frame() == {"type": "pong"}


def test_unknown_type_gets_an_error_and_the_connection_stays_open(server):
    with joined(server, "alice") as alice:
        alice.send({"type": "dance"})
        error = alice.recv_frame()
        assert error["type"] == "error"
        assert "Unknown message type" in error["message"]
        alice.send({"type": "ping"})
        assert alice.recv_frame() == {"type": "pong"}


def test_chat_before_join_gets_an_error_and_the_connection_stays_open(server):
    with RawPeer(server.address) as peer:
        peer.send(chat_frame("Hi"))
        error = peer.recv_frame()
        assert error["type"] == "error"
        assert "Join first" in error["message"]
        assert peer.join("alice")["type"] == "welcome"


def test_empty_chat_gets_an_error_and_is_not_relayed(server):
    with joined(server, "alice") as alice:
        alice.send(chat_frame("   "))
        assert alice.recv_frame() == {"type": "error", "message": "Message is empty"}
        alice.send({"type": "ping"})
        assert alice.recv_frame() == {"type": "pong"}  # no chat frame came before it


def test_chat_with_a_lone_surrogate_is_relayed_without_it(server):
    with joined(server, "alice") as alice:
        alice.send(b'{"type":"chat","message":"x\\ud800y"}\n')
        assert alice.recv_frame()["message"] == "xy"
        with joined(server, "bob"):  # the server still serves newcomers
            pass


# --------------------------------------------------------------------------
# Errors that close the connection: the error frame still arrives first


def test_oversized_line_gets_an_error_then_the_connection_is_closed(server):
    with RawPeer(server.address) as peer:
        peer.send(b"x" * (MAX_FRAME_BYTES + 1))
        error = peer.recv_frame()
        assert error["type"] == "error"
        assert "bytes" in error["message"]
        assert peer.closed_by_server()


def test_invalid_utf8_gets_an_error_then_the_connection_is_closed(server):
    with joined(server, "alice") as alice:
        alice.send(b'{"type":"chat","message":"\xff\xfe"}\n')
        error = alice.recv_frame()
        assert error["type"] == "error"
        assert "UTF-8" in error["message"]
        assert alice.closed_by_server()


def test_others_keep_chatting_when_a_peer_is_dropped_for_bad_bytes(server):
    with joined(server, "alice") as alice, joined(server, "mallory") as mallory:
        alice.recv_until("user_joined")
        mallory.send(b"\xff\n")
        assert alice.recv_frame()["type"] == "user_left"
        alice.send(chat_frame("still here"))
        assert alice.recv_frame()["message"] == "still here"


def test_connection_that_never_joins_is_closed_after_the_join_timeout(make_server):
    server = make_server(limits=Limits(join_timeout=0.3))
    with RawPeer(server.address) as peer:
        error = peer.recv_frame()
        assert error["type"] == "error"
        assert "Join timeout" in error["message"]
        assert peer.closed_by_server()


def test_connection_past_max_clients_is_told_the_server_is_full(make_server):
    server = make_server(limits=Limits(max_clients=1))
    with joined(server, "alice") as alice, RawPeer(server.address) as late:
        error = late.recv_frame()
        assert error["type"] == "error"
        assert "Server full" in error["message"]
        assert late.closed_by_server()
        alice.send({"type": "ping"})
        assert alice.recv_frame() == {"type": "pong"}


# --------------------------------------------------------------------------
# Hard cases


def test_twenty_clients_racing_for_one_name_get_exactly_one_welcome(server):
    peers = [RawPeer(server.address) for _ in range(20)]
    try:
        barrier = threading.Barrier(len(peers), timeout=TIMEOUT)

        def join(peer: RawPeer) -> None:
            barrier.wait()
            peer.send({"type": "join", "username": "same"})

        threads = [threading.Thread(target=join, args=(peer,)) for peer in peers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        answers = [peer.recv_frame() for peer in peers]
        assert [a["type"] for a in answers].count("welcome") == 1
        errors = [a for a in answers if a["type"] == "error"]
        assert errors == [{"type": "error", "message": "Username already taken"}] * 19
        assert server.usernames() == ["same"]
    finally:
        for peer in peers:
            peer.close()


def test_name_is_free_again_after_its_owner_leaves(server):
    with joined(server, "watcher") as watcher:
        joined(server, "alice").close()
        watcher.recv_until("user_left")
        with RawPeer(server.address) as again:
            assert again.join("alice")["type"] == "welcome"


def test_client_that_never_reads_does_not_delay_the_others(make_server, caplog):
    caplog.set_level(logging.INFO, logger="chat")
    limits = Limits(max_send_queue_bytes=64 * 1024, rate_limit=0)
    server = make_server(limits=limits)
    stalled = RawPeer(server.address, recv_buffer=4096)
    try:
        stalled.send({"type": "join", "username": "stalled"})  # and never reads again
        wait_for(lambda: server.usernames() == ["stalled"])
        with joined(server, "bob") as bob, joined(server, "carol") as carol:
            bob.recv_until("user_joined")  # carol's arrival
            told = {"bob": False, "carol": False}  # that the stalled client left
            text = "x" * 3900  # frames of ~4 KB; the kernel's buffers take a few MB first
            for i in range(5000):  # bounded; the stalled client is dropped long before
                bob.send(chat_frame(f"{i} {text}"))
                for name, peer in (("bob", bob), ("carol", carol)):
                    frame = peer.recv_frame()  # a bounded wait: nobody waits for "stalled"
                    if frame["type"] == "user_left":
                        assert frame["username"] == "stalled"
                        told[name] = True
                        frame = peer.recv_frame()
                    assert frame["message"] == f"{i} {text}"  # nothing lost, nothing reordered
                if all(told.values()):
                    break
            else:
                pytest.fail("the client that never reads was never disconnected")
        assert "stalled disconnected (send queue exceeded)" in caplog.text
    finally:
        stalled.close()


def server_end_of(client: socket.socket) -> socket.socket:
    """The server's socket for this client's connection (server and test share a process)."""
    wanted = client.getsockname()
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.fileno() != -1:
            try:
                if obj.getpeername() == wanted:
                    return obj
            except OSError:
                continue
    raise AssertionError("the server's end of the connection was not found")


def test_accepted_sockets_have_tcp_nodelay_set(server):
    with joined(server, "alice") as alice:
        accepted = server_end_of(alice.sock)
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


# --------------------------------------------------------------------------
# Stopping and starting


def test_stop_says_goodbye_to_everyone_and_leaves_no_thread(make_server):
    before = set(threading.enumerate())
    server = make_server()
    peers = [joined(server, name) for name in ("alice", "bob", "carol")]
    peers.append(RawPeer(server.address))  # connected, never joined
    try:
        peers[-1].send({"type": "ping"})
        assert peers[-1].recv_frame() == {"type": "pong"}  # the server knows it now
        wait_for(lambda: len(server.usernames()) == 3)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2.5  # stop() has a 2 s budget
        assert not server.running
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        assert left == []
        for peer in peers:
            assert peer.recv_until("server_shutdown")["message"]
            assert peer.closed_by_server()
    finally:
        for peer in peers:
            peer.close()


def test_connections_arriving_as_the_server_stops_are_closed_too(make_server):
    server = make_server()
    peers = [RawPeer(server.address, timeout=3) for _ in range(5)]  # maybe not accepted yet
    try:
        server.stop()
        assert all(peer.closed_by_server() for peer in peers)
    finally:
        for peer in peers:
            peer.close()


def test_stop_is_safe_to_call_twice(server):
    server.stop()
    server.stop()
    assert not server.running


def test_stop_of_a_server_never_started_returns_at_once(engine):
    server = create_server(engine, "127.0.0.1", 0)
    stopping = threading.Thread(target=server.stop, kwargs={"timeout": 60})
    stopping.start()
    stopping.join(TIMEOUT)
    assert not stopping.is_alive()  # it did not wait out its 60 s
    assert not server.running


def test_usernames_of_a_server_never_started_is_an_empty_list(engine):
    server = create_server(engine, "127.0.0.1", 0)
    assert server.usernames() == []


def test_second_server_on_a_port_in_use_is_refused_and_the_first_keeps_serving(engine):
    """No action at a distance: starting a server never stops another one."""
    first = create_server(engine, "127.0.0.1", 0).start()
    try:
        with joined(first, "alice") as alice:
            second = create_server(engine, "127.0.0.1", first.address[1])
            with pytest.raises(AddressInUseError, match="already in use"):
                second.start()
            assert first.running and not second.running
            alice.send({"type": "ping"})
            assert alice.recv_frame() == {"type": "pong"}
    finally:
        first.stop()


@pytest.mark.skipif(sys.platform != "linux", reason="all of 127.0.0.0/8 is loopback on Linux")
def test_servers_on_one_port_number_of_two_addresses_both_keep_running(engine):
    """Fault 8: the port number alone does not name a server; its address does."""
    first = create_server(engine, "127.0.0.1", 0).start()
    try:
        second = create_server(engine, "127.0.0.2", first.address[1]).start()
        try:
            assert first.running and second.running
            for server in (first, second):
                with RawPeer(server.address) as peer:
                    assert peer.join("alice")["users"] == ["alice"]
        finally:
            second.stop()
    finally:
        first.stop()


def test_port_held_by_another_socket_raises_address_in_use(engine):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = create_server(engine, "127.0.0.1", port)
        with pytest.raises(AddressInUseError, match="already in use"):
            server.start()
        assert not server.running


# --------------------------------------------------------------------------
# Logging


def test_log_format_is_time_level_message():
    assert LOG_FORMAT == "%(asctime)s - %(levelname)s - %(message)s"


def test_server_logs_start_connections_chat_and_disconnects(make_server, caplog):
    caplog.set_level(logging.INFO, logger="chat")
    server = make_server()
    host, port = server.address
    with joined(server, "alice") as alice:
        with joined(server, "bob"):
            alice.recv_until("user_joined")
            alice.send(chat_frame("Hello everyone!"))
            alice.recv_until("chat")
        alice.recv_until("user_left")
    wait_for(lambda: "alice disconnected" in caplog.text)
    logged = [record.getMessage() for record in caplog.records]
    assert f"Chat server started on {host}:{port}" in logged
    assert "Waiting for connections..." in logged
    assert any(re.fullmatch(r"New connection from 127\.0\.0\.1:\d+", m) for m in logged)
    assert "alice: Hello everyone!" in logged
    assert any(m.startswith("bob disconnected") for m in logged)
    assert logged.index("Waiting for connections...") < logged.index("alice: Hello everyone!")


def test_protocol_errors_are_logged_as_warnings(server, caplog):
    caplog.set_level(logging.INFO, logger="chat")
    with joined(server, "alice") as alice:
        alice.send({"type": "dance"})
        alice.recv_frame()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("Unknown message type" in m and "alice" in m for m in warnings)


# --------------------------------------------------------------------------
# The program: python -m chat.server


def start_program(*args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "chat.server", "--host", "127.0.0.1", *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@posix_only
def test_server_program_logs_and_stops_cleanly_on_sigterm(engine):
    process = start_program("--port", "0", "--engine", engine)
    try:
        assert process.stderr is not None
        log = read_until(process.stderr.fileno(), b"Waiting for connections...\n")
        port = int(re.search(rb"Chat server started on 127\.0\.0\.1:(\d+)", log).group(1))
        with RawPeer(("127.0.0.1", port)) as alice:
            assert alice.join("alice")["type"] == "welcome"
            alice.send(chat_frame("Hello everyone!"))
            alice.recv_frame()
            log = read_until(process.stderr.fileno(), b"alice: Hello everyone!\n", seen=log)
            process.send_signal(signal.SIGTERM)
            assert alice.recv_until("server_shutdown")
            assert process.wait(timeout=TIMEOUT) == 0
        log += process.stderr.read()
    finally:
        process.kill()
        process.wait(timeout=TIMEOUT)
    text = log.decode()
    assert "Traceback" not in text
    lines = text.splitlines()
    assert all(LOG_LINE.match(line) for line in lines), text
    assert any(line.endswith(f"INFO - Chat server started on 127.0.0.1:{port}") for line in lines)
    assert any(re.search(r"INFO - New connection from 127\.0\.0\.1:\d+$", line) for line in lines)


@posix_only
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_server_program_stops_cleanly_on_a_signal_right_after_starting(signum):
    process = start_program("--port", "0")
    try:
        assert process.stderr is not None
        read_until(process.stderr.fileno(), b"Waiting for connections...")
        process.send_signal(signum)  # before serve_forever() may have started waiting
        assert process.wait(timeout=TIMEOUT) == 0
        assert b"Traceback" not in process.stderr.read()
    finally:
        process.kill()
        process.wait(timeout=TIMEOUT)


@posix_only
@pytest.mark.engines("threads")
@pytest.mark.parametrize("program", ["chat.server", "chat.client"])
def test_python_dash_m_loads_each_module_of_the_program_once(program, server):
    """Fault 9: ``python -m chat.server`` once held two ChatServer classes.

    ``-X importtime`` lists every module imported; the program itself runs as
    ``__main__`` and must not be imported again under its own name.
    """
    port = str(server.address[1])
    if program == "chat.server":
        command = [sys.executable, "-X", "importtime", "-m", "chat.server", "--port", "0"]
        process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
        try:
            assert process.stderr is not None
            log = read_until(process.stderr.fileno(), b"Waiting for connections", 3 * TIMEOUT)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(TIMEOUT)
            assert process.stderr is not None
            log += process.stderr.read()
            process.stderr.close()
    else:
        command = [sys.executable, "-X", "importtime", "-m", "chat.client"]
        command += ["--host", "127.0.0.1", "--port", port, "--username", "bot"]
        done = subprocess.run(command, input=b"hi\n", capture_output=True, timeout=3 * TIMEOUT)
        assert done.returncode == 0, done.stderr
        log = done.stderr
    imported = re.findall(rb"\|\s*(chat(?:\.\w+)*)\s*$", log, re.MULTILINE)
    assert imported, log
    assert len(imported) == len(set(imported)), "a module was imported twice"
    assert f"{program}.__main__".encode() not in imported


def test_server_program_explains_a_port_in_use_in_one_line():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        process = start_program("--port", str(port))
        try:
            _, stderr = process.communicate(timeout=20)
        finally:
            process.kill()
    message = stderr.decode().strip()
    assert process.returncode == 1
    assert len(message.splitlines()) == 1, message
    assert "already in use" in message
    assert "Traceback" not in message
