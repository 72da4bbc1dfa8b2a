"""Decision traces (clevertap_mapper.explain): golden explanations, the overview, selection.

The golden files under tests/golden/dryrun/ hold, for representative events of every type and
rule, the full explanation as ``--dry-run --json`` prints it. When the mapping or the traces
change on purpose, regenerate them and review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_explain.py tests/test_dryrun_cli.py

Without UPDATE_GOLDEN a changed explanation fails the test.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clevertap_mapper import MapperConfig, Trace, map_event
from clevertap_mapper.checks import Checker
from clevertap_mapper.errors import MappingError
from clevertap_mapper.explain import (
    NOTHING,
    OUTPUT_FIXES,
    Overview,
    Selection,
    explain_event,
    explain_input,
    explain_item,
    record_fields,
    rule_id,
)
from clevertap_mapper.io.model import Position, Rejection, SourceEvent, SourceRecords
from clevertap_mapper.io.readers import read_items
from clevertap_mapper.jsonutil import dumps, loads
from clevertap_mapper.mapping.core import map_or_reject
from clevertap_mapper.mapping.js import MISSING, truthy
from tests.conftest import CONFORMANCE
from tests.test_properties import events

GOLDEN = Path(__file__).parent / "golden" / "dryrun"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))

DEFAULT = MapperConfig()
ANON = MapperConfig(track_anonymous=True)
OBJECT_ID = MapperConfig(track_anonymous=True, object_id_mapping=True)
COMPAT = MapperConfig(compat="rudderstack")

T0 = "2021-03-04T05:06:07Z"  # 1614834367

# name -> (event, config): one of every type and rule, every fix, every rejection kind.
CASES: dict[str, tuple[dict[str, Any], MapperConfig]] = {
    "identify_mapped_and_custom_traits": ({
        "type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m1",
        "channel": "web", "timestamp": T0, "sentAt": "2021-03-04T05:06:08Z",
        "traits": {"email": "ada@example.com", "phone": "+441234", "name": "Ada Lovelace",
                   "firstName": "Ada", "plan": "pro", "address": {"city": "London"},
                   "tags": ["a", "b"], "nickname": None},
        "context": {"ip": "203.0.113.7", "library": {"name": "analytics.js"},
                    "traits": {"plan": "enterprise", "referrer": "ad"}},
        "properties": {"ignored": True},
    }, DEFAULT),
    "identify_gender_mapped": ({
        "type": "identify", "userId": "u1", "timestamp": T0,
        "traits": {"gender": "female"}}, DEFAULT),
    "identify_gender_dropped": ({
        "type": "identify", "userId": "u1", "timestamp": T0,
        "traits": {"gender": "other", "context_gender_hidden": 1},
        "context": {"traits": {"gender": "F"}}}, DEFAULT),
    "identify_name_from_first_and_last": ({
        "type": "identify", "userId": "u1", "timestamp": T0,
        "traits": {"firstName": "Ada", "lastName": "Lovelace"}}, DEFAULT),
    "identify_dob_fix_d6": ({
        "type": "identify", "userId": "u1", "timestamp": T0,
        "traits": {"birthday": "1990-01-02"}}, DEFAULT),
    "identify_dob_not_a_date_d6": ({
        "type": "identify", "userId": "u1", "timestamp": T0,
        "traits": {"birthday": "someday"}}, DEFAULT),
    "identify_override_fields": ({
        "type": "identify", "userId": "u1", "timestamp": T0,
        "traits": {"email": "a@example.com",
                   "overrideFields": {"Email": "b@example.com", "score": {"x": 1}}}}, DEFAULT),
    "identify_anonymous_identity": ({
        "type": "identify", "anonymousId": "a1", "timestamp": T0,
        "traits": {"plan": "free"}}, DEFAULT),
    "identify_object_id_mapping_with_device_token": ({
        "type": "identify", "userId": "u1", "anonymousId": "a1", "timestamp": T0,
        "traits": {"email": "a@example.com"},
        "context": {"device": {"token": "tok-123", "id": "dev-1"}, "os": {"name": "Android"}},
        "integrations": {"CleverTap": {"deviceTokenType": "gcm"}}}, OBJECT_ID),
    "identify_device_token_without_object_id_mapping": ({
        "type": "identify", "userId": "u1", "anonymousId": "a1", "timestamp": T0,
        "context": {"device": {"token": "tok-123"}, "os": {"name": "iOS"}}}, DEFAULT),
    "identify_missing_identity_d3": ({
        "type": "identify", "timestamp": T0, "traits": {"email": "a@example.com"}}, DEFAULT),
    "identify_context_ts_null_d2": ({
        "type": "identify", "userId": "u1",
        "context": {"traits": {"ts": None}}}, DEFAULT),
    "track_properties": ({
        "type": "track", "userId": "u1", "event": "Product Viewed", "timestamp": T0,
        "properties": {"product_id": "p1", "price": 9.5, "variant": {"size": "M"},
                       "nothing": None},
        "traits": {"plan": "pro"}, "context": {"page": {"url": "https://x.example/"}}}, DEFAULT),
    "track_order_completed_charged": ({
        "type": "track", "userId": "u1", "event": "Order Completed", "timestamp": T0,
        "properties": {"checkout_id": "c1", "revenue": 42.5, "currency": "GBP",
                       "products": [{"product_id": "p1", "price": 21.25, "quantity": 2}]}},
        DEFAULT),
    "track_object_id_mapping": ({
        "type": "track", "userId": "u1", "anonymousId": "a1", "event": "Played",
        "timestamp": T0}, OBJECT_ID),
    "track_anonymous_rejected": ({
        "type": "track", "anonymousId": "a1", "event": "Played", "timestamp": T0}, DEFAULT),
    "track_anonymous_allowed": ({
        "type": "track", "anonymousId": "a1", "event": "Played", "timestamp": T0}, ANON),
    "track_missing_identity_d3": ({
        "type": "track", "traits": {"userId": None}, "event": "Played", "timestamp": T0},
        replace(ANON)),
    "track_ts_d1_from_receivedat_sentat": ({
        "type": "track", "userId": "u1", "event": "Played",
        "originalTimestamp": "2021-03-04T05:00:00Z", "sentAt": "2021-03-04T05:00:10Z",
        "receivedAt": "2021-03-04T06:00:10Z"}, DEFAULT),
    "track_no_time_at_all": ({
        "type": "track", "userId": "u1", "event": "Played"}, DEFAULT),
    "track_ts_d2_numeric_string": ({
        "type": "track", "userId": "u1", "event": "Played",
        "properties": {"ts": "1468308340"}}, DEFAULT),
    "track_ts_d2_milliseconds": ({
        "type": "track", "userId": "u1", "event": "Played",
        "properties": {"ts": 1468308340000}}, DEFAULT),
    "track_ts_iso_same_in_both_modes": ({
        "type": "track", "userId": "u1", "event": "Played",
        "properties": {"ts": T0}}, DEFAULT),
    "track_ts_invalid_rejected_d2": ({
        "type": "track", "userId": "u1", "event": "Played",
        "properties": {"ts": "yesterday"}}, DEFAULT),
    "track_identity_number_d5": ({
        "type": "track", "userId": 12345, "event": "Played", "timestamp": T0}, DEFAULT),
    "track_identity_boolean_rejected_d5": ({
        "type": "track", "userId": True, "event": "Played", "timestamp": T0}, DEFAULT),
    "track_missing_event_name": ({
        "type": "track", "userId": "u1", "timestamp": T0}, DEFAULT),
    "page_named": ({
        "type": "page", "userId": "u1", "name": "Home", "timestamp": T0,
        "properties": {"url": "https://x.example/", "title": "Home"}}, DEFAULT),
    "page_without_name": ({
        "type": "page", "userId": "u1", "timestamp": T0}, DEFAULT),
    "screen_html_name_d4": ({
        "type": "screen", "userId": "u1", "name": "Tips & <Tricks>", "timestamp": T0}, DEFAULT),
    "alias": ({
        "type": "alias", "previousId": "a1", "userId": "u1", "timestamp": T0}, DEFAULT),
    "alias_without_user_id_d3": ({
        "type": "alias", "previousId": "a1", "timestamp": T0}, DEFAULT),
    "unsupported_type": ({"type": "group", "userId": "u1", "groupId": "g1"}, DEFAULT),
    "compat_mode_dob_and_time": ({
        "type": "identify", "userId": 7, "timestamp": T0,
        "traits": {"birthday": "1990-01-02", "ts": "1468308340"}}, COMPAT),
}


def _config_dict(config: MapperConfig) -> dict[str, Any]:
    return {"track_anonymous": config.track_anonymous,
            "object_id_mapping": config.object_id_mapping, "compat": config.compat}


def _pretty(value: Any) -> str:
    return json.dumps(json.loads(dumps(value)), indent=2, ensure_ascii=False) + "\n"


def check_golden(path: Path, text: str) -> None:
    """Compare ``text`` with the golden file (or rewrite it under UPDATE_GOLDEN=1)."""
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path.name} missing: run UPDATE_GOLDEN=1 pytest {__file__} to create it")
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (f"{path.name} changed; if on purpose, rerun with UPDATE_GOLDEN=1 "
                              "and review the diff")


# ---------------------------------------------------------------------------- golden traces


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_explanation(name: str) -> None:
    event, config = CASES[name]
    explanation = explain_event(event, config, source="events.ndjson", line=1)
    text = _pretty({"event": event, "config": _config_dict(config),
                    "explanation": explanation.as_dict()})
    check_golden(GOLDEN / f"{name}.json", text)


def test_every_fix_and_kind_is_covered_by_a_golden_case() -> None:
    fixes: set[str] = set()
    kinds: set[str] = set()
    types: set[str] = set()
    codes: set[str] = set()
    for event, config in CASES.values():
        e = explain_event(event, config)
        fixes.update(f.fix for f in e.fixes)
        kinds.update(d.kind for d in e.decisions)
        types.add(e.type)
        if e.rejection:
            codes.add(e.rejection.code)
    assert fixes == {"D1", "D2", "D3", "D4", "D5", "D6"}
    assert kinds == {"mapped", "changed", "dropped", "fix", "warning", "rejected"}
    assert {"identify", "track", "page", "screen", "alias"} <= types
    assert {"anonymous_not_allowed", "missing_identity", "invalid_timestamp",
            "invalid_identity", "unsupported_type", "missing_event_name"} <= codes


# ---------------------------------------------------------------------------- explanations


def _decision(e: Any, field: str, kind: str = "mapped") -> Any:
    found = [d for d in e.decisions if d.field == field and d.kind == kind]
    assert found, f"no {kind} decision for {field}: {[d.rule for d in e.decisions]}"
    return found[0]


def test_identify_explains_every_profile_field() -> None:
    event, config = CASES["identify_mapped_and_custom_traits"]
    e = explain_event(event, config)
    assert e.records == map_event(event, config)
    assert _decision(e, "Email").rule == "Email <- traits.email"
    assert _decision(e, "Email").source == "traits.email"
    # the later root wins for a custom key: context.traits.plan over traits.plan
    assert e.records[0]["profileData"]["plan"] == "enterprise"
    stringified = _decision(e, "address", "changed")
    assert stringified.before == {"city": "London"}
    assert stringified.after == '{"city":"London"}'
    # inputs not sent, with their reasons
    why = {p: d.why for d in e.dropped for p in d.paths}
    assert why["traits.firstName"].startswith("reserved for a mapped CleverTap field")
    assert why["traits.nickname"] == "null, not sent"
    assert "context" in why["context.ip"] and "context.library.*" in why
    assert why["properties.*"].startswith("not sent: identify sends traits")
    assert why["messageId"] == why["channel"]
    assert why["sentAt"] == "not needed: ts came from timestamp"
    assert "traits.email" not in why  # read, as Email
    assert dict(e.input)["traits.email"] == "ada@example.com"


def test_gender_change_and_drop_are_recorded_with_values() -> None:
    mapped = explain_event(*CASES["identify_gender_mapped"])
    change = _decision(mapped, "Gender", "changed")
    assert (change.before, change.after) == ("female", "F")
    dropped = explain_event(*CASES["identify_gender_dropped"])
    gone = [d for d in dropped.dropped if d.paths == ("traits.gender",)]
    assert gone and gone[0].value == "other" and "not a CleverTap gender" in gone[0].why
    assert "Gender" not in dropped.records[0]["profileData"]


def test_fixes_name_the_decisions_and_what_compat_sends() -> None:
    e = explain_event(*CASES["identify_dob_fix_d6"])
    assert [f.fix for f in e.fixes] == ["D6", "D1"]
    d6 = e.fixes[0].decisions[0]
    assert (d6.before, d6.after) == ("1990-01-02", "$D_631238400")
    assert e.differs_from_compat
    diffs = {d.field: (d.default, d.compat) for d in e.differences}
    assert diffs == {"profileData.DOB": ("$D_631238400", "1990-01-02"),
                     "ts": (1614834367, MISSING)}
    assert e.compat_records == map_event(CASES["identify_dob_fix_d6"][0], COMPAT)


def test_d1_derives_the_event_time_from_the_clock_skew() -> None:
    e = explain_event(*CASES["track_ts_d1_from_receivedat_sentat"])
    d1 = _decision(e, "ts", "fix")
    assert d1.fix == "D1" and d1.after == e.records[0]["ts"] == 1614837600
    assert d1.source == "receivedAt, sentAt, originalTimestamp"


def test_d1_names_receivedat_when_the_client_sent_no_times() -> None:
    e = explain_event({"type": "track", "userId": "u1", "event": "E",
                       "receivedAt": "2021-03-04T05:06:07Z"}, DEFAULT)
    d1 = _decision(e, "ts", "fix")
    assert d1.source == "receivedAt" and d1.after == e.records[0]["ts"] == 1614834367


def test_d1_warning_does_not_call_a_readable_time_unreadable() -> None:
    # sentAt alone is the client's send time, not the event's: no ts, and the warning says
    # which fields it looked at rather than that sentAt is not a time.
    e = explain_event({"type": "track", "userId": "u1", "event": "E",
                       "sentAt": "2021-03-04T05:06:07Z"}, DEFAULT)
    assert "ts" not in e.records[0]
    warning = _decision(e, "ts", "warning")
    assert "sentAt is not" not in warning.rule and "no event time in sentAt" in warning.rule


def test_unread_event_times_do_not_claim_a_ts_that_was_not_sent() -> None:
    e = explain_event({"type": "track", "userId": "u1", "event": "E", "timestamp": "garbage",
                       "sentAt": "2021-03-04T05:06:07Z"}, DEFAULT)
    assert "ts" not in e.records[0]
    (why,) = [d.why for d in e.dropped if "sentAt" in d.paths]
    assert "ts came from" not in why and "ts was not set" in why


def test_d2_a_ts_before_1970_is_traced_as_too_early_as_its_rejection_says() -> None:
    e = explain_event({"type": "track", "userId": "u1", "event": "E",
                       "properties": {"ts": "1969-07-20T20:17:40Z"}}, DEFAULT)
    assert e.rejection is not None and "not after 1970-01-01" in e.rejection.message
    rule = _decision(e, "ts", "rejected").rule
    assert rule.startswith("ts: not after 1970-01-01, rejected") and "not a time" not in rule


def test_same_output_in_both_modes_is_no_difference() -> None:
    e = explain_event(*CASES["track_ts_iso_same_in_both_modes"])
    assert e.fixes == [] and not e.differs_from_compat and e.differences == []
    change = _decision(e, "ts", "changed")
    assert (change.before, change.after) == (T0, 1614834367)


def test_rejections_carry_code_message_and_fix() -> None:
    e = explain_event(*CASES["identify_missing_identity_d3"])
    assert e.rejection is not None and e.rejection.code == "missing_identity"
    assert "add an id" in e.rejection.message
    assert [f.fix for f in e.fixes][-1] == "D3"
    assert e.compat_rejection is not None  # compat rejects it too: no difference
    assert not e.differs_from_compat and e.records == [] and e.dropped == []

    bad_ts = explain_event(*CASES["track_ts_invalid_rejected_d2"])
    assert bad_ts.rejection is not None and bad_ts.rejection.code == "invalid_timestamp"
    assert bad_ts.compat_rejection is None and bad_ts.compat_records  # RudderStack sends it
    assert bad_ts.differs_from_compat and "D2" in [f.fix for f in bad_ts.fixes]


def test_compat_mode_explains_what_the_default_mode_would_change() -> None:
    event, config = CASES["compat_mode_dob_and_time"]
    e = explain_event(event, config)
    assert e.mode == "rudderstack" and e.records == e.compat_records
    assert {f.fix for f in e.fixes} == {"D2", "D5", "D6"}
    assert e.differs_from_compat
    assert {d.field for d in e.differences} == {"profileData.DOB", "ts", "identity"}
    assert all(d.kind != "fix" for d in e.decisions)  # compat mode applies no fix


def test_record_fields_attach_each_decision_to_its_field() -> None:
    event, config = CASES["identify_object_id_mapping_with_device_token"]
    e = explain_event(event, config)
    assert [r["type"] for r in e.records] == ["profile", "token"]
    profile = {n.path: n for n in record_fields(e, 0)}
    assert [d.rule for d in profile["objectId"].decisions] == [
        "objectId <- anonymousId (objectId mapping)"]
    assert [d.rule for d in profile["profileData.identity"].decisions] == [
        "profileData.identity <- userId"]
    assert profile["type"].note == "identify -> profile record"
    token = {n.path: n for n in record_fields(e, 1)}
    assert token["tokenData.id"].decisions[0].source == "context.device.token"
    assert token["tokenData.type"].decisions[0].source == "integrations.CleverTap.deviceTokenType"
    assert token["objectId"].note == "objectId <- anonymousId"

    track = explain_event(*CASES["track_properties"])
    fields = {n.path: n for n in record_fields(track, 0)}
    assert fields["evtData.product_id"].note == "product_id <- properties.product_id"
    assert fields["evtData.variant"].decisions[0].kind == "changed"
    assert fields["evtData"].value is MISSING  # a container line


def test_explain_item_handles_records_and_unreadable_lines() -> None:
    records = SourceRecords(Position("out.ndjson", 4), [{"type": "event", "evtName": "x"}])
    e = explain_item(records, DEFAULT)
    assert e.type == "(records)" and e.records == records.records and e.rejection is None
    assert record_fields(e, 0)[0].note == "already a CleverTap record: sent as it is"
    bad = Rejection(Position("in.ndjson", 2), "read", "invalid_json", "not valid JSON",
                    raw="{oops")
    e = explain_item(bad, DEFAULT)
    assert e.type == "(unreadable)" and e.rejection is not None
    assert e.rejection.as_dict() == {"stage": "read", "code": "invalid_json",
                                     "message": "not valid JSON"}
    assert e.input == [("(line)", "{oops")]


def test_check_findings_reject_under_strict_and_report_under_warn() -> None:
    event = {"type": "track", "userId": "u1", "event": "E", "timestamp": T0,
             "properties": {f"p{i}": i for i in range(5)}}
    strict = explain_event(event, DEFAULT, Checker("strict", max_event_properties=2))
    assert strict.findings and strict.findings[0][1].severity == "error"
    assert strict.rejection is not None and strict.rejection.stage == "check"
    warn = explain_event(event, DEFAULT, Checker("warn", max_event_properties=2))
    assert warn.findings and warn.rejection is None
    off = explain_event(event, DEFAULT, Checker("off", max_event_properties=2))
    assert off.findings == [] and off.rejection is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(
    st.sampled_from(["type", "userId", "anonymousId", "event", "name", "properties", "traits",
                     "context", "timestamp", "previousId", "originalTimestamp"]),
    st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**13) | st.text(max_size=8)
                 | st.sampled_from(["identify", "track", "page", "screen", "alias", T0]),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)))
def test_any_event_is_explained_without_crashing(event: dict[str, Any]) -> None:
    for config in (DEFAULT, OBJECT_ID, COMPAT):
        e = explain_event(event, config)
        assert bool(e.records) == (e.rejection is None)
        json.loads(dumps(e.as_dict()))  # JSON-ready


# ---------------------------------------------------------------------------- rule ids


@pytest.mark.parametrize(("rule", "expected"), [
    ("Email <- traits.email", "Email <- traits.email"),
    ("plan <- traits.plan (custom)", "* <- traits.* (custom)"),
    ("a.b <- context.traits.a.b (custom)", "* <- context.traits.* (custom)"),
    ("evtData.coupon <- properties.coupon (custom)", "evtData.* <- properties.* (custom)"),
    ("score <- traits.overrideFields.score (override, sent as given)",
     "* <- traits.overrideFields.* (override, sent as given)"),
    ("evtData.variant: stringified, CleverTap allows no nested values here",
     "evtData.*: stringified, CleverTap allows no nested values here"),
    ("nickname: null, not sent", "*: null, not sent"),
    ("traits.firstName: reserved for a mapped CleverTap field, not copied as a custom field",
     "traits.*: reserved for a mapped CleverTap field, not copied as a custom field"),
], ids=["fixed", "custom", "custom-dotted", "custom-evtdata", "override", "stringified",
        "null", "reserved"])
def test_rule_id(rule: str, expected: str) -> None:
    assert rule_id(rule) == expected


def test_rule_texts_hold_no_values() -> None:
    # Values live in before/after, so equal rules count together across events.
    secret = "Zq9-unique-value"
    for event, config in CASES.values():
        blob = json.dumps(json.loads(dumps(event)))
        for d in explain_event(json.loads(blob.replace('"u1"', f'"{secret}"')),
                               config).decisions:
            assert secret not in d.rule


# ---------------------------------------------------------------------------- the overview


def _items(events: list[Any]) -> list[SourceEvent]:
    return [SourceEvent(Position("in.ndjson", i), e) for i, e in enumerate(events, 1)]


def test_overview_counts_the_whole_input() -> None:
    events = [CASES[n][0] for n in ("identify_dob_fix_d6", "track_properties",
                                    "track_anonymous_rejected", "screen_html_name_d4",
                                    "identify_missing_identity_d3", "alias")]
    overview = Overview(DEFAULT)
    shown = list(explain_input(_items(events), DEFAULT, overview, limit=1))
    assert len(shown) == 1 and overview.shown == 1 and overview.matched == 6
    assert overview.events == 6
    assert overview.by_type == {"identify": 2, "track": 2, "screen": 1, "alias": 1}
    assert overview.records == {"profile": 2, "event": 2}
    assert overview.rejected == {"anonymous_not_allowed": 1, "missing_identity": 1}
    assert overview.rejection_examples["missing_identity"][0] == "in.ndjson:5"
    assert overview.rules["DOB <- traits.birthday"] == 1
    assert overview.rules["identity <- userId"] == 3  # the alias: identity <- previousId
    assert overview.rules["evtData.*: stringified, CleverTap allows no nested values here"] == 1
    # D1 also applies to the identify without ids (ts is set before the identity check)...
    assert overview.fixes_applied == {"D1": 5, "D3": 1, "D4": 1, "D6": 1}
    assert overview.differs == 4  # ...but that event is rejected in both modes
    assert overview.differs_by_fix == {"D1": 4, "D4": 1, "D6": 1}
    summary = overview.as_dict()
    assert summary["records"] == 4 and summary["rejected"] == 2
    assert list(summary["rules"].values()) == sorted(summary["rules"].values(), reverse=True)


def _conformance_events() -> list[tuple[Any, MapperConfig]]:
    out = []
    for name in ("reference-tests.ndjson", "public.ndjson"):
        for line in (CONFORMANCE / name).read_text().splitlines():
            case = json.loads(line)
            cf = case["config"]
            config = MapperConfig(track_anonymous=truthy(cf.get("trackAnonymous")),
                                  object_id_mapping=truthy(cf.get("enableObjectIdMapping")))
            try:
                event = loads(json.dumps(case["event"]))
            except ValueError:
                continue  # integers beyond 64 bits: the default mode cannot read the line
            out.append((event, config))
    return out


def _has_unsafe_integer(value: Any) -> bool:
    if type(value) is int:
        return abs(value) > 2**53
    if type(value) is dict:
        return any(_has_unsafe_integer(v) for v in value.values())
    if type(value) is list:
        return any(_has_unsafe_integer(v) for v in value)
    return False


def test_deduced_compat_difference_equals_the_mapped_one() -> None:
    # The overview skips mapping --compat rudderstack unless an event is rejected, deducing
    # the difference from the fixes the trace names. Prove the deduction on every event we
    # have, against mapping both modes and comparing.
    cases = [*_conformance_events(), *((e, c) for e, c in CASES.values() if not c.compat)]
    assert len(cases) > 1000
    checked = 0
    for event, config in cases:
        if _has_unsafe_integer(event):
            continue  # compat rounds these as JavaScript does: the documented blind spot
        for cfg in {config, replace(config, track_anonymous=True),
                    replace(config, object_id_mapping=not config.object_id_mapping)}:
            fast, exact = Overview(cfg), Overview(cfg, exact=True)
            item = SourceEvent(Position("c", 1), event)
            fast.add(item)
            exact.add(item)
            assert (fast.differs, dict(fast.differs_by_fix)) == (
                exact.differs, dict(exact.differs_by_fix)), (event, cfg)
            checked += 1
    assert checked > 3000


def _changed(value: Any) -> Any:
    """Another value of the same kind, as usable as ``value``."""
    if type(value) is bool:
        return not value
    if type(value) in (int, float):
        return value + 7
    if type(value) is str:
        return value + "Zq"
    if type(value) is list:
        return [*value, "Zq"]
    return {**value, "zq": "1"}


def _sent(event: Any, config: MapperConfig) -> str:
    outcome = map_or_reject(event, config)
    return outcome.code if isinstance(outcome, MappingError) else dumps(outcome).decode()


def test_inputs_said_not_sent_do_not_change_what_is_sent() -> None:
    # Every "Input fields not sent" line must be true: changing such a field (or, for one
    # said to be null or empty, removing it) leaves the records of the explained mode as
    # they were. A string overrideFields ("ab" -> {"0": "a", "1": "b"}) was listed as not
    # mapped; so were null traits.ts, and a context.traits.ts that traits.ts won over.
    checked = 0
    for event, config in _conformance_events():
        for cfg in (config, replace(config, compat="rudderstack")):
            e = explain_event(event, cfg)
            sent = _sent(event, cfg)
            for note in e.dropped:
                for path in note.paths:
                    *parents, key = path.removesuffix(".*").split(".")
                    other = loads(dumps(event))
                    holder = other
                    for part in parents:
                        holder = holder[part]
                    if note.why == NOTHING:
                        del holder[key]
                    elif not truthy(holder[key]) or holder[key] in ({}, []):
                        continue  # a falsy value that is not empty: changing it may be read
                    else:
                        holder[key] = _changed(holder[key])
                    assert _sent(other, cfg) == sent, (path, note.why, event, cfg)
                    checked += 1
    assert checked > 10_000


def test_not_sent_reasons_name_the_field_that_won() -> None:
    identify = {"type": "identify", "userId": "u1", "traits": {"ts": 1700000000, "overrideFields":
                {"plan": "p"}}, "context": {"traits": {"ts": 1600000000,
                                                       "overrideFields": {"plan": "q"}}}}
    why = {p: d.why for d in explain_event(identify, DEFAULT).dropped for p in d.paths}
    assert why["context.traits.ts"] == "not needed: ts came from traits.ts"
    assert why["context.traits.overrideFields.*"].startswith(
        "not sent: traits.overrideFields is used instead")
    spread = {"type": "identify", "userId": "u1", "traits": {"overrideFields": "ab", "ts": None}}
    e = explain_event(spread, COMPAT)
    assert e.records[0]["profileData"] == {"0": "a", "1": "b"}
    why = {p: d.why for d in e.dropped for p in d.paths}
    assert "traits.overrideFields" not in why  # sent, character by character
    assert why["traits.ts"] == NOTHING


def test_output_fixes_always_change_the_records() -> None:
    # The premise of the deduction: a traced D1/D2/D4/D5/D6 on a sent event means compat
    # sends something else.
    for event, config in CASES.values():
        if config.compat:
            continue
        e = explain_event(event, config)
        if e.rejection is None and OUTPUT_FIXES & {f.fix for f in e.fixes}:
            assert e.differs_from_compat and e.differences, event


def test_overview_counts_do_not_depend_on_what_was_explained_before() -> None:
    # rule_id caches ids; an id cached by an earlier explanation must not let the notes on
    # excluded traits ("reserved for a mapped CleverTap field") into the counts.
    event = {"type": "identify", "userId": "u1", "traits": {"email": "a@b.co", "phone": "1"}}
    before = Overview(DEFAULT)
    before.add(SourceEvent(Position("x", 1), event))
    trace = Trace()
    map_event(event, DEFAULT, trace)
    for d in trace.decisions:
        rule_id(d.rule)
    after = Overview(DEFAULT)
    after.add(SourceEvent(Position("x", 1), event))
    assert after.rules == before.rules
    assert not any("reserved for a mapped" in r for r in after.rules)


def test_overview_in_compat_mode_names_the_default_fixes() -> None:
    events = [CASES["identify_dob_fix_d6"][0], CASES["track_ts_d2_numeric_string"][0],
              CASES["page_named"][0]]
    overview = Overview(COMPAT)
    for item in _items(events):
        overview.add(item)
    assert overview.fixes_applied == {"D1": 2, "D2": 1, "D6": 1}
    assert overview.differs == 3
    assert not any(r.startswith("ts <- timestamp") for r in overview.rules)  # no D1 in compat
    codes = [a["code"] for a in overview.advice()]
    assert "compat_differs" in codes and "no_time" in codes
    no_time = next(a for a in overview.advice() if a["code"] == "no_time")["message"]
    assert "fix D1" in no_time


def _advice(config: MapperConfig, *events: dict[str, Any]) -> dict[str, str]:
    overview = Overview(config)
    for item in _items(list(events)):
        overview.add(item)
    return {a["code"]: a["message"] for a in overview.advice()}


def test_advice_anonymous_identity_unless_object_id_mapping() -> None:
    anon_identify = CASES["identify_anonymous_identity"][0]
    anon_track = CASES["track_anonymous_allowed"][0]
    advice = _advice(ANON, anon_identify, anon_track)
    assert "2 events sent with identity = anonymousId" in advice["anonymous_identity"]
    assert "--object-id-mapping" in advice["anonymous_identity"]
    assert "--no-track-anonymous" in advice["anonymous_identity"]
    assert "--no-track-anonymous" not in _advice(DEFAULT, anon_identify)["anonymous_identity"]
    assert "anonymous_identity" not in _advice(OBJECT_ID, anon_identify, anon_track)


def test_advice_for_rejected_anonymous_events_missing_times_and_tokens() -> None:
    advice = _advice(DEFAULT, CASES["track_anonymous_rejected"][0],
                     CASES["track_no_time_at_all"][0],
                     CASES["identify_device_token_without_object_id_mapping"][0],
                     CASES["identify_gender_dropped"][0], CASES["identify_dob_not_a_date_d6"][0])
    assert "--track-anonymous" in advice["anonymous_not_allowed"]
    assert advice["no_time"].startswith("1 record without a time")
    assert "--object-id-mapping" in advice["tokens_unsent"]
    assert "Gender not M or F in 1 profile" in advice["gender_dropped"]
    assert "DOB is not sent" in advice["dob_dropped"]
    assert _advice(DEFAULT, CASES["track_properties"][0]) == {}


def test_overview_counts_unreadable_lines_and_records(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    path.write_text('{"type": "event", "evtName": "x", "evtData": {}, "identity": "u"}\n'
                    "{not json\n"
                    + json.dumps({"batch": [CASES["alias"][0], 5]}) + "\n")
    overview = Overview(DEFAULT)
    explained = list(explain_input(read_items([str(path)]), DEFAULT, overview,
                                   selection=Selection.of(lines=[3])))
    assert [(e.line, e.index, e.type) for e in explained] == [(3, 1, "alias"),
                                                            (3, 2, "(unreadable)")]
    assert overview.by_type == {"(records)": 1, "(unreadable)": 2, "alias": 1}
    assert overview.rejected == {"invalid_json": 1, "not_an_object": 1}
    assert overview.records == {"event": 1, "profile": 1}


# ---------------------------------------------------------------------------- selection


@pytest.mark.parametrize(("selection", "expected"), [
    (Selection.of(), [1, 2, 3, 4]),
    (Selection.of(lines=[2, 4]), [2, 4]),
    (Selection.of(types=["TRACK"]), [1, 2]),
    (Selection.of(event_names=["order completed"]), [2]),
    (Selection.of(event_names=["home"]), [3]),  # a page name
    (Selection.of(types=["track"], event_names=["home"]), []),
    (Selection.of(lines=[1, 2], types=["track"], event_names=["Played"]), [1]),
], ids=["all", "lines", "type", "event", "page-name", "and", "all-three"])
def test_selection(selection: Selection, expected: list[int]) -> None:
    events = [{"type": "track", "event": "Played"}, {"type": "track", "event": "Order Completed"},
              {"type": "page", "name": "Home"}, {"type": "identify", "userId": "u"}]
    assert [i.pos.line for i in _items(events) if selection.matches(i)] == expected


def test_explaining_does_not_change_what_the_mapping_sends() -> None:
    for event, config in CASES.values():
        e = explain_event(event, config)
        try:
            assert e.records == map_event(event, config) or e.rejection is not None
        except MappingError as exc:
            assert e.rejection is not None and e.rejection.code == exc.code


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.sampled_from(["identify", "track", "page", "screen", "alias"]),
       st.dictionaries(st.sampled_from(["n", "price", "ts", "birthday", "name", "products"]),
                       st.sampled_from([2**53 + 1, 2**64, 10**21 - 1, 10**21, 10**29, 10**308,
                                        10**309, -(10**400)]) | st.integers()
                       | st.lists(st.integers(), max_size=2),
                       max_size=3), st.booleans())
def test_any_event_read_exactly_is_explained_in_both_modes(
        event: dict[str, Any], kind: str, numbers: dict[str, Any], object_ids: bool) -> None:
    # The default mode reads integers of any size exactly, and the view maps that same event
    # in compat mode too: nothing there may crash on one past 64 bits, or past the doubles.
    config = MapperConfig(track_anonymous=True, object_id_mapping=object_ids)
    for shaped in (event, {"type": kind, "userId": "u", "anonymousId": "a", "event": "E",
                           "name": "N", "properties": numbers, "traits": numbers}):
        dumps(explain_event(shaped, config, Checker()).as_dict())
