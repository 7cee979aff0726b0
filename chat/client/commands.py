"""The slash commands both chat clients understand: /quit, /ping, /users, /help.

A line that starts with ``/`` is a command for the client itself and is never
sent; every other line is a chat message.  To send a message that starts with
a slash, double it: ``//shrug`` sends ``/shrug``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HELP_TEXT", "QUIT_ALIASES", "Command", "parse_command"]

QUIT_ALIASES = ("/quit", "/exit", "/q")

#: Each command with what it does, in the order /help lists them.
COMMANDS = {
    "/quit": "leave the chat (also /exit and /q)",
    "/ping": "measure the round trip to the server",
    "/users": "list who is online",
    "/help": "show this help",
}

HELP_TEXT = "Commands:\n" + "\n".join(f"  {name:<7} {what}" for name, what in COMMANDS.items())


@dataclass(frozen=True)
class Command:
    """A parsed command: ``name`` is ``quit``, ``ping``, ``users``, ``help`` or ``unknown``."""

    name: str
    text: str  # the line as typed, for messages such as "unknown command /foo"


def parse_command(line: str) -> Command | None:
    """The command on this line, or ``None`` if the line is a chat message."""
    stripped = line.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    word = stripped.split()[0].lower()
    if word in QUIT_ALIASES:
        return Command("quit", stripped)
    if word in COMMANDS:
        return Command(word[1:], stripped)
    return Command("unknown", stripped)


def message_text(line: str) -> str:
    """The chat text to send for a non-command line (``//x`` becomes ``/x``)."""
    stripped = line.strip()
    return stripped[1:] if stripped.startswith("//") else stripped
