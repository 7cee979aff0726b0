"""One hint per exercise, shown by ``python -m exercises --hint [NN]``.

A hint points the way without giving the answer away: the full answer is in
``solutions/``, for when you have tried.
"""

from __future__ import annotations

HINTS = {
    "ex01_echo_server": """
serve_echo is a for loop over range(max_clients).  Each turn: listener.accept()
gives (conn, address); wrap conn in "with conn:" so that it is closed whatever
happens, and hand it to echo_connection.

echo_connection is a "while True" loop around conn.recv(RECV_BYTES).  When recv
returns b"" (empty), the peer has closed: return.  Otherwise conn.sendall(data)
-- not conn.send, which may send only part -- and add len(data) to a count.

A client that resets the connection makes recv or sendall raise
ConnectionResetError (a ConnectionError): catch it around echo_connection,
inside the "with", so the server goes on to the next client.
""",
    "ex02_frame_decoder": """
In __init__, keep a bytearray buffer (and, if you like, an index saying how far
you have already searched it for b"\\n").

In feed: buffer += data.  Then loop: i = buffer.find(b"\\n").  No newline (-1):
check that the buffer is not longer than max_line_bytes, and return what you
have.  Otherwise line = bytes(buffer[:i]); del buffer[:i + 1]; skip the line if
line.strip() is empty, else append json.loads(line.decode("utf-8")).

Decode only whole lines: a chunk may end inside "👋" (4 bytes), but a line never
does, because a newline byte never occurs inside a UTF-8 character.  And check
the limit in two places: for a complete line (i > max_line_bytes) and for the
unfinished rest, so that a line with no newline at all is refused early.
""",
    "ex03_validate_message": """
Start with isinstance(message, dict), then kind = message.get("type") -- .get,
not [...], so that a missing field gives None instead of a KeyError.  Then one
"if" per type, each returning a brand-new dict; after the ifs, raise
InvalidMessage naming the type (repr of str(kind), cut to 40 characters).

Username: check isinstance(username, str) first (None, numbers and lists fail
there), then re.fullmatch(r"[A-Za-z0-9_-]{1,20}", username).  Not re.match:
it accepts "bob!" (it matches "bob") -- and "$" also matches before a final
newline, so even r"...$" lets "bob\\n" through.  \\w would accept "ë".

Chat: isinstance(text, str), then text = text.strip(), then check empty and
len(text) > MAX_MESSAGE_CHARS.  Put words like "username", "empty", "string"
and the limit in your messages: people read them (and so do the tests).
""",
    "ex04_user_registry": """
Each method is one "with self._lock:" block around the lines that touch
self._names:

    claim:   if name in self._names: return False; else store it, return True
    release: self._names.pop(name, None)  (no KeyError for a name not there)
    names:   return list(self._names)     (a copy, made while holding the lock)

The check and the insert must be inside the SAME "with" block: two separate
locked steps still let another thread slip in between them.  Returning from
inside a "with" block is fine; the lock is released on the way out.
""",
    "ex05_client_outbox": """
put and close: "with self._wake:", change the state, self._wake.notify().
put refuses (returns False) when self._closing, or when
self._queued + len(frame) > self.max_bytes; otherwise it appends the frame and
adds len(frame) to self._queued.

run_writer is "while True:" around two halves.  Under "with self._wake:",
"while not self._frames and not self._closing: self._wake.wait()"; then take
data = b"".join(self._frames), clear the list, set self._queued = 0, and note
last = self._closing.  Outside the lock: if data, self.sock.sendall(data); if
last, self.sock.shutdown(socket.SHUT_WR) and return.  Wrap the whole loop in
try/except OSError: return -- the peer may be gone.
""",
    "ex06_receive_loop": """
Make decoder = FrameDecoder(MAX_SERVER_FRAME_BYTES) and a variable reason that
starts as "Server closed the connection".  Put the loop in a try statement:
recv; on b"" break; feed the decoder; then drain every complete frame with
"while (message := decoder.next_frame()) is not None:" and deliver each one.

Two except clauses change the reason: ProtocolError ("The server sent a bad
frame: ...") and OSError ("Connection lost: ...").  Then call
on_disconnect(reason) AFTER the try statement, not inside it: that way it runs
exactly once, however the loop ended.

deliver is a try statement around on_message(message), with "except
Exception:" calling log.exception(...) -- which records the traceback too.
""",
    "ex07_token_bucket": """
__init__: raise ValueError if rate <= 0 or burst < 1; then keep rate, burst,
tokens = float(burst) (a full bucket) and the time of the last refill = now.

allow(now):
    elapsed = now - last refill, but never below 0 (a clock that went back)
    tokens = min(burst, tokens + elapsed * rate)
    last refill = now (but do not move it backwards)
    if tokens < 1: return False          (a refusal costs nothing)
    tokens -= 1; return True

Refilling only when asked ("lazily") needs no thread and no timer, and it is
exact: the tests can jump the clock to any time.
""",
}
