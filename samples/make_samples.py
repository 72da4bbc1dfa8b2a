#!/usr/bin/env python3
"""Regenerate every file in samples/ from bench/gen_events.py (same bytes on every run).

    python samples/make_samples.py

It prints the deliberate rejects of samples/events.ndjson with their line numbers; they are
also listed in samples/README.md (keep the two in step when changing this script).
"""

from __future__ import annotations

import gzip
import random
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import gen_events  # the generator lives in bench/, which is not a package

HERE = Path(__file__).resolve().parent

Event = dict[str, Any]

# samples/events.ndjson: the valid events plus one reject of each kind at these lines.
VALID_EVENTS = 300
EVENTS_MIX = {"track": 58, "identify": 17, "page": 12, "screen": 9, "alias": 4}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def gzip_bytes(data: bytes) -> bytes:
    """gzip with mtime 0 and no file name, so the output is the same on every run."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"  {path.relative_to(HERE.parent)}: {len(data)} bytes", file=sys.stderr)


def refresh_rudder_id(event: Event) -> Event:
    event["rudderId"] = gen_events.rudder_id(event.get("userId"), event.get("anonymousId"))
    return event


def drop_ids(event: Event, *, keep_anonymous: bool) -> Event:
    """Remove userId (and anonymousId unless kept) everywhere the mapping looks for ids."""
    event.pop("userId", None)
    if not keep_anonymous:
        event.pop("anonymousId", None)
    for holder in (event.get("traits"), event.get("context", {}).get("traits")):
        if isinstance(holder, dict):
            for key in ("userId", "id") if keep_anonymous else ("userId", "id", "anonymousId"):
                holder.pop(key, None)
    return refresh_rudder_id(event)


def platform(event: Event) -> str:
    name = event["context"]["library"]["name"]
    if name.startswith("RudderLabs JavaScript"):
        return "web"
    if "android" in name:
        return "android"
    if "ios" in name:
        return "ios"
    return "server"


class Pool:
    """Valid generated events to take templates from, by a predicate."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events

    def take(self, pred: Callable[[Event], bool]) -> Event:
        for i, event in enumerate(self.events):
            if pred(event):
                return self.events.pop(i)
        raise LookupError("no event in the pool matches")


def is_track(name: str | None = None, where: str | None = None) -> Callable[[Event], bool]:
    def pred(e: Event) -> bool:
        return (e["type"] == "track" and (name is None or e.get("event") == name)
                and (where is None or platform(e) == where))
    return pred


def is_type(etype: str, where: str | None = None) -> Callable[[Event], bool]:
    return lambda e: e["type"] == etype and (where is None or platform(e) == where)


# --------------------------------------------------------------------------------------------
# samples/events.ndjson
# --------------------------------------------------------------------------------------------


