"""The WebSocket gateway, with the library's own client: every engine, every bad input.

Each test starts a real server with ``web_port=0`` (once per engine) and talks
to it with ``websockets``' client (``websockets.sync.client``, or its asyncio
client when hundreds of connections are needed), or with a raw socket where a
well-behaved client could not misbehave enough.  The browser tests are in
``tests/test_web_browser.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Protocol, Side, State
from websockets.sync.client import ClientConnection, connect

from chat.limits import Limits
from chat.server import AddressInUseError, ChatServer, create_server
from chat.tls import server_context
from chat.web import STATIC
from chat.web.gateway import MAX_REQUEST_BYTES, WebGateway, _origin, _text_frames
from tests.helpers import ALL_FEATURES, TIMEOUT, RawPeer, server_program, wait_for

# -- helpers


def web_url(server: ChatServer, path: str = "/ws", scheme: str = "ws") -> str:
    assert server.web_address is not None
    host, port = server.web_address
    return f"{scheme}://{host}:{port}{path}"


@contextlib.contextmanager
def ws_client(server: ChatServer, **options: Any) -> Iterator[ClientConnection]:
    """The library's client on ``/ws``: no proxy, no pings of its own, every wait bounded."""
    options.setdefault("open_timeout", TIMEOUT)
    options.setdefault("close_timeout", 1)
    url = options.pop("url", None) or web_url(server)
    with connect(url, proxy=None, ping_interval=None, **options) as ws:
        yield ws


def recv(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    text = ws.recv(timeout=timeout)
    assert isinstance(text, str), "every frame from the server is a text message"
    return json.loads(text)


def recv_until(ws: ClientConnection, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        frame = recv(ws, max(0.01, deadline - time.monotonic()))
        if frame["type"] == kind:
            return frame


def join(ws: ClientConnection, name: str, features: list[str] | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "join", "username": name}
    if features is not None:
        frame["features"] = features
    ws.send(json.dumps(frame))
    return recv(ws)


def send_all(ws: ClientConnection, messages: list[str | bytes]) -> None:
    """Send each, until the server has closed the connection."""
    with contextlib.suppress(ConnectionClosed):
        for message in messages:
            ws.send(message)


def closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], ConnectionClosed]:
    """Read until the server closes: the frames before, and how it closed."""
    frames = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            frames.append(recv(ws, max(0.01, deadline - time.monotonic())))
        except ConnectionClosed as exc:
            return frames, exc


def http_get(url: str, context: ssl.SSLContext | None = None) -> Any:
    handlers: list[Any] = [urllib.request.ProxyHandler({})]  # never a proxy
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers).open(url, timeout=TIMEOUT)


def raw_request(address: tuple[str, int], request: bytes) -> bytes:
    """Send ``request`` on a raw socket; return everything the server sends until it closes."""
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.fixture
def web_server(make_server: Callable[..., ChatServer]) -> ChatServer:
    return make_server(web_port=0)


# -- the page


def test_the_page_is_served_at_the_root_with_a_strict_content_policy(web_server):
    with http_get(web_url(web_server, "/", "http")) as response:
        body = response.read().decode()
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert '<script src="app.js"' in body


