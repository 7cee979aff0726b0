"""``python -m chat.server``: run a chat server in the foreground until Ctrl+C.

::

    python -m chat.server                          # localhost:12345, the threaded engine
    python -m chat.server --host 0.0.0.0           # every network interface
    python -m chat.server --port 0                 # any free port (the log says which)
    python -m chat.server --engine selectors       # the event-loop engine
    python -m chat.server --web-port 8080          # also the chat page: http://localhost:8080/
    python -m chat.server --redis redis://127.0.0.1:6379/0   # one node of a chat on Redis
    python -m chat.server --help                   # every option, limits included

The log goes to standard error in the format the original chat used
(``%(asctime)s - %(levelname)s - %(message)s``).  Room history is kept in a
file (:func:`chat.store.default_path`; ``--db PATH`` for another, ``--db
:memory:`` for none that outlives the server); with ``--redis URL`` the server
is one node of the chat every server on that Redis shares, and history lives
in Redis (:mod:`chat.cluster`).  SIGTERM stops the server as
Ctrl+C does: every client is told (``server_shutdown``) before it closes.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from chat.cluster import ClusterConfig, ClusterError
from chat.limits import Limits
from chat.limits import add_arguments as add_limit_arguments
from chat.protocol import DEFAULT_HOST, DEFAULT_PORT
from chat.server import ENGINES, LOG_FORMAT, AddressInUseError, create_server, prepare_process
from chat.store import MEMORY, StoreError, default_path
from chat.tls import server_context

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chat.server", description="Run a chat server.")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default: %(default)s; 0.0.0.0 means every interface)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s; 0: any free)"
    )
    parser.add_argument(
        "--engine",
        default="threads",
        choices=list(ENGINES),
        help="server design: a thread per client, a selectors event loop or asyncio "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much to log (default: %(default)s)",
    )
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=str(default_path()),
        help="where room history is kept, across restarts (default: %(default)s); "
        f"{MEMORY} keeps nothing",
    )
    cluster = parser.add_argument_group("Several servers, one chat (README; PROTOCOL.md 16)")
    cluster.add_argument(
        "--redis",
        metavar="URL",
        help="every server started with the same Redis URL (redis://HOST:PORT/DB) is part "
        "of one chat; history is then kept in Redis, not in --db",
    )
    cluster.add_argument(
        "--node-name",
        metavar="NAME",
        help="this server's name among the others (default: host:port); a server that "
        "starts under the name of one that died ends that one's life at once",
    )
    cluster.add_argument(
        "--heartbeat",
        type=float,
        default=ClusterConfig.heartbeat,
        metavar="SECONDS",
        help="seconds between this server's heartbeats (default: %(default)s)",
    )
    cluster.add_argument(
        "--presence-ttl",
        type=float,
        default=ClusterConfig.presence_ttl,
        metavar="SECONDS",
        help="a server silent this long is taken for dead and its users leave "
        "(default: %(default)s)",
    )
    tls = parser.add_argument_group("TLS (README: Security)")
    tls.add_argument("--tls-cert", metavar="PEM", help="certificate chain: serve over TLS")
    tls.add_argument("--tls-key", metavar="PEM", help="private key, if not in the --tls-cert file")
    web = parser.add_argument_group("the web page (README: The web page)")
    web.add_argument(
        "--web-port",
        type=int,
        metavar="PORT",
        help="also serve the chat page and a WebSocket endpoint (/ws) on this port "
        "(0: any free; over TLS too with --tls-cert; needs the websockets package)",
    )
    web.add_argument(
        "--web-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another web origin whose pages may connect, such as https://chat.example.org "
        "(repeatable; the page's own origin always may)",
    )
    add_limit_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format=LOG_FORMAT, level=args.log_level)
    ssl_context = None
    if args.tls_key and not args.tls_cert:
        parser.error("--tls-key needs --tls-cert")
    if args.tls_cert:
        try:
            ssl_context = server_context(args.tls_cert, args.tls_key)
        except (OSError, ValueError) as exc:  # missing file, wrong format, key does not match
            print(f"error: cannot load the TLS certificate or key: {exc}", file=sys.stderr)
            return 1
    options: dict[str, Any] = {"limits": Limits.from_args(args), "db": args.db}
    if ssl_context is not None:
        options["ssl_context"] = ssl_context
    if args.web_origin and args.web_port is None:
        parser.error("--web-origin needs --web-port")
    if args.web_port is not None:
        options["web_port"] = args.web_port
        options["web_origins"] = args.web_origin
    if args.redis:
        options["redis"] = ClusterConfig(
            args.redis,
            name=args.node_name,
            heartbeat=args.heartbeat,
            presence_ttl=args.presence_ttl,
            backoff_max=min(ClusterConfig.backoff_max, args.presence_ttl / 3),
        )
    prepare_process(args.engine)

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # handled like Ctrl+C by serve_forever

    try:
        server = create_server(args.engine, args.host, args.port, **options)
        # Before start(): whoever reads "Chat server started" may send SIGTERM at
        # once, and without a handler SIGTERM kills the process on the spot.
        signal.signal(signal.SIGTERM, on_sigterm)
        try:
            server.start()
            server.serve_forever()  # returns after Ctrl+C or SIGTERM
        except KeyboardInterrupt:  # one that came while starting, before serve_forever waited
            server.stop()
    except AddressInUseError as exc:
        print(f"error: {exc.strerror}", file=sys.stderr)
        return 1
    except ImportError as exc:  # --web-port without the websockets package
        print(f"error: {exc}; install it with: pip install websockets", file=sys.stderr)
        return 1
    except (StoreError, ClusterError, ValueError) as exc:  # --db, --redis, a bad --web-origin
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
