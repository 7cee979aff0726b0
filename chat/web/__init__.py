"""Chat from a browser: a WebSocket gateway on the same core, and the chat page.

A web page cannot open a TCP connection: browsers give JavaScript only HTTP and
WebSocket.  So a server started with ``web_port=`` (``python -m chat.server
--web-port 8080``) also serves, on that port:

* ``/`` -- the chat page: plain HTML, CSS and JavaScript from ``static/``, no
  build step, nothing fetched from anywhere else;
* ``/ws`` -- a WebSocket endpoint where each text message is one protocol
  frame, the same JSON objects as on the TCP port (PROTOCOL.md section 15).

Browser users, terminal users and programs meet in the same rooms: the gateway
(:mod:`chat.web.gateway`) hands every message to the same
:class:`chat.core.ChatCore` as the TCP port's engine.  It needs the
``websockets`` package (``pip install ".[web]"``); the TCP server does not.
"""

from __future__ import annotations

__all__ = ["STATIC", "WS_PATH"]

#: The WebSocket endpoint's path.
WS_PATH = "/ws"

#: The files of the page: URL path -> (file in ``chat/web/static``, content type).
STATIC: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/icon.svg": ("icon.svg", "image/svg+xml"),
}
