"""``ctmap convert --dry-run`` through click's runner: snapshots of the view, --json, selection.

The snapshots under tests/golden/dryrun/ are the view at 80 and 100 columns, with and without
colour. Regenerate after an intended change, then review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_dryrun_cli.py
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from clevertap_mapper import MapperConfig, map_event
from cli.main import ctmap
from tests.test_explain import GOLDEN, check_golden

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

T0 = "2021-03-04T05:06:07Z"

# Line numbers matter: the user story is `ctmap convert events.ndjson --dry-run --line 3
# --line 7`, and lines 4 and 8 are the rejected ones.
EVENTS: list[dict[str, Any]] = [
    {"type": "track", "userId": "u1", "event": "Product Viewed", "timestamp": T0,
     "properties": {"product_id": "p1", "price": 9.5, "variant": {"size": "M"}},
     "context": {"library": {"name": "analytics.js"}, "page": {"url": "https://x.example/"}}},
    {"type": "page", "userId": "u1", "name": "Home", "timestamp": T0,
     "properties": {"url": "https://x.example/"}},
    {"type": "track", "userId": "u1", "event": "Order Completed", "timestamp": T0,
     "messageId": "m-3", "properties": {"checkout_id": "c1", "revenue": 42.5,
                                        "currency": "GBP",
                                        "products": [{"product_id": "p1", "quantity": 2}]}},
    {"type": "track", "anonymousId": "a9", "event": "Clicked", "timestamp": T0},
    {"type": "screen", "userId": 12345, "name": "Tips & Tricks",
     "properties": {"ts": "1468308340"}},
    {"type": "alias", "previousId": "a1", "userId": "u1", "timestamp": T0},
    {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m-7",
     "timestamp": T0, "sentAt": "2021-03-04T05:06:08Z",
     "traits": {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace",
                "gender": "female", "birthday": "1990-01-02", "plan": "pro",
                "address": {"city": "London"}},
     "context": {"ip": "203.0.113.7", "library": {"name": "analytics.js"},
                 "traits": {"referrer": "ad"}}},
    {"type": "identify", "timestamp": T0, "traits": {"email": "nobody@example.com"}},
]

PLAIN_ENV = {"COLUMNS": "100", "NO_COLOR": None, "FORCE_COLOR": None, "TERM": "xterm-256color",
             "COLORTERM": None, "TTY_COMPATIBLE": None}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|38;5;\d+)m")


def write_events(path: Path, events: list[Any] = EVENTS) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding events.ndjson, made the working directory (stable paths in output)."""
    write_events(tmp_path / "events.ndjson")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def flat(text: str) -> str:
    """The text with every run of whitespace made one space (wrapping does not matter)."""
    return " ".join(text.split())


def headers(text: str) -> list[str]:
    """The event headers of a view (``file:line ...`` rules)."""
    return re.findall(r"^(\S+:\d+(?: \(event \d+ of the batch\))?  \S+)", text, re.M)


def run(*args: str, columns: int = 100, colour: bool = False, no_color: bool = False) -> Result:
    env = dict(PLAIN_ENV, COLUMNS=str(columns))
    if colour:
        env["FORCE_COLOR"] = "1"
    if no_color:
        env["NO_COLOR"] = "1"
    return CliRunner().invoke(ctmap, ["convert", *args], env=env, catch_exceptions=False)


# ---------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("columns", [80, 100, 120])
@pytest.mark.parametrize("colour", [False, True], ids=["plain", "colour"])
def test_view_snapshot(workdir: Path, columns: int, colour: bool) -> None:
    result = run("events.ndjson", "--dry-run", "--line", "3", "--line", "7", columns=columns,
                 colour=colour)
    assert result.exit_code == 3  # line 4 and 8 of the input would be rejected
    assert bool(ANSI.search(result.stdout)) is colour
    name = f"view_{columns}{'_colour' if colour else ''}.txt"
    check_golden(GOLDEN / name, result.stdout)
    if not colour:
        assert max(len(line) for line in result.stdout.splitlines()) <= columns
        assert all(line == line.rstrip() for line in result.stdout.splitlines())


