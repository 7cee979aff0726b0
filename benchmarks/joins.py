"""The joins benchmark: what rooms save when many people arrive.

In one room, every arrival is news to everyone already there: N clients
joining cause N(N-1)/2 ``user_joined`` notices -- 50 million for 10,000
clients.  Spread over rooms, an arrival is news only to the room it enters:
with R rooms of N/R members each, about N²/(2R) notices, a hundred times fewer
for 100 rooms.  This benchmark measures both layouts on a real server:

* ``lobby``: every client joins and stays in ``#lobby`` (what v1 can do);
* ``rooms``: every client joins, enters one of ``rooms`` rooms (``#r0``,
  ``#r1``, ...) and leaves ``#lobby`` -- three frames sent at once, so it
  spends only an instant there.

It reports how long the arrivals took (until every client had its answers and
no more notices came) and how many frames the clients received in all.  Like
the load generator it is one thread driving non-blocking sockets with
:mod:`selectors`; every wait is bounded.
"""

from __future__ import annotations

import selectors
import socket
import time
from dataclasses import dataclass

from chat import protocol

__all__ = ["JoinsResult", "run_joins"]

#: Connections being set up at once (more would overflow the server's backlog).
CONNECT_BATCH = 200

#: Seconds without a frame, once everyone is settled, that end a run.
QUIET_SECONDS = 0.5


@dataclass
class JoinsResult:
    """What one joins run measured."""

    engine: str
    layout: str  # "lobby" or "rooms"
    clients: int
    rooms: int
    settled: int  # clients that got every answer they waited for
    join_s: float  # from the first connect until every client had settled
    frames: int  # frames the clients received in all, notices included
    frames_per_client: float

    @property
    def ok(self) -> bool:
        return self.settled == self.clients


class _Joiner:
    __slots__ = ("buffer", "frames", "index", "out", "settled", "sock", "waiting")

    def __init__(self, index: int) -> None:
        self.index = index
        self.sock: socket.socket | None = None
        self.out = b""
        self.buffer = b""
        self.frames = 0
        self.waiting = b""  # the frame type that settles it
        self.settled = False


def run_joins(
    address: tuple[str, int],
    *,
    clients: int = 10_000,
    rooms: int = 100,
    layout: str = "rooms",
    engine: str = "",
    timeout: float = 300.0,
) -> JoinsResult:
    """Have ``clients`` clients arrive at ``address`` in the given layout; measure it."""
    if layout not in ("lobby", "rooms"):
        raise ValueError(f"layout must be 'lobby' or 'rooms', not {layout!r}")
    selector = selectors.DefaultSelector()
    joiners = [_Joiner(i) for i in range(clients)]
    pending = list(reversed(joiners))  # not yet connected
    connecting = settled = frames = 0
    start = time.monotonic()
    deadline = start + timeout
    last_frame = start
    finished = 0.0

    def hello(joiner: _Joiner) -> bytes:
        name = f"{layout[0]}{joiner.index}"  # the layouts never share a name
        if layout == "lobby":
            joiner.waiting = b'"type":"welcome"'
            return protocol.encode(protocol.join(name))
        room = f"#r{joiner.index % rooms}"
        joiner.waiting = b'"type":"room_left"'
        return b"".join(
            protocol.encode(frame)
            for frame in (
                protocol.join(name, ["rooms"]),
                protocol.join_room(room),
                protocol.leave_room(protocol.LOBBY),
            )
        )

    try:
        while time.monotonic() < deadline:
            while pending and connecting < CONNECT_BATCH:
                joiner = pending.pop()
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.connect_ex(address)
                joiner.sock = sock
                joiner.out = hello(joiner)
                selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, joiner)
                connecting += 1
            now = time.monotonic()
            if settled == clients and now - last_frame >= QUIET_SECONDS:
                break
            for key, mask in selector.select(0.05):
                joiner = key.data
                assert joiner.sock is not None
                if mask & selectors.EVENT_WRITE and joiner.out:
                    try:
                        sent = joiner.sock.send(joiner.out)
                    except (BlockingIOError, InterruptedError):
                        sent = 0
                    joiner.out = joiner.out[sent:]
                    if not joiner.out:
                        selector.modify(joiner.sock, selectors.EVENT_READ, joiner)
                if mask & selectors.EVENT_READ:
                    try:
                        data = joiner.sock.recv(256 * 1024)
                    except (BlockingIOError, InterruptedError):
                        continue
                    if not data:
                        selector.unregister(joiner.sock)
                        continue
                    last_frame = time.monotonic()
                    joiner.buffer += data
                    lines = joiner.buffer.count(b"\n")
                    frames += lines
                    joiner.frames += lines
                    if not joiner.settled and joiner.waiting in joiner.buffer:
                        joiner.settled = True
                        settled += 1
                        connecting -= 1
                        finished = last_frame
                    joiner.buffer = joiner.buffer[joiner.buffer.rfind(b"\n") + 1 :]
    finally:
        for joiner in joiners:
            if joiner.sock is not None:
                joiner.sock.close()
        selector.close()
    return JoinsResult(
        engine=engine,
        layout=layout,
        clients=clients,
        rooms=rooms if layout == "rooms" else 1,
        settled=settled,
        join_s=round((finished or time.monotonic()) - start, 3),
        frames=frames,
        frames_per_client=round(frames / clients, 1),
    )


def format_joins(results: list[JoinsResult]) -> str:
    head = f"{'engine':<10}{'layout':>7}{'clients':>9}{'rooms':>7}{'settled':>9}{'join s':>8}"
    head += f"{'frames':>13}{'per client':>12}"
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r.engine:<10}{r.layout:>7}{r.clients:>9,}{r.rooms:>7}{r.settled:>9,}"
            f"{r.join_s:>8.1f}{r.frames:>13,}{r.frames_per_client:>12,.1f}"
        )
    return "\n".join(rows)
