"""Several servers, one chat: what Redis costs and what it buys, measured.

::

    python -m benchmarks --cluster                  # the standard runs below, about 30 s
    python -m benchmarks.cluster --engine threads   # the same, another engine

It starts a private redis-server (:class:`chat.cluster.local.LocalRedis`) and
chat servers in processes of their own, and spreads the generator's clients
over them: client *i* joins node *i mod N*.  A delivery from a client to a
client of another node is *cross-node*: it went through Redis.  Two
measurements, in one run:

* **latency** -- 10 clients x 100 messages a second each on 2 nodes; p50 and
  p99 of cross-node deliveries (and of same-node ones, which go through
  Redis too: a message is delivered when it comes back from the relay);
* **throughput** -- deliveries a second, as fast as the clients can send, on
  1 node alone (no Redis), on 1 node with Redis, and on 2 nodes with Redis.

Every run also counts loss, duplicates and reordering, as
:mod:`benchmarks.loadgen` does.  The generator is one process; the nodes and
Redis are others -- on a 2-CPU machine all of them share two cores, which is
what limits scaling here (see the report's note).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from benchmarks.loadgen import (
    _CHAT,
    MIN_CPU_SECONDS,
    ROOT,
    LoadResult,
    ServerProcess,
    _Client,
    _Generator,
    _percentile,
    machine_info,
    tally,
)
from chat.cluster import ClusterConfig
from chat.cluster.local import LocalRedis
from chat.limits import Limits
from chat.server import LOG_FORMAT, create_server, prepare_process

__all__ = ["ClusterResult", "NodeProcess", "run_cluster_load", "run_standard"]

#: The issue's target: cross-node p99 at 10 clients x 100 msg/s on 2 nodes.
TARGET_P99_MS = 5.0


@dataclass
class ClusterResult:
    """One run over ``nodes`` servers (0: one server without Redis)."""

    nodes: int
    load: LoadResult
    cross_p50_ms: float = 0.0
    cross_p99_ms: float = 0.0
    same_p50_ms: float = 0.0
    same_p99_ms: float = 0.0
    redis_cpu: float | None = None  # share of one core redis-server used
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return "1 node, no Redis" if self.nodes == 0 else f"{self.nodes} node(s) on Redis"


class NodeProcess(ServerProcess):
    """A chat server in its own process, one node of the chat on ``redis_url`` (or alone)."""

    def __init__(self, engine: str, redis_url: str | None) -> None:
        super().__init__(engine)
        self.redis_url = redis_url

    def start(self) -> NodeProcess:
        import subprocess

        command = [sys.executable, "-m", "benchmarks.cluster", "--serve", self.engine]
        if self.redis_url:
            command += ["--redis", self.redis_url]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"the {self.engine} node did not start: {line!r}")
        self.address = ("127.0.0.1", int(line.split()[1]))
        return self


def _serve(engine: str, redis_url: str | None) -> int:
    """The node's side of :class:`NodeProcess`: serve until stdin closes."""
    logging.basicConfig(format=LOG_FORMAT, level=logging.WARNING)
    prepare_process(engine)
    limits = Limits(rate_limit=0, join_timeout=300, idle_timeout=600)
    options: dict[str, Any] = {"limits": limits, "backlog": 1024, "db": None}
    if redis_url:
        options["redis"] = ClusterConfig(redis_url)
    server = create_server(engine, "127.0.0.1", 0, **options)
    server.start()
    print("port", server.address[1], flush=True)
    try:
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


class _SpreadGenerator(_Generator):
    """The load generator with its clients spread over several nodes."""

    def __init__(self, addresses: list[tuple[str, int]], progress: bool = False) -> None:
        super().__init__(addresses[0], progress)
        self.addresses = addresses
        self.cross = array("q")  # latencies of deliveries between clients of different nodes

    def _address_for(self, client: _Client) -> tuple[str, int]:
        return self.addresses[client.index % len(self.addresses)]

    def _account(self, client: _Client, lines: bytes, now: int) -> None:
        before = len(self.latencies)
        super()._account(client, lines, now)
        if len(self.addresses) < 2:
            return
        nodes, mine = len(self.addresses), client.index % len(self.addresses)
        # The deliveries just counted, in the order _account saw them (duplicates skipped).
        senders = [int(s) for s, _, _ in _CHAT.findall(lines)]
        added = self.latencies[before:]
        if len(senders) != len(added):  # a duplicate was skipped: keep it simple, drop the batch
            return
        for sender, latency in zip(senders, added, strict=True):
            if sender % nodes != mine:
                self.cross.append(latency)


def run_cluster_load(
    addresses: list[tuple[str, int]],
    *,
    clients: int,
    messages: int,
    rate: float = 0.0,
    engine: str = "cluster",
    timeout: float = 60.0,
    servers: list[ServerProcess] | None = None,
) -> tuple[LoadResult, list[int], list[int]]:
    """Like :func:`benchmarks.loadgen.run_load`, clients spread over ``addresses``.

    Returns the result, and the cross-node and same-node latencies (ns).
    """
    result = LoadResult(engine, clients, messages, rate)
    gen = _SpreadGenerator(addresses)
    try:
        start = time.monotonic()
        if not gen.connect(clients, start + timeout):
            result.notes.append(f"only {gen.joined} of {clients} clients joined")
        result.connect_join_s = time.monotonic() - start
        time.sleep(0.2)  # every node has heard of every join
        cpu0, wall0 = time.process_time(), time.monotonic()
        server_cpu0 = [s.cpu_seconds() for s in servers or []]
        gen.send_all(messages, rate, 0, time.monotonic() + timeout)
        wall = time.monotonic() - wall0
        result.generator_cpu = (time.process_time() - cpu0) / wall if wall else 0.0
        if servers and wall >= MIN_CPU_SECONDS and None not in server_cpu0:  # see run_load
            used = [
                (s.cpu_seconds() or 0.0) - c0 for s, c0 in zip(servers, server_cpu0, strict=True)
            ]
            result.server_cpu = sum(used) / wall
    finally:
        gen.close_all()
    everything = tally(result, gen)
    cross = sorted(gen.cross)
    same = sorted(_without(everything, cross))
    return result, cross, same