def test_view_snapshot_of_rejections_and_fixes(workdir: Path) -> None:
    result = run("events.ndjson", "--dry-run", "--line", "4", "--line", "5", "--line", "8",
                 columns=80)
    check_golden(GOLDEN / "view_80_rejections.txt", result.stdout)


def test_view_snapshot_in_compat_mode(workdir: Path) -> None:
    result = run("events.ndjson", "--dry-run", "--compat", "rudderstack", "--line", "7",
                 columns=80)
    check_golden(GOLDEN / "view_80_compat.txt", result.stdout)


# ---------------------------------------------------------------------------- the view


def test_view_explains_the_user_story_events(workdir: Path) -> None:
    out = flat(run("events.ndjson", "--dry-run", "--line", "3", "--line", "7", columns=80).stdout)
    assert "How to read this" in out
    assert "events.ndjson:3 track \"Order Completed\"" in out
    assert 'evtName <- "Charged" (event "Order Completed")' in out
    assert "Items <- properties.products" in out
    assert "events.ndjson:7 identify userId u1" in out
    assert 'Gender: "female" -> "F"' in out
    assert "Name <- traits.firstName + traits.lastName" in out
    assert 'ts <- timestamp: "2021-03-04T05:06:07Z" -> 1614834367' in out
    assert 'DOB: "1990-01-02" -> "$D_631238400"' in out
    assert "address: stringified" in out
    assert "context.ip, context.library.*" in out  # not sent, with why
    assert "--compat rudderstack (what RudderStack sends) would send instead" in out
    assert "Shown: 2 of 2 matching events." in out
    # the summary covers the whole input, not just the two lines
    assert "events 8 (" in out
    assert "anonymous_not_allowed 1 (first: events.ndjson:4)" in out


def test_a_time_computed_from_several_fields_is_shown_with_its_formula(tmp_path: Path) -> None:
    src = tmp_path / "e.ndjson"
    src.write_text(json.dumps({"type": "track", "userId": "u", "event": "E",
                               "receivedAt": "2023-11-17T02:25:23.923Z",
                               "sentAt": "2023-11-17T02:25:24.923Z",
                               "originalTimestamp": "2023-11-17T02:25:20.000Z"}) + "\n")
    out = flat(run(str(src), "--dry-run").stdout)
    assert ("[D1] ts <- receivedAt - (sentAt - originalTimestamp): 1700187919 (the reference "
            "sends no usable ts") in out


def test_an_unreadable_input_is_named_after_the_summary_of_the_rest(workdir: Path) -> None:
    """As validate does: a damaged gzip ends its own file, not the dry run of the others."""
    good = "events.ndjson"
    damaged = str(SAMPLES / "nasty" / "truncated.json.gz")
    result = run(damaged, good, "--dry-run", "--limit", "0")
    assert result.exit_code == 1
    out = flat(result.stdout)
    assert "Dry run of 2 inputs: the whole input" in out
    assert "events 24 (" in out  # the 16 lines before the damage, and events.ndjson's 8
    assert "truncated.json.gz: the gzip data is truncated or corrupt after line 16" \
        in result.stderr
    as_json = run(damaged, good, "--dry-run", "--json", "--limit", "0")
    summary = json.loads(as_json.stdout.splitlines()[-1])["summary"]
    assert summary["events"] == 24 and len(summary["unreadable"]) == 1
    assert as_json.exit_code == 1


def test_rejection_shows_code_and_how_to_fix(workdir: Path) -> None:
    out = flat(run("events.ndjson", "--dry-run", "--line", "4", "--line", "8", columns=80).stdout)
    assert "Rejected [anonymous_not_allowed]" in out
    assert "rerun with --track-anonymous" in out
    assert "Rejected [missing_identity]" in out
    assert "[D3] event without any identity rejected no id anywhere: rejected" in out
    assert "--compat rudderstack rejects it too." in out


def test_side_by_side_only_when_wide(workdir: Path) -> None:
    def layout(columns: int) -> str:
        out = run("events.ndjson", "--dry-run", "--line", "2", columns=columns).stdout
        return next(line for line in out.splitlines() if line.startswith("RudderStack input"))

    assert "CleverTap event record" in layout(160)
    assert "CleverTap event record" in layout(120)
    assert layout(100) == "RudderStack input"
    assert layout(80) == "RudderStack input"