@pytest.mark.parametrize("path", sorted(set(STATIC) - {"/"}))
def test_each_file_of_the_page_is_served_with_its_type(web_server, path):
    with http_get(web_url(web_server, path, "http")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == STATIC[path][1]
        assert response.read()


def test_an_unknown_path_is_not_found(web_server):
    with pytest.raises(urllib.error.HTTPError) as caught:
        http_get(web_url(web_server, "/etc/passwd", "http"))
    assert caught.value.code == 404


def test_the_page_uses_no_html_parsing_of_text():
    """The page's script never turns text into HTML (innerHTML and friends)."""
    script = (Path(__file__).parent.parent / "chat/web/static/app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


# -- chatting


def test_a_websocket_client_and_a_tcp_client_chat_both_ways(web_server):
    with ws_client(web_server) as ws, RawPeer(web_server.address) as tcp:
        assert join(ws, "webby")["type"] == "welcome"
        tcp.join("terminal")
        assert recv_until(ws, "user_joined")["username"] == "terminal"
        tcp.send({"type": "chat", "message": "hello, browser"})
        assert recv_until(ws, "chat")["message"] == "hello, browser"
        assert tcp.recv_until("chat")["username"] == "terminal"  # its own, relayed back
        ws.send(json.dumps({"type": "chat", "message": "hello, terminal"}))
        assert tcp.recv_until("chat")["message"] == "hello, terminal"


def test_each_frame_is_one_text_message_without_its_newline(web_server):
    with ws_client(web_server) as ws:
        join(ws, "webby")
        ws.send('{"type": "ping", "id": 7}')
        text = ws.recv(timeout=TIMEOUT)
    assert isinstance(text, str)
    assert not text.endswith("\n")
    assert json.loads(text) == {"type": "pong", "id": 7}


def test_extensions_work_over_websocket(web_server):
    with ws_client(web_server) as alice, ws_client(web_server) as bob:
        assert "rooms" in join(alice, "alice", ALL_FEATURES)["features"]
        join(bob, "bob", ALL_FEATURES)
        alice.send(json.dumps({"type": "private", "to": "bob", "message": "psst"}))
        assert recv_until(bob, "private")["message"] == "psst"
        bob.send(json.dumps({"type": "join_room", "room": "#web"}))
        assert recv_until(bob, "room_joined")["room"] == "#web"


def test_a_message_with_raw_newlines_is_one_frame(web_server):
    """Pretty-printed JSON is still one frame: its newlines are only white space."""
    with ws_client(web_server) as ws:
        join(ws, "webby")
        ws.send('{\n  "type": "ping",\r\n  "id": "pretty"\n}\n')
        assert recv(ws) == {"type": "pong", "id": "pretty"}


def test_two_frames_in_one_message_are_refused_not_split(web_server):
    with ws_client(web_server) as ws:
        join(ws, "webby")
        ws.send('{"type": "ping", "id": 1}\n{"type": "ping", "id": 2}')
        error = recv(ws)
        ws.send('{"type": "ping", "id": 3}')  # and the connection goes on
        assert recv(ws) == {"type": "pong", "id": 3}
    assert error["type"] == "error" and "JSON" in error["message"]


def test_a_message_sent_in_fragments_is_put_together(web_server):
    with ws_client(web_server) as ws:
        join(ws, "webby")
        ws.send(['{"type": "pi', 'ng", "id"', ": 9}"])
        assert recv(ws) == {"type": "pong", "id": 9}


def test_websocket_pings_are_answered_by_the_library(web_server):
    with ws_client(web_server) as ws:
        join(ws, "webby")
        assert ws.ping(b"hi").wait(TIMEOUT)


# -- bad input


def test_a_binary_message_gets_an_error_and_the_connection_stays_open(web_server):
    with ws_client(web_server) as ws:
        join(ws, "webby")
        ws.send(b'{"type": "ping"}')
        error = recv(ws)
        ws.send('{"type": "ping", "id": 1}')
        assert recv(ws) == {"type": "pong", "id": 1}
    assert error["type"] == "error"
    assert "Binary messages are not supported" in error["message"]


def test_binary_messages_count_toward_the_flood_limit(make_server):
    limits = Limits(rate_limit=1, rate_burst=2, flood_disconnect_strikes=3)
    server = make_server(limits=limits, web_port=0)
    with ws_client(server) as ws:
        join(ws, "webby")
        send_all(ws, [b"\x00"] * 10)
        frames, _ = closed(ws)
    messages = [f["message"] for f in frames]
    assert messages[0].startswith("Binary")
    assert any(m.startswith("Slow down") for m in messages)
    assert messages[-1].startswith("Excess flood")


def test_a_10_mb_message_gets_an_error_then_a_close(web_server):
    """The library refuses it as soon as the frame's header says its size."""
    with ws_client(web_server, max_size=None) as ws:
        join(ws, "webby")
        try:
            ws.send("x" * 10_000_000)
        except ConnectionClosed:
            pass  # the server may close while we are still sending: fine
        frames, how = closed(ws)
    assert frames and frames[-1]["type"] == "error"
    assert "Frame too big" in frames[-1]["message"]
    assert how.rcvd is not None and how.rcvd.code == CloseCode.MESSAGE_TOO_BIG


def test_a_message_of_max_frame_bytes_is_read_and_one_byte_more_is_not(make_server):
    server = make_server(limits=Limits(max_frame_bytes=1000), web_port=0)
    ping = '{"type": "ping", "id": "%s"}'
    exact = ping % ("x" * (1000 - len(ping % "")))
    assert len(exact) == 1000
    with ws_client(server) as ws:
        join(ws, "webby")
        ws.send(exact)
        assert recv(ws)["type"] == "error"  # an id of over 64 characters: refused, not closed
        ws.send(exact + " ")
        frames, how = closed(ws)
    assert "Frame too big" in frames[-1]["message"]
    assert how.rcvd is not None and how.rcvd.code == CloseCode.MESSAGE_TOO_BIG


def test_invalid_utf8_gets_the_same_answer_as_on_tcp(web_server):
    """The library passes the bytes on; the core refuses them as it does on TCP."""
    with ws_client(web_server) as ws:
        join(ws, "webby")
        ws.send(b'{"type": "chat", "message": "\xff\xfe"}', text=True)
        frames, how = closed(ws)
    assert frames[-1]["type"] == "error"
    assert frames[-1]["message"].startswith("Frame is not valid UTF-8")
    assert how.rcvd is not None and how.rcvd.code == CloseCode.POLICY_VIOLATION


def test_a_flood_is_disconnected(make_server):
    server = make_server(
        limits=Limits(rate_limit=1, rate_burst=3, flood_disconnect_strikes=5), web_port=0
    )
    with ws_client(server) as ws:
        join(ws, "webby")
        send_all(ws, [json.dumps({"type": "ping", "id": i}) for i in range(20)])
        frames, _ = closed(ws)
    assert any(f.get("message", "").startswith("Slow down") for f in frames)
    assert frames[-1]["message"].startswith("Excess flood")


def test_a_client_that_never_joins_is_closed_after_the_join_timeout(make_server):
    server = make_server(limits=Limits(join_timeout=0.5), web_port=0)
    with ws_client(server) as ws:
        frames, _ = closed(ws)
    assert frames[-1]["message"].startswith("Join timeout")
    assert wait_for(lambda: server.core.connection_count == 0)


def test_a_silent_client_is_closed_after_the_idle_timeout(make_server):
    server = make_server(limits=Limits(idle_timeout=0.5), web_port=0)
    with ws_client(server) as ws:
        join(ws, "webby")
        frames, _ = closed(ws)
    assert frames[-1]["message"].startswith("Idle timeout")


def test_websocket_clients_count_toward_max_clients(make_server):
    server = make_server(limits=Limits(max_clients=2), web_port=0)
    with ws_client(server) as first, RawPeer(server.address) as second:
        join(first, "first")
        second.join("second")
        with ws_client(server) as third:
            frames, _ = closed(third)
        with RawPeer(server.address) as fourth:
            refusal = fourth.recv_frame()
    assert frames[-1]["message"].startswith("Server full")
    assert refusal["message"].startswith("Server full")


def test_websocket_clients_count_toward_the_per_ip_limit(make_server):
    server = make_server(limits=Limits(max_connections_per_ip=1), web_port=0)
    with ws_client(server) as first:
        join(first, "first")
        with ws_client(server) as second:
            frames, _ = closed(second)
    assert frames[-1]["message"] == "Too many connections from 127.0.0.1"


def test_500_websocket_connections_that_never_join_are_bounded(make_server):
    """At most max_clients are served, each until the join timeout; every other one
    is told "Server full" -- or, while too many handshakes run at once, refused
    before its handshake.  Afterwards the server is as good as new."""
    server = make_server(limits=Limits(max_clients=50, join_timeout=1.0), web_port=0)

    async def never_join() -> str:
        from websockets.asyncio.client import connect as async_connect

        try:
            async with async_connect(
                web_url(server), proxy=None, ping_interval=None, open_timeout=3 * TIMEOUT
            ) as ws:
                last = ""
                with contextlib.suppress(ConnectionClosed):
                    while True:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 3 * TIMEOUT))
                        last = frame["message"]
                return last
        except (OSError, InvalidHandshake):
            return "refused before its handshake"

    async def crowd() -> list[str]:
        return await asyncio.gather(*(never_join() for _ in range(500)))

    answers = asyncio.run(crowd())
    served = sum(a.startswith("Join timeout") for a in answers)
    turned_away = sum(a.startswith(("Server full", "refused")) for a in answers)
    assert served + turned_away == 500
    assert 0 < served <= 50
    assert wait_for(lambda: server.core.connection_count == 0)
    assert wait_for(lambda: not server._gateway_connections)
    with ws_client(server) as ws:
        assert join(ws, "after")["type"] == "welcome"


