"""What both browser test files share: Debian's Chromium, and nothing but 127.0.0.1.

The browser is Debian's ``chromium`` (``apt-get install chromium``), driven by
Playwright for Python; we never download a browser.  Without it the browser
tests are skipped with the reason -- except when ``CHAT_REQUIRE_BROWSER=1``
(set by ``.ci/run``), where a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Screenshots (ignored by git).
ARTIFACTS = ROOT / "test-artifacts"
#: Debian's Chromium; CHAT_CHROMIUM may point elsewhere (or nowhere, to try the skip).
CHROMIUM = os.environ.get("CHAT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("CHAT_REQUIRE_BROWSER") == "1"
#: A message that would run script if anything showed it as HTML.
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


def unavailable(reason: str) -> None:
    """Skip, or fail when CI demands the browser tests."""
    if REQUIRED:
        pytest.fail(f"{reason}, but CHAT_REQUIRE_BROWSER=1 says this test must run")
    pytest.skip(reason)


def sync_playwright() -> Any:
    """Playwright's ``sync_playwright()``, once Chromium and Playwright are known to be there."""
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install playwright)")
    return sync_playwright()


def local_only(context: Any) -> Any:
    """Make a browser context abort every request to another host than 127.0.0.1."""

    def route(route: Any) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    context.route("**/*", route)
    return context
