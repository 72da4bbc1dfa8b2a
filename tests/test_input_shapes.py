"""Every input shape (spec/rudderstack-inputs.md) gives the same records as the equivalent plain
file, and rejections point at the file, the line and the place inside a batch.

The inputs are built in tmp_path from a handful of inline events: plain NDJSON, HTTP batch
envelopes (top-level context/integrations merged), event-archive rows (payloads without
``timestamp``), legacy gateway-backup rows, gzip (by magic, whatever the name), directories
(recursive, name order, hidden files skipped) and stdin.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from clevertap_mapper.checks import Checker
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.io.model import Rejection
from clevertap_mapper.io.readers import read_items
from clevertap_mapper.pipeline import Mapped, Summary, map_items

Event = dict[str, Any]
Record = dict[str, Any]
Where = tuple[str, int, int | None, str, str]  # source, line, index, stage, code

# A client whose clock runs 3 hours ahead: the event happened 2 s before it was sent, and the
# server received it at 00:00:04.500Z. RudderStack's timestamp (and ctmap's D1 rule) is
# receivedAt - (sentAt - originalTimestamp) = 2024-01-15T00:00:02.500Z.
TIMES = {"originalTimestamp": "2024-01-15T03:00:00.000Z", "sentAt": "2024-01-15T03:00:02.000Z",
         "receivedAt": "2024-01-15T00:00:04.500Z"}
TS = 1705276802  # floor(2024-01-15T00:00:02.5Z)
TS_ORIGINAL = 1705287600  # what originalTimestamp alone would give: 3 hours late

SHARED_CONTEXT = {"library": {"name": "rudder-sdk-python", "version": "2.0.8"},
                  "traits": {"plan": "pro"}}
SHARED_INTEGRATIONS = {"All": True}


def _events() -> list[Event]:
    """The events, as the SDK sent them (no context: the envelope carries it)."""
    return [
        {"type": "identify", "userId": "user-1", "messageId": "m1", **TIMES,
         "traits": {"email": "ada@example.com", "phone": "+447700900123", "name": "Ada"}},
        {"type": "track", "userId": "user-1", "messageId": "m2", **TIMES,
         "event": "Product Viewed", "properties": {"sku": "SKU-1", "price": 9.5},
         "context": {"locale": "en-GB"}},
        {"type": "page", "userId": "user-2", "messageId": "m3", **TIMES, "name": "Home",
         "properties": {"path": "/"}},
        {"type": "track", "userId": "user-2", "messageId": "m4", **TIMES,
         "event": "App Launched"},  # a CleverTap system event: refused at the check stage
        {"type": "track", "anonymousId": "anon-9", "messageId": "m5", **TIMES,
         "event": "Product Viewed"},  # no userId, anonymous tracking off: refused by mapping
        {"type": "track", "userId": "user-3", "messageId": "m6", **TIMES,
         "event": "Order Completed",
         "properties": {"checkout_id": "c-1", "revenue": 20,
                        "products": [{"sku": "A", "quantity": 2}]}},
        {"type": "screen", "userId": "user-3", "messageId": "m7", **TIMES, "name": "Cart"},
    ]


def _merged(event: Event) -> Event:
    """The event as RudderStack sees it after merging the envelope's context/integrations."""
    out = copy.deepcopy(event)
    out["context"] = {**SHARED_CONTEXT, **event.get("context", {})}
    out["integrations"] = dict(SHARED_INTEGRATIONS)
    return out


EVENTS = [_merged(e) for e in _events()]
REJECTED_AT = {4: ("check", "restricted_event"), 5: ("map", "anonymous_not_allowed")}  # 1-based


