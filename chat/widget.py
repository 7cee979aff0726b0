"""The chat client as a Jupyter widget: chat without leaving the notebook.

::

    from chat.widget import ChatWidget, demo

    ChatWidget("localhost", 12345, "alice")   # a client for a server you started
    demo()                                    # a server of its own, alice and bob side by side

A :class:`ChatWidget` is an ipywidgets ``VBox``: a status line (your name, the
room shown, the connection), the list of your rooms and conversations above
the list of who is there, the message log, and an input with a Send button.
Below it sits the same :class:`chat.client.ChatClient` the terminal program
uses; the lines it shows are worded by :mod:`chat.client.display`, and the
slash commands are parsed and carried out by :mod:`chat.client.commands`
(``execute``), so both user interfaces behave alike: what is the widget's own
is where things are shown.  Like :mod:`chat.web` (``websockets``) and
:mod:`chat.cluster` (``redis``), it needs a package from outside the standard
library: ``pip install ipywidgets``; the TCP server and clients need none.

Rooms, private conversations, history
-------------------------------------
The protocol's extensions (``PROTOCOL.md``), as a chat window shows them:

* **The room list.**  An entry per room you are in (``/join #rust`` adds one
  and shows it; ``/leave`` removes it), the one shown highlighted.  Each room
  keeps its own log, so a message lands in its room's log whatever is shown;
  a room not shown counts its unread messages on its entry (``#rust (3)``).
  Click an entry to show that room (or call :meth:`ChatWidget.show`).  A line
  you type goes to the room shown.
* **Private conversations.**  Each peer you exchange private messages with
  gets an entry like a room (``🔒 bob``), with its own log and unread count.
  ``/msg bob hi`` shows the conversation once the server relays the message;
  while a conversation is shown, what you type goes to that peer alone.  When
  the peer takes another name, the conversation follows it.
* **Load older messages.**  A room sends its latest 50 messages when you
  enter; the button above the log (or ``/history``) asks for the page before
  the oldest line shown (``Focus.oldest``).  Each message is placed by its id
  -- a page older than the log goes on top, one that overlaps what arrived
  live goes between -- and shown once, however often a page is asked for.
* **Your name** is in the header; ``/nick`` changes it.
* **A v1 server** (its welcome offers no ``features``): the list shows the
  lobby alone, there is no history button, and ``/join``, ``/msg``,
  ``/nick``, ``/history`` answer "Not supported by this server", in the
  terminal's words.  Chat works as before.

Each log keeps its newest ``max_lines`` lines (500 by default), so once a log
is full, older messages no longer fit in it: the button says so instead of
asking for them.  At most 50 conversations are kept; a new one pushes out the
oldest.

Four kinds of thread touch a widget
-----------------------------------
* The kernel's **main thread** runs your cells.
* A **browser event** -- Enter in the box, a click on Send or on the list --
  is a message to the kernel, and ipywidgets calls our handler for it on
  whichever thread the kernel handles that message: the main thread between
  cells, or a *subshell's* thread, even while a cell runs (next section).  A
  handler never waits on the network: it puts a job on a queue, or changes
  what is shown.
* The widget's **sender thread** takes jobs off that queue, in order, and does
  the network calls that may wait: connect (up to ``timeout`` seconds when a
  server does not answer), send, the commands (``/ping`` waits for a round
  trip), ``/quit``.
* The client's **receive thread** (see :mod:`chat.client`) gets every message
  from the server and hands it to :meth:`ChatWidget._on_event`.

Which thread handles a browser event
------------------------------------
Measured in JupyterLab and Chromium by ``tests/test_browser.py``, with the
versions ``requirements.txt`` installs (JupyterLab 4.6, ipykernel 7.4,
ipywidgets 8.1); the test fails if they behave otherwise.

* **Kernel subshells (JupyterLab >= 4.4 and ipykernel >= 7, the default).**
  JupyterLab's setting *Kernel Comms over subshells* (``commsOverSubshells``
  in ``@jupyterlab/apputils-extension:kernels-settings``, added by
  https://github.com/jupyterlab/jupyterlab/pull/17363) defaults to
  ``perCommTarget``: JupyterLab asks the kernel for one subshell -- a thread
  of its own, named ``subshell-<uuid>`` -- per comm target, and sends every
  widget message there.  All ipywidgets share one target, so **all widgets of
  a notebook share one subshell thread**.  It handles their events one at a
  time while the main thread runs your cell: a line typed during a
  ``time.sleep(20)`` reaches the others in about a tenth of a second.  A slow
  handler delays the other widgets' events, never your cells.  (``perComm``
  gives every widget a subshell of its own.)
* **The first event after a cell created or changed the widget waits.**
  ipykernel (7.4: ``ipykernel/comm/comm.py`` and ``kernelbase.py``) hands a
  widget's message to whichever shell last *sent* on that widget's comm,
  whatever subshell the browser addressed.  A cell that creates a widget or
  sets one of its values sends from the main shell, so that widget's next
  event is handled on the main thread: after the running cell, and under
  *Run All* after every queued cell.  Handling it sends from the subshell's
  message (ipywidgets echoes the new value, we empty the box), so the events
  after it go to the subshell -- until a cell changes that widget again.  A
  value set from a background thread counts as sent by the shell that got the
  latest request, so history decides; this code assumes nothing about it.
  (A click sends nothing back, so in our measurements clicks on Send kept
  going to the main thread; the box's value, which the browser reports when
  you leave the box for the button, went to the subshell and was sent.)
* **No subshells** (``commsOverSubshells: disabled``, JupyterLab < 4.4,
  ipykernel 6): every event is handled on the main thread, between cells.
  While a cell runs, no click in any widget of the notebook is handled.

To turn subshells for widgets off: *Settings → Settings Editor → Kernels →
Kernel Comms over subshells → Disabled* (in the JSON editor:
``{"commsOverSubshells": "disabled"}``); for every user of an installation,
the same under ``"@jupyterlab/apputils-extension:kernels-settings"`` in
``<sys.prefix>/share/jupyter/lab/settings/overrides.json``.

What that means here: one lock
------------------------------
A handler can run at the same time as a cell's code (a cell calling
:meth:`~ChatWidget.connect` or :meth:`~ChatWidget.close` while a Send is
handled), and an Enter handled on the subshell thread at the same time as a
click on Send on the main thread.  So every piece of state that more than one
thread touches is guarded by one lock, ``ChatWidget._lock``:

* The sender thread starts once, even when two threads queue a first job at
  the same moment.
* :meth:`~ChatWidget.connect` checks the status and changes it to
  "connecting" in one step.
* Taking the line out of the box is one step: of an Enter and a Send handled
  at the same moment, only one finds the line, so it is sent once.  A line
  that cannot be sent (the connection ended first) is shown as not sent.
* After :meth:`~ChatWidget.close`, nothing more is queued (a job behind the
  sender thread's end signal would never run) and ``connect`` does nothing;
  lines submitted before it are sent first.
* Every change to what the widget shows goes through
  :meth:`ChatWidget._render`, under the lock.  Appending a line is a
  read-modify-write (take the lines, add one, set the HTML); two threads
  doing it at once could lose a line.  And a redraw reads which room is shown,
  then writes the log, the list and the header: a click on the list handled
  in between would leave one room highlighted and another's log shown.
* The rooms and conversations -- their logs, unread counts, which one is
  shown -- are changed by the receive thread (messages), by clicks on the
  list (the main thread or a subshell's), by cells (:meth:`~ChatWidget.show`)
  and by the sender thread (a command's answer): all under the lock.
* The :class:`~chat.client.commands.Focus` (the room shown, a ``/join``
  under way) is changed by :func:`~chat.client.commands.execute` on the
  sender thread too, which cannot hold the lock (it may wait for the
  network).  So the widget's focus takes the lock for every change itself:
  a ``/join`` never lands in the middle of the receive thread answering the
  one before.

Nothing slow happens under the lock (no network, no waiting for a thread), so
no thread waits for it noticeably.  ``tests/test_widget.py`` drives these
races from two threads (a click and a line handled at the same microsecond,
round after round, among them).

Two more rules for threads:

* Setting a widget's value from a thread is safe in ipykernel: it becomes a
  message to the browser, which ipykernel sends from its own I/O thread.  (The
  releases 7.0.x broke that; ``requirements.txt`` excludes them.)  This is why
  the receive thread updates the widget directly instead of handing updates to
  the main thread, which may be busy running a long cell.
* What we never do: ``with output_widget:`` from a thread.  That context
  manager captures *printed* output, and from a background thread the output
  lands in whichever cell happens to be running.  The widget prints nothing.

Tested, and supported by design
-------------------------------
Tested in CI: the versions ``requirements.txt`` installs, in headless
Chromium with ``commsOverSubshells`` at its default and ``disabled``, and
the room list and a private conversation used by clicks and typing
(``tests/test_browser.py``); and the widget driven from several threads in
code, without a browser, against our server and a v1 one
(``tests/test_widget.py``).  Supported by design, not
tested: setups without subshells -- ipykernel 6 (6.29 or later, which
``requirements.txt`` allows), JupyterLab 4.2 and 4.3 -- where every handler
runs on the main thread between cells, as with ``disabled``; and
``perComm``.  The widget is correct on any thread, so these change only when
a line typed during a busy cell goes out, not what it does.

Safety: everything a peer sent (names, messages, the server's own words) goes
through :func:`chat.client.display.safe_text` -- control characters become visible
symbols -- and then :func:`html.escape`, because the ``HTML`` widget assigns
its value to ``innerHTML``: an unescaped ``<img src=x onerror=alert(1)>`` from
a peer would run script in your browser.  Only this module writes tags.  The
list's entries are ``Button`` widgets, whose label the browser shows as text
(never markup); a peer's name goes in without its control characters.

The log shown is rebuilt as one HTML value on every change -- simple, and
cheap at chat speed (the server allows each sender a few messages a second).
It scrolls by itself: the log's box uses CSS ``flex-direction:
column-reverse``, for which the browser measures the scroll position from the
bottom.  At the bottom, new lines stay in view; scroll up to read and the view
stays where you put it.

Enter sends.  The input is an ipywidgets ``Text`` with ``continuous_update=False``
whose ``value`` we observe (ipywidgets 8 deprecates ``on_submit``).  The
browser reports the value when you press Enter *or* leave the box, so
clicking Send (which leaves the box) also sends; so would clicking elsewhere
with text typed.  The Send button sends whatever is still in the input.  The
kernel empties the box once it has the line.  While the box still shows a
line, the kernel has not handled it yet -- for a while, if the event waits
for a busy main thread.  Leave it there: ipywidgets' front end keeps one
change per widget in flight and, once the kernel has handled it, sends only
the widget's latest value, so of several lines entered meanwhile only the
last arrives (measured: of four lines entered in a row during one busy cell,
the first and the last arrived).  Text typed in the moment before the
emptied box reaches the browser is wiped with it.
"""

