"""The broker component: one node's link to Redis, on a thread of its own.

:class:`Broker` carries out what :class:`chat.cluster.core.ClusterCore` asks
for (:class:`~chat.cluster.core.Claim`, :class:`~chat.cluster.core.Publish`,
:class:`~chat.cluster.core.Release`, and :class:`chat.core.Fetch` for
history) and hands what Redis says back to the core.  The engines never wait
for Redis: the actions go on a queue, and the answers come back through
:meth:`chat.server.base.ServerBase._from_thread`, which runs them where the
engine runs the core -- exactly like the history store's answers.

Inside, an asyncio event loop (``redis.asyncio``) runs three tasks:

* **the writer** sends the queued actions in order, many to one pipeline (one
  round trip for a burst).  Each action is a small Lua script, because a
  script runs *atomically* in Redis: nothing else happens between its steps.
  One writer, one order: a node's events reach the relay in the order its
  core made them, so a sender's messages stay in order.
* **the reader** blocks on ``XREAD`` on the relay stream, from the last entry
  it read, and hands each batch of events to the core.  Every node reads the
  same stream, so every node delivers in the same order, each entry once.
* **the heartbeat** refreshes this node's key every ``heartbeat`` seconds and
  checks the keys of the nodes it knows of; a missing key means a dead node.

When Redis cannot be reached, the first failure switches the node to
*degraded* (one log line), every later one is quiet, and a task reconnects
with exponential backoff.  Back in touch, one script (``HELLO``) registers
the node again, claims its users' names again, raises the id counter above
every id handed out meanwhile, publishes who is here and reads who is
elsewhere -- all in one atomic step, so that nothing slips between them.  The
reader then goes on from where it stopped: Redis Streams keep what was
published meanwhile, so the node *replays* it.

Keys (``prefix`` is ``chat`` by default): ``chat:relay`` (the stream),
``chat:ids`` (the message counter), ``chat:history:#room`` (a stream per
room, entry id = message id), ``chat:name:alice`` (who holds a name),
``chat:nodes`` (the nodes), ``chat:alive:NODE`` (a node's heartbeat, with an
expiry), ``chat:users:NODE`` (a node's users, for nodes that start later),
``chat:instance:NAME`` (the node that has this server name now).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import random
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chat.cluster import ClusterConfig, ClusterError
from chat.cluster.core import Claim, ClusterCore, Publish, Release, relayed_chat
from chat.core import Fetch
from chat.logthrottle import LogThrottle
from chat.protocol import room_key

if TYPE_CHECKING:
    from chat.server.base import ServerBase

__all__ = ["ID_GAP", "Broker"]

log = logging.getLogger(__name__)

Frame = dict[str, Any]

#: After an outage the id counter is raised this far above the last id this
#: node saw: every id a node handed out alone meanwhile stays below what comes
#: next.  (A reconnection may skip numbers, as a restart may: PROTOCOL.md 10.)
ID_GAP = 1_000_000

#: Queued actions sent in one pipeline at most; entries read in one XREAD at most.
BATCH = 500

#: How long the reader's XREAD waits for news before asking again (ms).
BLOCK_MS = 1000

#: What a lost link looks like: Redis went away, or did not answer in time.
LINK_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, TimeoutError)

# -- the Lua scripts.  KEYS are the keys a script works on; ARGV its values.
# A few keys are built inside from the prefix (a claim's holder's heartbeat,
# say): fine on one Redis server, not on a Redis Cluster, which shards keys.

#: A room message or private message: the next id and the relay, in one step,
#: so that stream order is id order; a room message also goes to its history.
RELAY = """
local id = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'i', id, 'e', ARGV[1])
if KEYS[3] then
  redis.pcall('XADD', KEYS[3], 'MAXLEN', ARGV[3], id .. '-0', 'e', ARGV[1])