def _line(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _write(path: Path, lines: list[Any], *, gz: bool = False) -> Path:
    text = "".join(_line(v) + "\n" for v in lines).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def _archive_row(event: Event) -> dict[str, Any]:
    user = f"<<>>{event.get('anonymousId', '')}<<>>{event.get('userId', '')}"
    return {"userId": user, "payload": event, "createdAt": "2024-01-15T00:00:05.123456Z",
            "messageId": event["messageId"]}


def _legacy_row(job_id: int, batch: list[Any], **payload: Any) -> dict[str, Any]:
    return {"job_id": job_id, "workspace_id": "ws-1", "uuid": f"uuid-{job_id}",
            "user_id": "<<>>anon<<>>user", "parameters": {"source_id": "src-1", "batch_id": 1},
            "custom_val": "GW", "event_payload": {"batch": batch, "writeKey": "wk",
                                                  "requestIP": "1.2.3.4", **payload},
            "event_count": len(batch), "created_at": "2024-01-15T00:00:05Z",
            "expire_at": "2024-01-25T00:00:05Z"}


def _envelope(batch: list[Any]) -> dict[str, Any]:
    return {"batch": batch, "context": SHARED_CONTEXT, "integrations": SHARED_INTEGRATIONS,
            "sentAt": TIMES["sentAt"]}


def run(paths: list[Path | str], config: MapperConfig | None = None,
        level: str = "strict") -> tuple[list[Record], list[Where]]:
    """Read, map and check: the records that would go, and where each rejection came from."""
    records: list[Record] = []
    rejections: list[Where] = []
    items = read_items([str(p) for p in paths])
    checker = Checker(level)  # type: ignore[arg-type]
    for result in map_items(items, config or MapperConfig(), Summary(), checker):
        if isinstance(result, Mapped):
            records.extend(result.records)
        else:
            assert isinstance(result, Rejection)
            pos = result.pos
            rejections.append((pos.source, pos.line, pos.index, result.stage, result.code))
    return records, rejections


@pytest.fixture
def plain(tmp_path: Path) -> tuple[list[Record], list[Where]]:
    """The reference: one merged event per line."""
    return run([_write(tmp_path / "plain.ndjson", EVENTS)])


# ---------------------------------------------------------------------------- golden records

def test_plain_file_golden_records(plain: tuple[list[Record], list[Where]],
                                   tmp_path: Path) -> None:
    records, rejections = plain
    assert records == [
        {"type": "profile", "ts": TS, "identity": "user-1",
         "profileData": {"Email": "ada@example.com", "Name": "Ada", "Phone": "+447700900123",
                         "plan": "pro"}},
        {"evtName": "Product Viewed", "evtData": {"sku": "SKU-1", "price": 9.5},
         "type": "event", "ts": TS, "identity": "user-1"},
        {"evtName": "Web Page Viewed: Home", "evtData": {"path": "/"}, "type": "event",
         "ts": TS, "identity": "user-2"},
        {"evtName": "Charged", "evtData": {"Charged ID": "c-1", "Amount": 20,
                                           "Items": [{"sku": "A", "quantity": 2}]},
         "type": "event", "ts": TS, "identity": "user-3"},
        {"evtName": "Screen Viewed: Cart", "evtData": {}, "type": "event", "ts": TS,
         "identity": "user-3"},
    ]
    source = str(tmp_path / "plain.ndjson")
    assert rejections == [(source, 4, None, "check", "restricted_event"),
                          (source, 5, None, "map", "anonymous_not_allowed")]


def test_archive_timestamps_default_versus_compat(tmp_path: Path) -> None:
    """Archive payloads carry no ``timestamp``. The default mode (D1) computes it as
    RudderStack's processor does, not from the client's clock; compat sends no ts at all,
    as the reference does, so CleverTap would stamp the upload time."""
    path = _write(tmp_path / "archive.json.gz", [_archive_row(EVENTS[1])], gz=True)
    assert "timestamp" not in EVENTS[1]
    (record,), _ = run([path])
    assert record["ts"] == TS != TS_ORIGINAL
    (record,), _ = run([path], MapperConfig(compat="rudderstack"), level="warn")
    assert "ts" not in record


# ---------------------------------------------------------------------------- each shape

def _same_as_plain(got: tuple[list[Record], list[Where]],
                   plain: tuple[list[Record], list[Where]]) -> None:
    assert got[0] == plain[0]
    assert [w[3:] for w in got[1]] == [w[3:] for w in plain[1]]


def test_envelope_merges_context_and_points_into_the_batch(
        tmp_path: Path, plain: tuple[list[Record], list[Where]]) -> None:
    sent = _events()
    path = _write(tmp_path / "batch.ndjson", [_envelope(sent[:4]), _envelope(sent[4:])])
    got = run([path])
    _same_as_plain(got, plain)
    assert got[0][0]["profileData"]["plan"] == "pro"  # from the envelope's context.traits
    assert got[1] == [(str(path), 1, 4, "check", "restricted_event"),
                      (str(path), 2, 1, "map", "anonymous_not_allowed")]


def test_envelope_event_keys_win(tmp_path: Path) -> None:
    event = {**_events()[0], "context": {"traits": {"plan": "free"}},
             "integrations": {"All": False}}
    path = _write(tmp_path / "batch.ndjson", [_envelope([event])])
    (item,) = list(read_items([str(path)]))
    assert item.event["context"] == {**SHARED_CONTEXT, "traits": {"plan": "free"}}  # type: ignore[union-attr]
    assert item.event["integrations"] == {"All": False}  # type: ignore[union-attr]


def test_archive_rows(tmp_path: Path, plain: tuple[list[Record], list[Where]]) -> None:
    path = _write(tmp_path / "1705276800_1705276805_ws_uuid.json.gz",
                  [_archive_row(e) for e in EVENTS], gz=True)
    got = run([path])
    _same_as_plain(got, plain)
    assert [w[:3] for w in got[1]] == [(str(path), 4, None), (str(path), 5, None)]
    assert all(r["ts"] == TS for r in got[0])


def test_legacy_gateway_rows(tmp_path: Path, plain: tuple[list[Record], list[Where]]) -> None:
    rows = [_legacy_row(1001, EVENTS[:3]), _legacy_row(1002, EVENTS[3:5]),
            _legacy_row(1003, EVENTS[5:])]
    path = _write(tmp_path / "gw_jobs_1.1001.1003.1705276800.1705276900.ws.gz", rows, gz=True)
    got = run([path])
    _same_as_plain(got, plain)
    assert [w[:3] for w in got[1]] == [(str(path), 2, 1), (str(path), 2, 2)]


def test_legacy_batch_receivedat_reaches_events_without_one(tmp_path: Path) -> None:
    """Older gateways stored receivedAt once per job; RudderStack's processor stamps it on each
    event before computing timestamp, so ctmap does the same (an event's own value wins)."""
    own = {**EVENTS[2], "receivedAt": "2024-01-15T00:00:06.500Z"}
    without = [{k: v for k, v in e.items() if k != "receivedAt"} for e in (EVENTS[1], EVENTS[6])]
    row = _legacy_row(7, [without[0], own, without[1]], receivedAt=TIMES["receivedAt"])
    records, _ = run([_write(tmp_path / "legacy.json.gz", [row], gz=True)])
    assert [r["ts"] for r in records] == [TS, TS + 2, TS]


def test_legacy_batch_events_sent_without_client_times_get_receivedat(tmp_path: Path) -> None:
    """An HTTP API call need not carry originalTimestamp or sentAt; RudderStack's processor
    counts the missing ones as receivedAt, so the event's time is when the server got it, not
    the upload time CleverTap would stamp."""
    bare = {"type": "track", "userId": "user-1", "messageId": "m7", "event": "Product Viewed"}
    sent_only = {**bare, "sentAt": "2024-01-15T00:00:05.500Z"}
    row = _legacy_row(8, [bare, sent_only], receivedAt=TIMES["receivedAt"])
    records, _ = run([_write(tmp_path / "legacy.json.gz", [row], gz=True)])
    # 00:00:04.5; then 04.5 - (05.5 - 04.5), the processor's formula with originalTimestamp
    # counted as receivedAt
    assert [r["ts"] for r in records] == [TS + 2, TS + 1]


def test_gzip_is_sniffed_whatever_the_name(tmp_path: Path,
                                           plain: tuple[list[Record], list[Where]]) -> None:
    for name in ("events.ndjson.gz", "events.ndjson", "dump.bin"):
        path = _write(tmp_path / "gz" / name, EVENTS, gz=True)
        got = run([path])
        _same_as_plain(got, plain)
        assert got[1][0][:3] == (str(path), 4, None)


def test_directory_recursive_in_name_order(tmp_path: Path,
                                           plain: tuple[list[Record], list[Where]]) -> None:
    root = tmp_path / "bucket"
    first = _write(root / "src" / "gw" / "2024-01-15" / "0" / "a.json.gz",
                   [_archive_row(e) for e in EVENTS[:3]], gz=True)
    second = _write(root / "src" / "gw" / "2024-01-15" / "1" / "b.ndjson",
                    [_envelope(_events()[3:5])])
    third = _write(root / "z_last.ndjson", EVENTS[5:])
    _write(root / ".hidden.ndjson", [EVENTS[0]])  # hidden files and folders are skipped
    _write(root / ".cache" / "x.ndjson", [EVENTS[0]])
    got = run([root])
    _same_as_plain(got, plain)
    assert got[1] == [(str(second), 1, 1, "check", "restricted_event"),
                      (str(second), 1, 2, "map", "anonymous_not_allowed")]
    assert first.exists() and third.exists()


def test_every_shape_in_one_file(tmp_path: Path,
                                 plain: tuple[list[Record], list[Where]]) -> None:
    """The shape is detected per line, without flags."""
    sent = _events()
    lines: list[Any] = [EVENTS[0], _envelope(sent[1:3]), _archive_row(EVENTS[3]),
                        _legacy_row(5, EVENTS[4:6]), EVENTS[6]]
    path = _write(tmp_path / "mixed.ndjson", lines)
    got = run([path])
    _same_as_plain(got, plain)
    assert [w[:3] for w in got[1]] == [(str(path), 3, None), (str(path), 4, 1)]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_stdin(monkeypatch: pytest.MonkeyPatch, gz: bool,
               plain: tuple[list[Record], list[Where]]) -> None:
    data = "".join(_line(e) + "\n" for e in EVENTS).encode()
    stream = io.BufferedReader(io.BytesIO(gzip.compress(data) if gz else data))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stream))
    got = run(["-"])
    _same_as_plain(got, plain)
    assert got[1][0][:3] == ("<stdin>", 4, None)


def test_bad_items_inside_batches_point_at_their_place(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.ndjson", [
        _envelope([EVENTS[0], "not an event", EVENTS[1]]),
        _legacy_row(1, [EVENTS[2], 42]),
        {"userId": "x", "payload": {"userId": "x", "event": "No Type"}, "createdAt": "t",
         "messageId": "m"},
    ])
    records, rejections = run([path])
    assert len(records) == 3
    assert rejections == [(str(path), 1, 2, "read", "not_an_object"),
                          (str(path), 2, 2, "read", "not_an_object"),
                          (str(path), 3, None, "map", "missing_type")]
