"""The six stages: what a server that speaks the chat protocol v1 must do.

Each stage is a function that takes a :class:`Session` and returns if the
server passed, or raises :class:`~conformance.peer.StageFailure`.  A stage is
a series of *steps* (:meth:`Session.step`); a failure is reported as the step
that failed, what went wrong, and -- where one mistake is the usual cause --
a hint that names it: "two frames in one send: ... -- do you handle only the
first frame of each recv?".

Stages do not depend on each other: each opens its own connections under
names no other stage (or earlier run) uses, and closes them at its end.

The tester stays within the limits a careful server sets (the ``chat``
package's defaults): no client sends more than 20 frames at once or more than
5 a second after that, every client joins at once, and no message carries
more than 4,000 characters.  It does not test what v1 leaves to each server:
whether ``Alice`` and ``alice`` may both be online, the wording of error
messages, extra fields, or whether the server closes or keeps a connection
that sent bytes which are not UTF-8.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from conformance.peer import Frame, Peer, StageFailure, describe, encode

#: Stage 5: clients that race for one name, and clients that talk at once.
RACERS = 20
TALKERS = 8
MESSAGES_EACH = 10

#: Stage 6: clients that each send long messages while one client never
#: reads.  Together they send about 3.5 MB to the stalled client: more than
#: the kernel buffers of a loopback connection hold on common systems (about
#: 1.7 MB with the small receive buffer the stalled client asks for), so a
#: server whose broadcast waits for the stalled client stops for everyone.
FLOODERS = 12
FLOOD_EACH = 18  # with the join, 19 frames: inside a burst of 20
FLOOD_TEXT = "👋" * 4000  # the longest message: 16 KB of UTF-8
FLOOD_PAUSE = 0.03  # seconds between two messages of one client
STALLED_RECV_BUFFER = 1024

#: Stage 6: how much of an endless line is sent before waiting for the answer.
ENDLESS_LINE_BYTES = 4 * 1024 * 1024


@dataclass
class Session:
    """What every stage needs: where the server is, how long to wait, how to log."""

    address: tuple[str, int]
    timeout: float = 5.0
    log: Callable[[str], None] | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(2))
    current: str = ""  # the step under way
    hint: str = ""  # the usual mistake, if this step fails
    _peers: list[Peer] = field(default_factory=list)

    def name(self, stage: int, role: str) -> str:
        """A username no other stage or run uses: ``s2alice3f9a``."""
        return f"s{stage}{role}{self.token}"[:20]

    def peer(self, label: str, **options: Any) -> Peer:
        peer = Peer(self.address, label, self.timeout, log=self.log, **options)
        self._peers.append(peer)
        return peer

    def joined(self, stage: int, role: str, **options: Any) -> tuple[Peer, str]:
        """A new connection that has joined under a fresh name."""
        name = self.name(stage, role)
        peer = self.peer(name, **options)
        peer.join(name)
        return peer, name

    def step(self, what: str, hint: str = "") -> None:
        """Start a step: failures from here on are reported as ``what: ... -- hint``."""
        self.current, self.hint = what, hint
        if self.log:
            self.log(f"  * {what}")

    def reason(self, failure: StageFailure) -> str:
        """The one-line reason for a failure in the current step."""
        text = f"{self.current}: {failure}" if self.current else str(failure)
        return f"{text} -- {self.hint}" if self.hint and failure.hint else text

    @contextmanager
    def stage(self) -> Iterator[None]:
        """Close every connection the stage opened, however it ends."""
        try:
            yield
        finally:
            peers, self._peers = self._peers, []
            closers = [threading.Thread(target=p.close, daemon=True) for p in peers]
            for closer in closers:
                closer.start()
            for closer in closers:
                closer.join(self.timeout)


def chat(text: str) -> Frame:
    return {"type": "chat", "message": text}


def count_chats(frames: list[Frame]) -> int:
    return sum(f.get("type") == "chat" for f in frames)


def wait_for_chat(peer: Peer, sender: str, text: str, what: str) -> Frame:
    """Wait until ``peer`` has received ``text`` from ``sender``; check the frame's fields."""

    def found(frames: list[Frame]) -> Frame | None:
        for frame in frames:
            if frame.get("type") == "chat" and frame.get("message") == text:
                return frame
        return None

    frame = peer.wait(found)
    if frame is None:
        raise StageFailure(f"{what} {peer.missing()}")
    if frame.get("username") != sender:
        raise StageFailure(f"the chat frame names {frame.get('username')!r}, not {sender!r}")
    stamp = frame.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
        raise StageFailure(f"the chat frame's timestamp is not a number: {describe(frame)}")
    return frame


