"""``python -m benchmarks``: measure the chat server engines.

::

    python -m benchmarks --engine threads --clients 50 --messages 50
    python -m benchmarks --engine asyncio --clients 10 --messages 200 --rate 100
    python -m benchmarks --engine selectors --max-clients
    python -m benchmarks --engine asyncio --transport both   # TCP, then WebSocket clients
    python -m benchmarks --suite                 # everything; rewrites benchmarks/results.*
    python -m benchmarks --port 12345            # a server you started yourself
    python -m benchmarks --cluster               # several nodes on Redis (benchmarks.cluster)

The generator is :mod:`benchmarks.loadgen`; the standard suite and its report
are :mod:`benchmarks.suite`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.joins import format_joins, run_joins
from benchmarks.loadgen import (
    DEFAULT_STEPS,
    ExternalServer,
    LoadResult,
    ServerProcess,
    _serve,
    format_load,
    format_max_clients,
    machine_info,
    max_clients,
    run_load,
)
from benchmarks.suite import RESULTS, run_suite
from chat.server import ENGINES, raise_open_files_limit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Load-test the chat server engines."
    )
    parser.add_argument(
        "--engine",
        default="all",
        choices=[*ENGINES, "all"],
        help="engine to start and measure (default: all three, one after the other)",
    )
    parser.add_argument("--clients", type=int, default=50, help="clients (default: %(default)s)")
    parser.add_argument(
        "--messages", type=int, default=50, help="messages per client (default: %(default)s)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="messages a second per client; 0: as fast as possible (default)",
    )
    parser.add_argument("--padding", type=int, default=0, help="extra characters per message")
    parser.add_argument(
        "--transport",
        default="tcp",
        choices=["tcp", "websocket", "both"],
        help="how the clients connect: TCP, WebSocket (the server's web port, "
        "benchmarks/websocket.py), or both, one after the other on the same server "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds each phase may take at most"
    )
    parser.add_argument(
        "--max-clients",
        action="store_true",
        help="ramp up idle clients in steps; report the largest count that still works",
    )
    parser.add_argument(
        "--steps",
        default=",".join(map(str, DEFAULT_STEPS)),
        help="client counts for --max-clients (default: %(default)s)",
    )
    parser.add_argument(
        "--joins",
        action="store_true",
        help="have --clients clients arrive, all in the lobby and spread over --rooms rooms; "
        "report the time and the notices each layout costs",
    )
    parser.add_argument(
        "--rooms", type=int, default=100, help="rooms for --joins (default: %(default)s)"
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help="the server keeps history in a database file (the standard runs keep none)",
    )
    parser.add_argument(
        "--suite",
        action="store_true",
        help="run the standard benchmarks and write benchmarks/results.json",
    )
    parser.add_argument(
        "--port", type=int, help="measure a server already running on 127.0.0.1:PORT"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="several servers on a private Redis: cross-node latency, 1 vs 2 nodes "
        "(benchmarks.cluster: its standard runs, whatever --clients, --messages, --rate say; "
        "--engine picks the nodes' engine, asyncio for 'all')",
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--output", type=Path, help="also write the JSON results to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress line on the terminal")
    parser.add_argument("--serve", metavar="ENGINE", help=argparse.SUPPRESS)
    parser.add_argument("--serve-max-clients", type=int, default=20000, help=argparse.SUPPRESS)
    parser.add_argument("--serve-history", help=argparse.SUPPRESS)
    parser.add_argument("--serve-web", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve:
        return _serve(args.serve, args.serve_max_clients, args.serve_history, args.serve_web)
    raise_open_files_limit()
    progress = not args.quiet and sys.stderr.isatty()
    if args.suite:
        return run_suite(args.output or RESULTS, progress=progress)
    if args.cluster:
        from benchmarks.cluster import main as cluster_main  # needs redis-server

        engine = "asyncio" if args.engine == "all" else args.engine
        options = ["--engine", engine, *(["--json"] if args.json else [])]
        return cluster_main(options + (["--output", str(args.output)] if args.output else []))
    transports = ["tcp", "websocket"] if args.transport == "both" else [args.transport]
    if args.transport != "tcp" and (args.port is not None or args.max_clients or args.joins):
        print(
            "error: --transport websocket works with a server of our own, "
            "without --max-clients or --joins"
        )
        return 2
    if args.port is not None:
        engines = ["external"]
    else:
        engines = list(ENGINES) if args.engine == "all" else [args.engine]
    output: dict[str, Any] = {"machine": machine_info(), "load": [], "max_clients": []}
    loads: list[LoadResult] = []
    scratch = tempfile.TemporaryDirectory(prefix="chat-bench-")
    for engine in engines:
        if args.port is not None:
            server: ServerProcess = ExternalServer(("127.0.0.1", args.port))
        else:
            history = str(Path(scratch.name) / f"{engine}.sqlite3") if args.history else None
            server = ServerProcess(engine, history=history, web=args.transport != "tcp")
        with server:
            if args.joins:
                joins = [
                    run_joins(
                        server.address,
                        clients=args.clients,
                        rooms=args.rooms,
                        layout=layout,
                        engine=engine,
                    )
                    for layout in ("rooms", "lobby")
                ]
                output.setdefault("joins", []).extend(asdict(j) for j in joins)
                if not args.json:
                    print(format_joins(joins), flush=True)
                continue
            if args.max_clients:
                steps = tuple(int(s) for s in args.steps.split(",") if s.strip())
                ramp = max_clients(server, steps=steps, progress=progress)
                output["max_clients"].append(asdict(ramp))
                if not args.json:
                    print(format_max_clients(ramp), flush=True)
                continue
            for transport in transports:
                address = server.address if transport == "tcp" else server.web_address
                assert address is not None
                result = run_load(
                    address,
                    clients=args.clients,
                    messages=args.messages,
                    rate=args.rate,
                    padding=args.padding,
                    engine=engine,
                    timeout=args.timeout,
                    server=server,
                    progress=progress,
                    transport=transport,
                )
                loads.append(result)
                output["load"].append(asdict(result))
    if args.json:
        print(json.dumps(output, indent=2))
    elif loads:
        print(format_load(loads))
    if args.output:
        args.output.write_text(json.dumps(output, indent=2) + "\n")
    scratch.cleanup()
    return 0 if all(r.ok for r in loads) else 1


if __name__ == "__main__":
    sys.exit(main())
