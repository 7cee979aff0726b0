"""TLS: the same chat inside an encrypted tunnel, with certificates made at test time.

``trustme`` plays a certificate authority: it signs a certificate for
127.0.0.1 and localhost that only clients told to trust this CA accept --
exactly the self-signed set-up README "Security" describes.  Engines without
TLS support are skipped, saying so.
"""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from chat import protocol
from chat.client import ChatClient, ChatError, ConnectError, JoinError
from chat.limits import Limits
from chat.tls import client_context, server_context
from tests.helpers import TIMEOUT, RawPeer, server_program, wait_for


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def pem_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The CA's certificate, and the server's certificate chain and key, as PEM files."""
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(files["ca"]))
    cert.private_key_pem.write_to_path(str(files["key"]))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(files["cert"]), append=True)
    return files


@pytest.fixture
def make_tls_server(make_server: Callable, pem_files: dict[str, Path], engine: str) -> Callable:
    def start(limits: Limits | None = None):
        context = server_context(str(pem_files["cert"]), str(pem_files["key"]))
        try:
            return make_server(limits, ssl_context=context)
        except (NotImplementedError, TypeError) as exc:
            pytest.skip(f"the {engine} engine has no TLS support: {exc}")

    return start


@pytest.fixture
def tls_server(make_tls_server: Callable):
    return make_tls_server()


@pytest.fixture
def trusting(pem_files: dict[str, Path]) -> ssl.SSLContext:
    """A client context that trusts our test CA (and nothing else)."""
    return client_context(str(pem_files["ca"]))


def test_two_clients_chat_over_tls(tls_server, trusting):
    with ChatClient(*tls_server.address, ssl_context=trusting) as alice:
        alice.connect("alice")
        with ChatClient(*tls_server.address, ssl_context=trusting) as bob:
            bob.connect("bob")
            bob.send_chat("secret hello")
            while (event := alice.events.get(timeout=TIMEOUT))["type"] != "chat":
                pass
            assert (event["username"], event["message"]) == ("bob", "secret hello")
            assert alice.ping() >= 0


def test_tls_client_can_be_given_just_the_ca_file(tls_server, pem_files):
    with ChatClient(*tls_server.address, cafile=str(pem_files["ca"])) as client:
        assert client.connect("alice")["type"] == "welcome"


def test_what_travels_on_the_wire_is_not_readable(tls_server, trusting):
    """A raw TCP peer that speaks JSON gets no chat out of a TLS server."""
    with RawPeer(tls_server.address) as eavesdropper:
        eavesdropper.send({"type": "join", "username": "eve"})
        with pytest.raises((EOFError, ConnectionResetError, TimeoutError, ValueError)):
            eavesdropper.recv_frame(timeout=2)
    with ChatClient(*tls_server.address, ssl_context=trusting) as alice:
        assert alice.connect("alice")["users"] == ["alice"]  # eve never joined


def test_client_refuses_a_certificate_from_an_unknown_authority(tls_server):
    stranger = client_context(None)  # the system's authorities never signed our test CA
    with pytest.raises(ConnectError, match="not trusted"):
        ChatClient(*tls_server.address, ssl_context=stranger).connect("alice")


def test_tls_client_to_a_plain_server_fails_with_a_clear_error(server, trusting):
    client = ChatClient(*server.address, ssl_context=trusting, timeout=2)
    with pytest.raises(ConnectError, match="Does the server use TLS"):
        client.connect("alice")


def test_plain_client_to_a_tls_server_is_refused_and_the_server_carries_on(tls_server, trusting):
    with pytest.raises(ChatError):
        ChatClient(*tls_server.address, timeout=2).connect("alice")
    with ChatClient(*tls_server.address, ssl_context=trusting) as alice:
        assert alice.connect("alice")["type"] == "welcome"


def test_stalled_handshake_does_not_block_others_and_is_dropped(make_tls_server, trusting):
    server = make_tls_server(Limits(tls_handshake_timeout=0.5, join_timeout=0.5))
    with socket.create_connection(server.address, timeout=TIMEOUT) as stalled:
        # Connected, but never says a word: the handshake waits for our hello.
        with ChatClient(*server.address, ssl_context=trusting) as alice:
            assert alice.connect("alice")["type"] == "welcome"
        stalled.settimeout(TIMEOUT)
        try:
            assert stalled.recv(4096) == b""  # dropped: nothing readable, then the end
        except ConnectionResetError:
            pass  # also a way to be dropped


def test_server_full_is_said_inside_the_tunnel(make_tls_server, trusting):
    server = make_tls_server(Limits(max_clients=1))
    with ChatClient(*server.address, ssl_context=trusting) as alice:
        alice.connect("alice")
        with pytest.raises(JoinError, match="Server full"):
            ChatClient(*server.address, ssl_context=trusting).connect("bob")


def test_connections_still_in_their_handshake_count_toward_max_clients(make_tls_server, trusting):
    """Fault 6: silent connections in the TLS handshake once counted toward nothing."""
    server = make_tls_server(Limits(max_clients=3))
    silent = [socket.create_connection(server.address, timeout=TIMEOUT) for _ in range(3)]
    try:
        wait_for(lambda: server.core.connection_count == 3)
        with pytest.raises(JoinError, match="Server full"):
            ChatClient(*server.address, ssl_context=trusting).connect("alice")
    finally:
        for sock in silent:
            sock.close()


def test_connections_still_in_their_handshake_count_toward_max_per_ip(make_tls_server, trusting):
    server = make_tls_server(Limits(max_connections_per_ip=2))
    silent = [socket.create_connection(server.address, timeout=TIMEOUT) for _ in range(2)]
    try:
        wait_for(lambda: server.core.connection_count == 2)
        with pytest.raises(JoinError, match=r"Too many connections from 127\.0\.0\.1"):
            ChatClient(*server.address, ssl_context=trusting).connect("alice")
    finally:
        for sock in silent:
            sock.close()


def test_stop_with_handshakes_in_flight_is_quiet_and_closes_them(make_tls_server, caplog):
    """Fault 10: asyncio once logged "Task was destroyed" and left their sockets open."""
    server = make_tls_server()
    silent = [socket.create_connection(server.address, timeout=TIMEOUT) for _ in range(5)]
    try:
        wait_for(lambda: server.core.connection_count == 5)
        with caplog.at_level(logging.WARNING):
            server.stop(timeout=2.0)
        assert not server.running
        for sock in silent:
            sock.settimeout(TIMEOUT)
            try:
                assert sock.recv(4096) == b""  # closed by the server
            except ConnectionResetError:
                pass  # also closed
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        assert "Task was destroyed" not in caplog.text
    finally:
        for sock in silent:
            sock.close()


def test_many_frames_both_ways_at_once_arrive_intact(make_tls_server, trusting):
    """The reader and writer threads share each TLS connection: nothing may corrupt it."""
    server = make_tls_server(Limits(rate_limit=0))
    count = 500
    with (
        ChatClient(*server.address, ssl_context=trusting) as alice,
        ChatClient(*server.address, ssl_context=trusting) as bob,
    ):
        alice.connect("alice")
        bob.connect("bob")
        wait_for(lambda: alice.users == ["alice", "bob"])

        def talk(client: ChatClient, name: str) -> None:
            for i in range(count):
                client.send_chat(f"{name} {i} " + "x" * (i % 300))

        talkers = [threading.Thread(target=talk, args=(c, c.username)) for c in (alice, bob)]
        for thread in talkers:
            thread.start()
        for client in (alice, bob):
            heard: dict[str, list[int]] = {"alice": [], "bob": []}
            while len(heard["alice"]) + len(heard["bob"]) < 2 * count:
                event = client.events.get(timeout=TIMEOUT)
                if event["type"] == "chat":
                    heard[event["username"]].append(int(event["message"].split()[1]))
            assert heard == {"alice": list(range(count)), "bob": list(range(count))}
        for thread in talkers:
            thread.join(TIMEOUT)


def test_tls_client_sees_the_server_say_goodbye(tls_server, trusting):
    with ChatClient(*tls_server.address, ssl_context=trusting) as alice:
        alice.connect("alice")
        tls_server.stop()
        kinds = []
        while not kinds or kinds[-1] != "disconnected":
            kinds.append(alice.events.get(timeout=TIMEOUT)["type"])
        assert "server_shutdown" in kinds


# -- the programs


def test_server_and_terminal_client_programs_chat_over_tls(pem_files):
    tls = ["--tls-cert", str(pem_files["cert"]), "--tls-key", str(pem_files["key"])]
    with server_program(*tls) as program:
        port = program.port
        client = [sys.executable, "-m", "chat.client", "--host", "127.0.0.1"]
        client += ["--port", str(port), "--username", "bot", "--cafile", str(pem_files["ca"])]
        done = subprocess.run(
            client, input="hello over tls\n", capture_output=True, text=True, timeout=3 * TIMEOUT
        )
        assert done.returncode == 0, done.stderr
        assert "bot: hello over tls" in done.stdout


def test_server_program_explains_a_missing_certificate(tmp_path):
    missing = str(tmp_path / "nope.pem")
    command = [sys.executable, "-m", "chat.server", "--port", "0", "--tls-cert", missing]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3 * TIMEOUT)
    assert done.returncode == 1
    assert "cannot load the TLS certificate" in done.stderr


def test_frames_are_the_same_inside_the_tunnel(tls_server, pem_files):
    """Speak the protocol by hand through the standard ssl module: nothing else changes."""
    context = client_context(str(pem_files["ca"]))
    raw = socket.create_connection(tls_server.address, timeout=TIMEOUT)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tunnel:
        tunnel.sendall(protocol.encode(protocol.join("alice")))
        line = tunnel.recv(4096).split(b"\n")[0]
        assert protocol.decode_line(line)["type"] == "welcome"
