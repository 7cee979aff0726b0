"""Exercise 17: TokenBucket allows bursts and a steady rate, with time passed in (no sleeping)."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex17_token_bucket")


def allowed(bucket, times) -> list[bool]:
    return [bucket.allow(now) for now in times]


def test_full_bucket_allows_a_burst_then_refuses(ex):
    bucket = ex.TokenBucket(rate=1, burst=3, now=0.0)
    assert allowed(bucket, [0.0] * 4) == [True, True, True, False]


def test_tokens_come_back_at_the_rate(ex):
    bucket = ex.TokenBucket(rate=2, burst=1, now=0.0)
    assert bucket.allow(0.0) is True
    assert bucket.allow(0.5) is True  # 2 a second: one token every half second
    assert bucket.allow(0.5) is False


def test_fractions_of_a_token_add_up(ex):
    bucket = ex.TokenBucket(rate=4, burst=1, now=0.0)
    bucket.allow(0.0)
    assert allowed(bucket, [0.1, 0.2, 0.25]) == [False, False, True]


def test_bucket_never_holds_more_than_burst(ex):
    bucket = ex.TokenBucket(rate=10, burst=2, now=0.0)
    assert allowed(bucket, [3600.0] * 3) == [True, True, False]


def test_refused_requests_cost_nothing(ex):
    bucket = ex.TokenBucket(rate=1, burst=1, now=0.0)
    bucket.allow(0.0)
    assert allowed(bucket, [0.3, 0.6, 0.9]) == [False, False, False]
    assert bucket.allow(1.0) is True  # the refusals did not push the refill back


def test_steady_rate_is_allowed_forever(ex):
    bucket = ex.TokenBucket(rate=5, burst=2, now=0.0)
    assert all(allowed(bucket, [n / 5 for n in range(1000)]))


def test_flood_is_cut_down_to_burst_plus_rate(ex):
    bucket = ex.TokenBucket(rate=5, burst=20, now=0.0)
    times = [n / 100 for n in range(1000)]  # 100 a second for 10 seconds
    assert sum(allowed(bucket, times)) in (69, 70, 71)  # 20 at once + 5 a second


def test_clock_going_backwards_adds_no_tokens(ex):
    bucket = ex.TokenBucket(rate=1, burst=1, now=10.0)
    bucket.allow(10.0)
    assert allowed(bucket, [5.0, 10.5]) == [False, False]
    assert bucket.allow(11.0) is True
