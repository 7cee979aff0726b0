"""The terminal chat program: ``python -m chat.client``.

Two threads share the terminal.  The main thread reads what you type and
sends it; :class:`chat.client.ChatClient`'s receive thread prints whatever
arrives.  A message can arrive while you are half-way through a line, so
:class:`Screen` erases the prompt line, prints the message, and draws the
prompt and your unfinished input again (``readline``, in the standard library
on Linux and macOS, tells us what you have typed so far).  One lock makes sure
two threads never draw at the same time.

Rooms, private messages, nicknames and history (PROTOCOL.md) come as commands
(``/join #rust``, ``/msg bob hi``, ``/nick``, ``/history``; ``/help`` lists
them), carried out by :mod:`chat.client.commands` exactly as the widget does.
The prompt names the room you are in when it is not the lobby
(``alice@#rust>``); a message from another room is marked with its room's name,
and a private one with 🔒.

When standard input is not a terminal (``printf 'hi\\n' | python -m chat.client
--username bot``) there is no prompt: every line is sent, paced by
:class:`chat.client.ChatClient` to the rate limit the server announced in its
welcome, so that a file of a hundred lines arrives whole instead of losing
lines to "Slow down".  At the end of the input the client pings the server
once -- the pong comes back after the server's answers to everything sent
before it -- and then leaves.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable

from chat import protocol
from chat.client.commands import Focus, execute, message_text, parse_command
from chat.client.connection import DISCONNECTED, LEFT_REASON, ChatClient, ChatError, JoinError
from chat.client.display import ERROR, format_event, safe_text
from chat.protocol import DEFAULT_HOST, DEFAULT_PORT, LOBBY

try:
    import readline
except ImportError:  # Windows: no line editing, messages may cut through typing
    readline = None  # type: ignore[assignment]

__all__ = ["Screen", "Session", "main"]


class Screen:
    """Prints incoming lines without garbling the line being typed."""

    def __init__(self, interactive: bool, write: Callable[[str], object] = sys.stdout.write):
        self.interactive = interactive
        self.prompt = ""
        self._write = write
        self._lock = threading.Lock()
        self._reading = False  # True while input() shows the prompt and waits for a line
        self._stopped = False  # the connection is gone: no more lines are wanted

    def read_line(self) -> str:
        """``input()`` with the prompt; meanwhile :meth:`show` knows to redraw it.

        Raises KeyboardInterrupt once :meth:`stop_reading` was called.
        """
        with self._lock:
            if self._stopped:
                raise KeyboardInterrupt
            self._reading = True
        try:
            return input(self.prompt)
        finally:
            with self._lock:
                self._reading = False

    def stop_reading(self) -> None:
        """End :meth:`read_line` from another thread, now or as soon as it is called.

        A thread blocked in ``input()`` cannot be woken by other threads; only a
        signal interrupts it.  So if (and only if) it is waiting right now, we
        send our own process a real SIGINT, as Ctrl+C would.  Checking under
        the lock makes sure the KeyboardInterrupt arrives while read_line runs,
        not in the middle of a command (a /ping waiting for its pong, say).
        """
        with self._lock:
            self._stopped = True
            if self._reading and os.name == "posix":
                os.kill(os.getpid(), signal.SIGINT)

    def show(self, text: str | None, *, redraw: bool = True) -> None:
        """Print a line; ``redraw=False`` for the last one, after which no prompt is wanted."""
        if text is None:
            return
        with self._lock:
            if not self.interactive:
                self._write(text + "\n")
            else:
                # \r: back to column 0;  ESC[K: erase to the end of the line.
                self._write(f"\r\x1b[K{text}\n")
                if self._reading and redraw:  # input() waits: draw the prompt and typing again
                    typed = readline.get_line_buffer() if readline else ""
                    self._write(f"{self.prompt}{typed}")
            sys.stdout.flush()

    def forget_typed_line(self) -> None:
        """Erase the line just entered: the server's echo will show it, with a time."""
        if self.interactive:
            with self._lock:
                self._write("\x1b[1A\r\x1b[K")  # ESC[1A: cursor up one line
                sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chat.client",
        description="Chat from a terminal.",
        epilog="When standard input is not a terminal (printf 'hi\\n' | python -m chat.client "
        "--username bot), every line is sent as a message, in order, paced to the rate "
        "limit the server announces so that none is refused (a long file takes a while: "
        "5 lines a second by default, after a first burst); then the client waits until "
        "the server has answered everything and leaves.",
    )
    parser.add_argument("--host", help=f"server address (default: {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, help=f"server port (default: {DEFAULT_PORT})")
    parser.add_argument("--username", help="your name: 1-20 letters, digits, '_' or '-'")
    parser.add_argument("--tls", action="store_true", help="connect with TLS (README: Security)")
    parser.add_argument(
        "--cafile",
        metavar="PEM",
        help="trust the certificates this CA file signed (a self-signed server); implies --tls",
    )
    return parser


def ask(question: str, default: str | None = None) -> str:
    suffix = f" [{default}]" if default else ""
    answer = input(f"{question}{suffix}: ").strip()
    return answer or (default or "")


def ask_username() -> str:
    """Ask until the name follows the rules, so we never connect with a bad one."""
    while True:
        name = ask("Username")
        try:
            return protocol.validate_username(name)
        except protocol.ProtocolError as exc:
            print(f"{ERROR} {exc}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        host = args.host or (ask("Server host", DEFAULT_HOST) if interactive else DEFAULT_HOST)
        port = args.port or int(ask("Port", str(DEFAULT_PORT)) if interactive else DEFAULT_PORT)
        username = args.username or ask_username()
    except (EOFError, KeyboardInterrupt):
        print()
        return 1
    except ValueError:
        print(f"{ERROR} The port must be a number", file=sys.stderr)
        return 1

    screen = Screen(interactive)
    session = Session(screen)
    while True:
        client = ChatClient(host, port, on_event=session.on_event, tls=args.tls, cafile=args.cafile)
        session.client = client
        try:
            client.connect(username)
            break
        except JoinError as exc:  # its words may come from the server: made safe to print
            print(f"{ERROR} {safe_text(exc)}", file=sys.stderr)
            if not interactive:
                return 1
            try:
                username = ask_username()
            except (EOFError, KeyboardInterrupt):
                return 1
        except ChatError as exc:
            print(f"{ERROR} {safe_text(exc)}", file=sys.stderr)
            return 1
    try:
        session.chat_loop()
    finally:
        client.close()
    return 0


class Session:
    """One chat in a terminal: the client, the screen, and where the user is (a Focus)."""

    def __init__(self, screen: Screen) -> None:
        self.screen = screen
        self.focus = Focus()
        self.client: ChatClient | None = None

    def prompt(self) -> str:
        """``alice> ``, or ``alice@#rust> `` in a room other than the lobby."""
        if not self.screen.interactive or self.client is None:
            return ""
        name = safe_text(self.client.username or "?")
        room = "" if self.focus.room == LOBBY else f"@{safe_text(self.focus.room)}"
        return f"{name}{room}> "

    def on_event(self, event: dict) -> None:
        """Runs on the receive thread for every message from the server."""
        client = self.client
        if client is not None:
            self.focus.follow(event, client)
            self.screen.prompt = self.prompt()  # a new room or name shows at once
        lost = event["type"] == DISCONNECTED and event.get("reason") != LEFT_REASON
        me = client.username if client is not None else None
        self.screen.show(format_event(event, room=self.focus.room, me=me), redraw=not lost)
        if lost and self.screen.interactive:
            self.screen.stop_reading()  # end now, instead of waiting for one more line

    def chat_loop(self) -> None:
        """Read lines and act on them until /quit, end of input or a lost connection."""
        client = self.client
        assert client is not None
        self.screen.prompt = self.prompt()
        if self.screen.interactive:
            self.screen.show("Type a message and press Enter. /help lists the commands.")
        while client.connected:
            try:
                line = self.screen.read_line()
            except EOFError:
                if not self.screen.interactive:
                    finish_script(client)
                break
            except KeyboardInterrupt:
                break
            self.screen.forget_typed_line()
            try:
                if not self.handle_line(line):
                    break
            except ChatError as exc:
                self.screen.show(f"{ERROR} {safe_text(exc)}")
                break
            self.screen.prompt = self.prompt()

    def handle_line(self, line: str) -> bool:
        """Send a message to the room shown, or run a command.  False means: leave."""
        client = self.client
        assert client is not None
        command = parse_command(line)
        if command is None:
            text = message_text(line)
            if text:
                client.send_chat(text, self.focus.room)
            return True
        if command.name == "quit":
            return False
        self.screen.show(execute(command, client, self.focus))
        return True


def finish_script(client: ChatClient) -> None:
    """End of piped input: wait until the server has answered everything we sent."""
    with contextlib.suppress(ChatError):
        client.ping()


if __name__ == "__main__":
    sys.exit(main())
