"""The load generator counts every delivery right, on every engine.

These tests check what ``python -m benchmarks`` *reports* -- expected, delivered, lost,
errors -- never how fast anything is: speed is for the benchmark's own output
(benchmarks/results.md), not for assertions that would fail on a busy machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.joins import run_joins
from benchmarks.loadgen import ExternalServer, max_clients, run_load
from chat.limits import Limits
from chat.server import create_server

NO_RATE_LIMIT = Limits(rate_limit=0)


def test_every_message_reaches_every_client_once_and_in_order(make_server):
    server = make_server(limits=NO_RATE_LIMIT)
    result = run_load(server.address, clients=3, messages=20, timeout=10)
    assert (result.expected, result.delivered) == (3 * 3 * 20, 3 * 3 * 20)
    assert (result.lost, result.duplicated, result.out_of_order) == (0, 0, 0)
    assert result.ok


def test_paced_run_delivers_everything_and_measures_latency(make_server):
    server = make_server(limits=NO_RATE_LIMIT)
    result = run_load(server.address, clients=2, messages=5, rate=100, timeout=10)
    assert result.delivered == result.expected == 20
    assert 0 < result.latency_p50_ms <= result.latency_p99_ms <= result.latency_max_ms


def test_messages_refused_by_the_rate_limit_count_as_lost_with_errors(make_server):
    server = make_server(limits=Limits(rate_limit=1, rate_burst=5))
    result = run_load(server.address, clients=1, messages=10, timeout=10, quiet=0.5)
    assert result.delivered == 4  # the burst of 5, less the join
    assert result.lost == 6
    assert result.errors == 6  # one "Slow down" error frame for each refused message
    assert not result.ok


def test_max_clients_ramp_reports_the_largest_count_that_works(make_server):
    server = make_server(limits=NO_RATE_LIMIT)
    ramp = max_clients(ExternalServer(server.address), steps=(3, 8))
    assert ramp.largest_ok == 8
    assert [step["clients"] for step in ramp.steps] == [3, 8]
    assert all(step["ok"] and step["reached"] == step["clients"] for step in ramp.steps)


def test_command_line_starts_its_own_server_and_prints_json():
    command = [sys.executable, "-m", "benchmarks", "--engine", "selectors"]
    command += ["--clients", "3", "--messages", "5", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (load,) = report["load"]
    assert (load["engine"], load["expected"], load["lost"]) == ("selectors", 45, 0)
    assert report["machine"]["cpus"] >= 1


def test_unknown_engine_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="threads"):
        create_server("fibers", "127.0.0.1", 0)


def test_joins_in_the_lobby_cost_every_client_news_of_every_later_arrival(make_server):
    server = make_server(limits=NO_RATE_LIMIT)
    result = run_joins(server.address, clients=30, layout="lobby", timeout=30)
    assert result.ok
    assert result.frames == 30 * 31 // 2  # a welcome each, and N(N-1)/2 user_joined


def test_joins_spread_over_rooms_cost_far_fewer_frames_than_one_room(make_server):
    server = make_server(limits=NO_RATE_LIMIT)
    spread = run_joins(server.address, clients=60, rooms=6, layout="rooms", timeout=30)
    lobby = run_joins(server.address, clients=60, layout="lobby", timeout=30)
    assert spread.ok and lobby.ok
    assert spread.frames < lobby.frames / 2
