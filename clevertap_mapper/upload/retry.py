"""The retry policy and the adaptive concurrency limit of an upload.

CleverTap publishes no retry policy (spec/clevertap-api.md s1.8); it answers 429 "Too many
concurrent requests" beyond 15 requests in flight per account (s1.7) and 503 "Try again later"
(s1.6). So:

- ``RetryPolicy``: exponential backoff with full jitter (a retry waits a uniform random time
  in ``[0, min(max_delay, base_delay * 2**(n-1))]``), at least the ``Retry-After`` the server
  asked for (capped), and at most ``max_retries`` retries of one request before giving up.
  Defaults: 8 retries (9 attempts), 0.5 s base, 30 s cap: about 90 s of waiting at worst
  before a body is given up, which rides out a blip without hiding an outage from cron.
- ``AdaptiveLimiter``: an AIMD limit on requests in flight. It starts at ``--concurrency``;
  a 429 halves it (once per ``cooldown``: the other 429s of the same wave say nothing new);
  after ``recover_every`` seconds without a 429, each successful answer adds one back, up to
  the maximum. Other accounts' traffic shares CleverTap's 15-request limit, so backing off
  the concurrency, not only the timing, is what stops a 429 storm.

Clock, sleep and random are parameters (STYLE.md rule 3) so tests are deterministic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from clevertap_mapper.errors import ConfigError

MAX_CONCURRENCY: Final = 15  # CleverTap: 15 concurrent upload requests per account (s1.7)
DEFAULT_CONCURRENCY: Final = 4
DEFAULT_MAX_RETRIES: Final = 8

Clock = Callable[[], float]
Random = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before resending a request (see module docstring)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay: float = 0.5
    max_delay: float = 30.0
    #: A Retry-After above this is treated as this (a misconfigured proxy must not park us).
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError("max_retries must be 0 or more")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError("retry delays must be 0 or more")

    def delay(self, retry: int, retry_after: float | None, random: Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry).

        >>> RetryPolicy(base_delay=1, max_delay=8).delay(3, None, lambda: 0.5)
        2.0
        >>> RetryPolicy(base_delay=1, max_delay=8).delay(9, 2.0, lambda: 0.0)
        2.0
        """
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, retry - 1))
        wait = random() * ceiling
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait

    def exhausted(self, retries: int) -> bool:
        """True when ``retries`` retries have been made and no more are allowed."""
        return retries >= self.max_retries


class AdaptiveLimiter:
    """At most ``limit`` requests in flight; the limit adapts to 429s (AIMD, module docstring).

    Used by every worker around each request: ``acquire()`` before, ``release(...)`` after.
    """

    def __init__(self, maximum: int, *, minimum: int = 1, cooldown: float = 1.0,
                 recover_every: float = 5.0, clock: Clock = time.monotonic) -> None:
        if not 1 <= minimum <= maximum:
            raise ConfigError(f"concurrency must be between {minimum} and {maximum}")
        self.maximum = maximum
        self.minimum = minimum
        self.cooldown = cooldown
        self.recover_every = recover_every
        self._clock = clock
        self._cond = threading.Condition()
        self._limit = maximum
        self._in_flight = 0
        self._last_change = -float("inf")
        self.lowest = maximum  # the lowest limit reached, for the summary
        self.decreases = 0

    @property
    def limit(self) -> int:
        with self._cond:
            return self._limit

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def acquire(self, stop: threading.Event | None = None, poll: float = 0.1) -> bool:
        """Wait for a free slot; False (no slot taken) if ``stop`` is set meanwhile."""
        with self._cond:
            while self._in_flight >= self._limit:
                if stop is not None and stop.is_set():
                    return False
                self._cond.wait(poll)
            if stop is not None and stop.is_set():
                return False
            self._in_flight += 1
            return True

    def release(self, *, throttled: bool = False, ok: bool = False) -> None:
        """Give the slot back. ``throttled``: the answer was a 429; ``ok``: a 200 answer."""
        with self._cond:
            self._in_flight -= 1
            now = self._clock()
            if throttled:
                if now - self._last_change >= self.cooldown and self._limit > self.minimum:
                    self._limit = max(self.minimum, self._limit // 2)
                    self.lowest = min(self.lowest, self._limit)
                    self.decreases += 1
                    self._last_change = now
                elif self._limit == self.minimum:
                    self._last_change = now  # keep the floor while 429s continue
            elif ok and self._limit < self.maximum and now - self._last_change >= \
                    self.recover_every:
                self._limit += 1
                self._last_change = now
            self._cond.notify_all()
