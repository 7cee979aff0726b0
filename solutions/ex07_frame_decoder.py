"""Exercise 07 (notebook 02_framing): cut a byte stream into lines, in linear time.

TCP delivers a stream of bytes, not messages.  One ``recv`` may return half a
frame, three frames and the start of a fourth, or a UTF-8 character cut in
two.  A decoder keeps the bytes that do not yet end in a newline and hands out
every complete line -- however the stream was cut.

Write :meth:`LineDecoder.feed`: it takes the bytes of one ``recv`` and returns
the complete lines they finish, in order (often none), each without its
``b"\\n"``.  The caller decodes each line (exercise 06's ``decode_frame``).

* Keep the bytes after the last newline in ``self._buffer``, for the next call.
* Cut *bytes*, not text.  A newline byte never occurs inside a multi-byte
  UTF-8 character, so cutting at ``b"\\n"`` is safe before decoding, and a
  whole line always holds whole characters.
* Skip blank lines (nothing but white space): someone typing into ``nc``.
* Bound the buffer.  A peer that never sends a newline must not make you keep
  gigabytes: raise :class:`LineTooLong` as soon as a line (without its newline)
  is longer than ``max_line_bytes`` -- even before its newline has arrived.
* Work in linear time.  Searching the *whole* buffer for ``b"\\n"`` on every
  call looks harmless, but a long line sent one byte at a time is then
  searched from its start again for each byte: quadratic work, and a cheap
  way for one client to keep a server busy.  ``self._scanned`` remembers how
  far the buffer is known to hold no newline: search only from there
  (``buffer.find(b"\\n", start)``).  The tests measure this.

Check your work:  python -m exercises 07
Stuck?            python -m exercises --hint 07
"""

from __future__ import annotations

from chat.protocol import MAX_FRAME_BYTES


class LineTooLong(ValueError):
    """A line is longer than the decoder's limit; the stream cannot be trusted after it."""


class LineDecoder:
    """Turns byte chunks, cut anywhere, into the lines they carry."""

    def __init__(self, max_line_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        # A bytearray grows in place; "bytes + bytes" would copy everything each time.
        self._buffer = bytearray()
        # The first _scanned bytes of the buffer hold no newline: no need to
        # search them again.
        self._scanned = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add the bytes of one ``recv``; return the lines completed by them, in order."""
        ### BEGIN SOLUTION
        ### TODO: add data to self._buffer; cut out every complete line (search for
        ###       b"\n" from self._scanned on); skip blank ones; keep the rest; raise
        ###       LineTooLong when a line passes max_line_bytes, even without its newline.
        self._buffer += data
        lines = []
        while True:
            # Search only the bytes not searched before.
            end = self._buffer.find(b"\n", self._scanned)
            if end < 0:
                # No complete line yet: remember how far we looked, and refuse
                # to keep more than the limit while waiting for the newline.
                self._scanned = len(self._buffer)
                if self._scanned > self.max_line_bytes:
                    raise LineTooLong(
                        f"line longer than {self.max_line_bytes} bytes without a newline"
                    )
                return lines
            if end > self.max_line_bytes:
                raise LineTooLong(f"line of {end} bytes; the limit is {self.max_line_bytes}")
            line = bytes(self._buffer[:end])
            # Deleting from the front of a bytearray is cheap in CPython: it
            # moves a start offset instead of copying the rest.
            del self._buffer[: end + 1]
            self._scanned = 0
            if line.strip():
                lines.append(line)
        ### END SOLUTION
