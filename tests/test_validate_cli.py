"""``ctmap validate`` through click's runner: exit codes, the report, ``--json``."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import ctmap

USER = {"userId": "user-0000000001"}
TIMES = {"originalTimestamp": "2024-01-15T03:00:00.000Z", "sentAt": "2024-01-15T03:00:02.000Z",
         "receivedAt": "2024-01-15T00:00:04.500Z"}


def track(name: str = "Product Viewed", props: dict[str, Any] | None = None,
          **properties: Any) -> dict[str, Any]:
    return {"type": "track", **USER, **TIMES, "event": name,
            "properties": (props or {}) | properties}


def identify(**traits: Any) -> dict[str, Any]:
    return {"type": "identify", **USER, **TIMES, "traits": traits}


CLEAN = [track(price=1), identify(email="ada@example.com", phone="+447700900123"),
         {"type": "page", **USER, **TIMES, "name": "Home"}]
BAD = [
    track(),                                        # line 1: fine
    track("App Launched"),                          # line 2: 513, refused at the check stage
    identify(phone="4155550100"),                   # line 3: 516, refused at the check stage
    {"type": "track", **TIMES, "event": "X"},       # line 4: no userId: refused by mapping
    track(props={"a.b": 1}),                        # line 5: a warning only
    "not json",                                     # line 6: refused by the reader
]


def write(path: Path, lines: list[Any], *, gz: bool = False) -> Path:
    text = "".join((v if isinstance(v, str) else json.dumps(v)) + "\n" for v in lines).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


def archive_row(event: dict[str, Any]) -> dict[str, Any]:
    return {"userId": f"<<>><<>>{event.get('userId', '')}", "payload": event,
            "createdAt": "2024-01-15T00:00:05Z", "messageId": "m"}


def validate(*args: str | Path) -> Result:
    return CliRunner().invoke(ctmap, ["validate", *map(str, args)], catch_exceptions=False)


def as_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = validate(*args, "--json")
    return result.exit_code, json.loads(result.stdout)


def test_clean_input_exits_0(tmp_path: Path) -> None:
    result = validate(write(tmp_path / "clean.ndjson", CLEAN))
    assert result.exit_code == 0, result.output
    assert "would send:    3 records (event 2, profile 1) in 1 upload request" in result.stdout
    assert "would refuse:  0" in result.stdout
    assert result.stdout.rstrip().endswith("result: clean, everything would be sent (exit 0)")


def test_rejections_exit_3_with_counts_and_examples(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.ndjson", BAD)
    result = validate(path)
    assert result.exit_code == 3, result.output
    out = result.stdout
    assert "would send:    2 records" in out
    assert "would refuse:  4" in out
    for row in ("check  restricted_event (CleverTap 513)", "check  invalid_phone (CleverTap 516)",
                "map    anonymous_not_allowed", "read   invalid_json"):
        assert row in out
    assert "invalid_key_characters" in out
    assert f"{path}:2: evtName 'App Launched' is a CleverTap system event name" in out
    assert f"{path}:3: profileData.Phone is '4155550100'" in out
    assert f"{path}:5: evtData.a.b: the key contains ." in out
    assert "result: 4 would be refused" in out and "(exit 3)" in out


def test_json_summary(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.ndjson", BAD)
    code, doc = as_json(path)
    assert code == 3 and doc["exit_code"] == 3 and doc["ok"] is False
    assert doc["events"] == 6  # every line counts, the unreadable one too
    # ... under a type of its own, as in the dry run, so that the types add up to the events
    assert doc["events_by_type"] == {"track": 4, "identify": 1, "(unreadable)": 1}
    assert doc["records"] == 2 and doc["upload_requests"] == 1
    assert doc["rejected"] == 4
    assert doc["rejected_by_stage"] == {"read": 1, "map": 1, "check": 2}
    assert doc["rejected_by_code"] == {"invalid_json": 1, "anonymous_not_allowed": 1,
                                       "restricted_event": 1, "invalid_phone": 1}
    groups = {g["code"]: g for g in doc["rejection_groups"]}
    assert groups["restricted_event"]["clevertap"] == 513
    assert groups["restricted_event"]["stage"] == "check"
    assert groups["restricted_event"]["examples"] == [
        {"source": str(path), "line": 2, "index": None,
         "message": groups["restricted_event"]["examples"][0]["message"]}]
    assert doc["warnings"] == 1 and doc["warnings_by_code"] == {"invalid_key_characters": 1}
    (warning,) = doc["warning_groups"]
    (example,) = warning["examples"]
    assert (example["line"], example["field"], example["severity"]) == (5, "evtData.a.b",
                                                                        "warning")
    assert doc["checks"] == "strict" and doc["max_event_properties"] == 256
    assert doc["unreadable"] == [] and doc["allow"] == []
    # The codes let through are said, as the human header says them.
    code, doc = as_json(path, "--allow", "restricted_event", "--allow", "invalid_phone")
    assert code == 3 and doc["allow"] == ["invalid_phone", "restricted_event"]
    assert doc["rejected"] == 2
    assert not {"invalid_phone", "restricted_event"} & set(doc["rejected_by_code"])
    assert {"invalid_phone", "restricted_event"} <= set(doc["warnings_by_code"])
    header = validate(path, "--allow", "invalid_phone").stdout.splitlines()[0]
    assert header.endswith("(checks: strict, allowing invalid_phone)")


def test_examples_limit_and_counts_agree(tmp_path: Path) -> None:
    path = write(tmp_path / "many.ndjson", [track("App Launched", {"x.y": i})
                                            for i in range(7)])
    code, doc = as_json(path, "--examples", "2")
    assert code == 3
    (group,) = doc["rejection_groups"]
    assert group["count"] == 7 and len(group["examples"]) == 2
    assert [e["line"] for e in group["examples"]] == [1, 2]
    assert doc["warnings_by_code"] == {g["code"]: g["count"] for g in doc["warning_groups"]}
    assert doc["warnings_by_code"] == {"invalid_key_characters": 7}
    result = validate(path, "--examples", "2")
    assert "... and 5 more" in result.stdout
    result = validate(path, "--examples", "0")
    assert "refused: restricted_event" not in result.stdout and "7" in result.stdout


def test_checks_warn_reports_but_refuses_nothing_it_checks(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.ndjson", BAD)
    code, doc = as_json(path, "--checks", "warn")
    assert code == 3  # the read and map rejections still stand
    assert doc["rejected_by_stage"] == {"read": 1, "map": 1}
    assert doc["warnings_by_code"] == {"restricted_event": 1, "invalid_phone": 1,
                                       "invalid_key_characters": 1}
    severities = {g["code"]: g["examples"][0]["severity"] for g in doc["warning_groups"]}
    assert severities["restricted_event"] == "error"  # what CleverTap would do stays visible
    result = validate(write(tmp_path / "checks.ndjson", [track("App Launched")]),
                      "--checks", "warn")
    assert result.exit_code == 0
    assert "problems CleverTap would refuse are listed as warnings" in result.stdout


def test_checks_off(tmp_path: Path) -> None:
    result = validate(write(tmp_path / "x.ndjson", [track("App Launched")]), "--checks", "off")
    assert result.exit_code == 0 and "limits were not checked" in result.stdout


@pytest.mark.parametrize(("maximum", "count", "code"), [("100", 100, 0), ("100", 101, 3),
                                                        ("256", 256, 0), ("256", 257, 3)])
def test_max_event_properties(tmp_path: Path, maximum: str, count: int, code: int) -> None:
    path = write(tmp_path / "wide.ndjson", [track(props={f"p{i}": i for i in range(count)})])
    exit_code, doc = as_json(path, "--max-event-properties", maximum)
    assert exit_code == code
    assert ("too_many_properties" in doc["rejected_by_code"]) == bool(code)


def test_quiet_prints_only_the_result(tmp_path: Path) -> None:
    result = validate(write(tmp_path / "bad.ndjson", BAD), "-q")
    assert result.exit_code == 3
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("result: 4 would be")


def test_directory_of_gzipped_archives(tmp_path: Path) -> None:
    """The user story: an event-archive bucket synced to disk."""
    bucket = tmp_path / "bucket"
    day = bucket / "src1" / "gw" / "2024-01-15"
    first = write(day / "0" / "1705276800_1705277100_ws_a.json.gz",
                  [archive_row(e) for e in (track(), track("App Launched"))], gz=True)
    second = write(day / "1" / "1705280400_1705280700_ws_b.json.gz",
                   [archive_row(e) for e in (identify(phone="4155550100"), track(),
                                             identify(email="ada@example.com"))], gz=True)
    before = sorted(p for p in tmp_path.rglob("*"))
    code, doc = as_json(bucket)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written
    assert code == 3 and doc["files"] == 2 and doc["events"] == 5
    assert doc["records_by_kind"] == {"event": 2, "profile": 1}
    where = {g["code"]: [(e["source"], e["line"]) for e in g["examples"]]
             for g in doc["rejection_groups"]}
    assert where == {"restricted_event": [(str(first), 2)],
                     "invalid_phone": [(str(second), 1)]}
    report = validate(bucket).stdout
    assert "5 events in 2 files" in report and f"{second}:1: profileData.Phone" in report


def test_position_inside_a_batch(tmp_path: Path) -> None:
    path = write(tmp_path / "batch.ndjson", [{"batch": [track(), track("App Launched")]}])
    _, doc = as_json(path)
    (example,) = doc["rejection_groups"][0]["examples"]
    assert (example["line"], example["index"]) == (1, 2)
    assert f"{path}:1:2: evtName" in validate(path).stdout


def test_records_files_are_checked_too(tmp_path: Path) -> None:
    """ctmap's own output (records or upload bodies) can be validated before an upload."""
    records = [{"type": "profile", "identity": "u-1", "profileData": {"Gender": "Female"}},
               {"d": [{"type": "event", "identity": "u-2", "evtName": "Stayed", "evtData": {}}]}]
    code, doc = as_json(write(tmp_path / "records.ndjson", records))
    assert code == 3
    assert doc["rejected_by_code"] == {"invalid_gender": 1, "restricted_event": 1}