def test_colour_only_on_request_and_never_with_no_color(workdir: Path) -> None:
    args = ("events.ndjson", "--dry-run", "--line", "3")
    assert not ANSI.search(run(*args).stdout)  # not a terminal
    assert COLOUR.search(run(*args, colour=True).stdout)
    assert not COLOUR.search(run(*args, colour=True, no_color=True).stdout)


def test_dry_run_writes_no_file(workdir: Path) -> None:
    before = sorted(p.name for p in workdir.iterdir())
    result = run("events.ndjson", "--dry-run", "-o", "out.ndjson", "--rejects", "rej.ndjson")
    assert result.exit_code == 3
    assert sorted(p.name for p in workdir.iterdir()) == before
    assert result.stderr == ""  # not a terminal: no progress


def test_exit_code_is_0_without_rejections(tmp_path: Path) -> None:
    path = write_events(tmp_path / "ok.ndjson", [EVENTS[0], EVENTS[2]])
    result = run(str(path), "--dry-run")
    assert result.exit_code == 0
    assert re.search(r"rejected\s+0", result.stdout)


def test_selection_and_limit(workdir: Path) -> None:
    out = run("events.ndjson", "--dry-run", "--type", "track", "--limit", "1").stdout
    assert headers(out) == ["events.ndjson:1  track"]
    assert "Shown: 1 of 3 matching events; 2 more not shown (--limit 1" in out
    out = run("events.ndjson", "--dry-run", "--event", "order completed").stdout
    assert headers(out) == ["events.ndjson:3  track"]
    assert "Shown: 1 of 1 matching event." in out
    out = run("events.ndjson", "--dry-run", "--type", "page", "--event", "home").stdout
    assert headers(out) == ["events.ndjson:2  page"]
    out = run("events.ndjson", "--dry-run", "--line", "99").stdout
    assert "No event matched the selection" in out
    assert "No event on line 99" in out
    out = run("events.ndjson", "--dry-run", "--line", "99", "--line", "1", "--limit", "1").stdout
    assert headers(out) == ["events.ndjson:1  track"] and "No event on line 99" in out
    out = run("events.ndjson", "--dry-run", "--line", "2", "--line", "1", "--limit", "1").stdout
    assert "No event on line" not in out  # line 2 is past the limit, not missing
    out = run("events.ndjson", "--dry-run", "--limit", "0").stdout
    assert "How to read this" not in out and headers(out) == []
    assert "Shown: 0 of 8 matching events; 8 more not shown" in out


def test_default_limit_is_ten(tmp_path: Path) -> None:
    path = write_events(tmp_path / "many.ndjson", [EVENTS[0]] * 13)
    out = run(str(path), "--dry-run").stdout
    assert len(headers(out)) == 10
    assert "Shown: 10 of 13 matching events; 3 more not shown (--limit 10" in flat(out)


def test_batches_gzip_and_unreadable_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson.gz"
    lines = [json.dumps({"batch": [EVENTS[5], EVENTS[1]]}), "{not json"]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    out = run(str(path), "--dry-run", columns=300).stdout
    assert headers(out) == [f"{path}:1 (event 1 of the batch)  alias",
                            f"{path}:1 (event 2 of the batch)  page",
                            f"{path}:2  (unreadable)"]
    assert "Rejected [invalid_json]" in out
    assert "{not json" in out


# ---------------------------------------------------------------------------- --json


KEYS = {"source", "line", "index", "type", "name", "mode", "input", "records", "decisions",
        "dropped", "fixes", "compat_records", "compat_rejection", "differs_from_compat",
        "differences", "rejection", "findings"}
