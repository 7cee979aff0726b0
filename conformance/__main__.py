"""``python -m conformance HOST PORT [--stage N] [--timeout S] [--verbose]``."""

from __future__ import annotations

import argparse
import sys

from conformance import STAGES, format_result, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Test a chat server that speaks the protocol v1, stage by stage.",
        epilog="Stages: "
        + "; ".join(f"{s.number} {s.title}" for s in STAGES)
        + ".  Exit status 0 only if every stage run passes.",
    )
    parser.add_argument("host", help="the server's host, e.g. 127.0.0.1")
    parser.add_argument("port", type=int, help="the server's port, e.g. 12345")
    parser.add_argument(
        "--stage",
        type=int,
        default=len(STAGES),
        choices=range(1, len(STAGES) + 1),
        metavar="N",
        help=f"run stages 1 to N (default: all {len(STAGES)})",
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="longest wait for one answer"
    )
    parser.add_argument("--verbose", action="store_true", help="show every frame sent and received")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a console that cannot show "👋" shows "?"
        sys.stdout.reconfigure(errors="replace")

    def log(line: str) -> None:
        print(line, flush=True)

    print(f"Testing the chat server at {args.host}:{args.port}, stages 1-{args.stage}", flush=True)
    results = run(
        (args.host, args.port),
        args.stage,
        args.timeout,
        log=log if args.verbose else None,
        report=lambda result: print(format_result(result), flush=True),
    )
    passed = sum(r.passed for r in results)
    print(f"{passed} of {len(results)} stages pass.")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
