"""The load generator: how many messages a second, how fast, how many users?

Run it from a terminal (it starts its own server in a subprocess, on a free
port on 127.0.0.1, with the rate limit off)::

    python -m benchmarks --engine threads --clients 50 --messages 50
    python -m benchmarks --engine asyncio --clients 10 --messages 200 --rate 100
    python -m benchmarks --engine selectors --max-clients
    python -m benchmarks --suite                 # everything; writes benchmarks/
    python -m benchmarks --port 12345            # against a server you started

What it does.  It opens N clients, joins them, has each send M chat messages
(as fast as it can, or R a second each) and makes every client read
everything.  Each message carries its sender, its sequence number and the
moment it was sent, so for every delivery we know whether it was lost,
duplicated or out of order, and how long it took.

Why one thread?  The generator must not be the bottleneck, and a thread per
client would make it just as GIL-bound as the server it measures.  So it is an
event loop itself: non-blocking sockets and :mod:`selectors`, like
:mod:`chat.server.engine_selectors`.  It parses only what it must (a regular
expression finds the three numbers in each chat frame; nothing else is
decoded) and reports its own CPU share: near 100 % would mean it, not the
server, set the pace.  The server runs in another *process*, so the two do not
share a GIL either.

Every loop here is bounded in count and in time; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import errno
import os
import platform
import re
import selectors
import socket
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat import protocol
from chat.limits import Limits
from chat.server import LOG_FORMAT, create_server, prepare_process

__all__ = [
    "LoadResult",
    "MaxClientsResult",
    "ServerProcess",
    "machine_info",
    "max_clients",
    "run_load",
]

#: Bytes asked of each ``recv``: large, so a busy client costs few system calls.
RECV_BYTES = 256 * 1024

#: Connections being set up at once.  More would overflow the server's accept
#: backlog and make the kernel retry them a second later.
CONNECT_BATCH = 200

#: Frames one client puts into one ``send`` when sending as fast as it can.
SEND_BATCH = 16

#: A broadcast must reach every client within this many seconds for a client
#: count to pass the --max-clients test.
BROADCAST_DEADLINE = 5.0


#: A run shorter than this many seconds reports no server CPU share (too coarse).
MIN_CPU_SECONDS = 1.0

#: Seconds without any delivery, after everything was sent, that end a load run.
QUIET_SECONDS = 3.0

DEFAULT_STEPS = (100, 500, 1000, 2000, 5000, 10000)

#: The benchmark server's per-client send queue (the default is 1 MiB).  While
#: ten thousand clients join, each is sent up to 10,000 ``user_joined`` frames
#: (750 KB), and the generator -- one Python thread reading every socket --
#: falls behind; with the default limit the server would rightly drop some of
#: them as slow readers, which measures the generator, not the server.
BENCH_SEND_QUEUE_BYTES = 8 * 1024 * 1024

#: The repository folder: the server subprocess runs ``python -m benchmarks`` there.
ROOT = Path(__file__).resolve().parent.parent

_CHAT = re.compile(rb'"message":"(\d+) (\d+) (\d+)')


# --------------------------------------------------------------------------
# Results


@dataclass
class LoadResult:
    """What one load run measured.  Times in milliseconds unless named ``_s``."""

    engine: str
    clients: int
    messages: int
    rate: float  # messages a second per client; 0: as fast as possible
    transport: str = "tcp"  # or "websocket": the clients spoke to the web port (chat.web)
    expected: int = 0  # deliveries: every message to every client, its sender included
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    errors: int = 0  # error frames received
    disconnected: int = 0  # clients the server closed before the end
    deliveries_per_s: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p90_ms: float = 0.0
    latency_p99_ms: float = 0.0
    latency_max_ms: float = 0.0
    connect_join_s: float = 0.0
    duration_s: float = 0.0
    generator_cpu: float = 0.0  # share of one core the generator used while sending
    server_cpu: float | None = None  # share of one core the server used (Linux)
    server_rss_mb: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order or self.disconnected)


@dataclass
class MaxClientsResult:
    """The --max-clients ramp: the largest count that joined and got a broadcast in time."""

    engine: str
    largest_ok: int = 0
    steps: list[dict[str, Any]] = field(default_factory=list)
    idle_rss_per_client_kb: float | None = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------
# The server under test, in its own process


class ServerProcess:
    """A chat server of one engine in a subprocess, on a free port, rate limit off.

    ``with ServerProcess("asyncio") as server: run_load(server.address, ...)``.
    Its memory and CPU time are read from ``/proc`` (Linux); elsewhere they are None.
    """

    def __init__(
        self,
        engine: str = "threads",
        *,
        max_clients: int = 20000,
        history: str | None = None,
        web: bool = False,
    ) -> None:
        self.engine = engine
        self.max_clients = max_clients
        self.history = history  # a database file, ":memory:", or None: no history kept
        self.web = web  # also a web port, for WebSocket clients (benchmarks.websocket)
        self.process: subprocess.Popen[str] | None = None
        self.address = ("127.0.0.1", 0)
        self.web_address: tuple[str, int] | None = None

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "benchmarks", "--serve", self.engine]
        command += ["--serve-max-clients", str(self.max_clients)]
        if self.history is not None:
            command += ["--serve-history", self.history]
        if self.web:
            command.append("--serve-web")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "port 43117" (+ " web 43118"), once listening
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"the {self.engine} server did not start: {line!r}")
        words = line.split()
        self.address = ("127.0.0.1", int(words[1]))
        if len(words) >= 4 and words[2] == "web":
            self.web_address = ("127.0.0.1", int(words[3]))
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            if self.process.stdin:
                self.process.stdin.close()  # the server stops when its stdin ends
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=5)
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None

    def cpu_seconds(self) -> float | None:
        """User plus system CPU time the server has used so far (Linux only)."""
        if self.process is None:
            return None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int | None:
        """Resident memory of the server process (Linux only)."""
        if self.process is None:
            return None
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ExternalServer(ServerProcess):
    """A server someone else started (``--port``): measured from outside only."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__("external")
        self.address = address

    def start(self) -> ServerProcess:
        return self


