"""The chat page in a real browser: Debian's Chromium, driven by Playwright.

Pages and terminal clients chat together; HTML in a message stays text; private
messages go from page to page; a page that lost its server comes back and shows
what was said meanwhile, once.  Screenshots land in ``test-artifacts/``
(ignored by git).

The browser is Debian's ``chromium``, never a downloaded one, and every request
to another host than 127.0.0.1 is aborted (``tests/browser_support.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chat.limits import Limits
from chat.server import ChatServer, create_server
from tests.browser_support import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    EVIL,
    local_only,
    sync_playwright,
)
from tests.helpers import TIMEOUT, RawPeer, free_port, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

MS = TIMEOUT * 1000  # Playwright counts in milliseconds


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A page of the chat, and what it did that it should not have."""

    page: Any
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def line(self, text: str) -> Any:
        return self.page.locator("#log .line", has_text=text)

    def say(self, text: str) -> None:
        self.page.fill("#message", text)
        self.page.press("#message", "Enter")

    def expect(self, locator: Any) -> Any:
        from playwright.sync_api import expect

        return expect(locator)


@pytest.fixture
def open_tab(browser: Any) -> Iterator[Callable[..., Tab]]:
    """``open_tab(server, "alice")``: a new browser context, the page, and the name entered."""
    contexts = []

    def open_(server: ChatServer, name: str, *, url: str | None = None) -> Tab:
        context = local_only(browser.new_context(viewport={"width": 1000, "height": 640}))
        contexts.append(context)
        tab = Tab(context.new_page())
        tab.page.set_default_timeout(MS)
        tab.page.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
        tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))
        tab.page.goto(url or page_url(server))
        tab.page.fill("#name", name)
        tab.page.click("#enter")
        tab.expect(tab.page.locator("#status")).to_have_attribute("data-state", "connected")
        return tab

    yield open_
    for context in contexts:
        context.close()


def page_url(server: ChatServer) -> str:
    assert server.web_address is not None
    host, port = server.web_address
    return f"http://{host}:{port}/"