def test_unreadable_input_exits_1_after_reading_the_rest(tmp_path: Path) -> None:
    good = write(tmp_path / "good.ndjson", CLEAN)
    truncated = tmp_path / "truncated.json.gz"
    data = gzip.compress("".join(json.dumps(track()) + "\n" for _ in range(200)).encode())
    truncated.write_bytes(data[: len(data) // 2])
    missing = tmp_path / "missing.ndjson"
    result = validate(truncated, missing, good)
    assert result.exit_code == 1
    assert f"{missing}: no such file" in result.stderr
    assert "truncated or corrupt" in result.stderr
    assert "could not be read (exit 1)" in result.stdout
    code, doc = as_json(truncated, missing, good)
    assert code == 1 and doc["ok"] is False
    assert [u["source"] for u in doc["unreadable"]] == [str(truncated), str(missing)]
    assert doc["records"] >= 3  # the good file and the readable part of the truncated one


def test_stdin(tmp_path: Path) -> None:
    data = "".join(json.dumps(e) + "\n" for e in BAD[:2])
    result = CliRunner().invoke(ctmap, ["validate", "-", "--json"], input=data)
    doc = json.loads(result.stdout)
    assert result.exit_code == 3
    assert doc["rejection_groups"][0]["examples"][0]["source"] == "<stdin>"


def test_compat_mode_checks_as_warnings_by_default(tmp_path: Path) -> None:
    path = write(tmp_path / "x.ndjson", [track("App Launched")])
    code, doc = as_json(path, "--compat", "rudderstack")
    assert code == 0 and doc["checks"] == "warn" and doc["compat"] == "rudderstack"
    code, doc = as_json(path, "--compat", "rudderstack", "--checks", "strict")
    assert code == 3


def test_help_and_usage() -> None:
    result = CliRunner().invoke(ctmap, ["validate", "--help"])
    assert result.exit_code == 0
    for text in ("--json", "--examples", "--checks", "--max-event-properties", "Exit status"):
        assert text in result.output
    assert CliRunner().invoke(ctmap, ["validate"]).exit_code == 2


def test_nothing_is_written(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.ndjson", BAD)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        validate(path)
    finally:
        os.chdir(cwd)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ndjson"]