def test_a_websocket_client_that_never_reads_is_dropped_and_delays_nobody(make_server):
    """Its frames wait in its bounded outbox; past the send-queue limit it is dropped."""
    limits = Limits(rate_limit=0, max_send_queue_bytes=64 * 1024)
    server = make_server(limits=limits, web_port=0)
    with RawPeer(server.address) as talker, socket.socket() as lazy:
        lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.settimeout(TIMEOUT)
        lazy.connect(server.web_address)
        client = _handshake(lazy, server)
        lazy.sendall(_masked_text(client, b'{"type": "join", "username": "lazy"}'))
        wait_for(lambda: "lazy" in server.usernames())
        talker.join("talker")
        text = "y" * 3900  # frames of ~4 KB; the kernel's buffers take a few MB first
        for i in range(5000):  # bounded; the lazy client is dropped long before
            talker.send({"type": "chat", "message": f"{i} {text}"})
            frame = talker.recv_frame()  # a bounded wait: nobody waits for "lazy"
            if frame["type"] == "user_left":
                assert frame["username"] == "lazy"
                break
            assert frame["message"] == f"{i} {text}"
        else:
            pytest.fail("the WebSocket client that never reads was never disconnected")
    assert "lazy" not in server.usernames()


def _handshake(sock: socket.socket, server: ChatServer) -> Any:
    """The library's sans-I/O client, driven by hand over ``sock``: just the handshake."""
    from websockets.client import ClientProtocol
    from websockets.uri import parse_uri

    client = ClientProtocol(parse_uri(web_url(server)))
    client.send_request(client.connect())
    sock.sendall(b"".join(client.data_to_send()))
    while client.state is State.CONNECTING:
        client.receive_data(sock.recv(4096))
    client.events_received()
    return client


