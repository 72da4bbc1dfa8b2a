"""The checkpoint (watermark, out-of-order acks, partial bodies, fingerprint, atomic save,
lock) and the rejects journal."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from clevertap_mapper.errors import ConfigError
from clevertap_mapper.io.model import Position, Rejection
from clevertap_mapper.upload.state import Checkpoint, RejectsJournal, describe_inputs

SETTINGS = {"mapping": {"compat": None}, "profiles_first": False, "account_id": "A"}


@pytest.fixture
def inputs(tmp_path: Path) -> list[dict[str, object]]:
    (tmp_path / "in.ndjson").write_text("{}\n")
    return describe_inputs([str(tmp_path / "in.ndjson")])


def test_watermark_moves_over_contiguous_acks(tmp_path: Path,
                                               inputs: list[dict[str, object]]) -> None:
    state = Checkpoint.open(str(tmp_path / "s"), inputs, SETTINGS)
    try:
        state.record_ack(1, Position("f", 20), 10, Counter())
        assert (state.next_body, state.acked_above) == (0, {1})
        assert state.is_acked(1) and not state.is_acked(0)
        state.record_ack(0, Position("f", 10), 5, Counter({"x": 1}))
        assert (state.next_body, state.acked_above) == (2, set())
        assert state.delivered_through == {"source": "f", "line": 20}
        state.record_partial(2, [7, 3], 990, Counter({"clevertap_523": 1}))
        assert state.pending_of(2) == [3, 7] and not state.is_acked(2)
        state.record_ack(2, None, 2, Counter())
        assert state.partial == {} and state.next_body == 3
        assert state.accepted == 1007 and state.rejected == Counter(x=1, clevertap_523=1)
        state.record_end(3)
        assert state.complete
    finally:
        state.close()


def test_save_and_resume(tmp_path: Path, inputs: list[dict[str, object]]) -> None:
    path = str(tmp_path / "s.json")
    state = Checkpoint.open(path, inputs, SETTINGS)
    state.record_ack(0, Position("f", 1), 3, Counter({"invalid_json": 1}))
    state.record_ack(2, Position("f", 9), 3, Counter())
    state.record_partial(3, [1], 2, Counter())
    state.save()
    state.close()
    assert not os.path.exists(path + ".tmp")
    data = orjson.loads(Path(path).read_bytes())
    assert data["next_body"] == 1 and data["acked_above"] == [2]
    assert data["partial"] == {"3": [1]} and data["complete"] is False

    again = Checkpoint.open(path, inputs, SETTINGS)
    try:
        assert again.resumed and again.runs == 2
        assert [again.is_acked(i) for i in range(4)] == [True, False, True, False]
        assert again.pending_of(3) == [1] and again.accepted == 8
        assert again.rejected == Counter(invalid_json=1)
    finally:
        again.close()


def test_restart_ignores_the_old_state(tmp_path: Path, inputs: list[dict[str, object]]) -> None:
    path = str(tmp_path / "s.json")
    state = Checkpoint.open(path, inputs, SETTINGS)
    state.record_ack(0, None, 1, Counter())
    state.save()
    state.close()
    fresh = Checkpoint.open(path, inputs, {**SETTINGS, "profiles_first": True}, restart=True)
    try:
        assert not fresh.resumed and fresh.next_body == 0
    finally:
        fresh.close()


def test_changed_input_is_refused(tmp_path: Path, inputs: list[dict[str, object]]) -> None:
    path = str(tmp_path / "s.json")
    state = Checkpoint.open(path, inputs, SETTINGS)
    state.save()
    state.close()
    changed = [{**inputs[0], "size": 999}]
    with pytest.raises(ConfigError, match=r"in\.ndjson changed .*--restart"):
        Checkpoint.open(path, changed, SETTINGS).close()


def test_changed_settings_are_refused(tmp_path: Path, inputs: list[dict[str, object]]) -> None:
    path = str(tmp_path / "s.json")
    state = Checkpoint.open(path, inputs, SETTINGS)
    state.save()
    state.close()
    with pytest.raises(ConfigError, match=r"settings differ \(account_id\)"):
        Checkpoint.open(path, inputs, {**SETTINGS, "account_id": "B"})


@pytest.mark.parametrize(("content", "why"), [
    (b"not json", "cannot read the state file"),
    (b'{"format": "other"}', "not a ctmap upload state file"),
    (b'{"format": "ctmap-upload-state", "version": 99}', "version 99"),
])
def test_unreadable_state_is_refused(tmp_path: Path, inputs: list[dict[str, object]],
                                     content: bytes, why: str) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=why):
        Checkpoint.open(str(path), inputs, SETTINGS)


@pytest.mark.parametrize(("change", "why"), [
    ({"partial": {"0": [-1]}}, r'each of partial\["0"\] must be a whole number, 0 or more'),
    ({"partial": {"0": [True]}}, r'each of partial\["0"\] must be a whole number'),
    ({"partial": {"0": [1.5]}}, r'each of partial\["0"\] must be a whole number'),
    ({"partial": {"0": [3, 3]}}, r'partial\["0"\] must list record numbers in order'),
    ({"partial": {"0": "12"}}, r'partial\["0"\] must be a list of record numbers'),
    ({"partial": {"x": [1]}}, "'x' is not a body number"),
    ({"partial": []}, "partial must map body numbers"),
    ({"next_body": -3}, "next_body must be a whole number"),
    ({"next_body": 1e30}, "next_body must be a whole number"),
    ({"acked_above": "12"}, "acked_above must be a list"),
    ({"acked_above": [0]}, "acked_above names a body that is not above next_body"),
    ({"complete": "false"}, "complete must be true or false"),
    ({"complete": True, "bodies_total": 9}, "complete is true, but not every body"),
    ({"bodies_total": "x"}, "bodies_total must be a whole number"),
    ({"delivered_through": 5}, "delivered_through must name a source and a line"),
    ({"totals": {"accepted": -1, "rejected": {}}}, "totals.accepted must be a whole number"),
    ({"totals": {"accepted": 1, "rejected": []}}, "totals must hold accepted and rejected"),
    ({"runs": None}, "runs must be a whole number"),
    ({"next_body": None, "partial": None}, "next_body must be a whole number"),
])
def test_damaged_state_contents_are_refused_as_damaged(
        tmp_path: Path, inputs: list[dict[str, object]], change: dict[str, object],
        why: str) -> None:
    """A state edited by hand (or damaged) is refused naming the field and the way out,
    never loaded to send the wrong records or crash later."""
    path = str(tmp_path / "s.json")
    state = Checkpoint.open(path, inputs, SETTINGS)
    state.record_ack(0, Position("f", 1), 3, Counter())
    state.save()
    state.close()
    data = orjson.loads(Path(path).read_bytes())
    Path(path).write_bytes(orjson.dumps({**data, **change}))
    with pytest.raises(ConfigError, match=why) as caught:
        Checkpoint.open(path, inputs, SETTINGS)
    assert "the state file is damaged" in str(caught.value)
    assert "--restart" in str(caught.value) and "backup" in str(caught.value)


def test_pending_records_past_the_body_are_damage(tmp_path: Path,
                                                  inputs: list[dict[str, object]]) -> None:
    state = Checkpoint.open(None, inputs, SETTINGS)
    state.record_partial(1, [4, 9], 0, Counter())
    assert state.pending_of(1, 10) == [4, 9]
    with pytest.raises(ConfigError, match="record 10 of body 2 as still to send, but that "
                                          "body has 9 records"):
        state.pending_of(1, 9)
    state.check_end(2)
    with pytest.raises(ConfigError, match="names body 2, but the inputs make 1 bodies"):
        state.check_end(1)


def test_two_runs_cannot_share_a_state_file(tmp_path: Path,
                                            inputs: list[dict[str, object]]) -> None:
    path = str(tmp_path / "s.json")
    first = Checkpoint.open(path, inputs, SETTINGS)
    try:
        with pytest.raises(ConfigError, match="in use by another ctmap upload"):
            Checkpoint.open(path, inputs, SETTINGS)
    finally:
        first.close()
    Checkpoint.open(path, inputs, SETTINGS).close()  # free again


def test_stdin_cannot_be_checkpointed() -> None:
    with pytest.raises(ConfigError, match="stdin"):
        describe_inputs(["-"])


def test_in_memory_checkpoint_needs_no_file() -> None:
    state = Checkpoint.open(None, [], SETTINGS)
    state.record_ack(0, None, 1, Counter())
    state.save()
    assert state.next_body == 1


def test_rejects_journal_truncates_or_appends(tmp_path: Path) -> None:
    path = str(tmp_path / "r.ndjson")
    rejection = Rejection(Position("f", 3), "map", "missing_identity", "no id", event={"a": 1})
    journal = RejectsJournal(path, append=False)
    journal.write([rejection])
    journal.write([])
    journal.close()
    journal = RejectsJournal(path, append=True)
    journal.write([rejection])
    journal.close()
    lines = [orjson.loads(x) for x in Path(path).read_bytes().splitlines()]
    assert [x["line"] for x in lines] == [3, 3] and journal.count == 1
    RejectsJournal(path, append=False).close()
    assert Path(path).read_bytes() == b""


def test_a_failed_rejects_write_leaves_no_half_line(tmp_path: Path) -> None:
    """A file size limit (as a full disk) cuts a write short: the journal takes the part back
    off and says which file, so a rerun appends whole lines to whole lines."""
    path = tmp_path / "r.ndjson"
    script = f"""
