"""Log a condition once in a while, not once per event, so no client can fill the disk.

A server logs what goes wrong: a bad frame, a refused connection, an
``accept()`` that failed.  But one misbehaving client can make the same thing
go wrong thousands of times a second -- 256 KiB of ``{}`` lines is 87,000 bad
frames -- and a server out of file descriptors sees ``accept()`` fail as fast
as its loop can call it.  One log line per event would let anyone write to the
server's log, and fill its disk, at network speed.

So messages about one *key* (a connection, or a condition such as "accept
failed") are throttled, as syslog daemons and the Linux kernel's
``printk_ratelimit`` do: the first :data:`chat.limits.LOG_BURST` lines in each
:data:`chat.limits.LOG_INTERVAL` are logged as usual; the rest are only
counted, and summarised in one line when the interval is over or the key is
done with::

    WARNING - Frame has no "type" string from alice
    WARNING - Frame has no "type" string from alice        (five in all)
    WARNING - ... 21842 more warnings from alice in the last 10 s

Nothing is lost from the story -- the summary says how much was held back --
and the log grows by a few lines per misbehaving client and interval, however
fast it misbehaves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from chat.limits import LOG_BURST, LOG_INTERVAL

__all__ = ["LogThrottle"]


@dataclass
class _Window:
    start: float
    logged: int = 0
    held_back: int = 0
    level: int = logging.DEBUG  # the most serious level held back
    what: str = ""  # how the summary names what was held back


class LogThrottle:
    """At most ``burst`` lines per key per ``interval``; the rest counted and summarised.

    ``log(key, level, what, message, *args)`` logs like ``logger.log`` unless
    this key already had ``burst`` lines in the current interval; ``what``
    names the kind of line in the summary ("warnings from alice").  Call
    :meth:`done` when a key will not come back (the connection closed), and
    :meth:`tick` now and then, so that summaries are written even when the
    trouble stops.  Safe to use from several threads.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = LOG_BURST,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._windows: dict[Hashable, _Window] = {}
        self._lock = threading.Lock()

    def log(
        self,
        key: Hashable,
        level: int,
        what: str,
        message: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> bool:
        """Log ``message % args``, or count it if this key is over its budget.

        ``exc_info``: an exception whose traceback to log with the line (a bug,
        not an expected condition).  Returns whether the line was written.
        """
        if not self.logger.isEnabledFor(level):
            return False
        with self._lock:
            now = self._clock()
            window = self._windows.get(key)
            if window is None or now - window.start >= self.interval:
                if window is not None:
                    self._summarise(window, now)
                window = self._windows[key] = _Window(start=now)
            if window.logged >= self.burst:
                window.held_back += 1
                window.level = max(window.level, level)
                window.what = what
                return False
            window.logged += 1
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True

    def done(self, key: Hashable) -> None:
        """This key will not come back: summarise what it held back, and forget it."""
        with self._lock:
            window = self._windows.pop(key, None)
            if window is not None:
                self._summarise(window, self._clock())

    def tick(self) -> None:
        """Summarise and forget every key whose interval is over."""
        with self._lock:
            now = self._clock()
            for key, window in list(self._windows.items()):
                if now - window.start >= self.interval:
                    self._summarise(window, now)
                    del self._windows[key]

    def _summarise(self, window: _Window, now: float) -> None:
        if window.held_back:
            seconds = min(now - window.start, self.interval)
            self.logger.log(
                window.level,
                "... %d more %s in the last %.0f s",
                window.held_back,
                window.what,
                max(1.0, seconds),
            )