SUMMARY_KEYS = {"events", "events_by_type", "records", "records_by_kind", "rejected",
                "rejected_by_code", "rejection_examples", "warnings_by_code", "rules", "mode",
                "fixes_applied", "differs_from_compat", "differs_by_fix", "records_without_ts",
                "matched", "shown", "advice", "unreadable"}


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_json_one_object_per_event_then_the_summary(workdir: Path) -> None:
    result = run("events.ndjson", "--dry-run", "--json", "--line", "3", "--line", "4",
                 "--line", "7")
    assert result.exit_code == 3
    *events, last = json_lines(result)
    assert [e["line"] for e in events] == [3, 4, 7]
    for e in events:
        assert set(e) == KEYS
        assert e["source"] == "events.ndjson" and e["index"] is None and e["mode"] == "default"
        for d in e["decisions"]:
            assert {"kind", "field", "rule"} <= set(d) <= {"kind", "field", "rule", "source",
                                                          "fix", "before", "after"}

    charged, anonymous, identify = events
    assert charged["type"] == "track" and charged["name"] == "Order Completed"
    assert charged["records"] == map_event(EVENTS[2], MapperConfig())
    assert charged["records"][0]["evtName"] == "Charged"
    assert {"kind": "mapped", "field": "evtData.Items", "rule": "Items <- properties.products",
            "source": "properties.products"} in charged["decisions"]
    assert [f["fix"] for f in charged["fixes"]] == ["D1"]
    assert charged["compat_records"] == map_event(EVENTS[2], MapperConfig(compat="rudderstack"))
    assert charged["differs_from_compat"] is True
    assert charged["differences"] == [{"record": 0, "field": "ts", "default": 1614834367}]
    assert charged["rejection"] is None and charged["findings"] == []
    assert charged["input"]["properties.checkout_id"] == "c1"
    assert {"paths": ["messageId"],
            "why": "not sent: RudderStack bookkeeping, with no CleverTap field"} in \
        charged["dropped"]

    assert anonymous["records"] == [] and anonymous["compat_records"] is None
    assert anonymous["rejection"]["code"] == "anonymous_not_allowed"
    assert anonymous["rejection"]["stage"] == "map"
    assert "--track-anonymous" in anonymous["rejection"]["message"]
    assert anonymous["compat_rejection"]["code"] == "anonymous_not_allowed"
    assert anonymous["differs_from_compat"] is False

    gender = [d for d in identify["decisions"] if d["field"] == "Gender"]
    assert gender[1] == {"kind": "changed", "field": "Gender",
                         "rule": "Gender: written as CleverTap's M or F",
                         "source": "traits.gender", "before": "female", "after": "F"}
    d6 = next(f for f in identify["fixes"] if f["fix"] == "D6")
    assert d6["title"].startswith("DOB sent as a CleverTap date")
    assert d6["decisions"][0]["before"] == "1990-01-02"

    summary = last["summary"]
    assert set(last) == {"summary"} and set(summary) == SUMMARY_KEYS
    assert summary["events"] == 8 and summary["matched"] == 3 and summary["shown"] == 3
    assert summary["events_by_type"] == {"track": 3, "identify": 2, "page": 1, "screen": 1,
                                         "alias": 1}
    assert summary["records_by_kind"] == {"event": 4, "profile": 2}
    assert summary["rejected_by_code"] == {"anonymous_not_allowed": 1, "missing_identity": 1}
    assert summary["rejection_examples"]["missing_identity"]["where"] == "events.ndjson:8"
    assert summary["rules"]["Items <- properties.products"] == 1
    assert summary["fixes_applied"] == {"D1": 6, "D2": 1, "D3": 1, "D4": 1, "D5": 1, "D6": 1}
    assert summary["differs_from_compat"] == 6
    assert [a["code"] for a in summary["advice"]] == ["anonymous_not_allowed"]


def test_json_in_compat_mode_and_batches(tmp_path: Path) -> None:
    path = tmp_path / "b.ndjson"
    path.write_text(json.dumps({"batch": [EVENTS[4], EVENTS[5]]}) + "\n")
    *events, last = json_lines(run(str(path), "--dry-run", "--json", "--compat", "rudderstack"))
    assert [(e["line"], e["index"]) for e in events] == [(1, 1), (1, 2)]
    screen = events[0]
    assert screen["mode"] == "rudderstack"
    assert screen["records"] == screen["compat_records"]
    assert screen["records"][0]["evtName"] == "Screen Viewed: Tips &amp; Tricks"
    assert {f["fix"] for f in screen["fixes"]} == {"D2", "D4", "D5"}
    assert {(d["field"], d.get("default"), d.get("compat")) for d in screen["differences"]} == {
        ("evtName", "Screen Viewed: Tips & Tricks", "Screen Viewed: Tips &amp; Tricks"),
        ("ts", 1468308340, "1468308340"), ("identity", "12345", 12345)}
    assert last["summary"]["mode"] == "rudderstack"
    assert last["summary"]["differs_from_compat"] == 2  # the alias gets its ts (D1)