def _rejects(pool: Pool) -> list[tuple[int, str, bytes]]:
    """(line, what it is, line bytes) for the deliberate rejects."""
    out: list[tuple[int, str, bytes]] = []

    def add(line: int, why: str, data: Event | bytes) -> None:
        out.append((line, why, data if isinstance(data, bytes) else dumps(data)))

    e = drop_ids(pool.take(is_track(where="web")), keep_anonymous=True)
    e["context"].pop("traits", None)
    add(12, "track without userId, anonymousId only (anonymous_not_allowed; converts with "
            "--track-anonymous)", e)

    e = pool.take(is_track("Order Completed"))
    e["properties"]["products"] = "oops"
    add(31, 'Order Completed with products: "oops", a string (invalid_products)', e)

    text = dumps(pool.take(is_track("Product Added")))
    cut = len(text) * 3 // 5
    while text[cut - 1] >= 0x80:  # cut between ASCII bytes: the line stays valid UTF-8
        cut -= 1
    add(52, "truncated JSON, the line ends mid-object (invalid_json)", text[:cut])

    e = pool.take(is_type("identify", "server"))
    e["type"] = "group"
    e["groupId"] = "co_7f3a21"
    e["traits"] = {"name": "Initech Ltd", "industry": "Software", "employees": 420}
    add(70, 'type "group", which CleverTap has no mapping for (unsupported_type)', e)

    e = drop_ids(pool.take(is_type("identify", "web")), keep_anonymous=False)
    add(91, "identify with no userId, no anonymousId and no id in traits (missing_identity)", e)

    e = pool.take(is_track("Product Viewed", "android"))
    e["properties"]["ts"] = "not a date"
    add(113, 'properties.ts "not a date" (invalid_timestamp)', e)

    add(134, "a JSON array [1,2], not an object (not_an_object)", b"[1,2]")

    e = pool.take(is_track(where="ios"))
    e["event"] = ""
    add(155, 'track with an empty event name "" (missing_event_name)', e)

    e = pool.take(is_track(where="server"))
    e["type"] = 3
    add(176, "type is the number 3, not a string (unsupported_type)", e)

    e = pool.take(lambda x: x["type"] == "identify" and "traits" in x)
    e["traits"]["ts"] = True
    add(197, "identify with traits.ts true (invalid_timestamp)", e)

    add(219, "a line of plain text, not JSON (invalid_json)",
        b"2024-01-15 00:41:07 ERROR flush failed: connection reset by peer (retrying in 5s)")

    e = pool.take(is_track("Order Completed"))
    e["properties"]["products"] = []
    add(240, "Order Completed with products: [] (invalid_products)", e)

    e = pool.take(is_track(where="web"))
    e["userId"] = {"id": e["userId"], "email": "someone@example.com"}
    add(262, 'userId is a JSON object {"id": ..., "email": ...} (invalid_identity)', e)

    e = pool.take(is_track(where="android"))
    del e["type"]
    add(283, "no type field at all (missing_type)", e)

    e = pool.take(is_type("page"))
    e["properties"] = ""
    add(304, 'page with properties: "" (invalid_properties)', e)
    return out


def events_ndjson() -> tuple[bytes, list[tuple[int, str]]]:
    opts: dict[str, Any] = {"user_id_rate": 1.0, "mix": EVENTS_MIX, "identified_tracks": True,
                            "session_events": 1.5}
    valid = list(gen_events.generate(VALID_EVENTS, seed=20240115, **opts))
    spare = Pool(list(gen_events.generate(400, seed=20240116, **opts)))  # reject templates

    # Lines 1-3 are the examples in samples/README.md: an identify, a track, an Order Completed.
    lead: list[Event] = []
    for pred in (is_type("identify", "web"), is_track("Product Viewed"),
                 is_track("Order Completed")):
        i = next(i for i, e in enumerate(valid) if pred(e))
        lead.append(valid.pop(i))
    valid = lead + valid

    # A few anonymous identifies (anonymousId only): valid, identity = anonymousId.
    mobile_identifies = [e for e in valid if e["type"] == "identify"
                         and platform(e) in ("android", "ios")]
    for e in mobile_identifies[1:4]:
        drop_ids(e, keep_anonymous=True)

    _check_coverage(valid)
    rejects = _rejects(spare)
    lines = [dumps(e) for e in valid]
    for line, _, data in sorted(rejects):
        lines.insert(line - 1, data)
    for line, _, data in rejects:
        assert lines[line - 1] is data, line
    return b"".join(x + b"\n" for x in lines), [(line, why) for line, why, _ in rejects]


def _check_coverage(events: list[Event]) -> None:
    """The sample must show every type from every SDK that sends it."""
    seen = {(e["type"], platform(e)) for e in events}
    wanted = {("identify", p) for p in ("web", "android", "ios", "server")}
    wanted |= {("track", p) for p in ("web", "android", "ios", "server")}
    wanted |= {("page", "web"), ("screen", "android"), ("screen", "ios"), ("alias", "web")}
    missing = wanted - seen
    if missing:
        raise SystemExit(f"events.ndjson lacks {sorted(missing)}; change the seed")
    orders = sum(1 for e in events if e.get("event") == "Order Completed")
    tokens = sum(1 for e in events if e["context"].get("device", {}).get("token"))
    if orders < 5 or tokens < 3:
        raise SystemExit(f"too few Order Completed ({orders}) or token events ({tokens})")


