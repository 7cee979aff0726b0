"""The chat demo in a real browser: JupyterLab 4 driven in headless Chromium.

What a learner does, done by a program: open a notebook whose one code cell
is the demo (``from chat.widget import demo; demo()``), run it, type into
alice's box, press Enter -- and the message must show in bob's log as the
browser renders it.  A screenshot lands in ``test-artifacts/`` (ignored by git).

Another run uses the room list and a private conversation as a person
would: commands typed in the box, clicks on the list's entries, and each
message landing in its own room's or conversation's log.

Two more runs measure which thread handles a widget event while a cell is
busy, with JupyterLab's default ``commsOverSubshells`` setting and with it
``disabled`` (see ``chat.widget``'s docstring): if the installed versions
behave otherwise than the course teaches, they fail and say so.

The browser is Debian's ``chromium`` (``apt-get install chromium``), driven by
Playwright for Python; we never download a browser.  Without Chromium the test
is skipped, with the reason in pytest's summary -- except when
``CHAT_REQUIRE_BROWSER=1`` (set by ``.ci/run``), where a missing browser fails.

Nothing leaves 127.0.0.1: JupyterLab listens there with a token, its news and
update checks are switched off, and the browser aborts every request to any
other host.  Everything JupyterLab writes (settings, workspaces, checkpoints,
runtime files) goes to a temporary folder, and autosave is off, so the
repository is never touched.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.browser_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    EVIL,
    local_only,
    sync_playwright,
)
from tests.helpers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent

DEMO_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "markdown",
            "metadata": {},
            "source": ["# The chat demo\n", "Alice and Bob, on a server of their own."],
        },
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": ["from chat.widget import demo\n", "\n", "demo()"],
        },
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}

#: User settings: no pop-ups, no outside calls, no autosave, every cell in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
}


class Lab:
    """A JupyterLab server on 127.0.0.1 in a temporary folder, stopped for sure."""

    def __init__(self, home: Path, settings: dict[str, dict[str, Any]] | None = None) -> None:
        self.root = home / "notebooks"
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyterlab.log"
        dirs = {name: home / name for name in ("settings", "workspaces", "checkpoints")}
        for name in ("config", "runtime", "ipython", *dirs):
            (home / name).mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True)
        for relative, values in {**LAB_SETTINGS, **(settings or {})}.items():
            path = dirs["settings"] / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "IPYTHONDIR": str(home / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
        }
        command = [
            sys.executable, "-m", "jupyter", "lab",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",
            f"--FileCheckpoints.checkpoint_dir={dirs['checkpoints']}",
            f"--LabApp.user_settings_dir={dirs['settings']}",
            f"--LabApp.workspaces_dir={dirs['workspaces']}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class="
            "jupyterlab.handlers.announcements.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--LabApp.expose_app_in_browser=True",
        ]  # fmt: skip
        self._log = self.log_path.open("wb")
        # A session of its own: the kernels it starts can be stopped with it.
        self.process = subprocess.Popen(
            command, cwd=self.root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early; see {self.log_path}")
            try:
                self.api("/api/status")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise RuntimeError(f"JupyterLab did not start within {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        try:
            self.api("/api/shutdown", method="POST")  # stops kernels and the server
            self.process.wait(10)
        except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # our own session, by its id
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # any kernel left behind
        except ProcessLookupError:
            pass
        self._log.close()


@pytest.fixture
def start_lab(tmp_path: Path) -> Iterator[Callable[..., Lab]]:
    """Start JupyterLab with extra user settings: ``start_lab(settings={file: values})``."""
    started: list[Lab] = []

    def start(settings: dict[str, dict[str, Any]] | None = None) -> Lab:
        server = Lab(tmp_path / f"lab{len(started)}", settings)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def lab(start_lab: Callable[..., Lab]) -> Lab:
    return start_lab()


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A Chromium page that can reach 127.0.0.1 and nothing else."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            local_only(context)
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            context.close()


def open_notebook(page: Any, lab: Lab, name: str) -> None:
    """Open ``name`` in JupyterLab and wait until its kernel is idle."""
    page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget")
    # The kernel must be up before we run cells, or they queue behind its start.
    page.wait_for_function(
        "(() => { const w = window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session"
        " && w.sessionContext.session.kernel;"
        " return k && k.status === 'idle'; })()"
    )


def run_checked(page: Any, lab: Lab, notebook: dict[str, Any], check: Callable[[], None]) -> None:
    """Write ``notebook`` into the lab, run ``check``; a screenshot if it fails.

    Also fails if a dialog opened (a peer's markup ran script) or the page
    raised a JavaScript error.
    """
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    (lab.root / "notebook.ipynb").write_text(json.dumps(notebook))
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        check()
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
        print(f"JupyterLab's log: {lab.log_path}; screenshot: {ARTIFACTS}/browser-failure.png")
        raise
    assert dialogs == [], "a peer's markup ran script"
    assert page_errors == []


def test_message_typed_in_alices_box_shows_in_bobs_log(browser_page: Any, lab: Lab) -> None:
    run_checked(browser_page, lab, DEMO_NOTEBOOK, lambda: chat_in_the_demo(browser_page, lab))


def chat_in_the_demo(page: Any, lab: Lab) -> None:
    """Open and run the demo notebook, then chat in it as a person would."""
    from playwright.sync_api import expect

    open_notebook(page, lab, "notebook.ipynb")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

    alice = page.locator(".chat-widget").nth(0)
    bob = page.locator(".chat-widget").nth(1)
    expect(alice.locator(".chat-header")).to_contain_text("alice")
    expect(alice.locator(".chat-header")).to_contain_text("connected to 127.0.0.1")
    expect(bob.locator(".chat-header")).to_contain_text("connected to 127.0.0.1")
    expect(bob.locator(".chat-users")).to_contain_text("2 online")

    box = alice.locator(".chat-input input")
    box.click()
    box.press_sequentially("Hello from the browser")
    box.press("Enter")
    expect(bob.locator(".chat-log")).to_contain_text("alice: Hello from the browser")
    expect(box).to_have_value("")

    # Bob answers with the Send button; the answer is bob's own message in his log.
    bob.locator(".chat-input input").fill("Hi alice!")
    bob.locator(".chat-send").click()
    expect(alice.locator(".chat-log")).to_contain_text("bob: Hi alice!")
    expect(bob.locator(".chat-log .chat-own")).to_contain_text("Hi alice!")

    # Markup from a peer is text, not an element; no script runs.
    box.fill(EVIL)
    box.press("Enter")
    expect(bob.locator(".chat-log")).to_contain_text(f"alice: {EVIL}")
    assert bob.locator(".chat-log img").count() == 0

    page.locator(".jp-Notebook").screenshot(path=str(ARTIFACTS / "browser-demo.png"))

    # The log follows new lines while you are at the bottom...
    log = bob.locator(".chat-log")
    for i in range(12):
        box.fill(f"line {i}")
        box.press("Enter")
        expect(box).to_have_value("")  # like a person: type the next line once this one left
    expect(log).to_contain_text("alice: line 11")
    top, height, visible = log.evaluate("e => [e.scrollTop, e.scrollHeight, e.clientHeight]")
    assert height > visible, "the log should overflow by now"
    assert abs(top) < 2, "at the bottom (column-reverse counts scrollTop from the bottom)"
    # ...and stays where you put it once you scroll up to read.
    log.evaluate("e => { e.scrollTop = -100 }")
    box.fill("while bob reads")
    box.press("Enter")
    expect(log).to_contain_text("alice: while bob reads")
    assert log.evaluate("e => e.scrollTop") < -100, "the view must not jump to the bottom"


# -- Which thread handles a widget event while a cell is busy (kernel subshells)
#
# JupyterLab >= 4.4 sends widget messages to a kernel subshell when the kernel
# supports them (ipykernel >= 7), per its setting ``commsOverSubshells``; see
# chat.widget's docstring.  These runs show what the pinned versions do, in a
# real browser: lines are typed while a cell is busy, and each line's callback
# records its thread and whether the cell was still running.  A busy cell ends
# only when the test creates its release file, so a line that reached the
# other widget before that arrived during the cell -- no clock involved.

KERNELS_SETTINGS = "@jupyterlab/apputils-extension/kernels-settings.jupyterlab-settings"

#: Seconds we give a line to be handled during a busy cell before concluding it waits.
#: A subshell handles it in about 0.1 s here.
DURING_WINDOW = 2.0

THREADS_SETUP = """\
import html, json, threading, time
from pathlib import Path

import ipywidgets as widgets
from chat.widget import CONNECTED, demo

busy = threading.Event()  # set while a busy cell runs
handled = []  # one entry per line typed into a box: who, line, thread, during a cell?
record = widgets.HTML()
record.add_class("thread-record")


def recorder(who):
    def note(change):  # an observer beside the widget's own: it runs on the same thread
        if change["new"]:
            thread = threading.current_thread().name
            line = change["new"]
            handled.append({"who": who, "line": line, "thread": thread, "busy": busy.is_set()})
            record.value = html.escape(json.dumps(handled))
    return note


chats = demo()
deadline = time.monotonic() + 10
for chat in (chats.alice, chats.bob):
    while chat.status != CONNECTED and time.monotonic() < deadline:
        time.sleep(0.02)  # the welcome is shown (the box enabled) by the receive thread
    assert chat.status == CONNECTED, chat.reason
    chat.input.observe(recorder(chat.username), names="value")
    # A cell changes each box last, so each box's next event goes to the main thread.
    chat.input.placeholder = "Enter sends"
display(chats, record)
"""


def busy_cell(release: str, first: str = "") -> str:
    """A cell that stays busy until the test creates the file ``release`` (60 s at most)."""
    return (
        f"{first}busy.set()\n"
        f"print('busy until {release} exists')\n"
        "try:\n"
        "    deadline = time.monotonic() + 60\n"
        f"    while not Path({release!r}).exists() and time.monotonic() < deadline:\n"
        "        time.sleep(0.02)\n"
        "finally:\n"
        "    busy.clear()\n"
        "print('released')\n"
    )


def code_cell(source: str) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": source.splitlines(keepends=True)}  # fmt: skip


THREADS_NOTEBOOK = {
    **DEMO_NOTEBOOK,
    "cells": [
        code_cell(THREADS_SETUP),
        code_cell(busy_cell("release-1")),
        code_cell(busy_cell("release-2")),
        code_cell(busy_cell("release-3", first="chats.alice.input.placeholder = 'changed'\n")),
    ],
}


#: The lines typed during the first busy cell, and who types them, in this order.
FIRST_ROUND = {"a1": "alice", "b1": "bob", "a1 again": "alice"}


class Handled(NamedTuple):
    """How one typed line was handled, seen from the kernel and from the browser."""

    thread: str  # the callback's threading.current_thread().name
    during_cell: bool  # the kernel's view: the busy cell was still running
    shown_before_release: bool  # the browser's view: it reached the other chat before


def expect_handling(observed: dict[str, Handled], expected: dict[str, str], setting: str) -> None:
    """Fail, saying what changed, unless each line was handled as ``expected``.

    ``expected`` maps a line to "subshell" (a ``subshell-…`` thread, during
    the busy cell), "main" (``MainThread``, after the cell) or "subshell
    after" (a subshell thread, but only after the cell).
    """
    wrong = []
    for line, kind in expected.items():
        seen = observed[line]
        if seen.during_cell and not seen.shown_before_release:
            pytest.fail(
                f"{line!r} was handled during the busy cell ({seen.thread}) but only after "
                f"{DURING_WINDOW} s: a very slow machine? Raise DURING_WINDOW."
            )
        thread = "MainThread" if kind == "main" else "subshell-"
        ok = seen.thread.startswith(thread) and seen.during_cell == (kind == "subshell")
        if not ok or seen.during_cell != seen.shown_before_release:
            wrong.append(f"  {line!r}: expected {kind}, got {seen}")
    if wrong:
        versions = ", ".join(
            f"{name} {metadata.version(name)}" for name in ("jupyterlab", "ipykernel", "ipywidgets")
        )
        pytest.fail(
            f"With {versions} and commsOverSubshells={setting}, widget events were not "
            "handled as chat.widget's docstring, notebook 06 and the README say:\n"
            + "\n".join(wrong)
            + "\nThe installed versions behave differently: measure again and update the text."
        )


def run_cell(page: Any, index: int) -> None:
    """Run one cell, as Shift+Enter would, without waiting for it to finish."""
    page.evaluate(
        "index => { const notebook = window.jupyterapp.shell.currentWidget;"
        " notebook.content.activeCellIndex = index;"
        " void window.jupyterapp.commands.execute('notebook:run-cell'); }",
        index,
    )


def handled_so_far(page: Any) -> dict[str, dict[str, Any]]:
    """The kernel's record of typed lines, as the record widget shows it."""
    text = page.locator(".thread-record").inner_text()
    return {entry["line"]: entry for entry in json.loads(text)} if text.strip() else {}


def type_during_busy_cell(
    page: Any, lab: Lab, cell: int, release: str, lines: dict[str, str]
) -> dict[str, Handled]:
    """Run busy ``cell``, type each line into its author's box, then release the cell.

    ``lines`` maps a line to its author, "alice" or "bob"; each must show in
    the other one's log.
    """
    from playwright.sync_api import expect

    chats = {
        "alice": page.locator(".chat-widget").nth(0),
        "bob": page.locator(".chat-widget").nth(1),
    }
    output = page.locator(".jp-Notebook .jp-CodeCell").nth(cell).locator(".jp-OutputArea")
    run_cell(page, cell)
    expect(output).to_contain_text(f"busy until {release} exists")
    for line, who in lines.items():
        box = chats[who].locator(".chat-input input")
        box.fill(line)
        box.press("Enter")
    # Lines a subshell handles are in the record within a moment; give them time.
    deadline = time.monotonic() + DURING_WINDOW
    while set(lines) - set(handled_so_far(page)) and time.monotonic() < deadline:
        time.sleep(0.05)
    early = set(handled_so_far(page))
    shown_early = {}
    for line, who in lines.items():
        other_log = chats["bob" if who == "alice" else "alice"].locator(".chat-log")
        if line in early:  # handled: it must reach the other chat, the cell still busy
            expect(other_log).to_contain_text(f"{who}: {line}")
        shown_early[line] = f"{who}: {line}" in other_log.inner_text()
    assert not (lab.root / release).exists()  # so everything above happened during the cell
    (lab.root / release).touch()
    expect(output).to_contain_text("released")
    for line, who in lines.items():
        other_log = chats["bob" if who == "alice" else "alice"].locator(".chat-log")
        expect(other_log).to_contain_text(f"{who}: {line}")
    page.wait_for_function(
        "lines => { const text = document.querySelector('.thread-record').innerText;"
        " return lines.every(line => text.includes(JSON.stringify(line))); }",
        arg=list(lines),
    )
    record = handled_so_far(page)
    return {
        line: Handled(record[line]["thread"], record[line]["busy"], shown_early[line])
        for line in lines
    }


def start_threads_notebook(page: Any, lab: Lab) -> None:
    from playwright.sync_api import expect

    open_notebook(page, lab, "notebook.ipynb")
    run_cell(page, 0)
    for chat in (page.locator(".chat-widget").nth(0), page.locator(".chat-widget").nth(1)):
        expect(chat.locator(".chat-header")).to_contain_text("connected to 127.0.0.1")
    expect(page.locator(".thread-record")).to_be_attached()


def test_by_default_a_line_typed_during_a_busy_cell_arrives_before_the_cell_ends(
    browser_page: Any, start_lab: Callable[..., Lab]
) -> None:
    """JupyterLab's default, commsOverSubshells: perCommTarget."""
    lab = start_lab()
    page = browser_page
    observed: dict[str, Handled] = {}

    def check() -> None:
        start_threads_notebook(page, lab)
        # The first event on each box after the cell that changed it: the main thread.
        # A second line typed into a box whose first one waits is not even sent
        # then: ipywidgets keeps one update per widget in flight and sends the
        # next once the kernel has handled it -- by then from the subshell.
        observed.update(type_during_busy_cell(page, lab, 1, "release-1", FIRST_ROUND))
        # From then on: a subshell, during the cell; one thread for both widgets.
        observed.update(
            type_during_busy_cell(page, lab, 2, "release-2", {"a2": "alice", "b2": "bob"})
        )
        # A cell changed alice's box: her next event waits for the main thread again.
        observed.update(
            type_during_busy_cell(page, lab, 3, "release-3", {"a3": "alice", "b3": "bob"})
        )

    run_checked(page, lab, THREADS_NOTEBOOK, check)
    for line, seen in sorted(observed.items()):
        print(
            f"default (perCommTarget): {line} on {seen.thread}, during the cell: {seen.during_cell}"
        )
    expected = {"a1": "main", "b1": "main", "a1 again": "subshell after"}
    expected.update({"a2": "subshell", "b2": "subshell", "a3": "main", "b3": "subshell"})
    expect_handling(observed, expected, "perCommTarget")
    subshells = {seen.thread for seen in observed.values() if seen.thread != "MainThread"}
    assert len(subshells) == 1, f"all widgets share one subshell thread, not {subshells}"


def test_with_comms_over_subshells_disabled_lines_wait_for_the_busy_cell(
    browser_page: Any, start_lab: Callable[..., Lab]
) -> None:
    lab = start_lab(settings={KERNELS_SETTINGS: {"commsOverSubshells": "disabled"}})
    page = browser_page
    observed: dict[str, Handled] = {}

    def check() -> None:
        start_threads_notebook(page, lab)
        observed.update(type_during_busy_cell(page, lab, 1, "release-1", FIRST_ROUND))
        observed.update(
            type_during_busy_cell(page, lab, 2, "release-2", {"a2": "alice", "b2": "bob"})
        )

    run_checked(page, lab, THREADS_NOTEBOOK, check)
    for line, seen in sorted(observed.items()):
        print(f"disabled: {line} on {seen.thread}, during the cell: {seen.during_cell}")
    expect_handling(observed, dict.fromkeys(observed, "main"), "disabled")


# -- Rooms and private conversations, as a person uses them: typed commands, clicks
# on the list's entries, and each message where it belongs.


def test_rooms_and_a_private_conversation_in_the_browser(browser_page: Any, lab: Lab) -> None:
    run_checked(browser_page, lab, DEMO_NOTEBOOK, lambda: rooms_and_private(browser_page, lab))


def rooms_and_private(page: Any, lab: Lab) -> None:
    from playwright.sync_api import expect

    open_notebook(page, lab, "notebook.ipynb")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    alice = page.locator(".chat-widget").nth(0)
    bob = page.locator(".chat-widget").nth(1)
    for chat in (alice, bob):
        expect(chat.locator(".chat-header")).to_contain_text("connected to 127.0.0.1")

    def say(chat: Any, line: str) -> None:
        box = chat.locator(".chat-input input")
        box.fill(line)
        box.press("Enter")
        expect(box).to_have_value("")  # the kernel has it

    def entry(chat: Any, label: str) -> Any:
        return chat.locator(".chat-rooms .chat-room-entry", has_text=label)

    # Both join #rust; the list gains an entry, highlighted, and the header names it.
    for chat in (alice, bob):
        say(chat, "/join #rust")
        expect(chat.locator(".chat-header")).to_contain_text("· #rust")
        expect(entry(chat, "#rust")).to_have_class(re.compile(r"\bmod-info\b"))
    # Bob looks at the lobby; alice's message for #rust waits there, counted.
    entry(bob, "#lobby").click()
    expect(bob.locator(".chat-header")).to_contain_text("· #lobby")
    say(alice, "hello rust")
    expect(entry(bob, "#rust")).to_have_text("#rust (1)")
    expect(bob.locator(".chat-log")).not_to_contain_text("hello rust")
    entry(bob, "#rust").click()
    expect(bob.locator(".chat-log")).to_contain_text("alice: hello rust")
    expect(entry(bob, "#rust")).to_have_text("#rust")

    # A private message opens a conversation: alice's at once, bob's counted.
    say(alice, "/msg bob psst")
    expect(alice.locator(".chat-header")).to_contain_text("🔒 bob")
    expect(entry(bob, "alice")).to_have_text("🔒 alice (1)")
    entry(bob, "alice").click()
    expect(bob.locator(".chat-log")).to_contain_text("alice: psst")
    say(bob, "hi alice")  # typed in the conversation: private, to alice
    expect(alice.locator(".chat-log")).to_contain_text("bob: hi alice")
    page.locator(".jp-Notebook").screenshot(path=str(ARTIFACTS / "browser-rooms.png"))
    entry(alice, "#rust").click()
    expect(alice.locator(".chat-log")).to_contain_text("alice: hello rust")
    expect(alice.locator(".chat-log")).not_to_contain_text("hi alice")