def wait_for_event(peer: Peer, kind: str, username: str) -> None:
    """Wait until ``peer`` has received a ``user_joined``/``user_left`` for ``username``."""

    def found(frames: list[Frame]) -> bool | None:
        hit = any(f.get("type") == kind and f.get("username") == username for f in frames)
        return True if hit else None

    if peer.wait(found) is None:
        raise StageFailure(f"{kind} for {username} {peer.missing()}")


def expect_error(peer: Peer) -> None:
    """The next answer to ``peer`` must be an error frame with a message string."""
    try:
        frame = peer.expect_one_of(("error", "chat", "pong", "welcome"), "the error frame")
    except StageFailure:
        if peer.eof is not None:
            raise StageFailure(
                f"the server closed the connection ({peer.eof}); it should send an error "
                "frame and keep the connection"
            ) from None
        raise StageFailure(f"no error frame within {peer.timeout:g} s") from None
    if frame.get("type") != "error":
        raise StageFailure(f"the answer was {describe(frame)}, not an error frame")
    if not isinstance(frame.get("message"), str):
        raise StageFailure(f"the error frame has no message string: {describe(frame)}")


def still_usable(peer: Peer) -> None:
    """A ping gets its pong: the connection still works."""
    peer.send({"type": "ping"})
    try:
        peer.expect("pong", "a ping")
    except StageFailure as exc:
        raise StageFailure(f"after the error frame the connection stopped working: {exc}") from None