# --------------------------------------------------------------------------------------------
# samples/nasty/
# --------------------------------------------------------------------------------------------


def _small_events(n: int, seed: int) -> Iterator[Event]:
    """Identified events, so every good line in the nasty files converts by default."""
    return gen_events.generate(n, seed=seed, user_id_rate=1.0, identified_tracks=True)


def _lines(*parts: bytes, end: bytes = b"\n") -> bytes:
    return b"".join(p + end for p in parts)


def _with_property(event: Event, key: str, raw_value: bytes) -> bytes:
    """The event's JSON with ``properties[key]`` set to raw JSON text (orjson cannot write it)."""
    event = dict(event)
    event["properties"] = {**event.get("properties", {}), key: "__RAW__"}
    return dumps(event).replace(b'"__RAW__"', raw_value, 1)


def _track(events: Iterator[Event]) -> Event:
    return next(e for e in events if e["type"] == "track")


def nasty() -> dict[str, bytes]:
    ev = _small_events(400, seed=31337)
    good = [dumps(next(ev)) for _ in range(12)]
    files: dict[str, bytes] = {}

    files["empty.ndjson"] = b""
    files["blank_lines.ndjson"] = (good[0] + b"\n\n" + good[1] + b"\n   \n\t\n" + good[2]
                                   + b"\n \n\n")
    files["bom.ndjson"] = b"\xef\xbb\xbf" + _lines(good[0], good[1])
    files["crlf.ndjson"] = _lines(good[0], good[1], good[2], end=b"\r\n")
    files["truncated_last_line.ndjson"] = _lines(good[0], good[1]) + good[2][:len(good[2]) // 2]
    files["no_trailing_newline.ndjson"] = good[0] + b"\n" + good[1]

    latin1 = _track(ev)
    bad = _with_property(latin1, "note", b'"caf\xe9 cr\xe8me br\xfbl\xe9e \xff\xfe"')
    files["invalid_utf8.ndjson"] = _lines(good[3], bad, good[4])

    files["not_objects.ndjson"] = _lines(good[0], b"[]", good[1], b'"str"', b"42", good[2],
                                         b"null", b"true", good[3])

    big1 = _with_property(_track(ev), "big_number", b"123456789012345678901234567890")
    big2 = _with_property(_track(ev), "counter", str(2**64).encode())
    files["huge_integers.ndjson"] = _lines(big1, big2)

    deep = b'{"n":' * 2000 + b"1" + b"}" * 2000
    ok_deep = b'{"n":' * 50 + b"1" + b"}" * 50
    files["deep_nesting.ndjson"] = _lines(good[5], _with_property(_track(ev), "tree", deep),
                                          _with_property(_track(ev), "tree", ok_deep), good[6])

    files["long_line.ndjson"] = _lines(good[7], _with_property(
        _track(ev), "description", dumps(_long_text(600_000))), good[8])

    archive = b"".join(dumps(e) + b"\n" for e in _small_events(40, seed=99))
    packed = gzip_bytes(archive)
    files["truncated.json.gz"] = packed[:len(packed) * 3 // 5]
    files["not_gzip.json.gz"] = _lines(good[9], good[10])

    nul_inside = _with_property(_track(ev), "coupon", b'"SPRING\x0010"')
    nul_escaped = _with_property(_track(ev), "coupon", b'"SPRING\\u000010"')
    files["nul_bytes.ndjson"] = _lines(good[0], nul_inside, nul_escaped,
                                       b"\x00" * 16 + good[1], good[2])

    dup = dumps(next(e for e in ev if e.get("event") == "Product Viewed"))
    end = dup.index(b'"event":"Product Viewed"') + len(b'"event":"Product Viewed"')
    dup = dup[:end] + b',"event":"Product Added"' + dup[end:]
    files["duplicate_keys.ndjson"] = _lines(good[3], dup)

    files["unicode.ndjson"] = _lines(*_unicode_lines(ev))
    return files


def _long_text(size: int) -> str:
    rng = random.Random(5)
    words = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit",
             "sed", "do", "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore")
    parts: list[str] = []
    total = 0
    while total < size:
        word = rng.choice(words)
        parts.append(word)
        total += len(word) + 1
    return " ".join(parts)[:size]


def _unicode_lines(ev: Iterator[Event]) -> list[bytes]:
    emoji = next(e for e in ev if e.get("event") == "Product Viewed")
    emoji["properties"] = {**emoji["properties"], "name": "Party Pack 🎉🎈",
                           "review": "Loved it 😍👍🏽 — 5/5 ⭐⭐⭐⭐⭐", "flag": "🇮🇳"}
    rtl = next(e for e in ev if e["type"] == "identify")
    traits = rtl.get("traits") or rtl["context"]["traits"]
    traits.update(name="فاطمة حداد", city_local="תל אביב", bio="مرحبا بالعالم — שלום עולם")
    separators = _track(ev)
    separators["properties"] = {**separators["properties"],
                                "comment": "line\u2028separator and paragraph\u2029separator"}
    lone = _with_property(_track(ev), "label", b'"broken \\ud800 surrogate"')
    pair = _with_property(_track(ev), "label", b'"escaped pair \\ud83d\\ude00 ok"')
    lines = [dumps(emoji), dumps(rtl), dumps(separators), lone, pair]
    assert "\u2028".encode() in lines[2], "orjson must keep U+2028 raw for this file"
    return lines


# --------------------------------------------------------------------------------------------


def main() -> int:
    print("writing samples/ ...", file=sys.stderr)
    data, rejects = events_ndjson()
    write(HERE / "events.ndjson", data)

    archive_opts: dict[str, Any] = {"user_id_rate": 0.9}
    archive = b"".join(dumps(line) + b"\n"
                       for line in gen_events.lines("archive", 200, 9, **archive_opts))
    write(HERE / "archive.json.gz", gzip_bytes(archive))
    anonymous = sum(1 for line in gen_events.lines("archive", 200, 9, **archive_opts)
                    if line["payload"]["type"] != "identify" and "userId" not in line["payload"])

    batch = b"".join(dumps(line) + b"\n" for line in gen_events.lines(
        "batch", 65, 11, user_id_rate=1.0, identified_tracks=True))
    write(HERE / "batch.ndjson", batch)
    legacy = b"".join(dumps(line) + b"\n" for line in gen_events.lines(
        "legacy", 28, 13, user_id_rate=1.0, identified_tracks=True))
    write(HERE / "legacy_gw_jobs.json.gz", gzip_bytes(legacy))

    for name, content in nasty().items():
        write(HERE / "nasty" / name, content)

    packed = (HERE / "nasty" / "truncated.json.gz").read_bytes()
    readable = zlib.decompressobj(wbits=31).decompress(packed)
    complete, batch_lines, rows = readable.count(b"\n"), batch.count(b"\n"), legacy.count(b"\n")
    print(f"\ntruncated.json.gz: {complete} complete lines before the cut", file=sys.stderr)
    print(f"archive.json.gz: {anonymous} anonymous track/page/screen events", file=sys.stderr)
    print(f"batch.ndjson: {batch_lines} lines; legacy_gw_jobs.json.gz: {rows} rows",
          file=sys.stderr)
    print("\nsamples/events.ndjson deliberate rejects:")
    for line, why in rejects:
        print(f"  line {line}: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
