"""Property tests: the core never crashes, JS-compatible JSON is right, batching keeps order."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from clevertap_mapper import MapperConfig, MappingError, map_event
from clevertap_mapper.checks import Checker
from clevertap_mapper.io.model import Position, Rejection
from clevertap_mapper.io.writers import Batcher
from clevertap_mapper.jsonutil import dumps, loads
from clevertap_mapper.mapping import core
from clevertap_mapper.mapping import tables as T
from clevertap_mapper.mapping.js import js_numbers, json_stringify, number_to_string, to_number
from clevertap_mapper.mapping.timestamps import (
    _NUMERIC,
    _iso_parts,
    epoch_seconds,
    iso_micros,
    iso_seconds,
)
from clevertap_mapper.stage import ChunkConverter

KEYS = ["type", "userId", "anonymousId", "previousId", "event", "name", "properties", "traits",
        "context", "integrations", "timestamp", "originalTimestamp", "sentAt", "receivedAt",
        "email", "firstName", "lastName", "gender", "birthday", "ts", "overrideFields",
        "products", "revenue", "checkout_id", "device", "token", "os", "clevertap",
        "deviceTokenType", "chromeKeys", "a.b", "1e3", "", "toString", "Items", "Charged"]
TYPES = ["identify", "track", "page", "screen", "alias", "IDENTIFY", "group", "", "Track"]

scalars = st.one_of(
    # Integers of any size the reader takes: exact in the default mode (see _as_read).
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([2**53 + 1, 2**64, 10**21, 10**29, 10**309, -(10**400)]),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from([*TYPES, "Order Completed", "order completed", "2021-03-10T11:59:22Z",
                     "1468308340", "android", "iOS", "female", "$D_1"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner,
                                            max_size=5)),
    max_leaves=25,
)
events = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=10)
configs = st.builds(MapperConfig, track_anonymous=st.booleans(),
                    object_id_mapping=st.booleans(),
                    compat=st.sampled_from([None, "rudderstack"]))


def _check_records(records: list[dict[str, Any]], config: MapperConfig) -> None:
    assert 1 <= len(records) <= 2
    for record in records:
        assert record["type"] in ("event", "profile", "token")
        assert "identity" in record or "objectId" in record \
            or "identity" in record.get("profileData", {})
        dumps(record)  # always serialisable
        if config.compat is None and "ts" in record:
            assert type(record["ts"]) is int and record["ts"] > 0


def _as_read(event: dict[str, Any], config: MapperConfig) -> dict[str, Any]:
    """The event as the reader gives it in ``config``'s mode: compat mode reads integers past
    64 bits as JS's doubles (and refuses a line with one past the doubles' range)."""
    if config.compat is None:
        return event
    try:
        return loads(dumps(event), js_numbers=True)  # type: ignore[no-any-return]
    except ValueError:
        assume(False)
        raise


@settings(max_examples=400, deadline=None)
@given(events, configs)
def test_any_object_maps_to_records_or_a_mapping_error(event: dict[str, Any],
                                                       config: MapperConfig) -> None:
    event = _as_read(event, config)
    try:
        records = map_event(event, config)
    except MappingError as exc:
        assert exc.code and exc.code.islower() and exc.message
        return
    _check_records(records, config)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TYPES), st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6),
       st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6), configs)
def test_realistic_shapes_map_or_reject(kind: str, traits: dict[str, Any],
                                        props: dict[str, Any], config: MapperConfig) -> None:
    event = {"type": kind, "userId": "u", "anonymousId": "a", "traits": traits,
             "context": {"traits": props, "os": {"name": "Android"}, "device": {"token": "t"}},
             "properties": props, "event": props.get("event", "Order Completed")}
    event = _as_read(event, config)
    try:
        records = map_event(event, config)
    except MappingError:
        return
    _check_records(records, config)


_ROW_NAMES = ["email", "name", "phone", "gender", "birthday", "firstName", "last_name", "x"]
_TRAIT_KEYS = [*_ROW_NAMES, *(f"{a}.{b}" for a in ("traits", "x") for b in _ROW_NAMES[:3])]
_traits = st.dictionaries(st.sampled_from(_TRAIT_KEYS), st.one_of(
    st.sampled_from(["", "v", "w", 0, None]), st.lists(st.just("l"), max_size=2)), max_size=4)
_roots = st.one_of(_traits, st.lists(st.just("i"), max_size=2), st.just("text"))


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(["traits", "properties", "context", "a.b", "x.y.z",
                                        *(f"{r}.{n}" for r in ("traits", "context.traits",
                                                               "properties")
                                          for n in _ROW_NAMES[:4]), "context.traits"]),
                       _roots, max_size=5),
       st.dictionaries(st.sampled_from(["traits", "os", "a.b", "traits.email", "traits.name",
                                        "device.token"]), _roots, max_size=3))
def test_identify_reads_each_row_as_get_value_would(top: dict[str, Any],
                                                    context: dict[str, Any]) -> None:
    # _TraitRoots looks each row up on its root, unless a literal dotted key get-value could
    # find is there: then as _first_usable (get-value's walk) does. Other dotted keys ("a.b")
    # keep the fast lookups; either way the values must be get-value's.
    event = {**top, "context": context} if "context" not in top else top
    roots = core._TraitRoots(event)
    for paths in (*(row.sources for row in T.IDENTIFY_ROWS), T.FIRST_NAME, T.LAST_NAME):
        assert roots.first_usable(paths) == core._first_usable(event, paths), (paths, event)


@given(json_values)
def test_json_stringify_parses_back_to_the_same_value(value: Any) -> None:
    text = json_stringify(value)
    back = json.loads(text)

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, dict):
            return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k])
                                                                       for k in a)
        if isinstance(a, list):
            return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            try:
                double = float(a)
            except OverflowError:
                return b is None  # JS holds Infinity, which JSON writes as null
            return math.isclose(double, float(b), rel_tol=1e-15)  # JS holds doubles
        return bool(a == b)

    assert same(value, back)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_to_string_round_trips(x: float) -> None:
    assert float(number_to_string(x)) == x or (x == 0 and number_to_string(x) == "0")


def test_number_to_string_matches_javascript() -> None:
    cases = {1.0: "1", 1e21: "1e+21", 1.5e-7: "1.5e-7", 123e-20: "1.23e-18", 0.000001: "0.000001",
             -0.0: "0", 2**53 + 2.0: "9007199254740994", 1e20: "100000000000000000000",
             98765432109876543: "98765432109876540", 0.1 + 0.2: "0.30000000000000004"}
    for value, text in cases.items():
        assert number_to_string(value) == text, value


def test_integers_past_the_doubles_range_are_infinity_as_in_javascript() -> None:
    huge = 10**400
    assert number_to_string(huge) == "Infinity" and number_to_string(-huge) == "-Infinity"
    assert to_number("0x" + "f" * 300) == math.inf and to_number(-huge) == -math.inf
    assert js_numbers({"a": [huge, 2**60 + 1]}) == {"a": [None, 1152921504606847000]}
    # From 1e21 JS writes an exponent: the double itself, which orjson writes the same.
    assert dumps(js_numbers([10**29, 123456789012345678901234567890])) == \
        b"[1e+29,1.2345678901234568e+29]"
    assert json_stringify({"a": huge}) == '{"a":null}'
    assert json_stringify({"a": huge}, exact_ints=True) == '{"a":' + str(huge) + "}"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_json_stringify_writes_numbers_as_javascript_does(x: float) -> None:
    # Whichever encoder json_stringify picks (orjson for plain values), numbers read as JS's.
    assert json_stringify({"a": [x]}) == '{"a":[' + number_to_string(x) + "]}"
    assert json_stringify({"lat": 0.000005}) == '{"lat":0.000005}'


def test_json_stringify_orders_integer_keys_first() -> None:
    assert json_stringify({"b": 1, "10": 2, "2": 3, "01": 4}) == '{"2":3,"10":2,"b":1,"01":4}'
    # Only ASCII digits make an array index in JS; Python's \d and int() take others too.
    assert json_stringify({"b": 1, "1\u0663": 2, "2": 3}) == '{"2":3,"b":1,"1\u0663":2}'


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["event", "profile", "token"]), max_size=2500),
       st.integers(1, 50), st.integers(1, 20))
def test_batching_keeps_count_order_and_limits(kinds: list[str], max_records: int,
                                               max_tokens: int) -> None:
    records = [{"type": k, "n": i} for i, k in enumerate(kinds)]
    batcher: Batcher[dict[str, Any]] = Batcher(max_records, max_tokens)
    bodies = [body for r in records
              if (body := batcher.add(r, r["type"] == "token")) is not None]
    bodies += batcher.drain()
    flat = [r for body in bodies for r in body]
    assert sorted(r["n"] for r in flat) == list(range(len(records)))
    for body in bodies:
        assert body
        is_token = body[0]["type"] == "token"
        assert all((r["type"] == "token") == is_token for r in body)
        assert len(body) <= (max_tokens if is_token else max_records)
    for kind_is_token in (True, False):
        seq = [r["n"] for r in flat if (r["type"] == "token") == kind_is_token]
        assert seq == sorted(seq)


def test_a_block_judges_long_integers_where_they_are_sent() -> None:
    lines = [b'{"type":"track","userId":"u","event":"e","properties":{"big":%s}}' % n
             for n in (b"1", b"18446744073709551615", b"18446744073709551616", b"2")]
    block = b"\n".join(lines) + b"\n"
    result = ChunkConverter(MapperConfig(), Checker(), "records")("x", 1, block)
    assert result.summary.records["event"] == 3
    assert b'"big":18446744073709551615' in result.records  # type: ignore[operator]
    assert b'"line":3' in result.rejects and b"number_out_of_range" in result.rejects
    # Without checks it goes as read: exact.
    result = ChunkConverter(MapperConfig(), None, "records")("x", 1, block)
    assert b'"big":18446744073709551616' in result.records  # type: ignore[operator]


@given(st.integers(min_value=-10**20, max_value=10**20))
def test_integer_ts_scale_as_their_exact_value_does(n: int) -> None:
    exact = Fraction(n)
    while abs(exact) >= 10**11:
        exact /= 1000
    assert epoch_seconds(n, allow_negative=True) == math.floor(exact)


def _epoch_seconds_by_the_rule(raw: Any) -> int | None:
    """D2 as written (an ISO basic date, then every string tried as a number), to check the
    fast path against: integers scaled exactly, in fractions."""
    if type(raw) is not str:
        return epoch_seconds(raw)
    text = raw.strip()
    if len(text) == 8 and text.isascii() and text.isdigit():
        try:
            day = datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            return None  # eight digits are a date, or nothing
        result = (day - datetime(1970, 1, 1, tzinfo=UTC)).days * 86400
        return result if result > 0 else None
    if _NUMERIC.match(text):
        exact: Fraction | float = (Fraction(text) if text.lstrip("+-").isdigit()
                                   and len(text) <= 30 else float(text))
        if not math.isfinite(exact):
            return None
        while abs(exact) >= 10**11:
            exact /= 1000
        result = math.floor(exact)
    else:
        micros = iso_micros(text) if text[:4].isdigit() else None
        if micros is None:
            return None
        result = math.floor(Fraction(micros, 10**6))
    return result if result > 0 else None


@settings(max_examples=500)
@given(st.one_of(
    st.from_regex(r"\A[ ]?[+-]?\d{1,14}(\.\d{0,3})?([eE][+-]?\d{1,3})?\Z"),
    st.from_regex(r"\A\d{4}-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?)?\Z"),
    st.from_regex(r"\A\d{3,5}[-eE.][-\d]{0,8}\Z"), st.text(max_size=12)))
def test_ts_strings_read_as_the_d2_rule_says(text: str) -> None:
    assert epoch_seconds(text) == _epoch_seconds_by_the_rule(text), text


@settings(max_examples=500)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.one_of(st.none(), st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                          max_value=timedelta(hours=23, minutes=59))),
       st.sampled_from(["date", "minutes", "seconds", "auto"]),
       st.sampled_from(["", " ", "\t", "\n", "\u3000"]), st.sampled_from(["", " ", "\r\n"]))
def test_iso_micros_is_the_exact_standard_library_time(when: datetime, offset: timedelta | None,
                                                      spec: str, before: str, after: str) -> None:
    if offset is not None:
        when = when.replace(tzinfo=timezone(offset))
    text = when.date().isoformat() if spec == "date" else when.isoformat(timespec=spec)
    parsed = datetime.fromisoformat(text)
    delta = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)) - datetime(
        1970, 1, 1, tzinfo=UTC)
    expected = (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds
    assert iso_micros(before + text + after) == expected, before + text + after


def _stdlib_micros(text: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    delta = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)) - datetime(
        1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 10**6 + delta.microseconds


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


# Dates and times near and past every bound the reader checks, in the forms it takes and in
# forms a character away from them.
_near_iso = st.builds(
    lambda y, mo, d, t, h, mi, sec, frac, zone: (
        f"{y}-{mo}-{d}" + (f"{t}{h}:{mi}:{sec}{frac}{zone}" if t is not None else "")),
    st.sampled_from(["0000", "0001", "1900", "1969", "1970", "2000", "2024", "2100", "9999"])
    | st.integers(0, 9999).map(lambda n: f"{n:04d}"),
    _two(0, 13), _two(0, 32), st.sampled_from([None, "T", "t", " "]), _two(0, 25),
    _two(0, 60), _two(0, 61), st.sampled_from(["", "."]) | st.from_regex(r"\A\.\d{1,8}\Z"),
    st.sampled_from(["", "Z", "z", "+00:00", "-00:00", "+24:00", "+23:59", "-23:60", "+0530",
                     "+05:30:00", "+05", "Z ", " "]) | st.builds(
        lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), _two(0, 25), _two(0, 60)))


# A usual form with one character changed, anywhere.
_one_off_iso = st.builds(
    lambda text, i, c: text[:i % len(text)] + c + text[i % len(text) + 1:],
    st.sampled_from(["2024-02-29T23:59:59.999999+05:30", "1999-12-31T00:00:00Z", "2000-01-01",
                     "2021-03-10T11:59:22.123-08:00", "1970-01-01T00:00:00"]),
    st.integers(0, 40), st.sampled_from([*"0123456789-+:.TZ ", "\u0661", "a", ""]))


@settings(max_examples=2000)
@given(st.one_of(_near_iso, _one_off_iso,
                 st.text(alphabet="0123456789-T:.Z+ ", min_size=10, max_size=32),
                 st.text(min_size=10, max_size=32)))
def test_the_usual_iso_forms_read_as_fromisoformat_reads_them(text: str) -> None:
    # _iso_parts reads the forms events carry itself, and leaves every other to fromisoformat:
    # what it takes, it must read as fromisoformat does (an impossible date: not at all).
    seconds, fraction = _iso_parts(text)
    expected = _stdlib_micros(text)
    if fraction >= 0:
        assert expected is not None, text
        assert 0 <= fraction < 10**6 and seconds * 10**6 + fraction == expected, text
    if expected is None:
        expected = _stdlib_micros(text.strip())  # iso_micros also reads a time in white space
    assert iso_micros(text) == expected, text
    assert iso_seconds(text) == (None if expected is None else expected // 10**6), text


@settings(max_examples=500)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
       st.sampled_from(["Z", "+00:00", "-08:00", "+05:30", "+23:59", ""]),
       st.sampled_from(["seconds", "milliseconds", "microseconds"]), st.booleans())
def test_the_usual_iso_forms_are_read_without_fromisoformat(
        when: datetime, zone: str, spec: str, date_only: bool) -> None:
    text = when.date().isoformat() if date_only else when.isoformat(timespec=spec) + zone
    seconds, fraction = _iso_parts(text)
    assert fraction >= 0, text  # taken, not handed on
    assert seconds * 10**6 + fraction == _stdlib_micros(text), text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.sampled_from(["read", "map", "check", "upload"]),
       st.text(max_size=12), st.text(max_size=40), st.integers(1, 10**12),
       st.none() | st.integers(1, 500), st.booleans())
def test_a_rejection_line_is_its_fields_and_the_event_as_read(
        source: str, stage: Any, code: str, message: str, line: int, index: int | None,
        with_record: bool) -> None:
    # encode() splices the bytes read in; the fields around the line number are cached.
    event_json = b' {"type": "track", "n": 1.0E2} '
    rejection = Rejection(Position(source, line, index), stage, code, message,
                          event={"type": "track"}, record={"r": 1} if with_record else None,
                          event_json=event_json)
    for _ in range(2):  # the second time from the cache
        encoded = rejection.encode()
        assert json.loads(encoded) == {**rejection.as_dict(), "event": {"type": "track",
                                                                         "n": 100.0}}
        assert encoded.endswith(b',"event":' + event_json.strip() + b"}")
        assert encoded.startswith(dumps(rejection._fields())[:-1])
