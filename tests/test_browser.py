"""The chat demo in a real browser: JupyterLab 4 driven in headless Chromium.

What a learner does, done by a program: open a notebook whose one code cell
is the demo (``from chat.widget import demo; demo()``), run it, type into
alice's box, press Enter -- and the message must show in bob's log as the
browser renders it.  A screenshot lands in ``test-artifacts/`` (ignored by git).

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
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
#: Debian's Chromium; CHAT_CHROMIUM may point elsewhere (or nowhere, to try the skip).
CHROMIUM = os.environ.get("CHAT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("CHAT_REQUIRE_BROWSER") == "1"
EVIL = "<img src=x onerror=alert(1)>"

CHROMIUM_FLAGS = [
    "--no-sandbox",  # runs as root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]

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


def unavailable(reason: str) -> None:
    """Skip, or fail when CI demands the browser test."""
    if REQUIRED:
        pytest.fail(f"{reason}, but CHAT_REQUIRE_BROWSER=1 says this test must run")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Lab:
    """A JupyterLab server on 127.0.0.1 in a temporary folder, stopped for sure."""

    def __init__(self, home: Path) -> None:
        self.root = home / "notebooks"
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyterlab.log"
        dirs = {name: home / name for name in ("settings", "workspaces", "checkpoints")}
        for name in ("config", "runtime", "ipython", *dirs):
            (home / name).mkdir(parents=True, exist_ok=True)
        self.root.mkdir()
        for relative, values in LAB_SETTINGS.items():
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
def lab(tmp_path: Path) -> Iterator[Lab]:
    server = Lab(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A Chromium page that can reach 127.0.0.1 and nothing else."""
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:

            def local_only(route: Any) -> None:
                if urlparse(route.request.url).hostname == "127.0.0.1":
                    route.continue_()
                else:
                    route.abort()

            context.route("**/*", local_only)
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            context.close()


def test_message_typed_in_alices_box_shows_in_bobs_log(browser_page: Any, lab: Lab) -> None:
    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    (lab.root / "demo.ipynb").write_text(json.dumps(DEMO_NOTEBOOK))
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        chat_in_the_demo(page, lab)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "browser-failure.png"), full_page=True)
        print(f"JupyterLab's log: {lab.log_path}; screenshot: {ARTIFACTS}/browser-failure.png")
        raise
    assert dialogs == [], "a peer's markup ran script"
    assert page_errors == []


def chat_in_the_demo(page: Any, lab: Lab) -> None:
    """Open and run the demo notebook, then chat in it as a person would."""
    from playwright.sync_api import expect

    page.goto(f"{lab.url}/lab/tree/demo.ipynb?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget")
    # The kernel must be up before "run all", or the cells queue behind its start.
    page.wait_for_function(
        "(() => { const w = window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session"
        " && w.sessionContext.session.kernel;"
        " return k && k.status === 'idle'; })()"
    )
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
