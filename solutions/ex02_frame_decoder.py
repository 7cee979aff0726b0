"""Exercise 02 (notebook 02, framing): a decoder for newline-delimited JSON.

TCP delivers a stream of bytes, not messages.  One ``recv`` may return half a
frame, three frames and the start of a fourth, or a UTF-8 character cut in
two.  A decoder keeps the bytes that do not yet end in a newline and hands out
a message for every complete line -- however the stream was cut.

Write :class:`LineDecoder`: ``feed(data)`` takes the bytes of one ``recv`` and
returns the list of messages completed by them (often none).

* Keep the bytes after the last newline in a buffer, for the next ``feed``.
* Cut the *bytes* at ``b"\\n"`` and decode each complete line as a whole.
  Decoding a chunk on its own fails when it ends in the middle of a
  multi-byte character ("é" is 2 bytes, "👋" is 4); a whole line never does.
* Skip blank lines.  Decode a line with ``json.loads``; it gives a ``dict``.
* Bound the buffer.  A peer that never sends a newline must not make you keep
  gigabytes: raise :class:`LineTooLong` as soon as a line (without its newline)
  is longer than ``max_line_bytes``, even before its newline has arrived.

The tests feed the same stream cut into chunks of every size from 1 byte up,
as Beej's guide suggests: your decoder must give the same messages each time.

Check your work:  python -m exercises 02
Stuck?            python -m exercises --hint 02
"""

from __future__ import annotations

import json
from typing import Any

from chat.protocol import MAX_FRAME_BYTES


class LineTooLong(ValueError):
    """A line is longer than the decoder's limit; the stream cannot be trusted after it."""


class LineDecoder:
    """Turns byte chunks, cut anywhere, into the JSON messages they carry, one per line."""

    def __init__(self, max_line_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        ### BEGIN SOLUTION
        ### TODO: set up what the decoder must remember between two calls of feed().
        # A bytearray grows in place; "bytes + bytes" would copy everything each time.
        self._buffer = bytearray()
        # How far we already know the buffer holds no newline.  Without it, a
        # long line sent one byte at a time would be searched from its start
        # on every feed: quadratic work, an easy way to overload a server.
        self._scanned = 0
        ### END SOLUTION

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add the bytes of one ``recv``; return the messages completed by them, in order."""
        ### BEGIN SOLUTION
        ### TODO: append data to the buffer; cut out and decode every complete line;
        ###       keep the rest; raise LineTooLong when a line passes max_line_bytes.
        self._buffer += data
        messages = []
        while True:
            # Search only the bytes not searched before.  0x0A never occurs
            # inside a multi-byte UTF-8 character, so cutting bytes here is safe.
            end = self._buffer.find(b"\n", self._scanned)
            if end < 0:
                # No complete line yet: remember how far we looked, and refuse
                # to keep more than the limit while waiting for the newline.
                self._scanned = len(self._buffer)
                if self._scanned > self.max_line_bytes:
                    raise LineTooLong(
                        f"line longer than {self.max_line_bytes} bytes without a newline"
                    )
                return messages
            if end > self.max_line_bytes:
                raise LineTooLong(f"line of {end} bytes; the limit is {self.max_line_bytes}")
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]  # drop the line and its newline
            self._scanned = 0
            if line.strip():  # a blank line (someone typing into nc) carries nothing
                # The whole line is here, so its characters are too: decode now.
                messages.append(json.loads(line.decode("utf-8")))
        ### END SOLUTION