end
return id
"""

#: A presence event: to the relay, and into this node's record of its users;
#: a name no longer used is given back (if this node still holds it).
PRESENCE = """
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[4], ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HDEL', KEYS[2], ARGV[6]) end
if ARGV[7] ~= '' and redis.call('GET', ARGV[7]) == ARGV[3] then redis.call('DEL', ARGV[7]) end
return 1
"""

#: Claim a name: granted if nobody holds it, this node does, or its holder's
#: heartbeat has expired (a dead node's names are free).
CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. holder) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

#: Give a name back, if this node still holds it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

#: I am alive for ARGV[2] ms more.  Returns 1 if the key had expired: the
#: others may have taken this node for dead, so it must introduce itself again.
HEARTBEAT = """
local lapsed = redis.call('EXISTS', KEYS[2]) == 0
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[1], ARGV[1])
if lapsed then return 1 end
return 0
"""

#: A Lua function that HELLO, BURY and GOODBYE begin with (see SCRIPTS): give
#: back every name ``node`` still holds, by its list of its users (hash ``users``).
GIVE_BACK = """
local function give_back(prefix, node, users)
  for _, key in ipairs(redis.call('HKEYS', users)) do
    if redis.call('GET', prefix .. 'name:' .. key) == node then
      redis.call('DEL', prefix .. 'name:' .. key)
    end
  end
end
"""

#: Start, or come back after an outage, in one atomic step (see the module docstring).
#: KEYS: nodes, alive:NODE, users:NODE, relay, ids, instance:NAME.
#: ARGV: node, ttl ms, prefix, id floor, relay length, then (name key, user record) pairs.
#: Returns {the relay position of our news, names lost, {other node, its user records}...,
#: the last message id handed out}.
HELLO = """
local node, prefix = ARGV[1], ARGV[3]
local previous = redis.call('GET', KEYS[6])
redis.call('SET', KEYS[6], node)
if previous and previous ~= node then
  give_back(prefix, previous, prefix .. 'users:' .. previous)
  redis.call('DEL', prefix .. 'alive:' .. previous, prefix .. 'users:' .. previous)
  redis.call('SREM', KEYS[1], previous)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'e',
    '{"kind":"node_left","node":' .. cjson.encode(previous) .. '}')
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[1], node)
local counter = tonumber(redis.call('GET', KEYS[5]) or '0')
if counter < tonumber(ARGV[4]) then
  counter = tonumber(ARGV[4])
  redis.call('SET', KEYS[5], ARGV[4])
end
redis.call('DEL', KEYS[3])
local lost, kept = {}, {}
for i = 6, #ARGV, 2 do
  local claim = prefix .. 'name:' .. ARGV[i]
  local holder = redis.call('GET', claim)
  if holder and holder ~= node and redis.call('EXISTS', prefix .. 'alive:' .. holder) == 1 then
    table.insert(lost, ARGV[i])
  else
    redis.call('SET', claim, node)
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
    table.insert(kept, ARGV[i + 1])
  end
end
local position = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'e',
  '{"kind":"sync","node":' .. cjson.encode(node) .. ',"users":[' .. table.concat(kept, ',') .. ']}')
local others = {}
for _, other in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if other ~= node then
    if redis.call('EXISTS', prefix .. 'alive:' .. other) == 1 then
      table.insert(others, other)
      table.insert(others, redis.call('HVALS', prefix .. 'users:' .. other))
    else
      redis.call('SREM', KEYS[1], other)
      redis.call('DEL', prefix .. 'users:' .. other)
    end
  end
end
return {position, lost, others, counter}
"""

#: A node whose heartbeat expired: forget it (if it really is still gone).
BURY = """
local alive = ARGV[2] .. 'alive:' .. ARGV[1]
if redis.call('EXISTS', alive) == 1 then return 0 end
local users = ARGV[2] .. 'users:' .. ARGV[1]
give_back(ARGV[2], ARGV[1], users)
redis.call('DEL', users)
redis.call('SREM', KEYS[1], ARGV[1])
return 1
"""

#: A node that stops: its names given back, its records gone, the others told.
#: KEYS: nodes, alive:NODE, users:NODE, relay, instance:NAME.  ARGV: node, prefix, relay length.
GOODBYE = """
give_back(ARGV[2], ARGV[1], KEYS[3])
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[5]) == ARGV[1] then redis.call('DEL', KEYS[5]) end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'e',
  '{"kind":"node_left","node":' .. cjson.encode(ARGV[1]) .. '}')