def _masked_text(client: Protocol, data: bytes) -> bytes:
    client.send_text(data)
    return b"".join(client.data_to_send())


# -- the handshake's own bounds, and who may connect


def test_a_slow_handshake_is_cut_off(make_server):
    server = make_server(limits=Limits(tls_handshake_timeout=0.5), web_port=0)
    with socket.create_connection(server.web_address, timeout=TIMEOUT) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /ws HTTP/1.1\r\n")
        with contextlib.suppress(ConnectionResetError):
            while sock.recv(4096):  # a trickle would not help: the deadline is from connect
                pass
        assert time.monotonic() - start < TIMEOUT


def test_a_request_larger_than_the_bound_is_refused(web_server):
    header = b"X-Padding: " + b"a" * 4000 + b"\r\n"
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header * (MAX_REQUEST_BYTES // 4000 + 1)
    answer = raw_request(web_server.web_address, request)
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_handshakes_that_never_finish_are_bounded(make_server):
    """Connections still in their handshake count too: at most max_clients at once."""
    server = make_server(limits=Limits(max_clients=20, tls_handshake_timeout=2.0), web_port=0)
    socks = [socket.create_connection(server.web_address, timeout=TIMEOUT) for _ in range(25)]
    try:
        for sock in socks:
            sock.sendall(b"GET /ws HTTP/1.1\r\n")  # and nothing more
        for sock in socks[20:]:  # refused at once, without a word
            sock.settimeout(1.0)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(4096) == b""
        for sock in socks[:20]:  # cut off at their deadline
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(4096) == b""
        with ws_client(server) as ws:  # and then there is room again
            assert join(ws, "patient")["type"] == "welcome"
    finally:
        for sock in socks:
            sock.close()


def test_a_handshake_from_another_origin_is_refused(web_server):
    with (
        pytest.raises(InvalidStatus) as caught,
        ws_client(web_server, origin="http://evil.example"),
    ):
        pass
    assert caught.value.response.status_code == 403


def test_a_handshake_from_the_pages_own_origin_is_accepted(web_server):
    host, port = web_server.web_address
    with ws_client(web_server, origin=f"http://{host}:{port}") as ws:
        assert join(ws, "webby")["type"] == "welcome"


def test_an_origin_allowed_by_the_server_is_accepted(make_server):
    server = make_server(web_port=0, web_origins=["https://Chat.Example.org/"])
    with ws_client(server, origin="https://chat.example.org") as ws:
        assert join(ws, "webby")["type"] == "welcome"
    with pytest.raises(InvalidStatus), ws_client(server, origin="https://chat.example.com"):
        pass


def test_a_request_for_an_unknown_host_name_is_refused(web_server):
    """DNS rebinding: a page of evil.example whose name points at us is not "our own"."""
    port = web_server.web_address[1]
    request = f"GET / HTTP/1.1\r\nHost: evil.example:{port}\r\n\r\n".encode()
    assert raw_request(web_server.web_address, request).startswith(b"HTTP/1.1 421 ")
    request = f"GET / HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode()
    assert raw_request(web_server.web_address, request).startswith(b"HTTP/1.1 200 ")


def test_a_plain_http_request_to_the_endpoint_is_answered(web_server):
    with pytest.raises(urllib.error.HTTPError) as caught:
        http_get(web_url(web_server, "/ws", "http"))
    assert caught.value.code == 426  # Upgrade Required: a WebSocket client is needed


# -- TLS, stopping, starting


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("web-tls")
    files = {"cert": folder / "cert.pem", "key": folder / "key.pem"}
    cert.private_key_pem.write_to_path(str(files["key"]))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(files["cert"]), append=True)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return {**files, "client": client}