def _serve(engine: str, max_clients: int, history: str | None = None, web: bool = False) -> int:
    """The subprocess side of :class:`ServerProcess`: serve until stdin closes.

    Without ``history`` the server keeps none (``db=None``): the standard runs
    measure the engines alone; the suite measures history's cost separately.
    """
    import logging

    logging.basicConfig(format=LOG_FORMAT, level=logging.WARNING)
    prepare_process(engine)
    limits = Limits(
        rate_limit=0,
        max_clients=max_clients,
        join_timeout=300,
        idle_timeout=600,
        max_send_queue_bytes=BENCH_SEND_QUEUE_BYTES,
    )
    web_port = 0 if web else None
    server = create_server(
        engine, "127.0.0.1", 0, limits=limits, backlog=4096, db=history, web_port=web_port
    )
    server.start()
    if server.web_address is not None:
        print("port", server.address[1], "web", server.web_address[1], flush=True)
    else:
        print("port", server.address[1], flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


# --------------------------------------------------------------------------
# The generator's clients


class _Client:
    """One simulated user: a non-blocking socket and what it has seen."""

    __slots__ = (
        "buffer",
        "closed",
        "connected",
        "events",
        "index",
        "joined",
        "last_seq",
        "name",
        "next_seq",
        "out",
        "probe_at",
        "seen",
        "sock",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.name = f"u{index}"
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.out = b""  # bytes not yet accepted by the kernel
        self.events = 0
        self.connected = self.joined = self.closed = False
        self.next_seq = 0
        self.last_seq: array | None = None  # per sender: the last sequence number seen
        self.seen: bytearray | None = None  # per sender and sequence number: seen yet?
        self.probe_at = 0  # --max-clients: when the broadcast arrived (ns)


class _Generator:
    """The event loop that drives every client.  Used by :func:`run_load` and friends."""

    def __init__(self, address: tuple[str, int], progress: bool = False) -> None:
        self.address = address
        self.selector = selectors.DefaultSelector()
        self.clients: list[_Client] = []
        self.progress = progress
        self.phase = ""
        self._last_progress = 0.0
        # measurement state
        self.messages = 0
        self.track = False
        self.latencies = array("q")
        self.delivered = self.duplicated = self.out_of_order = 0
        self.errors = self.disconnected = 0
        self.probe = b""
        self.probe_count = 0
        self.first_ns = self.last_ns = 0
        self.expected = self.joined = self.connect_errors = self.connecting = 0
        self.sending = False
        self.rate = 0.0
        self.padding = b""
        self.last_progress = 0.0  # monotonic time of the last delivery
        self.quiet = QUIET_SECONDS

    # -- plumbing

    def _watch(self, client: _Client, events: int) -> None:
        assert client.sock is not None
        if events == client.events:
            return
        if client.events == 0:
            self.selector.register(client.sock, events, client)
        elif events == 0:
            self.selector.unregister(client.sock)
        else:
            self.selector.modify(client.sock, events, client)
        client.events = events

    def _close(self, client: _Client) -> None:
        if client.closed:
            return
        client.closed = True
        if client.joined or client.connected:
            self.disconnected += 1
        if client.sock is not None:
            self._watch(client, 0)
            client.sock.close()

    def close_all(self) -> None:
        for client in self.clients:
            if client.sock is not None and not client.closed:
                client.closed = True
                self._watch(client, 0)
                client.sock.close()
        self.selector.close()

    def _show(self, text: Any, force: bool = False) -> None:
        """Update the progress line (``text`` may be a function, called only if shown)."""
        if not self.progress:
            return
        now = time.monotonic()
        if force or now - self._last_progress >= 0.25:
            self._last_progress = now
            text = text() if callable(text) else text
            sys.stderr.write(f"\r{text:<78.78}")
            sys.stderr.flush()

    def end_progress(self) -> None:
        if self.progress:
            sys.stderr.write("\r" + " " * 78 + "\r")
            sys.stderr.flush()

    # -- the loop

    def pump(self, done: Any, deadline: float, tick: Any = None) -> bool:
        """Serve every ready socket until ``done()`` or the deadline; True if done."""
        select = self.selector.select
        while not done():
            now = time.monotonic()
            if now >= deadline:
                return False
            timeout = deadline - now
            if tick is not None:
                timeout = min(timeout, tick(now))
            for key, mask in select(max(0.0, min(timeout, 0.1))):
                client = key.data
                if mask & selectors.EVENT_WRITE:
                    self._writable(client)
                if mask & selectors.EVENT_READ and not client.closed:
                    self._readable(client)
        return True

    def _writable(self, client: _Client) -> None:
        assert client.sock is not None
        if not client.connected:
            error = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self.connect_errors += 1
                client.closed = True
                self._watch(client, 0)
                client.sock.close()
                return
            client.connected = True
            self.connecting -= 1
            client.out = self._hello(client)
        if self.sending and client.next_seq < self.messages and len(client.out) < 65536:
            client.out += self._frames(client, SEND_BATCH)
        self._flush(client)

    def _hello(self, client: _Client) -> bytes:
        """What a client sends first: its join (a WebSocket client, its handshake)."""
        return protocol.encode(protocol.join(client.name))

    def _frames(self, client: _Client, count: int) -> bytes:
        """The next ``count`` chat frames of ``client``, stamped with the time now."""
        now = time.perf_counter_ns()
        first = client.next_seq
        last = min(self.messages, first + count)
        client.next_seq = last
        index, pad = client.index, self.padding
        return b"".join(
            b'{"type":"chat","message":"%d %d %d%s"}\n' % (index, seq, now, pad)
            for seq in range(first, last)
        )

    def _flush(self, client: _Client) -> None:
        assert client.sock is not None
        if client.out:
            try:
                sent = client.sock.send(client.out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self._close(client)
                return
            client.out = client.out[sent:]
        more = self.sending and client.next_seq < self.messages and self.rate == 0
        wanted = selectors.EVENT_READ
        if client.out or more:
            wanted |= selectors.EVENT_WRITE
        self._watch(client, wanted)

    def _readable(self, client: _Client) -> None:
        assert client.sock is not None
        try:
            data = client.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        if not data:
            self._close(client)
            return
        self._received(client, data, time.perf_counter_ns())

    def _received(self, client: _Client, data: bytes, now: int) -> None:
        """Bytes arrived at ``now``: pass on the whole lines, keep the rest for later."""
        data = client.buffer + data
        end = data.rfind(b"\n") + 1
        client.buffer = data[end:]
        if not end:
            return
        self._deliver(client, data[:end], now)

    def _deliver(self, client: _Client, lines: bytes, now: int) -> None:
        """Whole frames arrived (``lines``, each ending in a newline): count and check them."""
        if not client.joined:
            if lines.startswith(b'{"type":"welcome"'):
                client.joined = True
                self.joined += 1
            else:
                self.errors += 1
                self._close(client)
                return
        if b'"type":"error"' in lines:
            self.errors += lines.count(b'"type":"error"')
        if self.probe and self.probe in lines and not client.probe_at:
            client.probe_at = now
            self.probe_count += 1
        if self.track and b'"type":"chat"' in lines:
            self._account(client, lines, now)

    def _account(self, client: _Client, lines: bytes, now: int) -> None:
        """Check each chat frame: lost, duplicated, out of order, and its latency."""
        last_seq, seen, messages = client.last_seq, client.seen, self.messages
        assert last_seq is not None and seen is not None
        latencies = self.latencies
        count = 0
        for sender, seq, sent in _CHAT.findall(lines):
            sender, seq = int(sender), int(seq)
            slot = sender * messages + seq
            if seen[slot]:
                self.duplicated += 1
                continue
            seen[slot] = 1
            if seq < last_seq[sender]:
                self.out_of_order += 1
            else:
                last_seq[sender] = seq
            latencies.append(now - int(sent))
            count += 1
        self.delivered += count
        self.last_ns = now
        self.last_progress = time.monotonic()

    # -- phases

    def _address_for(self, client: _Client) -> tuple[str, int]:
        """The server a client connects to (benchmarks.cluster spreads them over nodes)."""
        return self.address

    def connect(self, count: int, deadline: float) -> bool:
        """Add clients until there are ``count``, all connected and joined."""
        self.phase = "connecting"
        self.connect_errors = 0
        self.connecting = 0
        self.sending = False
        self.rate = 0.0
        self.padding = b""
        self.joined = sum(1 for c in self.clients if c.joined)
        start = len(self.clients)
        pending = list(range(start, count))
        pending.reverse()

        def more(now: float) -> float:
            while pending and self.connecting < CONNECT_BATCH:
                client = _Client(pending.pop())
                self.clients.append(client)
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                client.sock = sock
                code = sock.connect_ex(self._address_for(client))
                if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                    self.connect_errors += 1
                    client.closed = True
                    sock.close()
                    continue
                self.connecting += 1
                self._watch(client, selectors.EVENT_WRITE | selectors.EVENT_READ)
            self._show(lambda: f"connecting: {self.joined:,}/{count:,} joined")
            return 0.05

        def done() -> bool:
            return not pending and (self.joined + self.connect_errors + self.disconnected) >= count

        ok = self.pump(done, deadline, more)
        return ok and self.joined == count

    def send_all(self, messages: int, rate: float, padding: int, deadline: float) -> bool:
        """Every client sends ``messages`` chat messages; every client reads everything."""
        self.phase = "sending"
        self.messages = messages
        self.rate = rate
        self.padding = b" " + b"x" * (padding - 1) if padding > 0 else b""
        clients = [c for c in self.clients if c.joined and not c.closed]
        n = len(self.clients)
        for client in clients:
            client.last_seq = array("l", [-1]) * n
            client.seen = bytearray(n * messages)
        self.expected = len(clients) * len(clients) * messages
        self.track = self.sending = True
        self.first_ns = time.perf_counter_ns()
        start = self.last_progress = time.monotonic()
        if rate > 0:
            # Paced: client i sends message k at start + (k + i / n) / rate, so that
            # the clients' messages are spread evenly over each period.
            schedule = [start + (c.index / max(1, n)) / rate for c in clients]

            def tick(now: float) -> float:
                soonest = deadline
                for i, client in enumerate(clients):
                    if client.closed or client.next_seq >= messages:
                        continue
                    due = schedule[i]
                    if now >= due:
                        client.out += self._frames(client, 1)
                        self._flush(client)
                        schedule[i] = due = start + (client.next_seq + client.index / n) / rate
                    soonest = min(soonest, due)
                self._show(self._progress_text)
                return max(0.0, soonest - time.monotonic())
        else:
            for client in clients:
                self._flush(client)  # asks for EVENT_WRITE: the loop sends from then on

            def tick(now: float) -> float:
                self._show(self._progress_text)
                return 0.1

        def done() -> bool:
            if self.delivered >= self.expected:
                return True
            # Once every client has sent everything and nothing has arrived for
            # QUIET_SECONDS, what is still missing is lost.
            if time.monotonic() - self.last_progress < self.quiet:
                return False
            return all(c.closed or (c.next_seq >= messages and not c.out) for c in clients)

        return self.pump(done, deadline, tick)

    def _progress_text(self) -> str:
        return f"{self.phase}: {self.delivered:,}/{self.expected:,} delivered"


def _percentile(sorted_values: list[int], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index] / 1e6


def tally(result: LoadResult, gen: _Generator) -> list[int]:
    """Fill ``result`` with what the generator counted; the latencies, sorted."""
    result.expected = gen.expected
    result.delivered = gen.delivered
    result.lost = gen.expected - gen.delivered
    result.duplicated = gen.duplicated
    result.out_of_order = gen.out_of_order
    result.errors = gen.errors
    result.disconnected = gen.disconnected
    span = (gen.last_ns - gen.first_ns) / 1e9
    result.duration_s = span
    result.deliveries_per_s = gen.delivered / span if span > 0 else 0.0
    latencies = sorted(gen.latencies)
    result.latency_p50_ms = _percentile(latencies, 0.50)
    result.latency_p90_ms = _percentile(latencies, 0.90)
    result.latency_p99_ms = _percentile(latencies, 0.99)
    result.latency_max_ms = latencies[-1] / 1e6 if latencies else 0.0
    return latencies


def run_load(
    address: tuple[str, int],
    *,
    clients: int = 10,
    messages: int = 100,
    rate: float = 0.0,
    padding: int = 0,
    engine: str = "external",
    timeout: float = 60.0,
    server: ServerProcess | None = None,
    progress: bool = False,
    quiet: float = QUIET_SECONDS,
    transport: str = "tcp",
) -> LoadResult:
    """Connect ``clients`` clients, have each send ``messages`` messages, measure.

    ``rate`` is messages a second per client (0: as fast as possible).
    ``transport="websocket"``: the clients speak WebSocket to ``address``, a
    server's web port (:mod:`benchmarks.websocket`).
    ``padding`` adds characters to each message.  Every phase ends by
    ``timeout`` seconds at the latest; what has not arrived by then is lost,
    and so is what has not arrived ``quiet`` seconds after the last delivery
    once everything was sent.
    """
    result = LoadResult(engine, clients, messages, rate, transport)
    if transport == "websocket":
        from benchmarks.websocket import WebSocketGenerator  # needs the websockets package

        gen: _Generator = WebSocketGenerator(address, progress)
    else:
        gen = _Generator(address, progress)
    gen.quiet = quiet
    try:
        start = time.monotonic()
        if not gen.connect(clients, start + timeout):
            result.notes.append(
                f"only {gen.joined} of {clients} clients joined "
                f"({gen.connect_errors} connect errors)"
            )
        result.connect_join_s = time.monotonic() - start
        cpu0, wall0 = time.process_time(), time.monotonic()
        server_cpu0 = server.cpu_seconds() if server else None
        gen.send_all(messages, rate, padding, time.monotonic() + timeout)
        wall = time.monotonic() - wall0
        result.generator_cpu = (time.process_time() - cpu0) / wall if wall else 0.0
        server_cpu1 = server.cpu_seconds() if server else None
        # /proc counts CPU time in ticks of 10 ms: over a run shorter than a
        # second the share would be mostly rounding, so none is given.
        if server_cpu0 is not None and server_cpu1 is not None and wall >= MIN_CPU_SECONDS:
            result.server_cpu = (server_cpu1 - server_cpu0) / wall
        if server is not None:
            rss = server.rss_bytes()
            result.server_rss_mb = rss / 2**20 if rss else None
    finally:
        gen.end_progress()
        gen.close_all()
    tally(result, gen)
    return result


def max_clients(
    server: ServerProcess,
    *,
    steps: tuple[int, ...] = DEFAULT_STEPS,
    join_timeout: float = 120.0,
    progress: bool = False,
) -> MaxClientsResult:
    """Ramp up idle clients step by step; find the largest count that still works.

    A step passes when every client has joined (within ``join_timeout``) and a
    broadcast sent by one of them reaches all of them within
    :data:`BROADCAST_DEADLINE` seconds.  Joining is the expensive part: each
    join tells everyone already there, so N clients cost about N²/2 frames.
    """
    result = MaxClientsResult(server.engine)
    gen = _Generator(server.address, progress)
    time.sleep(0.2)
    base_rss = server.rss_bytes()
    try:
        for step, count in enumerate(steps):
            start = time.monotonic()
            joined = gen.connect(count, start + join_timeout)
            join_s = time.monotonic() - start
            record: dict[str, Any] = {"clients": count, "joined": gen.joined}
            record["disconnected"] = gen.disconnected
            record["connect_errors"] = gen.connect_errors
            record["join_s"] = round(join_s, 2)
            if not joined:
                record["ok"] = False
                record["why"] = (
                    f"{gen.joined} of {count} joined within {join_timeout:g} s; "
                    f"{gen.disconnected} disconnected, {gen.connect_errors} failed to connect"
                )
                result.steps.append(record)
                break
            # Let the last joins' notifications drain before the probe.
            gen.pump(lambda: False, time.monotonic() + 0.2)
            rss = server.rss_bytes()
            if rss and base_rss:
                record["rss_mb"] = round(rss / 2**20, 1)
                record["rss_per_client_kb"] = round((rss - base_rss) / count / 1024, 1)
            gen.probe = f"probe {step}".encode()
            gen.probe_count = 0
            for client in gen.clients:
                client.probe_at = 0
            sender = gen.clients[0]
            sent_at = time.perf_counter_ns()
            sender.out += protocol.encode(protocol.chat(f"probe {step}"))
            gen.sending = False
            gen._flush(sender)
            reached = gen.pump(
                lambda c=count: gen.probe_count >= c, time.monotonic() + BROADCAST_DEADLINE
            )
            slowest = max((c.probe_at for c in gen.clients), default=sent_at)
            record["broadcast_ms"] = round((slowest - sent_at) / 1e6, 1)
            record["reached"] = gen.probe_count
            record["ok"] = reached
            if not reached:
                record["why"] = f"broadcast reached {gen.probe_count} of {count} in 5 s"
            result.steps.append(record)
            if not reached:
                break
            result.largest_ok = count
            per = record.get("rss_per_client_kb")
            if per is not None:
                result.idle_rss_per_client_kb = per
    except OSError as exc:
        result.notes.append(f"stopped by {exc}")
    finally:
        gen.end_progress()
        gen.close_all()
    return result


# --------------------------------------------------------------------------
# Reports


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def format_load(results: list[LoadResult]) -> str:
    """A table of load results for the terminal."""
    width = max([10] + [len(_label(r)) + 1 for r in results])
    head = (
        f"{'engine':<{width}}{'clients':>8}{'msgs':>6}{'rate':>6}{'expected':>10}{'lost':>6}"
        f"{'dup':>5}{'ooo':>5}{'deliv/s':>10}{'p50ms':>9}{'p90ms':>9}{'p99ms':>9}"
        f"{'maxms':>9}{'join s':>7}{'gen':>5}{'srv':>5}"
    )
    rows = [head, "-" * len(head)]
    for r in results:
        server_cpu = f"{r.server_cpu:.0%}" if r.server_cpu is not None else "-"
        rows.append(
            f"{_label(r):<{width}}{r.clients:>8}{r.messages:>6}{r.rate or '-':>6}{r.expected:>10,}"
            f"{r.lost:>6}{r.duplicated:>5}{r.out_of_order:>5}{r.deliveries_per_s:>10,.0f}"
            f"{r.latency_p50_ms:>9.2f}{r.latency_p90_ms:>9.2f}{r.latency_p99_ms:>9.2f}"
            f"{r.latency_max_ms:>9.1f}{r.connect_join_s:>7.2f}{r.generator_cpu:>5.0%}"
            f"{server_cpu:>5}"
        )
        rows += [f"  note: {note}" for note in r.notes]
    return "\n".join(rows)


def _label(result: LoadResult) -> str:
    """The engine, and the transport if not TCP: ``asyncio/ws``."""
    return result.engine if result.transport == "tcp" else f"{result.engine}/ws"


def format_max_clients(result: MaxClientsResult) -> str:
    rows = [f"{result.engine}: largest client count that works: {result.largest_ok:,}"]
    for step in result.steps:
        rows.append(
            f"  {step['clients']:>6,} clients: {'ok ' if step['ok'] else 'FAIL'}"
            f" joined in {step['join_s']:.1f} s"
            + (
                f", broadcast to all in {step['broadcast_ms']:.1f} ms"
                if "broadcast_ms" in step
                else ""
            )
            + (
                f", {step['rss_per_client_kb']:.0f} KiB/client"
                if "rss_per_client_kb" in step
                else ""
            )
            + (f" ({step['why']})" if "why" in step else "")
        )
    if result.idle_rss_per_client_kb is not None:
        rows.append(f"  memory per idle client: {result.idle_rss_per_client_kb:.0f} KiB")
    return "\n".join(rows)