def all_at_once(
    peers: list[Peer], action: Callable[[Peer], None], timeout: float
) -> StageFailure | None:
    """Run ``action(peer)`` for every peer, each in its thread, released at one moment.

    Returns the first failure (a send the server refused), or None.
    """
    start = threading.Barrier(len(peers), timeout=timeout)
    problems: list[StageFailure] = []

    def run(peer: Peer) -> None:
        try:
            start.wait()
            action(peer)
        except threading.BrokenBarrierError:
            problems.append(StageFailure("the tester's threads did not start together"))
        except StageFailure as exc:
            problems.append(exc)

    threads = [threading.Thread(target=run, args=(p,), daemon=True) for p in peers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 2 * timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return problems[0] if problems else None


# ----------------------------------------------------------------------------
# The stages


def stage_connect_and_join(s: Session) -> None:
    """Stage 1: connect, join, get a welcome that lists you; a ping gets a pong."""
    name = s.name(1, "alice")
    s.step(f"{name} connects and joins")
    alice = s.peer(name)
    welcome = alice.join(name)
    if not isinstance(welcome.get("message"), str):
        raise StageFailure(f"the welcome has no message string: {describe(welcome)}")
    users = welcome.get("users")
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise StageFailure(f"the welcome's users is not a list of names: {describe(welcome)}")
    if name not in users:
        raise StageFailure(f"the welcome's users does not list {name} itself: {users[:5]}")
    s.step("a ping")
    alice.send({"type": "ping"})
    alice.expect("pong", "a ping")


def stage_broadcast(s: Session) -> None:
    """Stage 2: joins and leaves are announced; every chat reaches everyone, in one order."""
    a, b, c = s.name(2, "alice"), s.name(2, "bob"), s.name(2, "carol")
    s.step("alice, bob and carol join; those already there are told")
    alice = s.peer(a)
    alice.join(a)
    bob = s.peer(b)
    welcome = bob.join(b)
    if a not in welcome.get("users", []):
        raise StageFailure(
            f"{b}'s welcome does not list {a}, who joined first: {describe(welcome)}"
        )
    wait_for_event(alice, "user_joined", b)
    carol = s.peer(c)
    carol.join(c)
    for peer in (alice, bob):
        wait_for_event(peer, "user_joined", c)
    people = {a: alice, b: bob, c: carol}

    s.step("alice says hello: everyone receives it, alice too")
    text = f"héllo from {a} 👋"
    alice.send(chat(text))
    for peer in people.values():
        wait_for_chat(peer, a, text, f"{a}'s message")

    s.step("all three talk at once: everyone sees the same order")
    sent = {name: f"{name} says hi" for name in people}
    for name, peer in people.items():
        peer.send(chat(sent[name]))
    for name in people:
        for peer in people.values():
            wait_for_chat(peer, name, sent[name], f"{name}'s message")
    orders = {name: [f["message"] for f in peer.chats()] for name, peer in people.items()}
    if len({tuple(order) for order in orders.values()}) > 1:
        raise StageFailure(f"the clients saw the messages in different orders: {orders}")

    s.step("carol leaves: the others are told")
    carol.close()
    for peer in (alice, bob):
        wait_for_event(peer, "user_left", c)


def stage_framing(s: Session) -> None:
    """Stage 3: frames cut anywhere, several in one send, a UTF-8 character split."""
    alice, _ = s.joined(3, "alice")
    b = s.name(3, "bob")
    bob = s.peer(b)

    s.step("a join sent one byte at a time", "keep the bytes after the last newline for later")
    join = encode({"type": "join", "username": b})
    bob.send_in_pieces(join, list(range(1, len(join))), pause=0.002)
    reply = bob.expect_one_of(("welcome", "error"), "the join")
    if reply["type"] != "welcome":
        raise StageFailure(f"the answer was {describe(reply)}")
    wait_for_event(alice, "user_joined", b)

    s.step("two frames in one send", "do you handle only the first frame of each recv?")
    bob.send(encode(chat("first of two")) + encode(chat("second of two")))
    wait_for_chat(alice, b, "first of two", "the first frame")
    wait_for_chat(alice, b, "second of two", "the second frame")
    order = [f["message"] for f in alice.chats() if f["message"].endswith("of two")]
    if order != ["first of two", "second of two"]:
        raise StageFailure(f"they arrived out of order: {order}")

    s.step("a frame and the start of the next in one send, then the rest")
    data = encode(chat("third")) + encode(chat("fourth"))
    bob.send_in_pieces(data, [len(encode(chat("third"))) + 5])
    wait_for_chat(alice, b, "fourth", "the second frame")

    s.step("UTF-8 characters cut between two sends", "decode whole lines, not each recv")
    text = "split 👋 here, é too"
    frame = encode(chat(text))
    bob.send_in_pieces(frame, [frame.index("👋".encode()) + 2, frame.index("é".encode()) + 1])
    wait_for_chat(alice, b, text, repr(text))

    s.step("a ping in two halves")
    ping = encode({"type": "ping"})
    bob.send_in_pieces(ping, [len(ping) // 2])
    bob.expect("pong", "the ping")


def stage_errors(s: Session) -> None:
    """Stage 4: bad frames get an error frame, and the connection stays usable."""
    alice, a = s.joined(4, "alice")
    silent = "is bad input ignored silently? answer it with an error frame"
    bad_lines = [
        (b'{"type": "chat", "message": \n', "a line that is not JSON"),
        (b'["chat", "hello"]\n', "a JSON array instead of an object"),
        (b'{"message": "no type"}\n', 'an object without a "type"'),
        (b'{"type": "dance"}\n', 'an unknown type ("dance")'),
        (b'{"type": "chat"}\n', 'a chat without its "message"'),
    ]
    for line, what in bad_lines:
        s.step(what, silent)
        alice.send(line)
        expect_error(alice)
        still_usable(alice)

    s.step("a chat before joining", silent)
    d = s.name(4, "dave")
    dave = s.peer(d)
    dave.send(chat("am I in?"))
    expect_error(dave)
    dave.join(d)

    s.step(f"a join with a name that is taken ({a})", "two users with one name?")
    e = s.name(4, "eve")
    eve = s.peer(e)
    eve.send({"type": "join", "username": a})
    expect_error(eve)
    eve.join(e)


def stage_concurrency(s: Session) -> None:
    """Stage 5: a race for one name has one winner; many talkers lose nothing."""
    name = s.name(5, "race")
    s.step(
        f"{RACERS} clients ask for the name {name} at the same moment",
        "check and claim a name in one step, under a lock",
    )
    racers = [s.peer(f"racer{i}") for i in range(RACERS)]
    frame = encode({"type": "join", "username": name})
    # Everything but the newline first, then the newlines in one tight loop: each
    # server thread finds a complete join at the same moment.
    for racer in racers:
        racer.send(frame[:-1])
    time.sleep(0.05)
    for racer in racers:
        racer.send(frame[-1:])
    answers = []
    for racer in racers:
        try:
            answers.append(racer.expect_one_of(("welcome", "error"), "the join"))
        except StageFailure as exc:
            raise StageFailure(f"a client got no answer to its join: {exc}") from None
    welcomed = sum(answer["type"] == "welcome" for answer in answers)
    if welcomed != 1:
        raise StageFailure(f"{welcomed} of {RACERS} clients were welcomed; exactly one should be")

    s.step(
        f"{TALKERS} clients each send {MESSAGES_EACH} messages at the same moment",
        "broadcast each message to everyone before the next, under one lock",
    )
    talkers: dict[str, Peer] = {}
    for i in range(TALKERS):
        peer, who = s.joined(5, f"t{i}")
        talkers[who] = peer
    names = list(talkers)
    for index, peer in enumerate(talkers.values()):
        for later in names[index + 1 :]:
            wait_for_event(peer, "user_joined", later)

    def talk(peer: Peer) -> None:
        for n in range(MESSAGES_EACH):
            peer.send(chat(f"{peer.label} #{n}"))

    if problem := all_at_once(list(talkers.values()), talk, s.timeout):
        raise problem
    total = TALKERS * MESSAGES_EACH
    orders = {}
    for who, peer in talkers.items():
        if peer.wait(lambda frames: True if count_chats(frames) >= total else None) is None:
            s.hint = "handle every frame of each recv, and drop no message for a client that reads"
            told = peer.errors()
            why = f" (it was told {describe(told[0])})" if told else ""
            got = count_chats(peer.frames)
            raise StageFailure(f"{who} received {got} of the {total} messages{why}")
        orders[who] = [f["message"] for f in peer.chats()]
    for who, order in orders.items():
        for sender in names:
            theirs = [m for m in order if m.startswith(f"{sender} #")]
            if theirs != [f"{sender} #{n}" for n in range(MESSAGES_EACH)]:
                raise StageFailure(f"{sender}'s messages reached {who} reordered: {theirs}")
    if len({tuple(order) for order in orders.values()}) > 1:
        raise StageFailure("the clients received the messages in different orders")


def stage_robustness(s: Session) -> None:
    """Stage 6: bad bytes and a client that never reads do not stop the others."""
    alice, a = s.joined(6, "alice")
    bob, b = s.joined(6, "bob")

    s.step("bytes that are not UTF-8", "decode each line in a try; answer with an error")
    mallory, _ = s.joined(6, "mallory")
    mark = len(mallory.frames)
    mallory.send(b'{"type": "chat", "message": "\xff\xfe caf\xe9"}\n')
    if mallory.closed_or_error(mark) is None:
        raise StageFailure(f"neither an error frame nor a close within {s.timeout:g} s")
    bob.send(chat("still here after the bad bytes"))
    wait_for_chat(alice, b, "still here after the bad bytes", "the next message from someone else")

    mib = ENDLESS_LINE_BYTES // 1024 // 1024
    s.step(f"a line of {mib} MiB without a newline", "bound the bytes you keep for one line")
    trudy, _ = s.joined(6, "trudy")
    mark = len(trudy.frames)
    piece = b"x" * 65536
    try:
        trudy.sock.sendall(b'{"type": "chat", "message": "')
        for _ in range(ENDLESS_LINE_BYTES // len(piece)):
            if trudy.eof is not None or any(f["type"] == "error" for f in trudy.frames[mark:]):
                break
            trudy.sock.sendall(piece)
    except OSError:
        pass  # closed by the server, or it stopped reading: the wait below tells
    if trudy.closed_or_error(mark) is None:
        raise StageFailure(f"neither an error frame nor a close within {s.timeout:g} s")
    bob.send(chat("still here after the endless line"))
    wait_for_chat(alice, b, "still here after the endless line", "the next message")

    s.step(
        f"one client never reads while {FLOODERS} others send {FLOOD_EACH} long messages each",
        "does a broadcast wait for the client that never reads? give each client a queue",
    )
    stalled, _ = s.joined(6, "frozen", recv_buffer=STALLED_RECV_BUFFER)
    stalled.stop_reading()  # it read its welcome; from now on its buffers fill up
    flooders = [s.joined(6, f"f{i}")[0] for i in range(FLOODERS)]
    for flooder in flooders:
        wait_for_event(alice, "user_joined", flooder.label)
    before = count_chats(alice.frames)
    frame = encode(chat(FLOOD_TEXT))

    def flood(peer: Peer) -> None:
        # Paced, so that the clients that do read keep up: a server may rightly
        # drop a reader that falls a megabyte behind.
        for _ in range(FLOOD_EACH):
            peer.send(frame)
            time.sleep(FLOOD_PAUSE)

    total = FLOODERS * FLOOD_EACH
    waited = 2 * s.timeout
    problems: list[StageFailure | None] = []
    sending = threading.Thread(
        target=lambda: problems.append(all_at_once(flooders, flood, waited)), daemon=True
    )
    sending.start()
    arrived = alice.wait(lambda f: True if count_chats(f) - before >= total else None, waited)
    sending.join(waited)
    if arrived is None:
        received = count_chats(alice.frames) - before
        cut = [p for p in (alice, *flooders) if p.eof is not None]
        told = [e for p in flooders for e in p.errors()]
        if cut:
            s.hint = "a server may drop a client that falls far behind, never one that keeps up"
            doing = "read them" if cut[0] is alice else "sent its own"
            raise StageFailure(
                f"{cut[0].label}'s connection ended ({cut[0].eof}) while it {doing}; "
                f"{a} received {received} of the {total} long messages"
            )
        if problems and problems[0] is not None:
            raise problems[0]
        if told:
            s.hint = ""
            raise StageFailure(f"a sender was told {describe(told[0])}")
        raise StageFailure(f"{a} received {received} of the {total} messages within {waited:g} s")


@dataclass(frozen=True)
class Stage:
    number: int
    title: str
    run: Callable[[Session], None]


STAGES = [
    Stage(1, "connect and join", stage_connect_and_join),
    Stage(2, "broadcast", stage_broadcast),
    Stage(3, "framing", stage_framing),
    Stage(4, "errors", stage_errors),
    Stage(5, "concurrency", stage_concurrency),
    Stage(6, "robustness", stage_robustness),
]