def test_the_view_takes_what_convert_rejects_without_crashing(workdir: Path) -> None:
    deep: Any = "x"
    for _ in range(300):
        deep = {"a": deep}
    write_events(workdir / "odd.ndjson", [
        {"type": "track", "userId": "u1", "event": "Deep", "properties": {"d": deep}},
        {"type": "alias", "previousId": "p9", "anonymousId": "a9"},
    ])
    result = run("odd.ndjson", "--dry-run")
    assert result.exit_code == 3, result.output
    assert "nesting_too_deep" in result.output
    assert "p9 -> (none)" in result.output and "None" not in result.output


def test_a_ts_sent_as_null_is_shown_as_null(workdir: Path) -> None:
    write_events(workdir / "ts.ndjson", [
        {"type": "track", "userId": "u1", "event": "E", "properties": {"ts": "garbage"}}])
    result = run("ts.ndjson", "--dry-run", "--compat", "rudderstack")
    assert 'ts: "garbage" -> null (not a date, sent as null)' in flat(result.output)
    assert "ts is nan" not in result.output


def test_a_record_the_checks_refuse_is_told_apart_from_the_one_still_sent(
        workdir: Path) -> None:
    write_events(workdir / "tok.ndjson", [{
        "type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"phone": "12345"},
        "context": {"device": {"token": "tok123"}, "os": {"name": "android"}}}])
    result = run("tok.ndjson", "--dry-run", "--object-id-mapping")
    assert "(record 1 of 2; record 2 is still sent)" in flat(result.output)
    as_json = run("tok.ndjson", "--dry-run", "--object-id-mapping", "--json")
    event = json.loads(as_json.output.splitlines()[0])
    assert event["rejection"]["record"] == 0 and len(event["records"]) == 2


def test_a_trait_not_sent_is_given_its_own_reason(workdir: Path) -> None:
    write_events(workdir / "g.ndjson", [
        {"type": "identify", "userId": "u1", "traits": {"gender": "other", "email": None}}])
    text = flat(run("g.ndjson", "--dry-run").output)
    assert 'traits.gender "other": not a CleverTap gender' in text
    assert "traits.email: null or empty, which its mapped CleverTap field does not take" in text
    assert "another source won" not in text


def test_an_alias_compat_sends_and_d3_rejects_counts_under_d3(workdir: Path) -> None:
    write_events(workdir / "alias.ndjson", [
        {"type": "alias", "previousId": "p9", "anonymousId": "a9"}])
    summary = json.loads(run("alias.ndjson", "--dry-run", "--json").output.splitlines()[-1])
    assert summary["summary"]["differs_by_fix"] == {"D3": 1}


@pytest.mark.parametrize("mode", [[], ["--compat", "rudderstack"]], ids=["default", "compat"])
def test_the_summary_counts_the_events_the_view_says_differ(mode: list[str]) -> None:
    # Each event's flag and the closing count compare the two modes the same way: mapping,
    # then each mode's own checks (the strict checks refuse records compat sends).
    samples = Path(__file__).resolve().parent.parent / "samples" / "events.ndjson"
    lines = [json.loads(line) for line in run(str(samples), "--dry-run", "--json", "--limit",
                                              "100000", *mode).output.splitlines()]
    events = [line for line in lines if "summary" not in line]
    summary = lines[-1]["summary"]
    flagged = sum(1 for e in events if e["differs_from_compat"])
    assert summary["shown"] == len(events) and flagged == summary["differs_from_compat"] > 0


def test_an_event_only_the_strict_checks_refuse_differs_from_compat(workdir: Path) -> None:
    # No fix applies (the reference's own ts is used), but the default mode's strict checks
    # refuse the phone, which compat (checks warn) sends.
    write_events(workdir / "phone.ndjson", [
        {"type": "identify", "userId": "u1", "traits": {"phone": "12345", "ts": 1700000000}}])
    lines = [json.loads(line) for line in run("phone.ndjson", "--dry-run", "--json").output
             .splitlines()]
    assert lines[0]["differs_from_compat"] is True
    assert lines[-1]["summary"]["differs_from_compat"] == 1