def test_with_tls_the_page_is_https_and_the_endpoint_wss(make_server, tls_files):
    context = server_context(str(tls_files["cert"]), str(tls_files["key"]))
    server = make_server(web_port=0, ssl_context=context)
    with http_get(web_url(server, "/", "https"), tls_files["client"]) as response:
        assert response.status == 200
    url = web_url(server, "/ws", "wss")
    with ws_client(server, url=url, ssl=tls_files["client"]) as ws:
        assert join(ws, "secure")["type"] == "welcome"


def test_a_tls_handshake_that_never_comes_is_cut_off(make_server, tls_files):
    context = server_context(str(tls_files["cert"]), str(tls_files["key"]))
    server = make_server(limits=Limits(tls_handshake_timeout=0.5), web_port=0, ssl_context=context)
    with socket.create_connection(server.web_address, timeout=TIMEOUT) as sock:
        start = time.monotonic()
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(4096) == b""
        assert time.monotonic() - start < TIMEOUT


def test_stopping_the_server_says_goodbye_to_websocket_clients(make_server):
    server = make_server(web_port=0)
    with ws_client(server) as ws:
        join(ws, "webby")
        server.stop()
        frames, how = closed(ws)
    assert frames[-1]["type"] == "server_shutdown"
    assert how.rcvd is not None and how.rcvd.code == CloseCode.GOING_AWAY


def test_the_web_address_is_none_without_a_web_port(server):
    assert server.web_address is None


def test_a_web_port_in_use_is_reported_before_anything_starts(engine, web_server):
    second = create_server(engine, "127.0.0.1", 0, web_port=web_server.web_address[1])
    with pytest.raises(AddressInUseError):
        second.start()
    assert not second.running


def test_the_server_program_serves_the_page(tmp_path):
    with server_program("--web-port", "0", "--db", ":memory:") as program:
        line = wait_for(lambda: next((x for x in program.log() if "Chat page on" in x), None))
        url = line.split("Chat page on ")[1].split()[0]
        with http_get(url) as response:
            assert response.status == 200
        with connect(url.replace("http", "ws") + "ws", proxy=None, open_timeout=TIMEOUT) as ws:
            assert join(ws, "cli")["type"] == "welcome"