from __future__ import annotations

import html
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

try:
    import ipywidgets as widgets
except ImportError as exc:  # the TCP server and clients need only the standard library
    raise ImportError(
        "chat.widget needs ipywidgets: pip install ipywidgets (python3 course.py lab installs it)"
    ) from exc

from chat.client import ChatClient, ChatError
from chat.client.commands import (
    HELP_TEXT,
    Command,
    Focus,
    execute,
    message_text,
    parse_command,
)
from chat.client.display import (
    ERROR,
    clock_time,
    format_chat,
    format_event,
    format_unknown_command,
    safe_text,
)
from chat.limits import KEEPALIVE_INTERVAL
from chat.protocol import DEFAULT_HOST, DEFAULT_PORT, LOBBY, room_key
from chat.server import ChatServer

__all__ = ["CONNECTED", "CONNECTING", "DISCONNECTED", "ChatDemo", "ChatWidget", "demo"]

CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"

#: Lines each room's (and each conversation's) log keeps; older ones scroll away.
MAX_LINES = 500

#: Private conversations kept at once; a new one pushes out the oldest (not the one shown).
MAX_CONVERSATIONS = 50

#: Commands that act on "the room shown" (``/leave`` when given no room): meaningless
#: while a private conversation is shown (private messages have no actions, no history).
_ROOM_COMMANDS = ("me", "history", "leave")