import resource, signal
from clevertap_mapper.errors import FatalUploadError
from clevertap_mapper.io.model import Position, Rejection
from clevertap_mapper.upload.state import RejectsJournal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
journal = RejectsJournal({str(path)!r}, append=False)
one = Rejection(Position("f", 1), "read", "invalid_json", "x" * 100)
journal.write([one])
try:
    journal.write([one] * 100)
except FatalUploadError as exc:
    print(exc)
journal.close()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    assert f"cannot write the rejects file {path}" in done.stdout, done.stdout + done.stderr
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 1 and orjson.loads(lines[0])["line"] == 1


@pytest.mark.parametrize("name", ["r.ndjson", "r.ndjson.gz"])
def test_a_write_after_a_failed_one_goes_where_the_file_was_cut(tmp_path: Path,
                                                                name: str) -> None:
    """A write cut short is taken back off; the next one (room made, or a smaller one) must
    go at the new end, not past a hole of NULs where the cut part was: zcat stops at such a
    hole, and a resumed run's rejections after it were lost to it."""
    path = tmp_path / name
    script = f"""
import os, resource, signal
from clevertap_mapper.errors import FatalUploadError
from clevertap_mapper.io.model import Position, Rejection
from clevertap_mapper.upload.state import RejectsJournal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
journal = RejectsJournal({str(path)!r}, append=False)
def one(n):
    return Rejection(Position("f", n), "read", "invalid_json", "x" * 100)
journal.write([one(1)])
try:
    journal.write([Rejection(Position("f", 2), "read", "invalid_json", os.urandom(99).hex())
                   for _ in range(100)])  # about 20 kB, gzip-compressed too
except FatalUploadError as exc:
    print(exc)
journal.write([one(3)])
journal.close()
journal = RejectsJournal({str(path)!r}, append=True)
journal.write([one(4)])
journal.close()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1])
    assert f"cannot write the rejects file {path}" in done.stdout, done.stdout + done.stderr
    data = path.read_bytes()
    if name.endswith(".gz"):
        assert b"\0" * 16 not in data
        data = gzip.decompress(data)
    assert b"\0" not in data
    assert [orjson.loads(x)["line"] for x in data.splitlines()] == [1, 3, 4]
