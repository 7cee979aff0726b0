"""Exercise 06 (notebook 02_framing): one message as one frame, and back.

TCP carries bytes without boundaries, so the chat draws its own: every
message travels as one *frame* -- a JSON object, encoded as UTF-8, followed
by one newline byte.  The reader cuts the stream at each ``b"\\n"`` and
decodes the line before it (exercise 07).

Write :func:`encode_frame`.  Three details make a frame right:

* Compact JSON: ``separators=(",", ":")`` leaves out the spaces ``json.dumps``
  puts after ``,`` and ``:`` by default.  Every byte is sent to every client.
* Raw UTF-8: ``ensure_ascii=False`` keeps "héllo 👋" as its UTF-8 bytes
  instead of ``\\u00e9`` escapes (6 bytes for "é" instead of 2, 12 for "👋"
  instead of 4), then ``.encode("utf-8")`` makes the bytes.
* Exactly one newline, at the end.  JSON escapes a newline *inside* a string
  as the two characters ``\\n``, so the only raw newline byte in a frame is the
  one you add -- that is what makes cutting at newlines safe.

Refuse what JSON cannot say: ``allow_nan=False`` makes a ``float("nan")``
raise ``ValueError`` rather than write ``NaN``, which no JSON parser accepts.

:func:`decode_frame` is the other direction, given: read it, it is the
receiving end of everything you send.

Check your work:  python -m exercises 06
Stuck?            python -m exercises --hint 06
"""

from __future__ import annotations

import json
from typing import Any


class FrameError(ValueError):
    """A line that is not a valid frame; ``str(error)`` says why, in plain words."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """``message`` as one frame: compact JSON, UTF-8, then one ``b"\\n"``."""
    # TODO: json.dumps with ensure_ascii=False, separators=(",", ":") and
    #       allow_nan=False; encode as UTF-8; add b"\n".
    raise NotImplementedError("TODO: write encode_frame()")


def decode_frame(line: bytes) -> dict[str, Any]:
    """One line (without its newline) as a message; :class:`FrameError` if it is not one."""
    try:
        # Decode the whole line at once: it holds whole characters, while a
        # single recv() may end in the middle of one.
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError("Frame is not valid UTF-8") from None
    try:
        message = json.loads(text)
    except ValueError:  # json.JSONDecodeError is a ValueError
        raise FrameError("Frame is not valid JSON") from None
    if not isinstance(message, dict):
        raise FrameError("Frame must be a JSON object")
    return message
