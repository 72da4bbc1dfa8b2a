"""Small inline factories of RudderStack events and ctmap records for the upload tests.

Every event carries a unique number ``n`` that survives mapping (``evtData.n`` for events,
``profileData.n`` for profiles, ``tokenData.id`` = ``tok-<n>`` for device tokens), so a test
can count what the CleverTap stand-in accepted: lost, doubled or extra.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

ACCOUNT = "TEST-ACC-1"
PASSCODE = "pc-S3cr3t-9f8e7d"  # searched for in every output of the upload tests


def track(n: int, name: str = "Product Viewed", **props: Any) -> dict[str, Any]:
    """A track event of user ``u<n % 97>`` that maps to one event record."""
    return {"type": "track", "userId": f"u{n % 97}", "event": name,
            "properties": {"n": n, **props}, "timestamp": "2024-03-01T10:00:00Z"}


def identify(n: int, *, token: bool = False) -> dict[str, Any]:
    """An identify event: one profile record, plus a device-token record when ``token`` (needs
    ``--object-id-mapping``)."""
    event: dict[str, Any] = {"type": "identify", "userId": f"u{n}", "anonymousId": f"a{n}",
                             "traits": {"n": n, "email": f"user{n}@example.com"},
                             "timestamp": "2024-03-01T10:00:00Z"}
    if token:
        event["context"] = {"device": {"token": f"tok-{n}"}, "os": {"name": "android"}}
    return event


def write_ndjson(path: Path, items: Iterable[Any]) -> Path:
    """Write one JSON value (or a raw ``bytes`` line) per line."""
    with path.open("wb") as f:
        for item in items:
            f.write((item if isinstance(item, bytes) else orjson.dumps(item)) + b"\n")
    return path


def key(record: dict[str, Any]) -> tuple[str, Any]:
    """The identity of an accepted record: (kind, n)."""
    kind = record.get("type")
    if kind == "event":
        return ("event", record["evtData"].get("n"))
    if kind == "profile":
        return ("profile", record["profileData"].get("n"))
    return ("token", record["tokenData"]["id"])


def tally(records: Iterable[dict[str, Any]]) -> Counter[tuple[str, Any]]:
    """How many times each record identity was accepted."""
    return Counter(key(r) for r in records)


def upload_bodies(requests: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The ``d`` arrays of the upload requests a FakeCleverTap received."""
    return [r["body"]["d"] for r in requests
            if r["path"] == "/1/upload" and isinstance(r.get("body"), dict)]
