"""Faults and abuse on real sockets: the server stays up, bounded, and fair to the others.

Each test plays one kind of trouble a server on the open network meets --
a peer that resets mid-frame, hangs up thousands of times, sends a line with
no end, ignores our goodbye, floods, or is simply still there at shutdown --
and checks what must hold afterwards: the well-behaved clients lost nothing,
and no thread, file descriptor or buffer was left behind.

Counting threads only makes sense for the threaded engine (the event-loop
engines serve everyone from one thread); file descriptors are counted for
every engine.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time
import tracemalloc

import pytest

from chat import protocol
from chat.client import ChatClient
from chat.limits import Limits
from chat.server.engine_threads import MAX_TURNING_AWAY
from tests.helpers import TIMEOUT, RawPeer, server_program, wait_for

needs_proc_fd = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counting file descriptors needs /proc (Linux)"
)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def chat(text: str) -> bytes:
    return protocol.encode(protocol.chat(text))


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset (RST) instead of a clean FIN, as a crashed peer would."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_peer_that_resets_mid_frame_is_cleaned_up_and_the_others_are_told(server):
    with RawPeer(server.address) as watcher:
        watcher.join("watcher")
        crasher = RawPeer(server.address)
        crasher.join("crasher")
        watcher.recv_until("user_joined")
        crasher.send(b'{"type": "chat", "mess')  # half a frame, then the crash
        reset(crasher.sock)
        assert watcher.recv_until("user_left")["username"] == "crasher"
        wait_for(lambda: server.usernames() == ["watcher"])
        with RawPeer(server.address) as fresh:
            assert fresh.join("crasher")["type"] == "welcome"  # the name is free again


@needs_proc_fd
def test_300_connect_join_leave_cycles_leave_no_file_descriptor_or_thread(server, engine):
    def settled() -> tuple[int, int]:
        return open_fds(), threading.active_count()

    time.sleep(0.05)  # let the server's own threads start
    before = settled()
    for cycle in range(300):
        with socket.create_connection(server.address, timeout=TIMEOUT) as sock:
            sock.sendall(protocol.encode(protocol.join(f"user{cycle}")))
            assert b"welcome" in sock.recv(4096)
    wait_for(lambda: server.usernames() == [])
    if engine == "threads":
        wait_for(lambda: settled() == before)
    else:  # one thread serves everyone: only descriptors can leak
        wait_for(lambda: open_fds() == before[0])


@pytest.mark.parametrize("megabytes", [1, 10])
def test_endless_line_leaves_server_memory_bounded(make_server, megabytes):
    """A line with no newline is cut off at the frame limit, never buffered whole."""
    server = make_server(Limits(max_frame_bytes=64 * 1024))
    payload = b"x" * (megabytes * 1024 * 1024)  # made before tracing starts
    with RawPeer(server.address) as watcher, RawPeer(server.address) as attacker:
        watcher.join("watcher")
        tracemalloc.start()
        try:
            try:
                attacker.sock.sendall(payload)
            except OSError:
                pass  # the server cut us off mid-way: also fine
            assert attacker.closed_by_server()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 1024 * 1024, f"the server held {peak} bytes at once"
        watcher.send(chat("still here"))
        assert watcher.recv_until("chat")["message"] == "still here"


@needs_proc_fd
def test_peer_that_ignores_the_servers_goodbye_is_cut_off(make_server, engine):
    """A half-open peer (never reads, never closes) must not keep a socket or thread forever."""
    server = make_server(Limits(join_timeout=0.2))
    time.sleep(0.05)
    fds, threads = open_fds(), threading.active_count()
    silent = [socket.create_connection(server.address, timeout=TIMEOUT) for _ in range(5)]
    try:
        # Our five sockets stay open; the server's five ends must go.
        wait_for(lambda: open_fds() == fds + 5, timeout=8)
        if engine == "threads":
            wait_for(lambda: threading.active_count() == threads, timeout=8)
    finally:
        for sock in silent:
            sock.close()


def test_flooder_is_disconnected_while_the_others_keep_chatting(make_server):
    limits = Limits(rate_limit=2, rate_burst=4, flood_disconnect_strikes=10)
    server = make_server(limits)
    with RawPeer(server.address) as alice, RawPeer(server.address) as bob:
        alice.join("alice")
        bob.join("bob")
        alice.recv_until("user_joined")
        flooder = RawPeer(server.address)
        try:
            flooder.join("flooder")
            sent = []
            for i in range(60):  # a sustained flood, with a conversation in between
                flooder.send(chat(f"spam {i}"))
                if i % 20 == 0:
                    sender = alice if i % 40 == 0 else bob
                    sender.send(chat(f"real {i}"))
                    sent.append(f"real {i}")
            errors = []
            while "Excess flood" not in (errors[-1] if errors else ""):
                errors.append(flooder.recv_until("error")["message"])
            assert "Slow down" in errors[0]
            assert flooder.closed_by_server()
        finally:
            flooder.close()
        heard = {}
        for name, peer in (("alice", alice), ("bob", bob)):
            heard[name] = []
            while len(heard[name]) < len(sent):
                frame = peer.recv_until("chat")
                if frame["username"] != "flooder":
                    heard[name].append(frame["message"])
        assert sorted(heard["alice"]) == sorted(sent)  # nothing lost
        assert heard["alice"] == heard["bob"]  # and everyone heard it in the same order


def test_stop_with_100_connected_clients_finishes_within_2_seconds(make_server):
    server = make_server(Limits(rate_limit=0))
    clients = [ChatClient(*server.address, keepalive=None) for _ in range(100)]
    try:
        for number, client in enumerate(clients):
            client.connect(f"user{number}")
        wait_for(lambda: len(server.usernames()) == 100)
        started = time.monotonic()
        server.stop(timeout=2.0)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0 + 0.5, f"stop() took {elapsed:.2f} s"  # 0.5 s for a busy machine
        assert not server.running
        for client in clients:
            wait_for(lambda c=client: not c.connected)
    finally:
        for client in clients:
            client.close()


@pytest.mark.engines("threads")
def test_connection_flood_on_a_full_server_does_not_make_threads_without_bound(make_server):
    server = make_server(Limits(max_clients=1))
    with RawPeer(server.address) as inside:
        inside.join("inside")
        baseline = threading.active_count()
        crowd = []
        try:
            for _ in range(100):  # each stays open: a refusal thread would linger for each
                crowd.append(socket.create_connection(server.address, timeout=TIMEOUT))
            time.sleep(0.2)
            assert threading.active_count() <= baseline + MAX_TURNING_AWAY
            told = 0
            for sock in crowd:  # every one is closed; the first ones were told why
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
                told += b"Server full" in data
            assert told >= 1
        finally:
            for sock in crowd:
                sock.close()
        inside.send({"type": "ping"})
        assert inside.recv_frame() == {"type": "pong"}


def test_connections_still_being_closed_count_toward_max_clients(make_server):
    """Else a peer could get itself closed at once, ignore it, and open the next, without end."""
    server = make_server(Limits(max_clients=2, close_timeout=10.0))  # long, for a slow machine
    with RawPeer(server.address) as ignorer:
        ignorer.send(b"\xff\n")  # invalid UTF-8: the server closes, and we ignore it
        wait_for(lambda: server.core.connection_count == 0)
        with RawPeer(server.address) as second, RawPeer(server.address) as third:
            assert second.join("second")["type"] == "welcome"
            assert "Server full" in third.recv_until("error")["message"]
        ignorer.sock.shutdown(socket.SHUT_WR)  # now we hang up too

        def place_again() -> bool:
            with RawPeer(server.address) as again:
                return again.join("again")["type"] == "welcome"

        wait_for(place_again, interval=0.1)


# --------------------------------------------------------------------------
# Found by review and hostile testing (issue 9): each once went wrong


def test_a_flood_of_blank_lines_is_disconnected_and_the_others_keep_chatting(server):
    """Fault 3: 4 MiB of newlines once cost nothing and kept the server busy for seconds."""
    with RawPeer(server.address) as watcher, RawPeer(server.address) as flooder:
        watcher.join("watcher")
        flooder.join("flooder")
        try:
            flooder.sock.sendall(b"\n" * (4 * 1024 * 1024))
        except OSError:
            pass  # cut off before it was all sent: also fine
        errors = []
        while "Excess flood" not in (errors[-1] if errors else ""):
            errors.append(flooder.recv_until("error")["message"])
        assert flooder.closed_by_server()
        assert len(errors) == protocol_flood_strikes()
        watcher.send(chat("still here"))
        assert watcher.recv_until("chat")["message"] == "still here"


def protocol_flood_strikes() -> int:
    return Limits().flood_disconnect_strikes


def test_blank_lines_do_not_keep_a_silent_client_connected(make_server):
    """Fault 3: only a complete, valid frame proves a client alive."""
    server = make_server(Limits(idle_timeout=1.0))
    with RawPeer(server.address) as idler:
        idler.join("idler")
        deadline = time.monotonic() + 4 * TIMEOUT
        told = None
        while told is None and time.monotonic() < deadline:  # a newline every 0.3 s
            idler.send(b"\n")
            try:
                told = idler.recv_frame(timeout=0.3)
            except TimeoutError:
                pass
        assert told is not None and "Idle timeout" in told["message"]
        assert idler.closed_by_server()


@needs_proc_fd
def test_a_client_that_half_closes_and_never_reads_is_cut_off(make_server):
    """Fault 4: asyncio once kept such a socket for ever (a close waiting for a drain)."""
    server = make_server(Limits(rate_limit=0, close_timeout=0.5))
    with RawPeer(server.address) as talker:
        talker.join("talker")
        time.sleep(0.05)
        fds = open_fds()
        stuck = RawPeer(server.address, recv_buffer=4096)
        try:
            stuck.join("stuck")
            for number in range(2000):  # ~ 4 MB it will never read: the server must wait
                talker.send(chat(f"{number:04d} " + "x" * 2000))
            stuck.sock.shutdown(socket.SHUT_WR)  # "I am done talking" -- and it never reads
            wait_for(lambda: "stuck" not in server.usernames())
            wait_for(lambda: open_fds() == fds + 1, timeout=3 * TIMEOUT)  # only ours is left
            assert server.core.connection_count == 1
        finally:
            stuck.close()


@pytest.mark.engines("threads")
def test_a_thread_that_cannot_start_costs_one_connection_not_the_server(
    make_server, monkeypatch, caplog
):
    """Fault 5: one failed Thread.start() once stopped the accept loop for good."""
    server = make_server()
    real_start = threading.Thread.start
    failures = []

    def start(thread: threading.Thread) -> None:
        if thread.name.startswith("chat-reader") and not failures:
            failures.append(thread.name)
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    with caplog.at_level(logging.ERROR), RawPeer(server.address) as unlucky:
        assert unlucky.closed_by_server()  # refused, alone
        with RawPeer(server.address) as lucky:
            assert lucky.join("lucky")["type"] == "welcome"
    assert failures
    assert "Cannot start a thread" in caplog.text
    wait_for(lambda: server.core.connection_count == 0)


def test_256_kib_of_bad_frames_write_a_few_log_lines_not_thousands(make_server, caplog):
    """Fault 11: 256 KiB of "{}" lines once wrote 21,847 WARNING lines."""
    server = make_server(Limits(rate_limit=0))
    with caplog.at_level(logging.WARNING), RawPeer(server.address) as mallory:
        mallory.join("mallory")
        mallory.sock.sendall(b"{}\n" * (256 * 1024 // 3))
        errors = 0
        try:
            while errors < 256 * 1024 // 3:
                mallory.recv_until("error")
                errors += 1
        except (TimeoutError, EOFError, ConnectionResetError):
            pass
    wait_for(lambda: "mallory" not in server.usernames() or errors >= 256 * 1024 // 3)
    server.stop()
    about = [r.getMessage() for r in caplog.records if "mallory" in r.getMessage()]
    assert len(about) <= 10, about
    assert any(line.startswith("... ") and "more warnings from mallory" in line for line in about)


@needs_proc_fd
@pytest.mark.skipif(os.name != "posix", reason="resource limits are POSIX")
def test_out_of_file_descriptors_the_server_logs_a_few_lines_and_recovers(engine):
    """Fault 10: out of descriptors, the server once logged hundreds of tracebacks a second."""
    limit = 40  # the server's whole process may hold this many files

    def low_limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    with server_program("--engine", engine, preexec_fn=low_limit) as program:
        port, log = program.port, program.log
        crowd = []
        try:
            for _ in range(limit + 10):  # more than it can hold
                try:
                    crowd.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
                except OSError:
                    break
            time.sleep(2.5)  # long enough for hundreds of lines, were it one per try
        finally:
            for sock in crowd:
                sock.close()

        def serves_again() -> bool:
            try:
                with RawPeer(("127.0.0.1", port)) as peer:
                    return peer.join("back")["type"] == "welcome"
            except OSError:
                return False

        wait_for(serves_again, timeout=3 * TIMEOUT, interval=0.2)
        errors = [line for line in log() if " - ERROR - " in line]
    assert errors, "the test did not run the server out of descriptors"
    assert len(errors) <= 6, errors
