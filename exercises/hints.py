"""Hints, three for each exercise, shown by ``python -m exercises --hint [NN]``.

The first ``--hint`` for an exercise gives a nudge, the second the approach,
the third something close to the answer.  The checker remembers how far you
got for each exercise (in ``exercises/.progress.json``, which is yours and
not part of the repository).  The full answer is in ``solutions/``, for when
you have tried.

``BUSY_LOOP`` says, for the exercises with a loop that can spin forever, the
likely cause: the checker shows it when it stops a test that burns a CPU
without getting anywhere.
"""

from __future__ import annotations

HINTS: dict[str, tuple[str, str, str]] = {
    "ex01_listen": (
        """
A server socket takes four calls, in this order: make it, set options, bind,
listen.  Which of them can fail because the port is taken?
""",
        """
socket.socket(socket.AF_INET, socket.SOCK_STREAM) makes an IPv4 TCP socket.
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1) must come before
bind -- and only when os.name != "nt".  Then sock.bind((host, port)) and
sock.listen(BACKLOG).  Wrap the setsockopt/bind/listen in try/except OSError,
close the socket there and raise again.
""",
        """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock
""",
    ),
    "ex02_connect": (
        """
The answer may come in pieces: one recv is not enough.  How do you know you
have the whole line?  And what does recv return if the server hangs up first?
""",
        """
"with socket.create_connection((host, port), timeout=timeout) as sock:" does
the connecting and the closing.  sendall(question.encode("utf-8") + b"\\n").
Then collect bytes in a variable until b"\\n" is in them; a recv that returns
b"" means the stream ended: raise ConnectionError.  Decode the bytes before
the first newline -- the bytes, not each chunk.
""",
        """
        data = b""
        while b"\\n" not in data:
            chunk = sock.recv(RECV_BYTES)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            data += chunk
        return data.partition(b"\\n")[0].decode("utf-8")
""",
    ),
    "ex03_recv_all": (
        """
recv returns b"" when, and only when, the peer has closed.  Your loop needs
to look for exactly that.
""",
        """
A "while True" loop around chunk = sock.recv(RECV_BYTES).  If the chunk is
empty, break out of the loop; otherwise keep it (append it to a list).  After
the loop, b"".join(the list).
""",
        """
    chunks = []
    while True:
        chunk = sock.recv(RECV_BYTES)
        if not chunk:        # b"": the peer closed; without this, the loop spins forever
            break
        chunks.append(chunk)
    return b"".join(chunks)
""",
    ),
    "ex04_echo_server": (
        """
Two loops, one inside the other: one over the clients (accept), one over the
bytes of a client (recv).  When does each one end?
""",
        """
for _ in range(max_clients): conn, address = listener.accept(), then
"with conn:" so that it is always closed.  Inside, a "while True" loop: data =
conn.recv(RECV_BYTES); b"" ends it; else conn.sendall(data) and add len(data)
to a total.  Put the inner loop in try/except ConnectionError: pass, so that a
client that resets ends only itself.
""",
        """
    total = 0
    for _ in range(max_clients):
        conn, _ = listener.accept()
        with conn:
            try:
                while data := conn.recv(RECV_BYTES):
                    conn.sendall(data)
                    total += len(data)
            except ConnectionError:
                pass
    return total
""",
    ),
    "ex05_sendall": (
        """
send returns a number.  That number is the whole point: how much of your data
did the kernel take this time, and what is left?
""",
        """
Keep a count of the bytes sent so far.  While it is less than len(data), call
sock.send with the part not sent yet and add what it returns; count the calls.
memoryview(data)[sent:] gives that part without copying it.
""",
        """
    view = memoryview(data)
    sent = calls = 0
    while sent < len(data):
        sent += sock.send(view[sent:])
        calls += 1
    return calls
""",
    ),
    "ex06_encode_frame": (
        """
json.dumps can do all three things the exercise asks for, with the right
keyword arguments.  Then it is text: a frame is bytes.
""",
        """
json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
gives compact JSON with raw non-ASCII characters, and refuses NaN.  Encode that
as UTF-8 and add the newline byte.
""",
        """
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\\n"
""",
    ),
    "ex07_frame_decoder": (
        """
Append first, then cut.  A single feed may complete no line, one line, or
several -- so cutting is a loop.  And every byte should be searched only once.
""",
        """
self._buffer += data.  Then loop: end = self._buffer.find(b"\\n",
self._scanned).  No newline (-1): set self._scanned = len(self._buffer),
raise LineTooLong if that is over the limit, and return the lines so far.
A newline: if end > max_line_bytes raise LineTooLong; line =
bytes(self._buffer[:end]); del self._buffer[:end + 1]; self._scanned = 0;
keep the line if line.strip().
""",
        """
        self._buffer += data
        lines = []
        while True:
            end = self._buffer.find(b"\\n", self._scanned)
            if end < 0:
                self._scanned = len(self._buffer)
                if self._scanned > self.max_line_bytes:
                    raise LineTooLong("line too long")
                return lines
            if end > self.max_line_bytes:
                raise LineTooLong("line too long")
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            self._scanned = 0
            if line.strip():
                lines.append(line)
""",
    ),
    "ex08_validate_message": (
        """
Check from the outside in: is it a dict at all, does it have a type, and
then the fields that type needs.  Use .get(...), never [...]: a missing field
must be an InvalidMessage, not a KeyError.
""",
        """
isinstance(message, dict), then kind = message.get("type") must be a str.
One "if" per type, each returning a brand-new dict.  join: the username must
be a str and USERNAME.fullmatch(username) (not match: "bob!" and "bob\\n").
chat: the text must be a str; strip it; refuse it empty or longer than
MAX_MESSAGE_CHARS.  After the ifs: raise InvalidMessage naming the type.
""",
        """
    if kind == "join":
        username = message.get("username")
        if not isinstance(username, str) or not USERNAME.fullmatch(username):
            raise InvalidMessage(f"Invalid username {str(username)[:40]!r}")
        return {"type": "join", "username": username}
    if kind == "chat":
        text = message.get("message")
        if not isinstance(text, str):
            raise InvalidMessage("The message must be a string")
        text = text.strip()
        ... "The message is empty" / the length limit ...
        return {"type": "chat", "message": text}
(Put the words the tests look for in the messages: "username", "string",
"empty", the limit, the type.)
""",
    ),
    "ex09_accept_and_spawn": (
        """
accept blocks until someone connects -- so how will the loop ever notice
that stop was set, if nobody comes?
""",
        """
listener.settimeout(POLL_SECONDS) makes accept raise TimeoutError when nobody
came: catch it and loop again ("while not stop.is_set():").  For each client,
threading.Thread(target=handle, args=(conn, address), daemon=True), start it,
and keep it in a list that you return.
""",
        """
    listener.settimeout(POLL_SECONDS)
    threads = []
    while not stop.is_set():
        try:
            conn, address = listener.accept()
        except TimeoutError:
            continue
        thread = threading.Thread(target=handle, args=(conn, address), daemon=True)
        thread.start()
        threads.append(thread)
    return threads
""",
    ),
    "ex10_user_registry": (
        """
Look at release() and names(): every use of self._names happens inside
"with self._lock:".  What must happen inside one such block in claim()?
""",
        """
The check ("is the name taken?") and the insert must be in the SAME locked
block: two separate locked steps still let another thread in between them.
Returning from inside a "with" block is fine; the lock is released on the way
out.
""",
        """
        with self._lock:
            if name in self._names:
                return False
            self._names[name] = None
            return True
""",
    ),
    "ex11_broadcast": (
        """
put never waits, so you may call it while holding the lock.  And you must:
what happens to the order if two broadcasts put their frames at once?
""",
        """
"with self._lock:" around everything.  Loop over self._members.items(), skip
the name equal to exclude, and collect the names whose outbox.put(frame)
returned False.  Do not delete from the dict inside that loop (it must not
change size while you iterate): delete the collected names after it.
""",
        """
        dropped = []
        with self._lock:
            for name, outbox in self._members.items():
                if name != exclude and not outbox.put(frame):
                    dropped.append(name)
            for name in dropped:
                del self._members[name]
        return dropped
""",
    ),
    "ex12_client_outbox": (
        """
The writer has two halves: one under self._wake (wait, then take everything),
one outside it (send).  Why must sendall be outside?
""",
        """
"while True:" around both halves.  Under "with self._wake:": "while not
self._frames and not self._closing: self._wake.wait()"; then data =
b"".join(self._frames), clear the list, self._queued = 0, last =
self._closing.  Outside the lock: if data, self.sock.sendall(data); if last,
self.sock.shutdown(socket.SHUT_WR) and return.  Wrap it all in try/except
OSError: return.
""",
        """
        try:
            while True:
                with self._wake:
                    while not self._frames and not self._closing:
                        self._wake.wait()
                    data = b"".join(self._frames)
                    self._frames.clear()
                    self._queued = 0
                    last = self._closing
                if data:
                    self.sock.sendall(data)
                if last:
                    self.sock.shutdown(socket.SHUT_WR)
                    return
        except OSError:
            return
""",
    ),
    "ex13_logging": (
        """
The module docstring lists the five steps.  The sixth: what does a second
call find on the logger, and what should it do about it?
""",
        """
logger = logging.getLogger(name).  Remove every handler h in logger.handlers
with h.get_name() == HANDLER_NAME (iterate over a copy: list(...)).  Then
handler = logging.StreamHandler(stream), handler.set_name(HANDLER_NAME),
handler.setFormatter(logging.Formatter(LOG_FORMAT)), logger.addHandler(handler),
logger.setLevel(level), return handler.
""",
        """
    logger = logging.getLogger(name)
    for old in [h for h in logger.handlers if h.get_name() == HANDLER_NAME]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
""",
    ),
    "ex14_graceful_shutdown": (
        """
Work out one deadline at the start (time.monotonic() + timeout) and let every
wait use what is left of it.  The docstring's four steps go in that order.
""",
        """
self._stopping.set(); self._accepter.join(...); self.listener.close().  Under
self._lock copy self._connections and clear it.  For each conn:
conn.settimeout(GOODBYE_TIMEOUT) and sendall(GOODBYE), ignoring OSError.  Then
conn.shutdown(socket.SHUT_RDWR) for each (ignore OSError).  Then for each
(conn, thread): thread.join(max(0, deadline - time.monotonic())), note it if
still alive, conn.close().
""",
        """
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self._accepter.join(timeout)
        self.listener.close()
        with self._lock:
            connections = dict(self._connections)
            self._connections.clear()
        for conn in connections:
            try:
                conn.settimeout(GOODBYE_TIMEOUT)
                conn.sendall(GOODBYE)
            except OSError:
                pass
        ... then shutdown(SHUT_RDWR) each, then join each thread with what is
        left of the deadline, close its socket, and collect the threads alive.
""",
    ),
    "ex15_receive_loop": (
        """
There are three ways out of the loop, and on_disconnect must be called once,
whichever way was taken.  Where can a single call go so that it always runs?
""",
        """
decoder = FrameDecoder(MAX_SERVER_FRAME_BYTES); reason = "Server closed the
connection".  A try statement around the loop: recv; on b"" break; feed the
decoder; then "while (message := decoder.next_frame()) is not None:
deliver(on_message, message)".  Two except clauses change the reason:
ProtocolError and OSError.  Call on_disconnect(reason) after the try statement.
""",
        """
    decoder = FrameDecoder(MAX_SERVER_FRAME_BYTES)
    reason = "Server closed the connection"
    try:
        while data := sock.recv(RECV_BYTES):
            decoder.feed(data)
            while (message := decoder.next_frame()) is not None:
                deliver(on_message, message)
    except ProtocolError as exc:
        reason = f"The server sent a bad frame: {exc}"
    except OSError as exc:
        reason = f"Connection lost: {exc}"
    on_disconnect(reason)
""",
    ),
    "ex16_command_parser": (
        """
Follow the table from top to bottom: strip first, then the empty line, then
"no slash", then the doubled slash, then the command words.
""",
        """
text = line.strip(); if not text: return None.  If not text.startswith("/"):
Command("say", text).  If it starts with "//": Command("say", text[1:]).
Otherwise word = text.split()[0]; name = COMMANDS.get(word.lower()); None
means Command("unknown", word), else Command(name).
""",
        """
    text = line.strip()
    if not text:
        return None
    if not text.startswith("/"):
        return Command("say", text)
    if text.startswith("//"):
        return Command("say", text[1:])
    word = text.split()[0]
    name = COMMANDS.get(word.lower())
    return Command("unknown", word) if name is None else Command(name)
""",
    ),
    "ex17_token_bucket": (
        """
Nothing happens between two calls of allow(): the bucket refills only when it
is asked, by the time that has passed since it was last asked.
""",
        """
elapsed = now - self.updated, but never below 0 (a clock that went back).
tokens = min(burst, tokens + elapsed * rate); self.updated = now (but do not
move it backwards).  Fewer than one whole token: return False (a refusal costs
nothing).  Otherwise take one and return True.
""",
        """
        elapsed = max(0.0, now - self.updated)
        self.updated = max(self.updated, now)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True
""",
    ),
    "ex18_timeouts": (
        """
Two questions for each connection, in order: has it failed to join in time?
If not: has it been silent too long?  "Too long" is strictly more than the
timeout.
""",
        """
Loop over self.connections.items(), collect (address, reason) for each due
one: conn.username is None and now - conn.connected_at > self.join_timeout
gives the join reason; else now - conn.last_seen > self.idle_timeout the idle
one.  Format the timeouts with :g ("30", "0.5").  Delete the collected ones
after the loop, then return them.
""",
        """
        expired = []
        for address, conn in self.connections.items():
            if conn.username is None and now - conn.connected_at > self.join_timeout:
                reason = f"Join timeout: no join within {self.join_timeout:g} s"
            elif now - conn.last_seen > self.idle_timeout:
                reason = f"Idle timeout: nothing received for {self.idle_timeout:g} s"
            else:
                continue
            expired.append((address, reason))
        for address, _ in expired:
            del self.connections[address]
        return expired
""",
    ),
    "ex19_nonblocking": (
        """
On a non-blocking socket, "the buffer is full" is not an error that should
reach the caller: it is the signal to stop for now.
""",
        """
Loop while pending is not empty: n = sock.send(pending) inside try/except
BlockingIOError (break out of the loop there).  After a send, del
pending[:n] and add n to a count.  Return the count.  Other exceptions go up
untouched.
""",
        """
    sent = 0
    while pending:
        try:
            n = sock.send(pending)
        except BlockingIOError:
            break
        del pending[:n]
        sent += n
    return sent
""",
    ),
    "ex20_selectors_loop": (
        """
Every socket gets one small step each time select says it is ready -- never a
loop that waits.  The listener's step is accept; a client's step is one recv
and one attempt to send.
""",
        """
selector.register(listener, selectors.EVENT_READ, data=None) (after
listener.setblocking(False)); clients with data=bytearray().  In "while not
stop.is_set(): for key, events in selector.select(timeout=POLL_SECONDS):",
key.data is None means the listener.  For a client: if events &
selectors.EVENT_READ, recv once (b"" or ConnectionError: unregister, close,
continue); add the bytes to key.data; send from it until BlockingIOError;
then selector.modify(conn, READ | (WRITE if pending else 0), data=pending).
In a finally: close every registered client socket, then the selector.
""",
        """
                conn, pending = key.fileobj, key.data
                try:
                    if events & selectors.EVENT_READ:
                        data = conn.recv(RECV_BYTES)
                        if not data:
                            selector.unregister(conn)
                            conn.close()
                            continue
                        pending += data
                    while pending:
                        try:
                            del pending[: conn.send(pending)]
                        except BlockingIOError:
                            break
                except ConnectionError:
                    ... unregister and close, continue ...
                wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending else 0)
                if wanted != key.events:
                    selector.modify(conn, wanted, data=pending)
""",
    ),
    "ex21_capstone_server": (
        """
You have written every piece already; this is wiring.  Start from the recv
loop of exercise 03/04, and put exercise 07's decoder, 06's decode_frame and
08's validate_message in it.  Then one "if" per message type.
""",
        """
decoder = LineDecoder().  Loop: data = client.conn.recv(RECV_BYTES); b"" ends
it (return).  lines = decoder.feed(data), with LineTooLong -> send an error,
return.  For each line: message = validate_message(decode_frame(line)), with
(FrameError, InvalidMessage) -> send {"type": "error", "message": str(exc)},
continue.  ping -> self.send(client, {"type": "pong"}).  chat without
client.name -> error "Join first"; with it -> self.broadcast({... "timestamp":
time.time()}).  join -> see the third hint.
""",
        """
For a join (in a method of your own, say self._join(client, name)):

        if client.name is not None:
            self.send(client, {"type": "error", "message": "Already joined"})
        elif not self.registry.claim(name):
            self.send(client, {"type": "error", "message": "Username already taken"})
        else:
            client.name = name
            self.send(client, {"type": "welcome", "message": f"Welcome, {name}!",
                               "users": self.registry.names()})
            self.room.add(name, client.outbox)          # before anyone hears of it
            self.broadcast({"type": "user_joined", "username": name,
                            "message": f"{name} joined the chat"}, exclude=name)

The conformance tester's reason for a failed stage names what it expected;
python -m conformance 127.0.0.1 PORT --verbose shows every frame.
""",
    ),
    "ex22_room_routing": (
        """
Two questions, in this order: which room is meant, and is the sender in it?
Only a yes to the second earns a message id and a Send to anybody but the
sender.
""",
        """
name = LOBBY if room is None else room.  Look the room up with
self._rooms.get(room_key(name)): None when nobody is in it.  If it is None or
sender is not in its members, return a list with one Send to (sender,) of
{"type": "error", "message": f"You are not in {name}"}.  Otherwise call
self.relay(sender, the Room, message) -- only now, so a refusal costs no id --
and send that frame to tuple(the Room's members): a dict keeps the order they
entered.
""",
        """
        name = LOBBY if room is None else room
        found = self._rooms.get(room_key(name))
        if found is None or sender not in found.members:
            return [Send((sender,), {"type": "error", "message": f"You are not in {name}"})]
        frame = self.relay(sender, found, message)
        return [Send(tuple(found.members), frame)]
""",
    ),
    "ex23_history_query": (
        """
The page you want is the one *nearest* to before, not the oldest in the room.
Which way must the rows be sorted for LIMIT to keep those?  And how can the
query itself tell you that older rows exist, without counting them?
""",
        """
WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?, with the values passed as
a tuple, (room, before, limit + 1) -- before replaced by NEWEST when it is
None.  fetchall() gives at most limit + 1 rows, newest first: more is
len(rows) > limit.  Keep rows[:limit], turn them round (reversed), and make
each a frame with frame_of.  Never put room into the SQL text with an
f-string: the tests send a room named "#x' OR '1'='1".
""",
        """
    below = NEWEST if before is None else before
    rows = db.execute(
        f"SELECT {COLUMNS} FROM messages WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?",
        (room, below, limit + 1),
    ).fetchall()
    more = len(rows) > limit
    return [frame_of(row) for row in reversed(rows[:limit])], more

(COLUMNS is the module's own constant, so formatting it in is safe; every
value from a user is a "?".)
""",
    ),
    "ex24_feature_negotiation": (
        """
A join without "features" and a join with "features": [] are different
clients.  Which one must never see a field that v1 does not define?
""",
        """
Build the v1 welcome first: v1_welcome(join["username"], users).  If
"features" is not in join, that is the whole answer, with frozenset().
Otherwise add welcome["features"] = list(offered) (what the server offers,
whatever the client asked for) and welcome["rooms"] = [LOBBY]; the features
in use are the intersection of the two sides: frozenset(...) & frozenset(...).
""",
        """
    welcome = v1_welcome(join["username"], users)
    if "features" not in join:
        return welcome, frozenset()
    welcome["features"] = list(offered)
    welcome["rooms"] = [LOBBY]
    return welcome, frozenset(join["features"]) & frozenset(offered)
""",
    ),
    "ex25_name_claim": (
        """
Checking whether the name is free and then writing it is two steps, and
another server can take the name between them.  Which single Redis command
checks and writes at once -- and can set an expiry in the same breath?
""",
        """
SET key value NX PX milliseconds: NX sets only if the key does not exist, PX
makes it expire.  In redis-py: redis.set(key, value, nx=True, px=ms), which
returns True when it set the key and None when NX stopped it.  The key is
name_key(name) (it case-folds the name); the value is node; ms is ttl * 1000,
rounded to a whole number.
""",
        """
    return bool(redis.set(name_key(name), node, nx=True, px=max(1, round(ttl * 1000))))
""",
    ),
}

#: The likely cause of a loop that spins, for the exercises that have one.
BUSY_LOOP = {
    "ex02_connect": "did you stop (raise ConnectionError) when recv returns b''?",
    "ex03_recv_all": "did you stop when recv returns b''?",
    "ex04_echo_server": "did you stop when recv returns b''?",
    "ex09_accept_and_spawn": "does the loop end once stop is set?",
    "ex12_client_outbox": "does the writer wait() while there is nothing to send?",
    "ex14_graceful_shutdown": "does every wait have a deadline?",
    "ex15_receive_loop": "did you stop when recv returns b''?",
    "ex19_nonblocking": "did you stop at BlockingIOError?",
    "ex20_selectors_loop": "do you unregister a client whose recv returned b''?  "
    "Ask for EVENT_WRITE only while bytes are pending.",
    "ex21_capstone_server": "did you stop when recv returns b''?",
}

#: For every other exercise.
BUSY_LOOP_DEFAULT = "does every loop end (recv returning b'', a condition that becomes false)?"