def screenshot(tab: Tab, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    tab.page.screenshot(path=str(path))
    assert path.stat().st_size > 0
    return path


def chat_lines(tab: Tab) -> list[tuple[int, str]]:
    """(id, text) of every message line shown, top to bottom."""
    return tab.page.eval_on_selector_all(
        "#log .line.message",
        "lines => lines.map(l => [Number(l.dataset.id), l.querySelector('.text').textContent])",
    )


# -- chatting


def test_two_pages_and_a_terminal_client_chat_in_one_room(make_server, open_tab, engine):
    server = make_server(web_port=0)
    alice = open_tab(server, "alice")
    bob = open_tab(server, "bob")
    with RawPeer(server.address) as carol:
        carol.join("carol")
        bob.expect(bob.page.locator("#users")).to_contain_text("carol")
        alice.say("hello from the page")
        bob.expect(bob.line("hello from the page")).to_have_count(1)
        assert carol.recv_until("chat")["message"] == "hello from the page"
        carol.send({"type": "chat", "message": "hello from the terminal"})
        assert carol.recv_until("chat")["username"] == "carol"  # its own, relayed back
        for tab in (alice, bob):
            tab.expect(tab.line("hello from the terminal")).to_have_count(1)
        bob.say("and back")
        alice.expect(alice.line("and back")).to_have_count(1)
        assert carol.recv_until("chat")["message"] == "and back"
        alice.expect(alice.page.locator("#users li")).to_have_text(["alice", "bob", "carol"])
        screenshot(alice, f"web-page-{engine}.png")
    assert not alice.errors and not bob.errors


@pytest.mark.engines("threads")
def test_html_in_a_message_is_shown_as_text_and_never_run(make_server, open_tab):
    server = make_server(web_port=0)
    alice = open_tab(server, "alice")
    bob = open_tab(server, "bob")
    alice.say(EVIL)
    with RawPeer(server.address) as mallory:
        mallory.join("mallory")
        mallory.send({"type": "chat", "message": f"also {EVIL}"})
        bob.expect(bob.line(f"also {EVIL}")).to_have_count(1)
    bob.expect(bob.page.locator("#log .text").first).to_have_text(EVIL)
    bob.page.wait_for_timeout(500)  # an <img> with a broken src would have fired by now
    assert bob.page.locator("#log img").count() == 0
    assert not alice.dialogs and not bob.dialogs
    assert not alice.errors and not bob.errors


@pytest.mark.engines("threads")
def test_a_private_message_between_two_pages(make_server, open_tab):
    server = make_server(web_port=0)
    alice = open_tab(server, "alice")
    bob = open_tab(server, "bob")
    carol = open_tab(server, "carol")
    alice.page.click("#users li[data-user='bob']")
    alice.expect(alice.page.locator("#title")).to_have_text("@bob")
    alice.say("psst, bob")
    alice.expect(alice.line("psst, bob")).to_have_count(1)
    unread = bob.page.locator("#privates li", has_text="@alice")
    bob.expect(unread.locator(".badge")).to_have_text("1")
    bob.expect(bob.line("psst")).to_have_count(0)  # not in the room shown
    unread.click()
    bob.expect(bob.line("psst, bob")).to_have_count(1)
    bob.say("hi alice, only you can read this")
    alice.expect(alice.line("only you can read this")).to_have_count(1)
    screenshot(bob, "web-page-private.png")
    carol.page.wait_for_timeout(300)
    assert carol.page.locator("#privates li").count() == 0
    carol.expect(carol.line("psst")).to_have_count(0)


@pytest.mark.engines("threads")
def test_rooms_from_the_page(make_server, open_tab):
    server = make_server(web_port=0)
    alice = open_tab(server, "alice")
    bob = open_tab(server, "bob")
    alice.page.fill("#room-name", "#rust")
    alice.page.press("#room-name", "Enter")
    alice.expect(alice.page.locator("#title")).to_have_text("#rust")
    bob.say("/join rust")
    bob.expect(bob.page.locator("#title")).to_have_text("#rust")
    alice.expect(alice.page.locator("#users li")).to_have_text(["alice", "bob"])
    alice.say("borrow checker")
    bob.expect(bob.line("borrow checker")).to_have_count(1)
    bob.page.click("#rooms li[data-key='#lobby']")
    bob.expect(bob.line("borrow checker")).to_have_count(0)


@pytest.mark.engines("threads")
def test_a_name_that_is_taken_can_be_changed_on_the_spot(make_server, open_tab, browser):
    server = make_server(web_port=0)
    open_tab(server, "alice")
    context = local_only(browser.new_context())  # by hand: open_tab expects the name accepted
    try:
        page = context.new_page()
        page.set_default_timeout(MS)
        page.goto(page_url(server))
        page.fill("#name", "Alice")
        page.click("#enter")
        Tab(page).expect(page.locator("#login-error")).to_contain_text("already taken")
        page.fill("#name", "alice2")
        page.click("#enter")
        Tab(page).expect(page.locator("#me")).to_have_text("alice2")
    finally:
        context.close()


@pytest.mark.engines("threads")
def test_the_log_follows_new_lines_unless_the_reader_scrolled_up(make_server, open_tab):
    server = make_server(limits=Limits(rate_limit=0), web_port=0)
    alice = open_tab(server, "alice")
    at_bottom = "log => log.scrollHeight - log.scrollTop - log.clientHeight < 40"
    with RawPeer(server.address) as bob:
        bob.join("bob")
        for i in range(60):
            bob.send({"type": "chat", "message": f"line {i}"})
        alice.expect(alice.line("line 59")).to_have_count(1)
        assert alice.page.eval_on_selector("#log", at_bottom)
        alice.page.eval_on_selector("#log", "log => { log.scrollTop = 0; }")
        bob.send({"type": "chat", "message": "while you were reading"})
        alice.expect(alice.line("while you were reading")).to_have_count(1)
        assert alice.page.eval_on_selector("#log", "log => log.scrollTop") == 0
        alice.expect(alice.page.locator("#jump")).to_be_visible()
        alice.page.click("#jump")
        wait_for(lambda: alice.page.eval_on_selector("#log", at_bottom))


# -- losing the server, and coming back


def test_the_page_reconnects_after_a_restart_and_shows_what_was_said_meanwhile(
    open_tab, engine, tmp_path
):
    """The server stops; while it is away, 60 messages are said (more than the
    50 of history a page gets on entering); it comes back on the same port and
    the page shows every line exactly once, in order."""
    db = str(tmp_path / "history.db")
    web_port = free_port()
    limits = Limits(rate_limit=0)

    def start(**options: Any) -> ChatServer:
        return create_server(engine, "127.0.0.1", 0, limits=limits, db=db, **options).start()

    server = start(web_port=web_port)
    try:
        alice = open_tab(server, "alice")
        with RawPeer(server.address) as bob:
            bob.join("bob")
            for i in range(3):
                bob.send({"type": "chat", "message": f"before {i}"})
            alice.expect(alice.line("before 2")).to_have_count(1)
    finally:
        server.stop()
    status = alice.page.locator("#status")
    alice.expect(status).to_have_attribute("data-state", "disconnected")
    alice.expect(status).to_contain_text("reconnecting")

    meanwhile = start()  # the TCP port only: the page cannot come back yet
    try:
        with RawPeer(meanwhile.address) as bob:
            bob.join("bob")
            for i in range(60):
                bob.send({"type": "chat", "message": f"meanwhile {i}"})
            while bob.recv_until("chat")["message"] != "meanwhile 59":
                pass  # all relayed, so all handed to the store (written before it stops)
    finally:
        meanwhile.stop()

    server = start(web_port=web_port)
    try:
        alice.expect(status).to_have_attribute("data-state", "connected", timeout=4 * MS)
        alice.expect(alice.line("meanwhile 59")).to_have_count(1)
        alice.expect(alice.line("meanwhile 0")).to_have_count(1)
        lines = chat_lines(alice)
        texts = [text for _, text in lines]
        assert texts == [f"before {i}" for i in range(3)] + [f"meanwhile {i}" for i in range(60)]
        ids = [id_ for id_, _ in lines]
        assert ids == sorted(set(ids))  # each once, in order
        alice.say("back again")
        with RawPeer(server.address) as carol:
            carol.join("carol")
            alice.expect(alice.page.locator("#users")).to_contain_text("carol")
        alice.expect(alice.line("back again")).to_have_count(1)
        time.sleep(0.2)
        assert chat_lines(alice)[:-1] == lines  # nothing doubled since
        screenshot(alice, f"web-page-after-restart-{engine}.png")
    finally:
        server.stop()
    assert not alice.errors
