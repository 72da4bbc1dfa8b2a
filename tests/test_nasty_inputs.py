"""The nasty-input corpus (samples/nasty/README.md): every command survives every file, each bad
line is a rejection with its line number, and the good lines convert."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from click.testing import CliRunner

from clevertap_mapper import compiled
from clevertap_mapper.io.readers import read_blocks
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


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_dry_run_and_validate_survive_and_count_as_convert_rejects(name: str) -> None:
    code, rejected, _ = EXPECTED[name]
    want = dict(Counter(rejected.values()))
    dry = CliRunner().invoke(ctmap, ["convert", str(NASTY / name), "--dry-run", "--json"])
    assert "unexpected error" not in dry.output and dry.exit_code == code, dry.output
    assert json.loads(dry.stdout.splitlines()[-1])["summary"]["rejected_by_code"] == want
    checked = CliRunner().invoke(ctmap, ["validate", str(NASTY / name), "--json"])
    assert "unexpected error" not in checked.output and checked.exit_code in (0, 3)
    assert json.loads(checked.stdout)["rejected_by_code"] == want


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


class _Read(bytes):
    """A read of stdin that notes how many bytes of earlier reads are copied in front of it
    (``earlier + read``: what building a line read by read with ``+`` costs)."""

    copied: ClassVar[list[int]] = []

    def __radd__(self, earlier: bytes) -> bytes:
        self.copied.append(len(earlier))
        return bytes(earlier) + bytes(self)


class _Pipe:
    def __init__(self, reads: list[bytes]) -> None:
        self._reads = iter(reads)

    def read1(self, size: int) -> bytes:
        return next(self._reads, b"")


@pytest.mark.skipif(compiled(), reason="counts Python's + on bytes, which compiled code skips")
def test_a_line_longer_than_many_reads_is_copied_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A pipe hands a 2 MB line over in 64 KB reads. Joining it read by read copied all that
    # came before each read again: quadratic, minutes for a line of a few hundred MB.
    event = json.dumps({"type": "track", "userId": "u", "event": "E",
                        "properties": {"big": "x" * 2_000_000}}).encode() + b"\n"
    reads = [_Read(event[i:i + 65536]) for i in range(0, len(event), 65536)]
    _Read.copied = []
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=_Pipe(list(reads))))
    blocks = list(read_blocks("-"))
    assert [(b.first, b.data) for b in blocks] == [(1, event)]
    assert sum(_Read.copied) < len(event)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_utf16_file_is_one_clear_error_naming_the_fix(tmp_path: Path, encoding: str) -> None:
    # PowerShell's `>` writes UTF-16 with a byte order mark: every line was rejected as not
    # UTF-8 or not JSON, numbered wrongly (its newlines are two bytes), with "fix the line".
    text = "\r\n".join(json.dumps({"type": "track", "userId": "u", "event": f"E{i}"})
                       for i in range(3)) + "\r\n"
    src = tmp_path / "ps.ndjson"
    data = text.encode(encoding)
    src.write_bytes(data if data.startswith((b"\xff\xfe", b"\xfe\xff")) else b"\xfe\xff" + data)
    out, rejects = tmp_path / "o.ndjson", tmp_path / "r.ndjson"
    result = CliRunner().invoke(ctmap, ["convert", str(src), "-o", str(out), "--rejects",
                                        str(rejects)])
    assert result.exit_code == 1
    assert f"{src}: the input is UTF-16 text" in result.stderr and "iconv" in result.stderr
    assert not (tmp_path / "r.ndjson.partial").read_bytes()


def test_a_truncated_gzip_on_stdin_is_named_stdin(tmp_path: Path) -> None:
    # Named as positions and the rejects file name it, not as "-".
    result = CliRunner().invoke(ctmap, ["convert", "-", "-o", str(tmp_path / "o.ndjson")],
                                input=(NASTY / "truncated.json.gz").read_bytes())
    assert result.exit_code == 1
    assert "ctmap: error: <stdin>: the gzip data is truncated" in result.stderr
