"""Pre-flight checks (clevertap_mapper/checks.py): each limit just inside and just outside,
the levels strict / warn / off, and the table itself."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clevertap_mapper import checks
from clevertap_mapper.checks import _CACHE_MAX as CACHE_MAX
from clevertap_mapper.checks import (
    CLEVERTAP_CODES,
    LIMITS,
    LIMITS_BY_ID,
    Checker,
    Finding,
    describe_limits,
)
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.io.model import Position, Rejection, SourceRecords
from clevertap_mapper.pipeline import Mapped, Summary, map_items
from tests.support.fake_clevertap import validate_record

Record = dict[str, Any]
USER = "user-0000000000000001"  # longer than any refused placeholder, like real ids


def event(data: Any = None, **fields: Any) -> Record:
    """A clean event record, with ``data`` as evtData and ``fields`` replacing top-level keys."""
    record: Record = {"type": "event", "evtName": "Product Viewed",
                      "evtData": {"price": 9.5} if data is None else data,
                      "identity": USER, "ts": 1_700_000_000}
    record.update(fields)
    return record


def charged(items: list[Any]) -> Record:
    return event({"Amount": 10, "Items": items}, evtName="Charged")


def profile(data: Record | None = None, **fields: Any) -> Record:
    record: Record = {"type": "profile", "profileData": {"Name": "Ada"} | (data or {}),
                      "identity": USER, "ts": 1_700_000_000}
    record.update(fields)
    return record


def token(data: Record | None = None, **fields: Any) -> Record:
    record: Record = {"type": "token", "objectId": "8e3f0a2c-6d0b-4c1e-9a53-6f1f6f3b2c11",
                      "tokenData": {"id": "fcm-token", "type": "fcm"} | (data or {})}
    record.update(fields)
    return record


def keys(n: int, prefix: str = "p") -> Record:
    return {f"{prefix}{i}": i for i in range(n)}


def findings(record: Any, checker: Checker | None = None) -> list[Finding]:
    return (checker or Checker()).check(record)


def codes(record: Any, checker: Checker | None = None) -> set[str]:
    return {f.code for f in findings(record, checker)}


# ---------------------------------------------------------------------------- boundaries
# (id, record just inside the limit, record just outside it, code, severity, text the
#  message must hold besides the field)
BOUNDARIES: list[tuple[str, Record, Record, str, str, str]] = [
    ("event key 120", event({"k" * 120: 1}), event({"k" * 121: 1}),
     "key_too_long", "error", "120"),
    ("Items key 120", charged([{"k" * 120: 1}]), charged([{"k" * 121: 1}]),
     "key_too_long", "error", "120"),
    ("profile key 120", profile({"k" * 120: "v"}), profile({"k" * 121: "v"}),
     "key_too_long", "error", "120"),
    ("event value 512", event({"d": "x" * 512}), event({"d": "x" * 513}),
     "value_too_long", "error", "512"),
    ("Items value 512", charged([{"name": "x" * 512}]), charged([{"name": "x" * 513}]),
     "value_too_long", "error", "512"),
    ("profile value 512", profile({"bio": "x" * 512}), profile({"bio": "x" * 513}),
     "value_too_long", "error", "512"),
    ("multi-value item 512", profile({"tags": ["x" * 512]}), profile({"tags": ["x" * 513]}),
     "value_too_long", "error", "512"),
    ("$add operand 512", profile({"tags": {"$add": ["x" * 512]}}),
     profile({"tags": {"$add": ["x" * 513]}}), "value_too_long", "error", "512"),
    ("value 512 bytes", event({"d": "é" * 256}), event({"d": "é" * 257}),
     "value_too_many_bytes", "warning", "514 UTF-8 bytes"),
    ("properties 256", event(keys(256)), event(keys(257)),
     "too_many_properties", "error", "256"),
    ("properties 100 (newer accounts)", event(keys(100)), event(keys(101)),
     "many_properties", "warning", "--max-event-properties 100"),
    ("Charged Items 256", charged([{"i": i} for i in range(256)]),
     charged([{"i": i} for i in range(257)]), "too_many_items", "error", "256"),
    ("custom profile keys 256", profile(keys(256) | {"Email": "a@b.co", "Phone": "+4412345"}),
     profile(keys(257)), "too_many_profile_keys", "error", "256"),
    ("multi-values 100", profile({"tags": [str(i) for i in range(100)]}),
     profile({"tags": [str(i) for i in range(101)]}), "too_many_values", "warning", "100"),
    ("identity 1024", event(identity="i" * 1024), event(identity="i" * 1025),
     "invalid_identity", "error", "1024"),
    ("profileData.identity 1024", profile({"identity": "i" * 1024}),
     profile({"identity": "i" * 1025}), "invalid_identity", "error", "1024"),
    ("objectId 1024", event(objectId="o" * 1024), event(objectId="o" * 1025),
     "invalid_identity", "error", "1024"),
    ("objectId format 64", event(objectId="o" * 64), event(objectId="o" * 65),
     "unusual_object_id", "warning", "64"),
    ("objectId characters", event(objectId="a(b)!c:d@e$f_g-h"), event(objectId="a.b"),
     "unusual_object_id", "warning", "contains ."),
    ("ts lowest", event(ts=1), event(ts=0), "invalid_timestamp", "error", "1970"),
    ("ts milliseconds", event(ts=99_999_999_999), event(ts=100_000_000_000),
     "invalid_timestamp", "error", "milliseconds"),
    ("ts numeric string", event(ts=1_700_000_000), event(ts="1700000000"),
     "invalid_timestamp", "error", "JSON integer"),
    ("ts float", event(ts=1_700_000_000), event(ts=1_700_000_000.0),
     "invalid_timestamp", "error", "integer"),
    ("ts boolean", event(ts=1_700_000_000), event(ts=True), "invalid_timestamp", "error",
     "boolean"),
    ("ts null (compat NaN)", event(ts=1_700_000_000), event(ts=None), "invalid_timestamp",
     "error", "null"),
    ("profile ts", profile(ts=1_700_000_000), profile(ts="2024-01-01T00:00:00Z"),
     "invalid_timestamp", "error", "525"),
    ("Phone +", profile({"Phone": "+14155550100"}), profile({"Phone": "14155550100"}),
     "invalid_phone", "error", "516"),
    ("Phone number type", profile({"Phone": "+14155550100"}), profile({"Phone": 14155550100}),
     "invalid_phone", "error", "country code"),
    ("Phone 5 digits", profile({"Phone": "+12345"}), profile({"Phone": "+1234"}),
     "unusual_phone", "warning", "5-15"),
    ("Phone 15 digits", profile({"Phone": "+" + "1" * 15}), profile({"Phone": "+" + "1" * 16}),
     "unusual_phone", "warning", "E.164"),
    ("Phone spaces", profile({"Phone": "+14155550100"}), profile({"Phone": "+1 415 555 0100"}),
     "unusual_phone", "warning", "digits only"),
    ("Gender F", profile({"Gender": "F"}), profile({"Gender": "Female"}),
     "invalid_gender", "error", "M, F"),
    ("Gender M", profile({"Gender": "M"}), profile({"Gender": "m"}),
     "invalid_gender", "error", "514"),
    ("Gender other", profile({"Gender": "M"}), profile({"Gender": "O"}),
     "invalid_gender", "error", "514"),
    ("Employed Y", profile({"Employed": "Y"}), profile({"Employed": "yes"}),
     "invalid_employed", "error", "517"),
    ("Employed N", profile({"Employed": "N"}), profile({"Employed": "n"}),
     "invalid_employed", "error", "Y, N"),
    ("Employed boolean", profile({"Employed": "N"}), profile({"Employed": False}),
     "yes_no_boolean", "warning", '"Y" or "N"'),
    ("Married Y", profile({"Married": "Y"}), profile({"Married": "married"}),
     "invalid_married", "error", "519"),
    ("Married boolean", profile({"Married": "Y"}), profile({"Married": True}),
     "yes_no_boolean", "warning", "517/519"),
    ("Education", profile({"Education": "Graduate"}), profile({"Education": "graduate"}),
     "invalid_education", "error", "Graduate, College, School"),
    ("Education School", profile({"Education": "School"}), profile({"Education": "PhD"}),
     "invalid_education", "error", "518"),
    ("Email", profile({"Email": "ada@example.com"}), profile({"Email": "ada.example.com"}),
     "invalid_email", "error", "515"),
    ("Email spaces", profile({"Email": "ada@example.com"}), profile({"Email": "ada @x.com"}),
     "invalid_email", "error", "515"),
    ("Age", profile({"Age": 0}), profile({"Age": -1}), "invalid_age", "error", "520"),
    ("Age text", profile({"Age": 36}), profile({"Age": "36"}), "invalid_age", "error",
     "integer"),
    ("DOB", profile({"DOB": "$D_631152000"}), profile({"DOB": "1990-01-01"}),
     "invalid_date", "warning", "$D_<epoch seconds>"),
    ("DOB before 1970", profile({"DOB": "$D_-86400"}), profile({"DOB": "$D_yesterday"}),
     "invalid_date", "warning", "$D_"),
    ("MSG-sms", profile({"MSG-sms": False}), profile({"MSG-sms": "false"}),
     "invalid_subscription_flag", "warning", "JSON boolean"),
    ("MSG-email", profile({"MSG-email": True}), profile({"MSG-email": 1}),
     "invalid_subscription_flag", "warning", "true or false"),
    ("evtName empty", event(evtName="a"), event(evtName=""), "missing_event_name", "error",
     "509"),
    ("evtName blank", event(evtName="a"), event(evtName="  "), "missing_event_name", "error",
     "509"),
    ("evtName type", event(evtName="a"), event(evtName=42), "missing_event_name", "error",
     "non-empty string"),
    ("evtName missing", event(), {k: v for k, v in event().items() if k != "evtName"},
     "missing_event_name", "error", "missing"),
    ("restricted event", event(evtName="App Launched Twice"), event(evtName="App Launched"),
     "restricted_event", "error", "513"),
    ("restricted event case", event(evtName="Notification Seen"),
     event(evtName="notification viewed"), "restricted_event", "error", "513"),
    ("restricted event spaces", event(evtName="UTM Visits"), event(evtName="UTMVisited"),
     "restricted_event", "error", "rename"),
    ("SDK-reserved event", event(evtName="wzrk_e"), event(evtName="wzrk_d"),
     "reserved_event_name", "warning", "513"),
    ("event name characters", event(evtName="Signed Up"), event(evtName="Signed.Up"),
     "invalid_name_characters", "warning", "contains ."),
    ("page name characters", event(evtName="Web Page Viewed: Home"),
     event(evtName="Web Page Viewed: a|b"), "invalid_name_characters", "warning", "|"),
    ("event name 512", event(evtName="e" * 512), event(evtName="e" * 513),
     "event_name_too_long", "warning", "512"),
    ("event key characters", event({"a_b-c d#e": 1}), event({"a.b": 1}),
     "invalid_key_characters", "warning", "contains ."),
    ("Items key characters", charged([{"book name": 1}]), charged([{"book:name": 1}]),
     "invalid_key_characters", "warning", ":"),
    ("profile key #", profile({"a_b": 1}), profile({"a#b": 1}),
     "invalid_key_characters", "warning", "#"),
    ("evtData object", event({}), event([]), "invalid_event_data", "error", "an object"),
    ("evtData nested object", event({"a": '{"x":1}'}), event({"a": {"x": 1}}),
     "nested_value", "error", "512"),
    ("evtData array", event({"a": "[1]"}), event({"a": [1]}), "nested_value", "error",
     "Items of a Charged event"),
    ("Items outside Charged", charged([{"x": 1}]), event({"Items": [{"x": 1}]}),
     "nested_value", "error", "512"),
    ("subscription groups in events", profile({"category-unsubscribe": ["Promos"]}),
     event({"category-unsubscribe": ["Promos"]}), "nested_value", "error", "512"),
    ("Items shape", charged([{"x": 1}]), charged([1, 2]), "invalid_items", "error",
     "array of objects"),
    ("Items nested value", charged([{"x": "[1]"}]), charged([{"x": [1]}]),
     "nested_value", "warning", "flat objects"),
    ("profileData object", profile(), profile(profileData="x"), "invalid_profile_data",
     "error", "524"),
    ("profile nested object", profile({"addr": "{}"}), profile({"addr": {"city": "X"}}),
     "nested_value", "error", "$add"),
    ("profile operation", profile({"tags": {"$remove": ["a"]}}), profile({"tags": {"$pop": 1}}),
     "nested_value", "error", "flatten"),
    ("profile array of objects", profile({"tags": ["a"]}), profile({"tags": [{"a": 1}]}),
     "nested_value", "error", "arrays of strings"),
    ("multi-value types", profile({"tags": ["1"]}), profile({"tags": [1]}),
     "invalid_multi_value", "warning", "strings"),
    ("record type", event(), event(type="events"), "invalid_record_type", "error", "524"),
    ("identity missing", event(FBID="fb-123"), {k: v for k, v in event().items()
                                                 if k != "identity"},
     "missing_identity", "error", "523"),
    ("identity empty", event(), event(identity=""), "invalid_identity", "error",
     "non-empty string"),
    ("identity object", event(), event(identity={"id": 1}), "invalid_identity", "error",
     "a string"),
    ("identity number", event(), event(identity=12345), "invalid_identity", "error",
     "default mode"),
    ("objectId empty", event(objectId="ab"), event(objectId=""), "invalid_object_id",
     "error", "526"),
    ("token objectId", token(), token(objectId=None), "invalid_token_object_id", "error",
     "530"),
    ("token objectId placeholder", token(), token(objectId="null"), "invalid_identity",
     "error", "placeholder"),
    ("tokenData", token(), token(tokenData=None), "invalid_token_data", "error", "531"),
    ("token id", token(), token({"id": ""}), "missing_token_id", "error", "532"),
    ("token type missing", token(), {"type": "token", "objectId": "abc",
                                     "tokenData": {"id": "t"}},
     "missing_token_type", "error", "533"),
    ("token type", token({"type": "apns"}), token({"type": "sms"}), "invalid_token_type",
     "error", "apns, chrome, fcm, gcm, mpns, wns"),
    ("token type documented", token({"type": "gcm"}), token({"type": "wns"}),
     "undocumented_token_type", "warning", "apns, fcm, gcm"),
    ("chrome keys", token({"type": "chrome", "keys": {"p256dh": "k", "auth": "a"}}),
     token({"type": "chrome", "keys": {"p256dh": "k"}}), "missing_chrome_keys", "warning",
     "p256dh, auth"),
]


@pytest.mark.parametrize(("inside", "outside", "code", "severity", "text"),
                         [case[1:] for case in BOUNDARIES], ids=[c[0] for c in BOUNDARIES])
def test_limit_inside_and_outside(inside: Record, outside: Record, code: str, severity: str,
                                  text: str) -> None:
    assert code not in codes(inside)
    found = [f for f in findings(outside) if f.code == code]
    assert found, f"no {code} in {findings(outside)}"
    finding = found[0]
    assert finding.severity == severity
    assert finding.field.split(".")[0].split("[")[0] in finding.message  # names the field
    assert text in finding.message


@pytest.mark.parametrize("record", [event(), charged([{"x": 1}]), profile(), token(),
                                    event(objectId="abc", identity=None),
                                    profile({"identity": USER}, objectId="abc")],
                         ids=["event", "charged", "profile", "token", "objectId event",
                              "objectId profile"])
def test_clean_records_have_no_findings(record: Record) -> None:
    assert findings(record) == []


REFUSED = ["undefined", "null", "na", "n/a", "0", "nil", "-1", "infinity", "-infinity", "inf",
           "-inf", "nan", "-nan", "empty", "xxxxxx", "NULL", " Undefined ", "N/A", "NaN"]


@pytest.mark.parametrize("value", REFUSED)
@pytest.mark.parametrize("where", ["identity", "objectId", "profileData.identity"])
def test_refused_identity_values_are_errors(value: str, where: str) -> None:
    if where == "profileData.identity":
        record = profile({"identity": value})
    else:
        record = event()
        record[where] = value
    found = [f for f in findings(record) if f.field == where]
    assert [(f.code, f.severity) for f in found] == [("invalid_identity", "error")]
    assert "placeholder" in found[0].message


@pytest.mark.parametrize("value", ["nulls", "0.0", "user-0", "nan-1", "x" * 7, "ab"])
def test_near_placeholders_are_fine(value: str) -> None:
    assert findings(event(identity=value)) == []


@pytest.mark.parametrize("record", [event(identity=""), event(identity="  "),
                                    profile({"identity": ""})],
                         ids=["empty", "blank", "profileData.identity empty"])
def test_a_blank_identity_is_not_told_to_be_sent_as_text(record: Record) -> None:
    # An alias with previousId "" or a userId " " maps to a blank identity, which is text
    # already: the fix is a real id, not "send the user id as text (the default mode does)".
    (found,) = [f for f in findings(record) if f.code == "invalid_identity"]
    assert "as text" not in found.message
    assert "empty or blank" in found.message


@pytest.mark.parametrize(("name", "fix"), [
    (42, "send the event name as text"), (["Signed Up"], "send the event name as text"),
    ("", "give the event a name"), ("  ", "give the event a name"),
    (None, "give the event a name"), (False, "send the event name as text"),
])
def test_the_event_name_fix_fits_the_name(name: Any, fix: str) -> None:
    # A track with event 42 has a name; it is not text (the reference keeps it raw).
    (found,) = [f for f in findings(event(evtName=name)) if f.code == "missing_event_name"]
    assert found.message.endswith(fix)
    (found,) = findings({k: v for k, v in event().items() if k != "evtName"})
    assert found.message.endswith("give the event a name")


def test_invalid_identity_is_not_also_reported_missing() -> None:
    assert codes(event(identity="null")) == {"invalid_identity"}
    assert codes(event(identity=True)) == {"invalid_identity"}


def test_items_problems_are_reported_once_per_key() -> None:
    found = findings(charged([{"a.b": "x" * 600, "n": {"x": 1}}] * 50))
    assert sorted(f.code for f in found) == ["invalid_key_characters", "nested_value",
                                             "value_too_long"]
    assert all("Items[0]" in f.field for f in found)


def test_long_keys_are_cut_in_the_field() -> None:
    (finding,) = findings(event({"k" * 5000: 1}))
    assert finding.code == "key_too_long"
    assert len(finding.field) < 80 and len(finding.message) < 300


def test_long_values_are_not_quoted_whole() -> None:
    found = findings(profile({"Gender": "G" * 10_000}))
    assert {f.code for f in found} == {"invalid_gender", "value_too_long"}
    assert all(len(f.message) < 300 for f in found)


def test_a_key_found_clean_is_still_checked_in_other_contexts() -> None:
    checker = Checker()
    assert checker.check(event({"a#b": 1})) == []  # '#' is allowed in event keys
    assert {f.code for f in checker.check(profile({"a#b": 1}))} == {"invalid_key_characters"}


def test_bad_keys_and_names_are_reported_every_time() -> None:
    checker = Checker()
    for _ in range(3):
        assert codes(event({"a.b": 1}, evtName="App Launched"), checker) == {
            "invalid_key_characters", "restricted_event"}


# ---------------------------------------------------------------------------- max properties

@pytest.mark.parametrize(("maximum", "count", "expected"), [
    (100, 100, set()),
    (100, 101, {"too_many_properties"}),
    (50, 51, {"too_many_properties"}),
    (300, 257, {"many_properties"}),
    (300, 301, {"too_many_properties"}),
], ids=["100 inside", "100 outside", "50 outside", "300 warns above 100", "300 outside"])
def test_max_event_properties_is_configurable(maximum: int, count: int,
                                              expected: set[str]) -> None:
    found = findings(event(keys(count)), Checker(max_event_properties=maximum))
    assert {f.code for f in found} == expected
    if "too_many_properties" in expected:
        assert str(maximum) in found[0].message


def test_allowed_codes_are_reported_as_warnings_and_their_records_go() -> None:
    long = event({"products": "x" * 600, "bad key\n": 1})  # value_too_long, and a warning
    strict = Checker()
    assert strict.verdict(findings(long, strict)) is not None
    allowing = Checker(allow=["value_too_long"])
    found = findings(long, allowing)
    assert {f.code for f in found} == {f.code for f in findings(long, strict)}
    assert all(f.severity == "warning" for f in found if f.code == "value_too_long")
    assert allowing.verdict(found) is None
    # Another error still rejects: allow names codes, not a level.
    both = event({"products": "x" * 600}, identity="")
    assert allowing.verdict(findings(both, allowing))[0] == "invalid_identity"  # type: ignore[index]
    assert allowing.recording().allow == allowing.allow


def test_only_codes_of_checks_that_reject_can_be_allowed() -> None:
    with pytest.raises(ValueError, match="cannot allow bogus, value_too_many_bytes"):
        Checker(allow=["value_too_many_bytes", "bogus", "value_too_long"])  # the first warns


# ---------------------------------------------------------------------------- levels

BAD = event({"a.b": 1}, evtName="App Launched")  # one error, one warning


def test_off_checks_nothing() -> None:
    assert Checker("off").check(BAD) == []
    assert Checker("off").check({"type": "nonsense"}) == []


def test_severity_is_the_same_whatever_the_level() -> None:
    strict = [(f.code, f.severity) for f in Checker("strict").check(BAD)]
    assert strict == [(f.code, f.severity) for f in Checker("warn").check(BAD)]
    assert sorted(strict) == [("invalid_key_characters", "warning"),
                              ("restricted_event", "error")]


def _run(level: str, records: list[Record]) -> tuple[list[Mapped | Rejection], Summary]:
    summary = Summary()
    items = [SourceRecords(Position("in.ndjson", n), [r]) for n, r in enumerate(records, 1)]
    checker = Checker(level)  # type: ignore[arg-type]
    return list(map_items(items, MapperConfig(), summary, checker)), summary


def test_strict_rejects_errors_and_counts_warnings() -> None:
    results, summary = _run("strict", [event(), BAD, event({"a.b": 1})])
    assert [type(r).__name__ for r in results] == ["Mapped", "Rejection", "Mapped"]
    rejection = results[1]
    assert isinstance(rejection, Rejection)
    assert (rejection.stage, rejection.code, rejection.pos.line) == ("check", "restricted_event",
                                                                     2)
    assert rejection.record == BAD and "513" in rejection.message
    assert summary.warnings == {"invalid_key_characters": 2}


def test_warn_sends_everything_and_counts_every_finding() -> None:
    results, summary = _run("warn", [event(), BAD])
    assert all(isinstance(r, Mapped) for r in results)
    assert summary.warnings == {"invalid_key_characters": 1, "restricted_event": 1}


def test_off_sends_everything_silently() -> None:
    results, summary = _run("off", [BAD])
    assert all(isinstance(r, Mapped) for r in results) and not summary.warnings


def test_bad_level_is_refused() -> None:
    with pytest.raises(ValueError, match="strict, warn, off"):
        Checker("loose")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        Checker(max_event_properties=0)


# ---------------------------------------------------------------------------- the table

def test_table_rows_are_complete() -> None:
    ids = [row.id for row in LIMITS]
    assert len(ids) == len(set(ids))
    for row in LIMITS:
        assert row.severity in ("error", "warning"), row.id
        assert row.source.startswith("spec "), row.id  # cites shared/spec/clevertap-api.md
        assert row.applies_to and row.code.islower(), row.id
        text = row.message.format(field="F", value="V", limit="L", count=1, hint="H")
        assert text.startswith("F"), row.id  # every message names the field first
    assert {d["id"] for d in describe_limits()} == set(ids)
    assert CLEVERTAP_CODES["restricted_event"] == 513
    assert CLEVERTAP_CODES["invalid_phone"] == 516


@pytest.mark.parametrize(("record", "clevertap"), [
    (token(objectId=""), 530),
    ({"type": "token", "objectId": "abc", "tokenData": {"id": "t"}}, 533),
    (token({"type": "sms"}), 534),
], ids=["token objectId", "token type missing", "token type"])
def test_the_clevertap_code_shown_is_the_one_clevertap_gives(record: Record,
                                                              clevertap: int) -> None:
    # validate labels each finding code with CLEVERTAP_CODES; the stand-in answers as
    # CleverTap documents (spec 1.5).
    refused = validate_record(record)
    assert refused is not None and refused.code == clevertap
    error = next(f for f in findings(record) if f.severity == "error")
    assert CLEVERTAP_CODES[error.code] == clevertap


def test_a_limit_is_a_one_line_change(monkeypatch: pytest.MonkeyPatch) -> None:
    row = LIMITS_BY_ID["key_length"]
    monkeypatch.setitem(LIMITS_BY_ID, "key_length", dataclasses.replace(row, limit=10))
    assert "key_too_long" in codes(event({"k" * 11: 1}), Checker())
    row = LIMITS_BY_ID["gender"]
    monkeypatch.setitem(LIMITS_BY_ID, "gender", dataclasses.replace(row, limit=("M", "F", "O")))
    assert findings(profile({"Gender": "O"})) == []


# ---------------------------------------------------------------------------- agreement

AGREEMENT: list[Record] = [b[2] for b in BOUNDARIES] + [b[1] for b in BOUNDARIES]


@pytest.mark.parametrize("record", AGREEMENT, ids=[f"outside {b[0]}" for b in BOUNDARIES]
                         + [f"inside {b[0]}" for b in BOUNDARIES])
def test_what_the_fake_clevertap_refuses_strict_refuses(record: Record) -> None:
    """The local CleverTap stand-in (tests/support) validates like CleverTap's documented
    record codes; anything it refuses, strict mode must refuse before sending."""
    if validate_record(record, allow_profile_arrays=True) is not None:
        assert any(f.severity == "error" for f in findings(record))


# ---------------------------------------------------------------------------- the clean cache
# (Speed itself is measured by `make bench`, never by a timed test.)

def test_clean_keys_and_names_are_remembered_in_bounded_memory() -> None:
    """A clean key or event name is checked once and remembered, up to a bound, so that a
    dump with a unique key per event cannot grow the checker without end; a key with a
    finding is never remembered, so every record holding it is reported."""
    checker = Checker()
    for i in range(CACHE_MAX + 100):
        assert checker.check(event({f"key_{i}": 1}, evtName=f"Event {i}")) == []
    assert len(checker._clean_event_keys) == CACHE_MAX
    assert len(checker._clean_names) == CACHE_MAX
    bad = "k" * 121
    for _ in range(3):
        assert "key_too_long" in {f.code for f in checker.check(event({bad: 1}))}
    assert bad not in checker._clean_event_keys


def test_subscription_groups_as_the_reference_sends_them_pass() -> None:
    # Spec s6 keeps category-unsubscribe / -resubscribe objects as they are.
    assert codes(profile({"category-unsubscribe": {"email": ["Newsletters"]},
                          "category-resubscribe": ["Offers"]})) == set()
    assert "nested_value" in codes(profile({"category-unsubscribe": {"email": {"a": 1}}}))


def test_profile_identity_is_held_to_the_identity_limit_not_the_value_limit() -> None:
    # With objectId mapping the user id goes in profileData.identity (spec s8.3); it is an
    # identity (up to 1024 characters, spec 2.4), as it is at the record's root.
    long_id = "u" * 600
    assert findings(profile({"identity": long_id}, identity=None, objectId="abc")) == []
    assert findings(event(identity=long_id)) == []
    assert codes(profile({"identity": "u" * 1025}, identity=None, objectId="abc")) == {
        "invalid_identity"}


# ---------------------------------------------------------------------------- fast forms

_ids_and_emails = st.lists(st.sampled_from(
    ["a", "Z", "@", ".", " ", "\t", "\u00a0", "\u2003", "\u3000", "\x1c", "\u200b", "null",
     "NULL", "inf", "-1", "\u0130", "\u212a"]), max_size=12).map("".join)


@given(_ids_and_emails)
def test_the_fast_email_and_placeholder_tests_say_what_the_plain_ones_say(text: str) -> None:
    local, at, domain = text.rpartition("@")
    plain_email = not (at and local and domain) or any(c.isspace() for c in text)
    assert checks._bad_email(text, None) == plain_email
    plain_refused = len(text) <= 16 and text.strip().lower() in checks._REFUSED_IDENTITIES
    assert checks._refused(text, text.strip()) == plain_refused
