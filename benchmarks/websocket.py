"""The load generator's WebSocket clients: the same load, over the web port.

``python -m benchmarks --transport both`` measures each engine over TCP and
then over WebSocket, against the same server process, so that the two can be
compared line by line; ``--transport websocket`` measures only the latter.

Each simulated client drives ``websockets``' sans-I/O
:class:`~websockets.client.ClientProtocol` from the generator's own
``selectors`` loop (:class:`benchmarks.loadgen._Generator`): the protocol
object writes the HTTP upgrade request, reads the server's answer, and masks
each frame we send -- no thread or task per client, so the generator stays
one Python thread, as for TCP.  Each text message received is one chat frame;
joined with newlines they go to the same accounting as the TCP clients' lines
(lost, duplicated, out of order, latency).

One shortcut, for the same reason the TCP clients find numbers with a regular
expression instead of decoding JSON: the generator must be cheaper than the
server it measures.  The library parses each frame in Python (about 2 us, a
generator step per header field); at 50 clients that made the generator the
bottleneck (90-96 % of a core, while the server used 15 %).  So once joined,
a client reads the server's frames with :func:`split_text_frames`, which only
walks the headers of plain text frames (unmasked, unfragmented: what our
server sends) and hands anything else -- a close, say -- to the library,
which reads the rest of that connection.  A test checks that both read the
same messages from every way of cutting the stream.
"""

from __future__ import annotations

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from benchmarks.loadgen import _Client, _Generator
from chat import protocol
from chat.web import WS_PATH

__all__ = ["WebSocketGenerator", "split_text_frames"]

#: The first header byte of a whole text message: FIN, no extension bits, opcode 1.
_TEXT_FIN = 0x81


def split_text_frames(data: bytes) -> tuple[list[bytes], int, bool]:
    """The payloads of the whole text frames at the start of ``data``, as a server sends them.

    Returns ``(payloads, used, plain)``: ``used`` bytes were read; ``plain`` is
    False if a frame of another kind (a close, a ping, a fragment, a masked
    frame) starts at ``used`` -- the caller hands the rest to the library.
    Frame layout (RFC 6455, 5.2): a byte of flags and opcode; a byte of mask
    bit and length (126: a 16-bit length follows; 127: a 64-bit one); the payload.
    """
    payloads = []
    used, end = 0, len(data)
    while end - used >= 2:
        if data[used] != _TEXT_FIN or data[used + 1] & 0x80:
            return payloads, used, False
        length = data[used + 1]
        start = used + 2
        if length == 126:
            if end - start < 2:
                break
            length = int.from_bytes(data[start : start + 2], "big")
            start += 2
        elif length == 127:
            if end - start < 8:
                break
            length = int.from_bytes(data[start : start + 8], "big")
            start += 8
        stop = start + length
        if stop > end:
            break
        payloads.append(data[start:stop])
        used = stop
    return payloads, used, True


class WebSocketGenerator(_Generator):
    """:class:`benchmarks.loadgen._Generator`, its clients speaking WebSocket."""

    def __init__(self, address: tuple[str, int], progress: bool = False) -> None:
        super().__init__(address, progress)
        self.uri = parse_uri(f"ws://{address[0]}:{address[1]}{WS_PATH}")
        self.protocols: dict[int, ClientProtocol] = {}  # by client index
        self.fast: set[int] = set()  # clients whose frames split_text_frames reads

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

    def _received(self, client: _Client, data: bytes, now: int) -> None:
        """Bytes arrived: the text messages in them are the lines (frames) to pass on."""
        texts: list[bytes] = []
        data = client.buffer + data
        client.buffer = b""
        if client.index not in self.fast:  # the handshake, or after something unusual
            data = self._library_reads(client, data, texts)
        if data and client.index in self.fast:
            payloads, used, plain = split_text_frames(data)
            texts += payloads
            client.buffer = data[used:]
            if not plain:  # not a text frame: the library reads from here on
                self.fast.discard(client.index)
                self._library_reads(client, client.buffer, texts)
                client.buffer = b""
        if texts and not client.closed:
            texts.append(b"")
            self._deliver(client, b"\n".join(texts), now)

    def _library_reads(self, client: _Client, data: bytes, texts: list[bytes]) -> bytes:
        """The library reads ``data``; its text messages go to ``texts``.

        During the handshake it is given the HTTP answer and no byte more, so
        that what follows -- returned, for :func:`split_text_frames` -- starts
        with a frame.  (``\r\n\r\n`` ends the answer's headers; a 101 has no body.)
        """
        ws = self.protocols[client.index]
        rest = b""
        if ws.state is State.CONNECTING:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                client.buffer = data  # the rest of the answer is on its way
                return b""
            data, rest = data[: end + 4], data[end + 4 :]
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Response):
                if ws.state is not State.OPEN:  # the handshake was refused
                    self.errors += 1
                    self._close(client)
                    return b""
                client.out += self._encode(client, protocol.encode(protocol.join(client.name)))
                self._flush(client)
                self.fast.add(client.index)
            elif event.opcode is Opcode.TEXT:
                texts.append(event.data)
            elif event.opcode is Opcode.CLOSE:
                self._close(client)
                return b""
        return rest
