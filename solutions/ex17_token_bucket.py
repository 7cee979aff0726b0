"""Exercise 17 (notebook 07_robustness): a token-bucket rate limiter.

One client pasting a novel line by line, or a script sending thousands of
frames a second, must not flood everybody else.  A token bucket allows what a
person does -- short bursts, a few messages a second on average -- and refuses
the rest:

* The bucket holds at most ``burst`` tokens and starts full.
* It refills continuously at ``rate`` tokens per second (fractions count),
  but never past ``burst``.
* Each message costs one token.  With a whole token in the bucket the message
  is allowed and the token taken; with less, it is refused and costs nothing.

So a client may send ``burst`` messages at once, then ``rate`` a second for as
long as it likes.  The chat server keeps one bucket per client
(:mod:`chat.limits`: 5 a second, bursts of 20).

Write :meth:`TokenBucket.allow`; ``__init__`` is given.  The time is passed
in: ``allow(now)`` takes the current time in seconds, from ``time.monotonic()``
in a server and from a fake clock in the tests, which makes the tests exact
and instant.  If ``now`` goes backwards, add no tokens.

Check your work:  python -m exercises 17
Stuck?            python -m exercises --hint 17
"""

from __future__ import annotations


class TokenBucket:
    """Allows ``rate`` events a second on average and ``burst`` at once."""

    def __init__(self, rate: float, burst: int, now: float = 0.0) -> None:
        """A full bucket at time ``now``."""
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate and burst must be positive, not {rate!r} and {burst!r}")
        self.rate = rate
        self.burst = burst
        # Tokens are a float: at 5 a second, 0.1 s later the bucket has gained
        # half a token, not nothing.
        self.tokens = float(burst)
        self.updated = now  # when tokens were last added

    def allow(self, now: float) -> bool:
        """Take a token at time ``now`` and return True, or return False if there is none."""
        ### BEGIN SOLUTION
        ### TODO: add rate * (the seconds since self.updated) tokens, at most burst, and
        ###       move self.updated on (never back); then take one token if there is a
        ###       whole one and return True, else return False.
        # Refill lazily, only when asked: no timer, no thread, and exact.
        # max(0, ...) ignores a clock that went backwards.
        elapsed = max(0.0, now - self.updated)
        self.updated = max(self.updated, now)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        if self.tokens < 1.0:
            return False  # refused requests cost nothing
        self.tokens -= 1.0
        return True
        ### END SOLUTION
