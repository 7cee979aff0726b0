"""Exercise 16 (notebook 06_client): the slash commands of a chat client.

A chat client reads lines the user types.  Most are messages to send; a line
that starts with ``/`` is a *command* for the client itself, as in IRC and
Slack: ``/quit`` leaves, ``/ping`` measures the round trip, ``/users`` lists
who is online, ``/help`` explains.  Write :func:`parse`, which turns one typed
line into a :class:`Command` that the client then carries out.

=========================  ======================================================
the user types             parse returns
=========================  ======================================================
``hello there``            ``Command("say", "hello there")``
``  hello  `` (spaces)     ``Command("say", "hello")``: surrounding white space goes
``//shrug``                ``Command("say", "/shrug")``: a doubled slash sends one
``/quit``, ``/exit``,      ``Command("quit")``
``/q``
``/ping``                  ``Command("ping")``
``/users``                 ``Command("users")``
``/help``                  ``Command("help")``
``/dance``                 ``Command("unknown", "/dance")``: the word, as typed
(nothing, or only spaces)  ``None``: nothing to do
=========================  ======================================================

Commands ignore case (``/QUIT`` quits) and anything after their first word
(``/ping now`` pings).  Only a slash at the very start makes a command:
``hello /quit`` is a message.

Keeping the parsing apart from the doing means both the terminal client and
the notebook widget can share it, and it is tested without a server.

Check your work:  python -m exercises 16
Stuck?            python -m exercises --hint 16
"""

from __future__ import annotations

from dataclasses import dataclass

#: Each command word and the command it gives.
COMMANDS = {
    "/quit": "quit",
    "/exit": "quit",
    "/q": "quit",
    "/ping": "ping",
    "/users": "users",
    "/help": "help",
}


@dataclass(frozen=True)
class Command:
    """What the user asked for: ``name`` is say, quit, ping, users, help or unknown."""

    name: str
    text: str = ""  # say: the message to send; unknown: the command word typed


def parse(line: str) -> Command | None:
    """The command a typed line asks for, or None if there is nothing to do."""
    # TODO: strip the line; nothing left: None.  No leading "/": say it.  "//": say
    #       it without the first slash.  Else look up the first word, lowercased, in
    #       COMMANDS; not there: Command("unknown", the word as typed).
    raise NotImplementedError("TODO: write parse()")
