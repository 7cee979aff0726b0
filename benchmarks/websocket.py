"""The load generator's WebSocket clients: the same load, over the web port.

``python -m benchmarks --transport both`` measures each engine over TCP and
then over WebSocket, against the same server process, so that the two can be
compared line by line; ``--transport websocket`` measures only the latter.

Each simulated client drives ``websockets``' sans-I/O
:class:`~websockets.client.ClientProtocol` from the generator's own
``selectors`` loop (:class:`benchmarks.loadgen._Generator`): the protocol
object writes the HTTP upgrade request and masks each frame we send, and
turns the bytes we receive into frames -- no thread or task per client, so
the generator stays one Python thread, as for TCP.  Each text message it
receives is one chat frame; joined with newlines they go to the same
accounting as the TCP clients' lines (lost, duplicated, out of order, latency).

Expect the generator to be busier than over TCP: every frame it receives is
parsed in Python (a few microseconds), where a TCP line costs a
``bytes.rfind``.  Its CPU share is in the report ("gen"): near 100 % means it,
not the server, set the pace.
"""

from __future__ import annotations

import time

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from benchmarks.loadgen import RECV_BYTES, _Client, _Generator
from chat import protocol
from chat.web import WS_PATH

__all__ = ["WebSocketGenerator"]


class WebSocketGenerator(_Generator):
    """:class:`benchmarks.loadgen._Generator`, its clients speaking WebSocket."""

    def __init__(self, address: tuple[str, int], progress: bool = False) -> None:
        super().__init__(address, progress)
        self.uri = parse_uri(f"ws://{address[0]}:{address[1]}{WS_PATH}")
        self.protocols: dict[int, ClientProtocol] = {}  # by client index

    def _hello(self, client: _Client) -> bytes:
        """The HTTP upgrade request; the join follows the server's 101."""
        client.name = f"w{client.index}"  # not "u...": TCP clients of a run before may linger
        ws = self.protocols[client.index] = ClientProtocol(self.uri, max_size=None)
        ws.send_request(ws.connect())
        return b"".join(ws.data_to_send())

    def _frames(self, client: _Client, count: int) -> bytes:
        return self._encode(client, super()._frames(client, count))

    def _encode(self, client: _Client, lines: bytes) -> bytes:
        """Each line (without its newline) as one masked text message."""
        ws = self.protocols[client.index]
        for line in lines.split(b"\n")[:-1]:
            ws.send_text(line)
        return b"".join(ws.data_to_send())

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
        now = time.perf_counter_ns()
        ws = self.protocols[client.index]
        ws.receive_data(data)
        texts = []
        for event in ws.events_received():
            if isinstance(event, Response):
                if ws.state is not State.OPEN:  # the handshake was refused
                    self.errors += 1
                    self._close(client)
                    return
                client.out += self._encode(client, protocol.encode(protocol.join(client.name)))
                self._flush(client)
            elif event.opcode is Opcode.TEXT:
                texts.append(event.data)
            elif event.opcode is Opcode.CLOSE:
                self._close(client)
                return
        if texts:
            texts.append(b"")
            self._deliver(client, b"\n".join(texts), now)