def run_server_program(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m chat.server ARGS`` that is expected to stop at once (a refusal)."""
    code = (
        f"{prelude}import sys; from chat.server.__main__ import main; sys.exit(main(sys.argv[1:]))"
    )
    command = [sys.executable, "-c", code, "--port", "0", "--db", ":memory:", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=3 * TIMEOUT)


def test_web_origin_without_a_web_port_is_refused():
    done = run_server_program("--web-origin", "https://chat.example.org")
    assert done.returncode == 2
    assert "--web-origin needs --web-port" in done.stderr


def test_a_web_origin_that_is_not_an_origin_is_refused():
    done = run_server_program("--web-port", "0", "--web-origin", "chat.example.org")
    assert done.returncode == 1
    assert "not a web origin" in done.stderr


def test_without_the_websockets_package_the_program_says_what_to_install():
    done = run_server_program(
        "--web-port", "0", prelude="sys_ = __import__('sys'); sys_.modules['websockets'] = None; "
    )
    assert done.returncode == 1
    assert "pip install websockets" in done.stderr


# -- the benchmark's WebSocket clients (what they count, never how fast)


def test_the_benchmark_counts_every_delivery_over_websocket(make_server):
    from benchmarks.loadgen import run_load

    server = make_server(limits=Limits(rate_limit=0), web_port=0)
    result = run_load(server.web_address, clients=3, messages=20, timeout=10, transport="websocket")
    assert (result.expected, result.delivered) == (3 * 3 * 20, 3 * 3 * 20)
    assert (result.lost, result.duplicated, result.out_of_order, result.errors) == (0, 0, 0, 0)
    assert result.transport == "websocket" and result.ok


def test_the_benchmark_runs_tcp_then_websocket_on_the_same_server():
    command = [sys.executable, "-m", "benchmarks", "--engine", "asyncio", "--transport", "both"]
    command += ["--clients", "3", "--messages", "5", "--rate", "50", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loads = json.loads(done.stdout)["load"]
    assert [(r["transport"], r["delivered"], r["lost"]) for r in loads] == [
        ("tcp", 45, 0),
        ("websocket", 45, 0),
    ]
    assert all(r["latency_p99_ms"] > 0 for r in loads)


def test_the_benchmarks_frame_reader_reads_what_the_library_writes_however_cut():
    from benchmarks.websocket import split_text_frames

    messages = [b"", b"a", b"b" * 125, b"c" * 126, b"d" * 65535, b"e" * 65536, b"f" * 70000]
    server = Protocol(Side.SERVER)
    for message in messages:
        server.send_text(message)
    server.send_close(CloseCode.GOING_AWAY)
    stream = b"".join(server.data_to_send())
    close = Frame(Opcode.CLOSE, b"\x03\xe9").serialize(mask=False, extensions=[])
    close_at = len(stream) - len(close)
    cuts = sorted({*range(0, 300), *range(close_at - 20, len(stream) + 1), 65700, 131300})
    for cut in cuts:
        read: list[bytes] = []
        buffer = b""
        consumed = 0
        plain = True
        for chunk in (stream[:cut], stream[cut:]):
            payloads, used, plain = split_text_frames(buffer + chunk)
            read += payloads
            buffer = (buffer + chunk)[used:]
            consumed += used
            if not plain:
                break
        assert read == messages, cut
        assert not plain and consumed == close_at, cut  # the close is left to the library


# -- the gateway's small parts


def test_text_frames_are_what_the_library_would_send():
    data = b'{"type":"pong"}\n' + b'{"type":"chat","message":"' + b"z" * 70000 + b'"}\n'
    library = Protocol(Side.SERVER)
    for line in data.split(b"\n")[:-1]:
        library.send_text(line)
    assert _text_frames(data) == b"".join(library.data_to_send())


def test_text_frames_parse_back_to_the_lines():
    data = b"a\nbb\n"
    reader = Protocol(Side.CLIENT)
    reader.receive_data(_text_frames(data))
    assert [(f.opcode, f.data) for f in reader.events_received()] == [
        (Opcode.TEXT, b"a"),
        (Opcode.TEXT, b"bb"),
    ]
    assert Frame(Opcode.TEXT, b"a").serialize(mask=False, extensions=[]) == _text_frames(b"a\n")


@pytest.mark.parametrize(
    ("given", "origin"),
    [("https://Chat.Example.org/", "https://chat.example.org"), ("http://h:8080", "http://h:8080")],
)
def test_allowed_origins_are_written_as_browsers_send_them(given, origin):
    assert _origin(given) == origin


@pytest.mark.parametrize("bad", ["chat.example.org", "ftp://x", "https://"])
def test_an_allowed_origin_must_be_a_web_origin(bad):
    with pytest.raises(ValueError):
        _origin(bad)


def test_known_hosts_are_addresses_localhost_and_allowed_names(web_server):
    gateway = web_server._gateway
    assert isinstance(gateway, WebGateway)
    assert gateway.host_known("127.0.0.1:8080")
    assert gateway.host_known("[::1]:8080")
    assert gateway.host_known("LOCALHOST")
    assert not gateway.host_known("evil.example")
    assert not gateway.host_known(None)
