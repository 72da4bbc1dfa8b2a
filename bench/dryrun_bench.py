#!/usr/bin/env python3
"""Benchmark: the dry run's whole-input summary (``Overview``) over many events.

The summary traces every event of the input, so it must stay fast on a real dump (issue 4:
1,000,000 events well under a minute). This writes a file of realistic RudderStack events
(full envelopes: context, integrations, the four time fields; about 1 KB each), then times
reading alone, and reading + the summary in the default mode and in ``--compat rudderstack``.

    .venv/bin/python bench/dryrun_bench.py                 # 1,000,000 events
    .venv/bin/python bench/dryrun_bench.py --events 100000 --keep /tmp/events.ndjson

Given ``--input FILE``, it times that file instead of generating one.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from clevertap_mapper import MapperConfig
from clevertap_mapper.checks import Checker
from clevertap_mapper.explain import Overview
from clevertap_mapper.io.readers import read_items

_EVENTS = ("Product Viewed", "Product Added", "Video Played", "Order Completed", "Signed Up",
           "Search Performed", "Checkout Started")
_BASE_MS = 1_705_276_800_000


def _iso(ms: int) -> str:
    secs, milli = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{milli:03d}Z"


def events(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``n`` deterministic events: 60% track, 15% identify, 15% page, 10% screen; 30% anonymous."""
    rng = random.Random(seed)
    for i in range(n):
        kind = rng.choices(("track", "identify", "page", "screen"), (60, 15, 15, 10))[0]
        anon = f"anon-{rng.randrange(10**9):09d}"
        user = None if rng.random() < 0.3 else f"user-{rng.randrange(10**6)}"
        at = _BASE_MS + i * 1000 + rng.randrange(1000)
        event: dict[str, Any] = {
            "messageId": f"msg-{i:012d}", "type": kind, "channel": "web", "anonymousId": anon,
            "context": {
                "library": {"name": "RudderLabs JavaScript SDK", "version": "3.7.2"},
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
                             "Gecko) Chrome/120.0.0.0 Safari/537.36",
                "locale": "en-GB", "timezone": "Europe/London", "ip": "203.0.113.7",
                "os": {"name": "", "version": ""},
                "screen": {"density": 2, "width": 1920, "height": 1080},
                "page": {"path": "/products/42", "referrer": "https://example.org/",
                         "title": "Mini Notebook | Acme", "url": "https://shop.example/p/42"},
                "campaign": {"name": "spring", "source": "newsletter", "medium": "email"},
            },
            "originalTimestamp": _iso(at), "sentAt": _iso(at + 1200),
            "receivedAt": _iso(at + 1500), "timestamp": _iso(at + 300),
            "rudderId": f"rid-{i:012d}", "request_ip": "203.0.113.7",
            "integrations": {"All": True},
        }
        if user is not None:
            event["userId"] = user
        if kind == "track":
            name = rng.choice(_EVENTS)
            event["event"] = name
            props: dict[str, Any] = {"product_id": f"p{rng.randrange(500)}", "price": 19.99,
                                     "currency": "GBP", "category": "Books",
                                     "variant": {"size": "M", "colour": "red"}}
            if name == "Order Completed":
                props |= {"checkout_id": f"c{i}", "revenue": 42.5,
                          "products": [{"product_id": "p1", "price": 21.25, "quantity": 2}]}
            event["properties"] = props
        elif kind == "identify":
            event["traits"] = {"email": f"u{i}@example.com", "firstName": "Ada",
                               "lastName": "Lovelace",
                               "gender": rng.choice(("female", "male", "F", "other")),
                               "birthday": "1990-01-02", "plan": "pro",
                               "address": {"city": "London", "country": "GB"}}
        else:
            event["name"] = rng.choice(("Home", "Cart", "Tips & Tricks"))
            event["properties"] = {"path": "/", "title": "Acme", "url": "https://shop.example/"}
        yield event


def write(path: str, n: int, seed: int = 0) -> None:
    with open(path, "wb") as f:
        for event in events(n, seed):
            f.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))


def _time(label: str, fn: Any) -> float:
    start = time.perf_counter()
    result = fn()
    took = time.perf_counter() - start
    print(f"{label:<44} {took:7.1f} s  {result}", flush=True)
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--input", help="time this file instead of generating one")
    parser.add_argument("--keep", help="write the generated file here and keep it")
    args = parser.parse_args(argv)

    path = args.input or args.keep or os.path.join(tempfile.mkdtemp(), "events.ndjson")
    if not args.input:
        _time(f"generate {args.events:,} events", lambda: write(path, args.events))
    size = os.path.getsize(path)
    print(f"input: {path} ({size / 1e6:,.0f} MB)")

    def read_only() -> str:
        return f"{sum(1 for _ in read_items([path])):,} items"

    def summary(config: MapperConfig) -> str:
        overview = Overview(config, Checker("strict"))
        for item in read_items([path], js_numbers=config.compat is not None):
            overview.add(item)
        return (f"{overview.events:,} events, {overview.rejected_total:,} rejected, "
                f"{overview.differs:,} differ from compat")

    try:
        _time("read only", read_only)
        _time("read + summary (default mode)", lambda: summary(MapperConfig(track_anonymous=True)))
        _time("read + summary (--compat rudderstack)",
              lambda: summary(MapperConfig(track_anonymous=True, compat="rudderstack")))
    finally:
        if not args.input and not args.keep:
            os.remove(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