def _without(values: list[int], some: list[int]) -> list[int]:
    """``values`` less one occurrence of each of ``some`` (both sorted)."""
    out, j = [], 0
    for value in values:
        if j < len(some) and some[j] == value:
            j += 1
        else:
            out.append(value)
    return out


def _redis_cpu(redis: LocalRedis) -> float | None:
    if redis.process is None:
        return None
    probe = ServerProcess()
    probe.process = redis.process  # type: ignore[assignment]
    return probe.cpu_seconds()


def measure(
    redis: LocalRedis | None,
    nodes: int,
    engine: str,
    *,
    clients: int,
    messages: int,
    rate: float = 0.0,
) -> ClusterResult:
    """One run: ``nodes`` node processes on ``redis`` (``nodes=0``: one server, no Redis)."""
    if redis is not None:
        redis.flush()
    url = redis.url if redis is not None and nodes else None
    servers = [NodeProcess(engine, url) for _ in range(max(1, nodes))]
    for server in servers:
        server.start()
    try:
        redis_cpu0 = _redis_cpu(redis) if redis is not None and nodes else None
        started = time.monotonic()
        load, cross, same = run_cluster_load(
            [s.address for s in servers],
            clients=clients,
            messages=messages,
            rate=rate,
            engine=engine,
            servers=list(servers),
        )
        wall = time.monotonic() - started
        result = ClusterResult(nodes, load)
        if redis_cpu0 is not None and redis is not None:
            result.redis_cpu = ((_redis_cpu(redis) or 0.0) - redis_cpu0) / wall
    finally:
        for server in servers:
            server.stop()
    result.cross_p50_ms = _percentile(cross, 0.50)
    result.cross_p99_ms = _percentile(cross, 0.99)
    result.same_p50_ms = _percentile(same, 0.50)
    result.same_p99_ms = _percentile(same, 0.99)
    return result


def run_standard(engine: str = "asyncio", out: TextIO = sys.stdout) -> dict[str, Any]:
    """The standard runs: paced latency across 2 nodes; throughput on 1 vs 2 nodes.

    Each run's line is printed to ``out`` as it ends.
    """
    report: dict[str, Any] = {"machine": machine_info(), "engine": engine, "runs": []}
    with LocalRedis() as redis:
        runs = [
            ("latency", 2, 10, 300, 100.0),
            ("throughput", 0, 20, 500, 0.0),
            ("throughput", 1, 20, 500, 0.0),
            ("throughput", 2, 20, 500, 0.0),
        ]
        for kind, nodes, clients, messages, rate in runs:
            result = measure(
                redis if nodes else None,
                nodes,
                engine,
                clients=clients,
                messages=messages,
                rate=rate,
            )
            row = asdict(result)
            row["kind"] = kind
            report["runs"].append(row)
            print(format_row(kind, result), file=out, flush=True)
    return report


def format_row(kind: str, result: ClusterResult) -> str:
    load = result.load
    cpu = f"{load.server_cpu:.0%}" if load.server_cpu is not None else "-"
    redis_cpu = f"{result.redis_cpu:.0%}" if result.redis_cpu is not None else "-"
    text = (
        f"{kind:<10} {result.label:<18} {load.clients:>3} x {load.messages:<4}"
        f"{(str(int(load.rate)) + '/s') if load.rate else 'max':>6}  "
        f"lost {load.lost} dup {load.duplicated} ooo {load.out_of_order}  "
        f"{load.deliveries_per_s:>9,.0f} deliveries/s  p50 {load.latency_p50_ms:.2f} "
        f"p99 {load.latency_p99_ms:.2f} ms"
    )
    if result.nodes >= 2:
        text += f"  cross-node p50 {result.cross_p50_ms:.2f} p99 {result.cross_p99_ms:.2f} ms"
    return text + f"  (nodes' CPU {cpu}, redis {redis_cpu})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster", description="Benchmark several nodes on Redis."
    )
    parser.add_argument("--engine", default="asyncio", help="the nodes' engine")
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON (the table goes to stderr)"
    )
    parser.add_argument("--output", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve:
        return _serve(args.serve, args.redis)
    table = sys.stderr if args.json else sys.stdout  # stdout stays JSON alone
    report = run_standard(args.engine, out=table)
    if args.json:
        print(json.dumps(report, indent=2))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    latency = report["runs"][0]
    met = latency["cross_p99_ms"] <= TARGET_P99_MS and not latency["load"]["lost"]
    print(
        f"target: cross-node p99 <= {TARGET_P99_MS:g} ms and no loss at 10 x 100/s on 2 nodes: "
        f"{'met' if met else 'NOT met'} ({latency['cross_p99_ms']:.2f} ms)",
        file=table,
    )
    return (
        0
        if all(not r["load"]["lost"] and not r["load"]["duplicated"] for r in report["runs"])
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
