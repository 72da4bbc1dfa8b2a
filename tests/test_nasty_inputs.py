"""The nasty-input corpus (samples/nasty/README.md): every command survives every file, each bad
line is a rejection with its line number, and the good lines convert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import ctmap
from tests.conftest import SAMPLES

NASTY = SAMPLES / "nasty"

# file -> (exit code, {line: reject code}, records converted)
EXPECTED: dict[str, tuple[int, dict[int, str], int]] = {
    "empty.ndjson": (0, {}, 0),
    "blank_lines.ndjson": (0, {}, 3),
    "bom.ndjson": (0, {}, 2),
    "crlf.ndjson": (0, {}, 3),
    "truncated_last_line.ndjson": (3, {3: "invalid_json"}, 2),
    "no_trailing_newline.ndjson": (0, {}, 2),
    "invalid_utf8.ndjson": (3, {2: "invalid_utf8"}, 2),
    "not_objects.ndjson": (3, dict.fromkeys((2, 4, 5, 7, 8), "not_an_object"), 4),
    "huge_integers.ndjson": (3, {1: "number_out_of_range", 2: "number_out_of_range"}, 0),
    "deep_nesting.ndjson": (3, {2: "nesting_too_deep"}, 3),
    "long_line.ndjson": (3, {2: "value_too_long"}, 2),
    "not_gzip.json.gz": (0, {}, 2),
    "nul_bytes.ndjson": (3, {2: "invalid_json", 4: "invalid_json"}, 3),
    "duplicate_keys.ndjson": (0, {}, 2),
    "unicode.ndjson": (3, {4: "invalid_json"}, 4),  # a lone surrogate escape
}


def test_every_corpus_file_is_covered() -> None:
    files = {p.name for p in NASTY.iterdir() if p.name != "README.md"}
    assert files == set(EXPECTED) | {"truncated.json.gz"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_convert_survives(name: str, tmp_path: Path) -> None:
    code, rejected, converted = EXPECTED[name]
    out, rej = tmp_path / "out.ndjson", tmp_path / "rejects.ndjson"
    result = CliRunner().invoke(ctmap, ["convert", str(NASTY / name), "-o", str(out),
                                        "--rejects", str(rej)])
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    rejects = [json.loads(x) for x in rej.read_bytes().split(b"\n") if x]
    got = {r["line"]: r["code"] for r in rejects}
    if name == "long_line.ndjson":  # the check stage names the precise limit
        assert list(got) == [2] and rejects[0]["stage"] == "check"
    else:
        assert got == rejected
    assert all(r["source"].endswith(name) and r["message"] for r in rejects)
    assert out.read_bytes().count(b"\n") == converted  # not splitlines(): U+2028 is data


def test_raw_text_of_unreadable_lines_is_kept(tmp_path: Path) -> None:
    rej = tmp_path / "r.ndjson"
    CliRunner().invoke(ctmap, ["convert", str(NASTY / "invalid_utf8.ndjson"), "-o",
                               str(tmp_path / "o.ndjson"), "--rejects", str(rej)])
    reject = json.loads(rej.read_text("utf-8"))
    assert "caf" in reject["raw"] and "\ufffd" in reject["raw"]


def test_unicode_comes_through_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "o.ndjson"
    CliRunner().invoke(ctmap, ["convert", str(NASTY / "unicode.ndjson"), "-o", str(out),
                               "--rejects", str(tmp_path / "r.ndjson")])
    text = out.read_text("utf-8")
    assert "\u2028" in text and "\U0001f600" in text
    assert len(text.split("\n")) == 5  # 4 records; U+2028 did not split a line


def test_truncated_gzip_is_one_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "o.ndjson"
    result = CliRunner().invoke(ctmap, ["convert", str(NASTY / "truncated.json.gz"), "-o",
                                        str(out), "--rejects", str(tmp_path / "r.ndjson")])
    assert result.exit_code == 1
    assert "truncated.json.gz" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) <= 2
    partial = tmp_path / "o.ndjson.partial"
    assert len(partial.read_text().splitlines()) == 16


def test_a_byte_order_mark_inside_the_stream_is_named(tmp_path: Path) -> None:
    # `cat a.ndjson b.ndjson | ctmap convert -`, b.ndjson saved with a BOM.
    event = json.dumps({"type": "track", "userId": "u", "event": "E"}).encode()
    rej = tmp_path / "r.ndjson"
    result = CliRunner().invoke(ctmap, ["convert", "-", "-o", str(tmp_path / "o.ndjson"),
                                        "--rejects", str(rej)],
                                input=event + b"\n\xef\xbb\xbf" + event + b"\n")
    assert result.exit_code == 3
    reject = json.loads(rej.read_text("utf-8"))
    assert reject["line"] == 2 and "byte order mark" in reject["message"]
