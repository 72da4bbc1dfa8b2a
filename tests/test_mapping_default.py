"""ctmap's default mode: each fix D1-D6 (shared/DESIGN.md section 2), on cases written here,
each beside what --compat rudderstack sends for the same event."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clevertap_mapper import MapperConfig, MappingError, Trace, map_event
from clevertap_mapper.mapping.core import map_or_reject

DEFAULT = MapperConfig(track_anonymous=True)
COMPAT = MapperConfig(track_anonymous=True, compat="rudderstack")


def track(**kw: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "Played", **kw}


def identify(**kw: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": "u1", **kw}


def one(event: dict[str, Any], config: MapperConfig = DEFAULT) -> dict[str, Any]:
    records = map_event(event, config)
    assert len(records) == 1
    return records[0]


# ---------------------------------------------------------------------------- D1 event time

@pytest.mark.parametrize(("fields", "ts"), [
    ({"timestamp": "2023-11-17T02:25:22.813Z"}, 1700187922),
    ({"receivedAt": "2023-11-17T02:25:23.923Z", "sentAt": "2023-11-17T02:25:23.705Z",
      "originalTimestamp": "2023-11-17T02:25:22.595Z"}, 1700187922),
    ({"originalTimestamp": "2023-11-17T02:25:22.595Z"}, 1700187922),
    ({"timestamp": "not a time", "originalTimestamp": "2020-01-01T00:00:00Z"}, 1577836800),
    # The skew cancels to a whole second: float seconds floored it to the one before.
    ({"receivedAt": "2021-03-10T12:00:00.712Z", "sentAt": "2021-03-10T02:18:12.456Z",
      "originalTimestamp": "2021-03-09T00:01:59.744Z"}, 1615283028),
    # RudderStack's processor counts a missing sentAt or originalTimestamp as receivedAt.
    ({"receivedAt": "2023-11-17T02:25:22.813Z"}, 1700187922),
    ({"receivedAt": "2023-11-17T02:25:23.923Z", "sentAt": "2023-11-17T02:25:24.923Z"},
     1700187922),
    ({"receivedAt": "2023-11-17T02:25:23.923Z", "originalTimestamp": "2023-11-17T02:25:22.5Z"},
     1700187922),
    # ... and so an unreadable one: receivedAt is never passed over for no ts at all.
    ({"receivedAt": "2023-11-17T02:25:22.813Z", "originalTimestamp": ""}, 1700187922),
    ({"receivedAt": "2023-11-17T02:25:23.923Z", "sentAt": "2023-11-17T02:25:24.923Z",
      "originalTimestamp": "17/11/2023 02:25"}, 1700187922),
    ({"receivedAt": "2023-11-17T02:25:23.923Z", "sentAt": 1700187924,
      "originalTimestamp": "2023-11-17T02:25:22.5Z"}, 1700187922),
], ids=["timestamp", "receivedAt-skew", "originalTimestamp", "bad-timestamp-falls-back",
        "skew-to-a-whole-second", "receivedAt-only", "no-originalTimestamp", "no-sentAt",
        "empty-originalTimestamp", "unreadable-originalTimestamp", "unreadable-sentAt"])
def test_d1_event_time_when_the_reference_sends_none(fields: dict[str, Any], ts: int) -> None:
    assert one(track(**fields))["ts"] == ts
    assert "ts" not in one(track(**fields), COMPAT)


def test_d1_archive_payload_computes_time_from_received_and_sent() -> None:
    event = track(receivedAt="2024-01-01T00:00:10.000Z", sentAt="2024-01-01T00:00:05.000Z",
                  originalTimestamp="2024-01-01T00:00:02.500Z")
    assert one(event)["ts"] == 1704067207  # 10 - (5 - 2.5) = 7.5 s past midnight


def test_d1_the_references_own_source_wins() -> None:
    event = track(timestamp="2023-11-17T02:25:22Z", properties={"ts": 1600000000})
    assert one(event)["ts"] == 1600000000
    assert one(identify(timestamp="2023-11-17T02:25:22Z", traits={"ts": 1500000000}))["ts"] \
        == 1500000000


def test_d1_no_usable_time_sends_no_ts() -> None:
    assert "ts" not in one(track())


@pytest.mark.parametrize("when", ["2016-12-31T23:59:60Z", "1969-07-20T20:17:40Z",
                                  1615377562000], ids=["leap-second", "before-1970", "number"])
def test_d1_a_time_it_cannot_read_is_named_in_the_trace(when: Any) -> None:
    trace = Trace()
    [record] = map_event(track(timestamp=when), DEFAULT, trace)
    assert "ts" not in record
    [warning] = [d for d in trace.decisions if d.kind == "warning"]
    assert warning.field == "ts" and warning.source == "timestamp" and warning.before == when


def test_d1_applies_to_identify_and_alias() -> None:
    t = "2022-02-02T00:00:00Z"
    assert one(identify(timestamp=t))["ts"] == 1643760000
    alias = {"type": "alias", "userId": "new", "previousId": "old", "timestamp": t}
    assert one(alias)["ts"] == 1643760000


# ---------------------------------------------------------------------------- D2 epoch seconds

@pytest.mark.parametrize(("raw", "seconds", "compat"), [
    (1468308340, 1468308340, 1468308340),
    ("1468308340", 1468308340, "1468308340"),
    (1468308340000, 1468308340, 1468308340000),
    ("1468308340000", 1468308340, "1468308340000"),
    (1468308340000000, 1468308340, 1468308340000000),
    (1468308340123456789, 1468308340, 1468308340123456800),  # JS holds a double
    (1584954950.5, 1584954950, 1584954950.5),
    ("2021-03-10T11:59:22.080Z", 1615377562, 1615377562),
    ("2021-03-10T11:59:22+05:30", 1615357762, 1615357762),
    ("2021-03-10T11:59:22", 1615377562, 1615377562),
    ("2021-03-10", 1615334400, 1615334400),
    # Floored exactly: as a double it rounds up to the next second.
    (1615377562999999999, 1615377562, 1615377563000000000),
    ("1615377562999999999", 1615377562, "1615377562999999999"),
    ("20210310", 1615334400, "20210310"),  # ISO's basic date, not seconds of 1970
], ids=["seconds", "numeric-string", "ms", "ms-string", "us", "ns", "float", "iso-z",
        "iso-offset", "iso-naive-utc", "date-only", "ns-floored", "ns-string-floored",
        "basic-date"])
def test_d2_ts_is_integer_epoch_seconds(raw: Any, seconds: int, compat: Any) -> None:
    got = one(track(properties={"ts": raw}))["ts"]
    assert got == seconds and type(got) is int
    assert one(track(properties={"ts": raw}), COMPAT)["ts"] == compat


@pytest.mark.parametrize("raw", ["garbage", "N/A", True, False, {}, [1], 0, -5, "-86400",
                                 "2023-13-45", "20240230", "1" + "0" * 400, "1" + "0" * 5000],
                         ids=["garbage", "na", "true", "false", "object", "array", "zero",
                              "negative", "negative-string", "impossible-date",
                              "impossible-basic-date", "400-digits", "5000-digits"])
def test_d2_explicit_ts_that_is_not_a_time_rejects(raw: Any) -> None:
    with pytest.raises(MappingError, match=r"properties\.ts") as info:
        map_event(track(properties={"ts": raw}), DEFAULT)
    assert info.value.code == "invalid_timestamp"


@pytest.mark.parametrize("raw", ["1969-07-20T20:17:40Z", -14182940, "1960-02-29"],
                         ids=["iso", "seconds", "date"])
def test_d2_ts_before_1970_is_rejected_as_too_early_not_as_unreadable(raw: Any) -> None:
    with pytest.raises(MappingError) as info:
        map_event(track(properties={"ts": raw}), DEFAULT)
    assert info.value.code == "invalid_timestamp"
    assert "not after 1970-01-01" in info.value.message
    assert "not a time" not in info.value.message


def test_d2_empty_ts_counts_as_absent() -> None:
    event = track(properties={"ts": ""}, timestamp="2020-01-01T00:00:00Z")
    assert one(event)["ts"] == 1577836800


# ---------------------------------------------------------------------------- D3 identity

def test_d3_identify_without_any_id_is_rejected() -> None:
    event = {"type": "identify", "traits": {"email": "a@b.co"}}
    with pytest.raises(MappingError, match="no userId or anonymousId") as info:
        map_event(event, DEFAULT)
    assert info.value.code == "missing_identity"


def test_d3_event_without_any_id_is_rejected_even_with_anonymous_tracking() -> None:
    with pytest.raises(MappingError) as info:
        map_event({"type": "track", "event": "E"}, DEFAULT)
    assert info.value.code == "missing_identity"


def test_d3_alias_needs_previous_id_and_user_id() -> None:
    with pytest.raises(MappingError, match="previousId"):
        map_event({"type": "alias", "userId": "new"}, DEFAULT)
    with pytest.raises(MappingError, match="userId"):
        map_event({"type": "alias", "previousId": "old"}, DEFAULT)
    assert one({"type": "alias", "previousId": "old"}, COMPAT)["profileData"] == {}


# ---------------------------------------------------------------------------- D4 names

@pytest.mark.parametrize(("kind", "prefix"), [("page", "Web Page Viewed"),
                                              ("screen", "Screen Viewed")])
def test_d4_page_and_screen_names_are_not_html_escaped(kind: str, prefix: str) -> None:
    event = {"type": kind, "userId": "u1", "name": " Tom & Jerry <3 "}
    assert one(event)["evtName"] == f"{prefix}:  Tom & Jerry <3"
    assert one(event, COMPAT)["evtName"] == f"{prefix}:  Tom &amp; Jerry &lt;3"


# ---------------------------------------------------------------------------- D5 identities

def test_d5_numeric_ids_become_strings() -> None:
    assert one(track(userId=12345))["identity"] == "12345"
    assert one(track(userId=12345), COMPAT)["identity"] == 12345
    assert one(track(userId=1.5))["identity"] == "1.5"


def test_d5_integer_ids_past_2_to_the_53_stay_exact() -> None:
    # As a JS double 9007199254740993 is ...992: another user.
    assert one(track(userId=9007199254740993))["identity"] == "9007199254740993"
    assert one(identify(userId=123456789012345678))["identity"] == "123456789012345678"
    oid = MapperConfig(track_anonymous=True, object_id_mapping=True)
    assert one({"type": "track", "event": "E", "anonymousId": 7}, oid)["objectId"] == "7"


def test_integers_past_2_to_the_53_stay_exact_inside_stringified_values() -> None:
    # A 64-bit id nested in an object keeps its digits, as it does at the top level; only the
    # reference (compat) writes the double JS holds.
    big = 1234567890123456789
    props = {"order": {"id": big, "n": 1.0}, "ids": [big], "top": big}
    data = one(track(properties=props))["evtData"]
    assert data == {"order": '{"id":1234567890123456789,"n":1}', "ids": "[1234567890123456789]",
                    "top": big}
    assert one(identify(traits={"acct": {"id": big}}))["profileData"]["acct"] \
        == '{"id":1234567890123456789}'
    compat = one(track(properties=props), COMPAT)["evtData"]
    assert compat["order"] == '{"id":1234567890123456800,"n":1}'


@pytest.mark.parametrize("bad", [True, {"id": 1}, ["u1"]], ids=["bool", "object", "array"])
def test_d5_ids_that_are_not_text_are_rejected(bad: Any) -> None:
    with pytest.raises(MappingError) as info:
        map_event(track(userId=bad), DEFAULT)
    assert info.value.code == "invalid_identity"


def test_d5_identity_of_more_than_1024_characters_is_rejected() -> None:
    assert one(track(userId="x" * 1024))["identity"] == "x" * 1024
    with pytest.raises(MappingError, match="1025 characters") as info:
        map_event(track(userId="x" * 1025), DEFAULT)
    assert info.value.code == "invalid_identity"


# ---------------------------------------------------------------------------- D6 DOB

@pytest.mark.parametrize(("birthday", "dob"), [
    ("1990-05-17", "$D_642902400"),
    ("1990-05-17T00:00:00.000Z", "$D_642902400"),
    ("1965-03-01T00:00:00Z", "$D_-152668800"),
    (642902400, "$D_642902400"),
    (642902400000, "$D_642902400"),
    ("642902400", "$D_642902400"),
    ("$D_642902400", "$D_642902400"),
    ("19900517", "$D_642902400"),  # ISO's basic date, not seconds of 1970
    # Born 1972-05-01 and 1967-03-01, in ms: under 1e11 from 1970, yet no birthday is in 4299
    (73526400000, "$D_73526400"),
    (-89424000000, "$D_-89424000"),
    ("73526400000", "$D_73526400"),
    (73526400000000, "$D_73526400"),
    (73526400, "$D_73526400"),  # the same birthday in seconds
    ("1990", "$D_631152000"),  # a year alone: 1 January, not 1990 seconds into 1970
    (" 1965 ", "$D_-157766400"),
    (1990, "$D_1990"),  # a number is epoch seconds, whatever its size
], ids=["date", "datetime", "before-1970", "epoch", "epoch-ms", "epoch-string", "already-D",
        "basic-date", "ms-1972", "ms-1967", "ms-string-1972", "us-1972", "seconds-1972",
        "year", "year-before-1970", "number-1990"])
def test_d6_dob_becomes_a_clevertap_date(birthday: Any, dob: str) -> None:
    assert one(identify(traits={"birthday": birthday}))["profileData"]["DOB"] == dob
    assert one(identify(traits={"birthday": birthday}), COMPAT)["profileData"]["DOB"] \
        == birthday


@pytest.mark.parametrize("birthday", ["soon", True, "31/12/1990"], ids=["text", "bool", "dmy"])
def test_d6_unreadable_dob_is_dropped_with_a_warning(birthday: Any) -> None:
    trace = Trace()
    record = map_event(identify(traits={"birthday": birthday, "plan": "pro"}), DEFAULT, trace)[0]
    assert "DOB" not in record["profileData"]
    assert record["profileData"]["plan"] == "pro"
    assert any(d.kind == "warning" and d.field == "DOB" for d in trace.decisions)


def test_fixes_are_named_in_the_trace() -> None:
    trace = Trace()
    map_event(track(userId=5, properties={"ts": "1468308340"}), DEFAULT, trace)
    assert trace.fixes == ["D2", "D5"] or set(trace.fixes) == {"D2", "D5"}
    compat_trace = Trace()
    map_event(track(userId=5, properties={"ts": "1468308340"}), COMPAT, compat_trace)
    assert compat_trace.fixes == []


def test_mapping_never_changes_the_input_event() -> None:
    big = 2**60 + 1
    event = {"type": "track", "userId": "u1", "event": "Order Completed",
             "properties": {"products": [{"id": big}], "n": big,
                            "category-unsubscribe": {"ids": [big]}}}
    snapshot = json.dumps(event)
    for config in (DEFAULT, COMPAT):
        map_event(event, config)
        assert json.dumps(event) == snapshot
    assert map_event(event, COMPAT)[0]["evtData"]["Items"] == [{"id": 1152921504606847000}]
    assert map_event(event, DEFAULT)[0]["evtData"]["Items"] == [{"id": big}]


@pytest.mark.parametrize("event, code", [
    ({"type": "track", "event": "Played", "anonymousId": "a1"}, "anonymous_not_allowed"),
    ([1, 2], "not_an_object"),
    ({"type": 7}, "unsupported_type"),
    (track(properties={"ts": "soon"}), "invalid_timestamp"),
    (identify(userId=True), "invalid_identity"),
], ids=["anonymous", "not-an-object", "type-not-a-string", "bad-ts", "bad-identity"])
def test_map_or_reject_returns_the_error_map_event_raises(event: Any, code: str) -> None:
    """The hot path's non-raising form gives the same verdict, early or deep in the mapping."""
    config = MapperConfig()
    with pytest.raises(MappingError) as raised:
        map_event(event, config)
    returned = map_or_reject(event, config)
    assert isinstance(returned, MappingError)
    assert (returned.code, returned.message) == (raised.value.code, raised.value.message) \
        and returned.code == code
    assert map_or_reject(track(), config) == map_event(track(), config)
