"""Exercise 25 (notebook 12_scale_out): claim a name across servers, atomically, with expiry.

With several chat servers, "is this name taken?" has one answer only in the
place every server sees: Redis.  Checking first and writing after (``GET``,
then ``SET``) leaves a gap: two servers can both see the name free and both
take it.  Redis has one command that checks and writes in one step, with
nothing between them: ``SET key value NX`` sets the key only if it does not
exist, and says whether it did.

A claim must not outlive its server, either: a server that is killed never
gives its names back.  So the claim *expires* (``PX`` milliseconds) unless
its server renews it -- the heartbeat of notebook 12.

Write :func:`claim`.  One Redis command does it all: the key is
:func:`name_key` (names are compared without regard to case: ``Alice`` is
taken if ``alice`` is), the value is the server's ``node`` name, and it
expires after ``ttl`` seconds.  Return whether this call took the name.
``redis`` is a redis-py client (``redis.Redis``); its ``set`` takes ``nx=``
and ``px=`` and returns ``True``, or ``None`` when ``NX`` kept it from setting.

:func:`release` and :func:`holder` are given.

Check your work:  python -m exercises 25
Stuck?            python -m exercises --hint 25
"""

from __future__ import annotations

from typing import Any

#: Every claim's key starts with this; the rest is the name, case-folded.
PREFIX = "ex25:name:"

#: Delete a claim only if it is still ours: a Lua script runs in Redis in one
#: step, so the claim cannot change hands between the check and the delete.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def name_key(name: str) -> str:
    """The key of a name's claim: ``Alice`` and ``alice`` are one name."""
    return PREFIX + name.casefold()


def claim(redis: Any, name: str, node: str, ttl: float) -> bool:
    """Take ``name`` for ``node`` for ``ttl`` seconds, unless someone holds it; True if taken."""
    # TODO: one redis.set(...) on name_key(name), value node, with nx=True (only if
    #       nobody holds it) and px= the ttl in whole milliseconds; return True if it set.
    raise NotImplementedError("TODO: write claim()")


def release(redis: Any, name: str, node: str) -> bool:
    """Give ``name`` back, if ``node`` still holds it; True if it did."""
    return bool(redis.eval(RELEASE, 1, name_key(name), node))


def holder(redis: Any, name: str) -> str | None:
    """Which node holds ``name`` now (``None``: nobody, or the claim expired)."""
    value = redis.get(name_key(name))
    return value.decode() if isinstance(value, bytes) else value
