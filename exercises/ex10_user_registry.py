"""Exercise 10 (notebook 04_threads): a username registry that threads can share.

With a thread per client, two clients may ask for the name "alice" at the same
moment, each on its own thread.  Code like this::

    if name not in taken:   # both threads see: not taken ...
        taken.add(name)     # ... so both add it, and both are "alice"

breaks when the second thread runs its check after the first thread's check
but before its ``add``.  Such a race is rare -- which makes it worse: it
passes every test on your laptop and strikes in production.  The cure is a
lock: a thread holds it from the check until the ``add`` is done, and any other
thread that wants the lock waits.  Check and insert become one *atomic* step.

Write :meth:`UserRegistry.claim`.  The rest is given: the names live in
``self._names`` and *every* use of them -- reads as well -- holds
``self._lock``, as :meth:`release` and :meth:`names` show.  (A ``dict`` keeps
insertion order, so ``names()`` lists users in the order they joined; the
values are unused.)

Keep the lock only for the few lines that touch ``self._names``: never call
anything slow (logging, sockets) while holding it, or every other thread waits.

Check your work:  python -m exercises 10
Stuck?            python -m exercises --hint 10
"""

from __future__ import annotations

import threading


class UserRegistry:
    """The usernames in use.  Safe to call from many threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, None] = {}  # a dict as an ordered set

    def claim(self, name: str) -> bool:
        """Take ``name`` if it is free and return True; return False if it is taken."""
        # TODO: in ONE "with self._lock:" block: if the name is in self._names, return
        #       False; else add it and return True.
        raise NotImplementedError("TODO: write UserRegistry.claim()")

    def release(self, name: str) -> None:
        """Free ``name``.  Freeing a name that is not taken does nothing."""
        with self._lock:
            # pop with a default: no KeyError when a client that never got a
            # name disconnects, or when release runs twice.
            self._names.pop(name, None)

    def names(self) -> list[str]:
        """The names taken, in the order they were claimed (a copy, safe to keep)."""
        # Copy under the lock: iterating the dict itself while another thread
        # adds a name raises "dictionary changed size during iteration".
        with self._lock:
            return list(self._names)