# Inline styles: the widget brings no stylesheet.  JupyterLab's theme variables
# (with a fallback after the comma) keep it readable in light and dark themes.
_LINE = (
    "padding:1px 6px;margin:1px 0;border-radius:4px;line-height:1.4;"
    "white-space:pre-wrap;overflow-wrap:anywhere"
)
_STYLES = {
    "chat": "",
    "own": "background:rgba(33,150,243,0.14);margin-left:15%;text-align:right",
    "info": "color:var(--jp-ui-font-color2,#666);font-style:italic",
    "error": "color:var(--jp-error-color1,#d32f2f)",
    "command": "font-family:var(--jp-code-font-family,monospace);font-size:0.92em",
}
_STATUS = {CONNECTING: "🟡", CONNECTED: "🟢", DISCONNECTED: "🔴"}
_BORDER = "1px solid var(--jp-border-color2,#ccc)"
_LOG_HEIGHT = "260px"
_SIDEBAR_WIDTH = "132px"


def _escape(value: Any) -> str:
    """Peer text made harmless twice over: no control characters, no markup."""
    return html.escape(safe_text(value), quote=True)


class _Line(NamedTuple):
    html: str  # what the log shows
    text: str  # the same as plain text, for log_text()
    id: int | None = None  # the message id, for a chat or private message


def _line(kind: str, text: str, inner_html: str | None = None, id: int | None = None) -> _Line:
    """One log line of plain ``text``, escaped here; or ``inner_html``, escaped by the caller."""
    inner = html.escape(text) if inner_html is None else inner_html
    return _Line(
        f'<div class="chat-{kind}" style="{_LINE};{_STYLES[kind]}">{inner}</div>', text, id
    )


def _message_html(event: dict[str, Any], name: Any, *, mark: str = "") -> str:
    """A chat or private message as HTML: every piece of peer text escaped here.

    ``mark`` goes between the time and the name: a room's name for a message
    from another room, 🔒 for a private one.
    """
    when = f'<span style="opacity:0.6">[{clock_time(event.get("timestamp"))}]</span> '
    mark = f"{_escape(mark)} " if mark else ""
    text = event.get("message", "")
    if event.get("action") is True:
        return f"{when}{mark}<i>* {_escape(name)} {_escape(text)}</i>"
    return f"{when}{mark}<b>{_escape(name)}</b>: {_escape(text)}"


def _room_view(room: str) -> str:
    """The key of a room's view: its name without regard to case (``#rust``)."""
    return room_key(room)


def _peer_view(name: str) -> str:
    """The key of a private conversation: ``@`` and the peer's name without regard to case.

    Room keys start with ``#`` and names cannot, so the two never collide --
    not even when a rogue server sends a private message "from" ``#lobby``.
    """
    return "@" + name.casefold()


class _View:
    """What the widget keeps of one room or one private conversation.

    ``lines`` is the log, oldest first, at most ``max_lines`` long; ``ids``
    the message ids in it, so that nothing is shown twice (a history page
    that overlaps what arrived live, a page asked for twice).  ``more``: the
    server said it has messages older than the oldest page we have.
    """

    __slots__ = ("ids", "lines", "more", "name", "private", "unread")

    def __init__(self, name: str, *, private: bool = False) -> None:
        self.name = name  # a room's name as the server spells it, or the peer's name
        self.private = private
        self.lines: list[_Line] = []
        self.ids: set[int] = set()
        self.unread = 0
        self.more = False

    def append(self, line: _Line, max_lines: int) -> bool:
        """Add a line at the bottom; False if its message is shown already."""
        if line.id is not None:
            if line.id in self.ids:
                return False
            self.ids.add(line.id)
        self.lines.append(line)
        self._trim(max_lines)
        return True

    def place(self, page: dict[int, _Line], more: bool, max_lines: int) -> None:
        """Put a page of history (by id) where the ids say, each message once.

        Messages older than every one shown go on top, as a block, above the
        lines without ids too (they were said before we came); the others (a
        page that overlaps live messages) each go above the first message
        with a larger id.  The log then keeps its newest ``max_lines`` lines,
        like a log that grows at the bottom, so a page that does not fit is
        not shown: :meth:`ChatWidget.submit` checks that before asking.
        """
        oldest = self.oldest_id()
        if oldest is None or not page or min(page) <= oldest:
            self.more = more  # the page that reaches furthest back knows if there is more
        new = sorted(i for i in page if i not in self.ids)
        above = [i for i in new if oldest is None or i < oldest]
        self.lines[:0] = [page[i] for i in above]
        for i in new[len(above) :]:
            where = next(
                (n for n, old in enumerate(self.lines) if old.id is not None and old.id > i),
                len(self.lines),
            )
            self.lines.insert(where, page[i])
        self.ids.update(new)
        self._trim(max_lines)

    def oldest_id(self) -> int | None:
        return min(self.ids, default=None)

    def _trim(self, max_lines: int) -> None:
        if len(self.lines) > max_lines:
            gone, self.lines = self.lines[:-max_lines], self.lines[-max_lines:]
            self.ids.difference_update(line.id for line in gone if line.id is not None)