return 1
"""

#: Every script by name: its source, and the SHA1 digest Redis knows it by (EVALSHA).
SCRIPTS = {
    name: (source, hashlib.sha1(source.encode()).hexdigest())
    for name, source in (
        ("relay", RELAY),
        ("presence", PRESENCE),
        ("claim", CLAIM),
        ("release", RELEASE),
        ("heartbeat", HEARTBEAT),
        ("hello", GIVE_BACK + HELLO),
        ("bury", GIVE_BACK + BURY),
        ("goodbye", GIVE_BACK + GOODBYE),
    )
}

_HEARTBEAT = object()  # the heartbeat's place in the writer's queue


def _position(entry_id: str) -> tuple[int, int]:
    """A stream entry id ("1700000000000-3") as a pair that sorts as Redis does."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _encode(event: Frame) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


class Broker:
    """One node's link to the chat's Redis.  Made by the server when it gets ``redis=``.

    ``config``: a Redis URL, or a :class:`chat.cluster.ClusterConfig`.  The
    broker makes the node's :class:`ClusterCore` (``broker.core``) for the
    server.  :meth:`connect` (before the server accepts anyone) introduces the
    node and learns who is online; :meth:`run` starts the tasks once the engine
    runs; :meth:`stop` says goodbye.  :meth:`handle` and :meth:`fetch` are what
    the engine calls, under its lock or in its loop; they never wait.
    """

    def __init__(self, config: str | ClusterConfig, server: ServerBase) -> None:
        self.config = ClusterConfig(config) if isinstance(config, str) else config
        self.server = server
        self.core = ClusterCore(server.limits, node=secrets.token_hex(4))
        self.node = self.core.node
        prefix = self.config.prefix.rstrip(":") + ":"
        self._prefix = prefix
        self._keys = {
            name: prefix + name for name in ("relay", "ids", "nodes", "alive:", "users:", "name:")
        }
        self._ttl_ms = max(1, round(self.config.presence_ttl * 1000))
        self._url = _without_password(self.config.url)  # for log lines
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._redis: aioredis.Redis | None = None
        self._queue: collections.deque[object] = collections.deque()  # from the engine
        self._scheduled = False  # the writer has been woken for what is queued
        self._wake: asyncio.Event | None = None
        self._online: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._position = "0-0"  # the last relay entry read
        self._replay_until = (0, 0)  # entries up to here were read again after an outage
        self._seen = 0  # the highest message id read from the relay
        self._users: dict[str, Frame] = {}  # this node's users' records, by name key (as in Redis)
        self._nodes: dict[str, None] = {}  # the other nodes we know of
        self._releases: list[str] = []  # names to give back once the link is up
        self._linked_at = 0.0
        self._down_since: float | None = None
        self._dropped = 0  # messages that could not be relayed during an outage
        self._stopping = False
        self._errors = LogThrottle(log)

    # -- the engine's side: start, stop, and the actions

    def connect(self, address: tuple[str, int]) -> None:
        """Connect, introduce this node and learn who is online; raise ClusterError if we cannot."""
        host, port = address[0], address[1]
        name = self.config.name or f"{_hostname(host)}:{port}"
        self.name = name
        self.node = self.core.node = f"{name}/{self.node}"
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="chat-redis", daemon=True
        )
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._first_hello(), self._loop)
        try:
            others, lost = future.result(self.config.connect_timeout + 1)
        except (RedisError, OSError, TimeoutError, concurrent.futures.TimeoutError) as exc:
            future.cancel()
            self._shut_loop()
            raise ClusterError(
                f"Cannot reach Redis at {self._url} ({exc or type(exc).__name__}). "
                "Is redis-server running there? (README: Several servers, one chat)"
            ) from None
        # The engine does not run yet: no client, nothing to send; the core learns who is here.
        self.server._perform(self.core.linked(others, lost, resumed=False, last_id=self._seen))
        log.info(
            "Part of the chat on Redis %s as %s (%d other servers)",
            self._url,
            self.node,
            len(others),
        )

    def run(self) -> None:
        """Start the reader, writer and heartbeat (the engine runs now: it can take answers)."""
        self._loop.call_soon_threadsafe(self._start_tasks)

    def stop(self, timeout: float = 2.0) -> None:
        """Relay what is queued, say goodbye (the others drop our users at once), stop."""
        if self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._goodbye(), self._loop)
        try:
            future.result(timeout)
        except Exception as exc:  # Redis gone, or too slow: the heartbeat expiry does it
            log.warning("Could not say goodbye to the other servers: %s", exc or type(exc).__name__)
            future.cancel()
        self._shut_loop()

    def handle(self, action: Claim | Release | Publish) -> None:
        """Queue an action for the writer (called where the engine runs the core)."""
        self._queue.append(action)
        if not self._scheduled:
            self._scheduled = True
            self._call(self._wake_writer)

    def fetch(self, fetch: Fetch) -> None:
        """Read a page of a room's history from Redis; the answer goes to the core."""
        self._call(lambda: self._track(self._loop.create_task(self._fetch(fetch))))

    def _track(self, task: asyncio.Task[None]) -> None:
        """Keep a short task until it is done (stopping cancels what is left)."""
        self._tasks.append(task)
        task.add_done_callback(
            lambda done: self._tasks.remove(done) if done in self._tasks else None
        )

    # -- plumbing between the threads

    def _call(self, work: Callable[[], object]) -> None:
        try:
            self._loop.call_soon_threadsafe(work)
        except RuntimeError:
            pass  # the loop is closed: the server is stopping

    def _apply(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Run ``core.method(...)`` where the engine runs the core, and carry out its actions."""
        self.server._from_thread(self._in_engine, method, args, kwargs)

    def _in_engine(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.server._perform(getattr(self.core, method)(*args, **kwargs))

    def _shut_loop(self) -> None:
        """Stop every task, close every connection, stop the loop and its thread (bounded)."""

        async def close() -> None:
            self._stopping = True
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=0.5)
            if self._redis is not None:  # closes the sockets too: a task still reading ends
                with contextlib.suppress(Exception):
                    await self._redis.aclose()
            pending = [task for task in self._tasks if not task.done()]
            if pending:
                await asyncio.wait(pending, timeout=0.5)

        if self._thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(2.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(2.0)
        if not self._thread.is_alive():
            self._loop.close()
        self._thread = None

    # -- in the loop's thread

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            # No retries inside redis-py: a script retried after a timeout could
            # run twice.  A failure is a lost link, handled in one place (_lost).
            self._redis = aioredis.Redis.from_url(
                self.config.url,
                decode_responses=True,
                socket_connect_timeout=min(2.0, self.config.connect_timeout),
                socket_timeout=max(5.0, 2 * BLOCK_MS / 1000),
                retry=Retry(NoBackoff(), 0),
            )
        return self._redis

    def _script(self, pipe: Any, name: str, keys: list[str], args: list[Any]) -> None:
        """Queue script ``name`` on a pipeline, by its SHA (HELLO loaded every script).

        Not redis-py's ``register_script`` objects: in a pipeline, those ask
        Redis whether it knows them before every batch -- one round trip more
        per message.
        """
        pipe.evalsha(SCRIPTS[name][1], len(keys), *keys, *args)

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script ``name`` now (loading it first if this Redis does not know it)."""
        redis = self._client()
        source, sha = SCRIPTS[name]
        try:
            return await redis.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted since: scripts are not kept
            await redis.script_load(source)
            return await redis.evalsha(sha, len(keys), *keys, *args)

    async def _first_hello(self) -> tuple[dict[str, list[Frame]], list[str]]:
        self._wake = asyncio.Event()
        self._online = asyncio.Event()
        self._client()
        answer = await asyncio.wait_for(self._hello(first=True), self.config.connect_timeout)
        self._online.set()
        return answer

    def _start_tasks(self) -> None:
        for work in (self._read_loop, self._write_loop, self._heartbeat_loop):
            self._tasks.append(self._loop.create_task(work()))

    def _wake_writer(self) -> None:
        assert self._wake is not None
        self._wake.set()

    async def _hello(self, *, first: bool = False) -> tuple[dict[str, list[Frame]], list[str]]:
        """Introduce this node (again): see HELLO.  Returns the others' users, names lost."""
        keys = self._keys
        users = [item for key, user in self._users.items() for item in (key, _encode(user))]
        resumed = self._down_since is not None
        floor = self._seen + ID_GAP if resumed else 0
        load = self._client().pipeline(transaction=False)
        for source, _ in SCRIPTS.values():  # a Redis that restarted knows none of them
            load.script_load(source)
        await load.execute()
        position, lost_keys, flat, counter = await self._run(
            "hello",
            [
                keys["nodes"],
                keys["alive:"] + self.node,
                keys["users:"] + self.node,
                keys["relay"],
                keys["ids"],
                f"{self._prefix}instance:{self.name}",
            ],
            [self.node, self._ttl_ms, self._prefix, floor, self.config.relay_length, *users],
        )
        others = {flat[i]: [json.loads(u) for u in flat[i + 1]] for i in range(0, len(flat), 2)}
        lost = [self._users.pop(key)["username"] for key in lost_keys if key in self._users]
        if first:
            self._position = position  # a new node reads what comes after its news,
            self._seen = int(counter)  # and every message before it is history
        self._replay_until = _position(position)
        self._nodes = dict.fromkeys([*self._nodes, *others])
        self._linked_at = time.monotonic()
        if self._releases:
            names, self._releases = self._releases, []
            for name in names:
                await self._run("release", [self._keys["name:"] + name], [self.node])
        return others, lost

    # -- the writer

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._scheduled = False
            while self._queue:
                await self._write(self._next_batch())

    def _next_batch(self) -> list[object]:
        """The oldest queued actions, at most :data:`BATCH` of them."""
        return [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]

    async def _write(self, batch: list[object]) -> None:
        """Send a batch of actions in one pipeline, in order; answer the claims."""
        assert self._online is not None
        online = self._online.is_set()
        redis = self._client()
        pipe = redis.pipeline(transaction=False)
        claims: list[tuple[Claim, int]] = []
        heartbeat: int | None = None
        count = 0
        for action in batch:
            if isinstance(action, Publish):
                count += self._publish(pipe, action, online)
            elif isinstance(action, Claim):
                if online:
                    key = self._keys["name:"] + action.username.casefold()
                    self._script(pipe, "claim", [key], [self.node, self._keys["alive:"]])
                    claims.append((action, count))
                    count += 1
                else:
                    self._apply("claimed", [(action, None)])
            elif isinstance(action, Release):
                if online:
                    key = self._keys["name:"] + action.username.casefold()
                    self._script(pipe, "release", [key], [self.node])
                    count += 1
                else:
                    self._releases.append(action.username.casefold())
            elif action is _HEARTBEAT and online:
                self._script(
                    pipe,
                    "heartbeat",
                    [self._keys["nodes"], self._keys["alive:"] + self.node],
                    [self.node, self._ttl_ms],
                )
                heartbeat = count
                count += 1
        if not count:
            return
        try:
            results = await pipe.execute(raise_on_error=False)
        except LINK_ERRORS as exc:
            self._releases += [claim.username.casefold() for claim, _ in claims]
            if claims:
                self._apply("claimed", [(claim, None) for claim, _ in claims])
            await self._lost(exc)
            return
        for result in results:
            if isinstance(result, ResponseError):
                self._errors.log(
                    "script", logging.ERROR, "Redis errors", "Redis refused: %s", result
                )
            elif isinstance(result, LINK_ERRORS):
                await self._lost(result)
        if claims:
            self._apply("claimed", [(claim, results[i] == 1) for claim, i in claims])
        if heartbeat is not None and results[heartbeat] == 1 and not self._stopping:
            # Our heartbeat had expired: the others may have dropped our users.
            log.warning("This server's heartbeat had expired: introducing it again")
            others, lost = await self._hello()
            self._apply("linked", others, lost, resumed=False)
            # (the link stayed up: the reader goes on where it was)

    def _publish(self, pipe: Any, action: Publish, online: bool) -> int:
        """Add one event to the pipeline (and keep our list of our users); return 1 if added."""
        event = action.event
        kind = event["kind"]
        if kind in ("chat", "private"):
            if not online:
                self._dropped += 1  # the core relayed it here alone, or it was in flight
                return 0
            keys = [self._keys["ids"], self._keys["relay"]]
            if kind == "chat":
                keys.append(f"{self._prefix}history:{room_key(event['room'])}")
            self._script(
                pipe,
                "relay",
                keys,
                [
                    _encode(event),
                    self.config.relay_length,
                    self.server.limits.history_retention,
                ],
            )
            return 1
        # Presence: the user's record as the core has it now, or the name it no longer uses.
        set_key = set_value = drop_key = ""
        if action.user is not None:
            set_key = action.user["username"].casefold()
            set_value = _encode(action.user)
            self._users[set_key] = action.user
        gone = event["username"] if kind == "quit" else event.get("old")
        if gone is not None and gone.casefold() != set_key:  # not a new case of the same name
            drop_key = gone.casefold()
            self._users.pop(drop_key, None)
        if not online:
            return 0  # HELLO writes the whole list when the link is back
        self._script(
            pipe,
            "presence",
            [self._keys["relay"], self._keys["users:"] + self.node],
            [
                _encode(event),
                self.config.relay_length,
                self.node,
                set_key,
                set_value,
                drop_key,
                self._keys["name:"] + drop_key if drop_key else "",
            ],
        )
        return 1

    # -- the reader

    async def _read_loop(self) -> None:
        assert self._online is not None
        relay = self._keys["relay"]
        while not self._stopping:
            await self._online.wait()
            try:
                answer = await self._client().xread(
                    {relay: self._position}, count=BATCH, block=BLOCK_MS
                )
            except LINK_ERRORS as exc:
                await self._lost(exc)
                continue
            for _, entries in answer:
                self._deliver(entries)

    def _deliver(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Hand relay entries to the core: what we missed (messages only), then the rest."""
        missed: list[Frame] = []
        news: list[Frame] = []
        for entry_id, fields in entries:
            event = json.loads(fields["e"])
            if "i" in fields:
                event["id"] = message_id = int(fields["i"])
                self._seen = max(self._seen, message_id)
            node = event.get("node")
            if node != self.node:
                if event["kind"] == "node_left":
                    self._nodes.pop(node, None)
                else:
                    self._nodes[node] = None
            (missed if _position(entry_id) <= self._replay_until else news).append(event)
        self._position = entries[-1][0]
        if missed:
            self._apply("relayed", missed, presence=False)
        if news:
            self._apply("relayed", news)

    # -- heartbeats, and the other nodes' health

    async def _heartbeat_loop(self) -> None:
        assert self._online is not None
        while True:
            await asyncio.sleep(self.config.heartbeat)
            if not self._online.is_set():
                continue
            self._queue.append(_HEARTBEAT)  # in order with the other writes
            self._wake_writer()
            self._errors.tick()
            try:
                await self._check_nodes()
            except LINK_ERRORS as exc:
                await self._lost(exc)

    async def _check_nodes(self) -> None:
        """A node whose heartbeat key has expired is dead: its users leave, on this node."""
        nodes = list(self._nodes)
        if not nodes or time.monotonic() - self._linked_at < self.config.presence_ttl:
            # Just (re)connected: after a Redis restart, the others need a
            # moment to come back and renew their keys.
            return
        alive = await self._client().mget([self._keys["alive:"] + node for node in nodes])
        for node, beat in zip(nodes, alive, strict=True):
            if beat is None and node in self._nodes:
                del self._nodes[node]
                self._apply("node_gone", node)
                await self._run("bury", [self._keys["nodes"]], [node, self._prefix])

    # -- losing the link, and getting it back

    async def _lost(self, exc: BaseException) -> None:
        """The first failure: degraded (one log line), and start reconnecting."""
        assert self._online is not None
        if not self._online.is_set() or self._stopping:
            return
        self._online.clear()
        self._down_since = time.monotonic()
        self._dropped = 0
        log.error(
            "Lost the link to Redis at %s (%s): this server now serves only its own clients "
            "(messages between them stay here, other servers cannot be reached, new names "
            "are refused); reconnecting with backoff",
            self._url,
            exc or type(exc).__name__,
        )
        self._apply("unlinked")
        if self._redis is not None:  # every pooled connection is suspect now: new ones later
            with contextlib.suppress(Exception):
                await self._redis.connection_pool.disconnect()
        self._tasks.append(self._loop.create_task(self._relink()))

    async def _relink(self) -> None:
        delay = 0.05
        while not self._stopping:
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # jitter: not all nodes at once
            delay = min(delay * 2, self.config.backoff_max)
            try:
                others, lost = await self._hello()
            except (*LINK_ERRORS, ResponseError) as exc:
                log.debug("Redis still unreachable: %s", exc)
                continue
            assert self._down_since is not None
            log.warning(
                "Back in touch with Redis at %s after %.1f s: presence resynchronised "
                "(%d other servers); %d messages could not be relayed meanwhile",
                self._url,
                time.monotonic() - self._down_since,
                len(others),
                self._dropped,
            )
            self._down_since = None
            self._apply("linked", others, lost, resumed=True)
            assert self._online is not None
            self._online.set()  # the reader goes on where it stopped: it replays what it missed
            return

    # -- history

    async def _fetch(self, fetch: Fetch) -> None:
        assert self._online is not None
        frames: list[Frame] = []
        more = False
        if self._online.is_set():
            key = f"{self._prefix}history:{room_key(fetch.room)}"
            try:
                if fetch.after is not None:
                    entries = await self._client().xrange(
                        key, min=f"({fetch.after}-0", max="+", count=fetch.limit + 1
                    )
                else:
                    top = f"({fetch.before}-0" if fetch.before is not None else "+"
                    entries = await self._client().xrevrange(
                        key, max=top, min="-", count=fetch.limit + 1
                    )
                    entries.reverse()
            except LINK_ERRORS as exc:
                entries = []
                await self._lost(exc)
            more = len(entries) > fetch.limit
            entries = entries[: fetch.limit] if fetch.after is not None else entries[-fetch.limit :]
            for entry_id, fields in entries:
                event = json.loads(fields["e"])
                frames.append(relayed_chat(event, _position(entry_id)[0], event["room"]))
        # Redis may already hold messages the reader has not read yet: they come
        # live, so they are not history (PROTOCOL.md 9: never both).
        frames = [frame for frame in frames if frame["id"] <= self._seen]
        self.server._from_thread(self.server._history_arrived, fetch, frames, more)

    # -- stopping

    async def _goodbye(self) -> None:
        self._stopping = True
        assert self._online is not None
        # What the core queued last (its clients' goodbyes) goes out first.
        while self._queue and self._online.is_set():
            await self._write(self._next_batch())
        if not self._online.is_set():
            return
        keys = self._keys
        await self._run(
            "goodbye",
            [
                keys["nodes"],
                keys["alive:"] + self.node,
                keys["users:"] + self.node,
                keys["relay"],
                f"{self._prefix}instance:{self.name}",
            ],
            [self.node, self._prefix, self.config.relay_length],
        )


def _without_password(url: str) -> str:
    """The URL as logs show it: ``redis://:secret@host/0`` becomes ``redis://:***@host/0``."""
    parts = urllib.parse.urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _hostname(host: str) -> str:
    """How this server is named among the nodes: its host name, unless it listens on loopback."""
    return host if host in ("127.0.0.1", "::1", "localhost") else socket.gethostname()
