"""Retry policy (backoff, jitter, Retry-After) and the AIMD concurrency limiter, with an
injected clock and random source: no sleeping, no patching."""

from __future__ import annotations

import threading
import time

import pytest

from clevertap_mapper.errors import ConfigError
from clevertap_mapper.upload.retry import AdaptiveLimiter, RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    ceilings = [policy.delay(n, None, lambda: 1.0) for n in range(1, 10)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    assert policy.delay(4, None, lambda: 0.0) == 0.0
    assert policy.delay(4, None, lambda: 0.25) == 2.0


def test_retry_after_is_a_floor_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, max_retry_after=60.0)
    assert policy.delay(1, 5.0, lambda: 0.5) == 5.0
    assert policy.delay(8, 5.0, lambda: 1.0) == 30.0  # backoff larger than Retry-After wins
    assert policy.delay(1, 3600.0, lambda: 0.0) == 60.0


def test_retry_bound() -> None:
    policy = RetryPolicy(max_retries=2)
    assert [policy.exhausted(n) for n in range(4)] == [False, False, True, True]
    with pytest.raises(ConfigError):
        RetryPolicy(max_retries=-1)


def test_limiter_halves_on_429_once_per_cooldown() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(8, cooldown=1.0, recover_every=5.0, clock=clock)
    for _ in range(4):  # a wave of 429s from requests sent together
        assert limiter.acquire()
    for _ in range(4):
        limiter.release(throttled=True)
    assert limiter.limit == 4
    clock.now += 1.0
    limiter.acquire()
    limiter.release(throttled=True)
    assert limiter.limit == 2
    clock.now += 1.0
    for _ in range(3):
        limiter.acquire()
        limiter.release(throttled=True)
        clock.now += 1.0
    assert limiter.limit == 1 and limiter.lowest == 1 and limiter.decreases == 3


def test_limiter_recovers_one_step_per_period_of_success() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(4, cooldown=1.0, recover_every=5.0, clock=clock)
    limiter.acquire()
    limiter.release(throttled=True)
    assert limiter.limit == 2
    clock.now += 4.0
    limiter.acquire()
    limiter.release(ok=True)
    assert limiter.limit == 2  # too soon after the 429
    clock.now += 1.0
    limiter.acquire()
    limiter.release(ok=True)
    assert limiter.limit == 3
    limiter.acquire()
    limiter.release(ok=True)
    assert limiter.limit == 3  # one step per period
    clock.now += 5.0
    for _ in range(3):
        limiter.acquire()
        limiter.release(ok=True)
        clock.now += 5.0
    assert limiter.limit == 4  # never above the maximum


def test_limiter_blocks_at_the_limit_and_stops_on_request() -> None:
    limiter = AdaptiveLimiter(2)
    assert limiter.acquire() and limiter.acquire()
    stop = threading.Event()
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(limiter.acquire(stop, poll=0.01)))
    waiter.start()
    time.sleep(0.05)
    assert got == []  # still waiting for a slot
    limiter.release(ok=True)
    waiter.join(1)
    assert got == [True] and limiter.in_flight == 2
    stop.set()
    assert limiter.acquire(stop, poll=0.01) is False


def test_limiter_bounds() -> None:
    with pytest.raises(ConfigError):
        AdaptiveLimiter(0)