class _SharedFocus(Focus):
    """The widget's :class:`~chat.client.commands.Focus`, changed only under the widget's lock.

    :func:`~chat.client.commands.execute` runs on the sender thread (it may
    wait for the network, so it cannot hold the lock) and changes the focus
    as the terminal's does: ``/join`` notes the answer it waits for
    (``asked``), or sets ``room`` for a room we are in.  Meanwhile the receive
    thread's :meth:`Focus.follow` reads and changes the same fields, and a
    click changes ``room``.  Taking the lock for every assignment keeps each of
    those changes whole: a ``/join`` never lands in the middle of ``follow``
    answering the one before.
    """

    def __init__(self, lock: threading.RLock) -> None:
        object.__setattr__(self, "_lock", lock)
        super().__init__()

    def __setattr__(self, name: str, value: Any) -> None:
        with self._lock:
            object.__setattr__(self, name, value)


class ChatWidget(widgets.VBox):
    """A chat client in a notebook cell: ``ChatWidget(host, port, username)``.

    It connects in the background (``connect=False`` to wait until you call
    :meth:`connect`) and shows how that went in its status line.  It never
    raises because of the network: refused connections, taken names and lost
    servers are shown in the widget, and :attr:`status` and :attr:`reason`
    say the same for programs and tests.  Its methods may be called from
    any thread, also while its own event handlers run on another one.

    On the left, the rooms you are in and your private conversations, each
    with its count of unread messages; click one to show it (or call
    :meth:`show`).  What you type goes to the room shown, or as a private
    message to the peer whose conversation is shown.  Above the log, "Load
    older messages" (:meth:`load_older`) fetches the room's history page by
    page.

    Other keyword arguments go to :class:`~chat.client.ChatClient`, for
    instance ``tls=True, cafile="ca.pem"`` (or ``ssl_context=...``) for a
    server that speaks TLS.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        username: str = "",
        *,
        connect: bool = True,
        timeout: float = 5.0,
        max_lines: int = MAX_LINES,
        keepalive: float | None = KEEPALIVE_INTERVAL,
        **client_options: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.timeout = timeout
        self.keepalive = keepalive
        self.max_lines = max_lines
        self.client_options = client_options
        self.client: ChatClient | None = None
        #: ``connecting``, ``connected`` or ``disconnected``; :attr:`reason` says why.
        self.status = DISCONNECTED
        self.reason = "Not connected yet"
        #: Who is in the room shown (for a private conversation: you and the peer).
        self.users: list[str] = []
        # One lock guards everything that more than one thread touches: the
        # sender thread's start, the closed flag, the status, the input box,
        # the rooms and conversations (their logs, unread counts, the one
        # shown), the focus, and every widget value.  See the module docstring.
        self._lock = threading.RLock()
        self._jobs: queue.Queue[tuple[Callable[[], None], threading.Event] | None] = queue.Queue()
        self._sender: threading.Thread | None = None
        self._closed = False
        #: The room shown (``focus.room``), and how far back each room's log goes.
        self.focus: Focus = _SharedFocus(self._lock)
        self._views: dict[str, _View] = {_room_view(LOBBY): _View(LOBBY)}
        self._peer: str | None = None  # the key of the conversation shown, if one is
        self._opening: set[str] = set()  # conversations to show once our /msg comes back
        self._history = False  # whether the server offers history (set by the welcome)
        self._entries: dict[str, widgets.Button] = {}  # a button per view, by its key

        self.header = widgets.HTML()
        self.log_view = widgets.HTML(
            layout=widgets.Layout(
                flex="1 1 auto",
                height=_LOG_HEIGHT,
                overflow="auto",
                flex_flow="column-reverse",  # scroll position counts from the bottom
                border=_BORDER,
                padding="2px",
            )
        )
        self.older_button = widgets.Button(
            description="⬆ Load older messages",
            layout=widgets.Layout(width="auto", height="24px", display="none"),
        )
        self.room_list = widgets.VBox(
            layout=widgets.Layout(width="auto", max_height="140px", overflow="auto")
        )
        self.users_view = widgets.HTML(
            layout=widgets.Layout(flex="1 1 auto", overflow="auto", border=_BORDER, padding="2px")
        )
        self.input = widgets.Text(
            placeholder="Message, or /help. Enter sends.",
            continuous_update=False,  # value arrives on Enter (or on leaving the box)
            layout=widgets.Layout(flex="1 1 auto", width="auto"),
        )
        self.send_button = widgets.Button(
            description="Send", button_style="primary", layout=widgets.Layout(width="70px")
        )
        self.input.observe(self._on_input, names="value")
        self.send_button.on_click(self._on_send_click)
        self.older_button.on_click(lambda _button: self.load_older())
        sidebar = widgets.VBox(  # as high as the log and its button beside it
            [self.room_list, self.users_view],
            layout=widgets.Layout(width=_SIDEBAR_WIDTH, flex="0 0 auto"),
        )
        main = widgets.VBox(
            [self.older_button, self.log_view], layout=widgets.Layout(flex="1 1 auto", width="auto")
        )
        body = widgets.HBox([sidebar, main])
        footer = widgets.HBox([self.input, self.send_button])
        self._parts: list[widgets.Widget] = [
            self.header,
            self.log_view,
            self.older_button,
            self.room_list,
            self.users_view,
            self.input,
            self.send_button,
            sidebar,
            main,
            body,
            footer,
        ]
        super().__init__(
            children=[self.header, body, footer],
            layout=widgets.Layout(
                flex="1 1 0%", min_width="320px", margin="4px", padding="6px", border=_BORDER
            ),
        )
        # CSS classes name the parts for the browser test (and for your own styles).
        for part, name in (
            (self, "chat-widget"),
            (self.header, "chat-header"),
            (self.log_view, "chat-log"),
            (self.older_button, "chat-older"),
            (self.room_list, "chat-rooms"),
            (self.users_view, "chat-users"),
            (self.input, "chat-input"),
            (self.send_button, "chat-send"),
        ):
            part.add_class(name)
        self._update(status=DISCONNECTED, reason=self.reason)
        if connect:
            self.connect()

    # -- what programs (and tests) call: from a cell, or from a callback on any thread

    def connect(self, username: str | None = None) -> None:
        """Connect (again) in the background, as ``username`` or the name given before."""
        with self._lock:  # the status check and the change to "connecting" are one step
            if self._closed:
                return
            if username is not None:
                self.username = username
            if self.status != DISCONNECTED:
                self._update(line=_line("error", f"{ERROR} Already connected or connecting"))
                return
            name = self.username
            where = f"{self.host}:{self.port}"
            self._update(status=CONNECTING, reason=f"connecting to {where} as {name}…")
            self._submit_job(lambda: self._connect(name))

    def submit(self, line: str) -> None:
        """Act on one line as if it was typed: send it, or run its slash command.

        A message goes to the room shown, or to the peer whose conversation
        is shown -- the one shown now, when the line is submitted.  Commands
        are carried out by :func:`chat.client.commands.execute`, as in the
        terminal, on the sender thread (they may wait for the server);
        ``/help`` and unknown commands are answered at once.
        """
        command = parse_command(line)
        with self._lock:
            view = self._shown()
            peer = view.name if view.private else None
            room = self.focus.room
            full = len(view.lines) >= self.max_lines
        if command is None:
            text = message_text(line)
            if text and peer is not None:
                self._with_client(lambda client: client.send_private(peer, text), unsent=text)
            elif text:
                self._with_client(lambda client: client.send_chat(text, room), unsent=text)
        elif command.name == "quit":
            self.disconnect()
        elif command.name == "help":
            self._show(HELP_TEXT)
        elif command.name == "unknown":
            self._show(format_unknown_command(command.text))
        elif (
            peer is not None
            and command.name in _ROOM_COMMANDS
            and not (command.name == "leave" and command.arg)
        ):
            self._show(
                f"{ERROR} /{command.name}: this is your private conversation with "
                f"{safe_text(peer)}; choose a room on the left first",
                error=True,
            )
        elif command.name == "history" and full:
            self._show(
                f"{ERROR} /history: this log keeps {self.max_lines} lines and is full, "
                "so older messages would not fit",
                error=True,
            )
        else:
            to = command.arg.partition(" ")[0]
            if command.name == "msg" and to:
                with self._lock:  # show the conversation once the server relays it
                    self._opening.add(_peer_view(to))
            self._with_client(lambda client: self._execute(command, client))

    def load_older(self) -> None:
        """Fetch the page of the shown room's history before its oldest line: ``/history``."""
        self.submit("/history")

    def show(self, name: str) -> None:
        """Show a room you are in (``"#rust"``) or your conversation with a peer (``"bob"``)."""
        key = _room_view(name) if name.startswith("#") else _peer_view(name)
        with self._lock:
            if key not in self._views:
                raise ValueError(f"No room or conversation {name!r} here")
            self._show_view(key)

    @property
    def shown(self) -> str:
        """The name of the room or conversation shown (``"#lobby"``, ``"bob"``)."""
        with self._lock:
            return self._shown().name

    @property
    def unread(self) -> dict[str, int]:
        """Each room's and conversation's count of messages not seen yet, by name."""
        with self._lock:
            return {view.name: view.unread for view in self._ordered_views()}

    def disconnect(self, wait: float = 0) -> None:
        """Leave the chat (what ``/quit`` does); the widget stays, showing why it stopped.

        Like every network call it runs on the sender thread, after any
        connect still under way.  ``wait`` > 0: wait at most that long for it.
        """
        done = self._submit_job(self._close_client)
        if wait > 0:
            done.wait(wait)

    def wait_connected(self, timeout: float = 5.0) -> bool:
        """Wait until the connection attempt is over; True if it succeeded."""
        self._submit_job(lambda: None).wait(timeout)  # runs after the pending connect job
        return self.status == CONNECTED

    def close(self) -> None:
        """Disconnect, stop the sender thread and remove the widget from the page.

        Lines submitted before are sent first (waiting at most ``timeout``
        seconds for them); from now on nothing is: :meth:`connect` and
        :meth:`submit` do nothing on a closed widget.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True  # no job is queued after this one...
            sender = self._sender
            if sender is not None:
                self._jobs.put((self._close_client, threading.Event()))
                self._jobs.put(None)  # ...and the sender thread ends after it
        if sender is not None and sender is not threading.current_thread():
            sender.join(self.timeout)  # outside the lock: its last jobs need it
        with self._lock:  # never while another thread of ours sets a value on a part
            for part in [*self._parts, *self._entries.values()]:
                part.close()
            super().close()

    def log_text(self, name: str | None = None) -> str:
        """A log as plain text, one line per line: the one shown, or room/peer ``name``'s."""
        with self._lock:
            if name is None:
                view = self._shown()
            else:
                key = _room_view(name) if name.startswith("#") else _peer_view(name)
                view = self._views.get(key, _View(name))
            return "\n".join(line.text for line in view.lines)

    def __repr__(self) -> str:
        return f"<ChatWidget {self.username or '?'}@{self.host}:{self.port} {self.status}>"

    # -- browser events: on the main thread or a subshell's, maybe during a cell

    def _on_input(self, change: dict[str, Any]) -> None:
        if change["new"]:  # emptying the box fires this again, with "": ignored
            self._take_input(change["new"])

    def _on_send_click(self, _button: widgets.Button) -> None:
        self._take_input()

    def _take_input(self, reported: str | None = None) -> None:
        """Empty the input box and submit what was in it, once.

        Enter and a click on Send can be handled at the same moment on two
        threads (a subshell's and the main thread): under the lock, only the
        first to look finds the line, so it is sent once.  An Enter whose
        ``reported`` line is no longer in the box lost to a click that took it.
        """
        with self._lock:
            line = self.input.value
            if not line or (reported is not None and line != reported):
                return
            self._update(clear_input=True)
            self.submit(line)  # queued under the lock too: lines keep the order they were taken in

    # -- the sender thread

    def _submit_job(self, job: Callable[[], None]) -> threading.Event:
        """Queue ``job`` for the sender thread; the event is set once it has run.

        The first job starts the thread.  Under the lock, two threads
        submitting at once cannot both start one, and no job is queued behind
        the end signal that :meth:`close` queues (it would never run).
        """
        done = threading.Event()
        with self._lock:
            if self._closed:
                done.set()
                return done
            if self._sender is None:
                self._sender = threading.Thread(
                    target=self._run_jobs, name=f"chat-widget-{self.username}", daemon=True
                )
                self._sender.start()
            self._jobs.put((job, done))
        return done

    def _run_jobs(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, done = item
            try:
                job()
            except ChatError as exc:
                self._update(line=_line("error", f"{ERROR} {safe_text(exc)}"))
            except Exception as exc:  # a bug must show in the widget, not kill the thread
                self._update(line=_line("error", f"{ERROR} {type(exc).__name__}: {safe_text(exc)}"))
            finally:
                done.set()

    def _close_client(self) -> None:
        if self.client is not None:
            self.client.close()  # its receive thread reports "disconnected", then ends

    def _with_client(self, action: Callable[[ChatClient], None], unsent: str = "") -> None:
        """Run ``action`` on the sender thread, if connected; say so if not.

        ``unsent`` is the message ``action`` sends: if it cannot go (we are
        not connected, or the connection ends before the sender thread gets
        to it), the log shows it, so that no line you typed vanishes unseen.
        """

        def not_sent(reason: str) -> None:
            shown = f"{ERROR} {reason}" + (f", not sent: {safe_text(unsent)}" if unsent else "")
            self._update(line=_line("error", shown))

        def job() -> None:
            try:
                action(client)
            except ChatError as exc:
                not_sent(safe_text(exc))

        with self._lock:
            client = self.client
            if client is None or self.status != CONNECTED:
                not_sent("Not connected")
                return
            self._submit_job(job)

    def _execute(self, command: Command, client: ChatClient) -> None:
        """Carry out a command as the terminal does, and show its answer (on the sender thread)."""
        answer = execute(command, client, self.focus)  # not under the lock: it may wait
        with self._lock:
            if command.name == "join" and command.arg in client.roster:
                self._peer = None  # a room we are in: execute moved the focus there
            if answer is not None:
                self._show(answer, error=answer.startswith(ERROR))
            else:
                self._render()

    def _connect(self, username: str) -> None:
        client = ChatClient(
            self.host,
            self.port,
            on_event=lambda event: self._on_event(client, event),
            timeout=self.timeout,
            keepalive=self.keepalive,
            **self.client_options,
        )
        with self._lock:  # callbacks read self.client on their own threads
            previous, self.client = self.client, client
        if previous is not None:
            previous.close()
        try:
            client.connect(username)  # the welcome arrives in _on_event
        except ChatError as exc:  # refused, name taken, invalid name, no answer
            reason = safe_text(exc)
            self._update(
                line=_line("error", f"{ERROR} {reason}"), status=DISCONNECTED, reason=reason
            )

    # -- the receive thread

    def _on_event(self, client: ChatClient, event: dict[str, Any]) -> None:
        """Called by ``client`` for every message from the server: file it under its view."""
        with self._lock:
            if client is not self.client:
                return  # a late word from a connection we replaced
            if self._closed and self.comm is None:
                return
            kind = event.get("type")
            before = self.focus.room
            self.focus.follow(event, client)
            if kind == "welcome":
                self._welcomed(client)
            elif kind in ("room_joined", "room_left"):
                self._follow_rooms(client)
                if kind == "room_joined" and self.focus.room != before:
                    self._peer = None  # the room we asked for with /join: show it
            if kind == "chat":
                self._on_chat(client, event)
            elif kind == "private":
                self._on_private(client, event)
            elif kind == "history":
                self._on_history(client, event)
            else:
                self._on_notice(client, event)
            if kind == "disconnected":
                self.status, self.reason = DISCONNECTED, str(event.get("reason", ""))
            self._render()

    def _welcomed(self, client: ChatClient) -> None:
        """A new connection: the server knows of no room but the lobby."""
        self.status = CONNECTED
        self.reason = f"connected to {self.host}:{self.port}"
        self.username = client.username or self.username
        self._history = client.supports("history")
        self._peer = None
        self._opening.clear()
        self._follow_rooms(client)

    def _follow_rooms(self, client: ChatClient) -> None:
        """One view per room we are in, in the order we entered; a room left goes."""
        rooms = client.rooms
        keys = {_room_view(room) for room in rooms}
        for key in [k for k, view in self._views.items() if not view.private and k not in keys]:
            del self._views[key]
        for room in rooms:
            self._views.setdefault(_room_view(room), _View(room)).name = room
        if not self._views or self._shown_key() not in self._views:
            self._peer = None
            self._views.setdefault(_room_view(self.focus.room), _View(self.focus.room))

    def _on_chat(self, client: ChatClient, event: dict[str, Any]) -> None:
        room = event.get("room") if isinstance(event.get("room"), str) else LOBBY
        # Not a room we are in (a confused server)?  Keep it in the lobby, marked with its room.
        view = self._views.get(_room_view(room)) or self._views.get(_room_view(LOBBY))
        if view is None:
            return
        own = event.get("username") == client.username
        if view.append(self._chat_line(event, view.name, own), self.max_lines):
            self._count_unread(view, own)

    def _chat_line(self, event: dict[str, Any], room: str, own: bool) -> _Line:
        """A room's message, worded as the terminal words it (``format_chat``)."""
        where = event.get("room")
        elsewhere = isinstance(where, str) and room_key(where) != room_key(room)
        inner = _message_html(event, event.get("username", "?"), mark=where if elsewhere else "")
        message_id = event.get("id") if isinstance(event.get("id"), int) else None
        return _line("own" if own else "chat", format_chat(event, room=room), inner, message_id)

    def _on_private(self, client: ChatClient, event: dict[str, Any]) -> None:
        sender, receiver = event.get("from"), event.get("to")
        me = client.username or ""
        own = isinstance(sender, str) and sender.casefold() == me.casefold()
        peer = receiver if own else sender
        if not isinstance(peer, str) or not peer:
            return
        key = _peer_view(peer)
        view = self._views.get(key)
        if view is None:
            self._forget_quiet_conversation()
            view = self._views[key] = _View(peer, private=True)
        view.name = peer  # as the server spells it now
        message_id = event.get("id") if isinstance(event.get("id"), int) else None
        text = format_event(event, me=me) or ""  # the terminal's words: "🔒 bob → you: hi"
        line = _line(
            "own" if own else "chat", text, _message_html(event, sender, mark="🔒"), message_id
        )
        if view.append(line, self.max_lines):
            self._count_unread(view, own)
        if own and key in self._opening:  # our /msg: show its conversation
            self._opening.discard(key)
            self._show_view(key, render=False)

    def _forget_quiet_conversation(self) -> None:
        """Make room for a new conversation: at most MAX_CONVERSATIONS are kept."""
        private = [key for key, view in self._views.items() if view.private]
        if len(private) >= MAX_CONVERSATIONS:
            quiet = next(key for key in private if key != self._peer)
            del self._views[quiet]

    def _on_history(self, client: ChatClient, event: dict[str, Any]) -> None:
        room = event.get("room")
        view = self._views.get(_room_view(room)) if isinstance(room, str) else None
        if view is None or view.private:
            return  # a room we left meanwhile
        own = client.username
        page = {
            m["id"]: self._chat_line(m, view.name, m.get("username") == own)
            for m in event.get("messages") or []
            if isinstance(m, dict) and isinstance(m.get("id"), int)
        }
        view.place(page, event.get("more") is True, self.max_lines)

    def _on_notice(self, client: ChatClient, event: dict[str, Any]) -> None:
        """Everything else is a line of news: in its room's log, or in the one shown."""
        kind = event.get("type")
        if kind == "user_renamed":
            self._renamed(client, event)
        shown = format_event(event, room=self.focus.room, me=client.username)
        if shown is None:
            return
        style = "error" if kind in ("error", "server_shutdown", "disconnected") else "info"
        line = _line(style, shown)  # format_event made peer text safe; _line escapes
        room = None  # news of no room in particular goes to the log shown
        if kind in ("user_joined", "user_left", "room_joined", "welcome"):
            room = event.get("room", LOBBY)  # a v1 server names no room: the lobby
        view = self._views.get(_room_view(room)) if isinstance(room, str) else None
        (view or self._shown()).append(line, self.max_lines)

    def _renamed(self, client: ChatClient, event: dict[str, Any]) -> None:
        """Someone took another name: their conversation follows it; ours shows in the header."""
        old, new = event.get("old"), event.get("new")
        if not isinstance(old, str) or not isinstance(new, str):
            return
        if new == client.username:
            self.username = new
        key, new_key = _peer_view(old), _peer_view(new)
        if key in self._views and new_key not in self._views:
            view = self._views.pop(key)
            view.name = new
            self._views[new_key] = view
            if self._peer == key:
                self._peer = new_key
            line = format_event(event) or ""
            if self._peer != new_key:  # the one shown gets the line anyway
                view.append(_line("info", line), self.max_lines)

    # -- the views: called under the lock

    def _shown_key(self) -> str:
        return self._peer if self._peer is not None else _room_view(self.focus.room)

    def _shown(self) -> _View:
        key = self._shown_key()
        view = self._views.get(key)
        if view is None:  # before the first welcome, or a focus on a room just left
            view = self._views.setdefault(_room_view(LOBBY), _View(LOBBY))
        return view

    def _show_view(self, key: str, *, render: bool = True) -> None:
        view = self._views[key]
        if view.private:
            self._peer = key
        else:
            self._peer = None
            self.focus.room = view.name
        view.unread = 0
        if render:
            self._render()

    def _count_unread(self, view: _View, own: bool) -> None:
        if not own and view is not self._shown():
            view.unread += 1

    def _ordered_views(self) -> list[_View]:
        """Rooms first, in the order we entered them; then conversations, oldest first."""
        views = list(self._views.values())
        return [v for v in views if not v.private] + [v for v in views if v.private]

    # -- the one place that writes to the widgets

    def _show(self, text: str, *, error: bool = False) -> None:
        """Show a line of our own (a command's answer) in the log shown."""
        self._update(line=_line("error" if error else "command", text))

    def _update(
        self,
        *,
        line: _Line | None = None,
        status: str | None = None,
        reason: str | None = None,
        clear_input: bool = False,
    ) -> None:
        """Change the state, then redraw, under the one lock."""
        with self._lock:
            if self._closed and self.comm is None:
                return
            if clear_input:
                self.input.value = ""
            if line is not None:
                self._shown().append(line, self.max_lines)
            if status is not None:
                self.status = status
                self.reason = reason or ""
            self._render()

    def _render(self) -> None:
        """Make every part show the state (a value set to what it is already sends nothing)."""
        with self._lock:
            if self._closed and self.comm is None:
                return
            view = self._shown()
            view.unread = 0  # what is shown is read
            live = self.status == CONNECTED
            self.input.disabled = self.send_button.disabled = not live
            self.log_view.value = "".join(line.html for line in view.lines)
            self._render_room_list(view)
            self._render_older_button(view, live)
            self._render_users(view, live)
            where = f"🔒 {view.name}" if view.private else view.name
            self.header.value = (
                f"<b>💬 {_escape(self.username or '?')}</b> · {_escape(where)} "
                f"&nbsp;{_STATUS[self.status]} {_escape(self.reason)}"
            )

    def _render_room_list(self, shown: _View) -> None:
        """A button per room and conversation; the one shown highlighted, counts of unread."""
        views = self._ordered_views()
        keys = [_peer_view(v.name) if v.private else _room_view(v.name) for v in views]
        for key, view in zip(keys, views, strict=True):
            button = self._entries.get(key)
            if button is None:
                button = widgets.Button(layout=widgets.Layout(width="auto", height="26px"))
                button.add_class("chat-room-entry")
                button.on_click(lambda _button, key=key: self._clicked(key))
                self._entries[key] = button
            # A button's description is text to the browser (never markup); safe_text
            # keeps control characters of a peer's name out of it all the same.
            label = f"🔒 {safe_text(view.name)}" if view.private else safe_text(view.name)
            button.description = f"{label} ({view.unread})" if view.unread else label
            button.tooltip = f"{view.unread} unread" if view.unread else ""
            button.button_style = "info" if view is shown else ""
            button.style.font_weight = "bold" if view.unread else ""
        buttons = tuple(self._entries[key] for key in keys)
        if self.room_list.children != buttons:
            self.room_list.children = buttons
        for key in [key for key in self._entries if key not in keys]:
            self._entries.pop(key).close()

    def _clicked(self, key: str) -> None:
        """A click on a room or conversation in the list (main thread or a subshell's)."""
        with self._lock:
            if key in self._views:
                self._show_view(key)

    def _render_older_button(self, view: _View, live: bool) -> None:
        if view.private or not self._history:
            self.older_button.layout.display = "none"
            return
        self.older_button.layout.display = None
        full = len(view.lines) >= self.max_lines
        if full:
            self.older_button.description = f"Log full ({self.max_lines} lines)"
        elif view.more:
            self.older_button.description = "⬆ Load older messages"
        else:
            self.older_button.description = f"Start of {safe_text(view.name)}"
        self.older_button.disabled = not (live and view.more and not full)

    def _render_users(self, view: _View, live: bool) -> None:
        if not live or self.client is None:
            users: list[str] = []
        elif view.private:
            users = [self.username, view.name]
        else:
            users = self.client.roster.members(view.name)
        self.users = users
        if view.private:
            title = "🔒 private"
        elif _room_view(view.name) == _room_view(LOBBY):
            title = f"👥 {len(users)} online"
        else:
            title = f"👥 {len(users)} in {_escape(view.name)}"
        items = "".join(
            f"<div>{_escape(u)}{' <i>(you)</i>' if u == self.username else ''}</div>" for u in users
        )
        self.users_view.value = (
            f'<div style="padding:0 4px;line-height:1.5">'
            f'<b style="white-space:nowrap">{title}</b>{items}</div>'
        )


class ChatDemo(widgets.HBox):
    """Alice and Bob side by side, on a server of their own (or the one you pass)."""

    def __init__(self, server: ChatServer | None = None, names: tuple[str, str] = ("alice", "bob")):
        self.server = server if server is not None else ChatServer("127.0.0.1", 0).start()
        own_server = server is None
        host, port = self.server.address
        self.alice = ChatWidget(host, port, names[0])
        # Bob joins once Alice is in (a moment on this machine), so the story is
        # always the same: Alice sees Bob arrive.
        self.alice.wait_connected(self.alice.timeout)
        self.bob = ChatWidget(host, port, names[1])
        super().__init__(
            children=[self.alice, self.bob], layout=widgets.Layout(flex_flow="row wrap")
        )
        # Leave and stop the server we started when close() is called, or at
        # the latest when Python exits (the finalizer holds no reference to self).
        self._finalizer = weakref.finalize(
            self, _leave, [self.alice, self.bob], self.server, own_server
        )

    def __repr__(self) -> str:
        host, port = self.server.address
        return f"<ChatDemo: {self.alice.username} and {self.bob.username} on {host}:{port}>"

    def leave(self) -> None:
        """Disconnect both (their widgets stay, showing why) and stop our own server."""
        self._finalizer()

    def close(self) -> None:
        self.leave()
        self.alice.close()
        self.bob.close()
        super().close()


def _leave(chats: list[ChatWidget], server: ChatServer, stop_server: bool) -> None:
    for chat in chats:
        chat.disconnect(wait=chat.timeout)
    if stop_server:
        server.stop()
        return
    # Someone else's server: wait (briefly) until it has seen us go, so that a
    # new demo() on it finds the names free.
    names = {chat.username for chat in chats}
    deadline = time.monotonic() + 2.0
    while names & set(server.usernames()) and time.monotonic() < deadline:
        time.sleep(0.02)


_last_demo: ChatDemo | None = None


def demo(server: ChatServer | None = None) -> ChatDemo:
    """Two chat widgets, alice and bob, connected to ``server`` or to a new one.

    A new server listens on 127.0.0.1 on a free port and stops when Python
    exits.  Running ``demo()`` again first disconnects the previous pair (and
    stops its server), so re-running the cell gives a fresh pair and the names
    are free again.
    """
    global _last_demo
    if _last_demo is not None:
        _last_demo.leave()
    _last_demo = ChatDemo(server)
    return _last_demo
