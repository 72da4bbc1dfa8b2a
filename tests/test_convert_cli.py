"""``ctmap convert`` through click's runner, plus one real subprocess that proves streaming."""

from __future__ import annotations

import errno
import fcntl
import gzip
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from rich.console import Console

from clevertap_mapper.io import writers
from clevertap_mapper.io.readers import expand_inputs
from clevertap_mapper.io.writers import Output, written_in_place
from cli.main import ctmap
from cli.render import print_lines

EVENTS: list[dict[str, Any]] = [
    {"type": "identify", "userId": "u1", "traits": {"email": "a@b.co", "gender": "female"},
     "timestamp": "2024-01-02T03:04:05Z"},
    {"type": "track", "userId": "u1", "event": "Played", "properties": {"n": 1},
     "timestamp": "2024-01-02T03:04:06Z"},
    {"type": "track", "anonymousId": "a1", "event": "Anon"},  # rejected: anonymous
    {"type": "page", "userId": "u1", "name": "Home", "timestamp": "2024-01-02T03:04:07Z"},
]


def write_ndjson(path: Path, events: list[Any], *, gz: bool = False) -> Path:
    data = "".join(json.dumps(e) + "\n" for e in events).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def run(*args: str, input: bytes | None = None) -> Any:
    return CliRunner().invoke(ctmap, list(args), input=input, catch_exceptions=False)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_convert_writes_records_and_rejects(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "events.ndjson", EVENTS)
    out = tmp_path / "out.ndjson"
    result = run("convert", str(src), "-o", str(out))
    assert result.exit_code == 3, result.output
    records = read_lines(out)
    assert [r["type"] for r in records] == ["profile", "event", "event"]
    assert records[0]["profileData"] == {"Email": "a@b.co", "Gender": "F"}
    assert records[2]["evtName"] == "Web Page Viewed: Home"
    rejects = read_lines(tmp_path / "out.rejects.ndjson")
    assert len(rejects) == 1
    assert rejects[0]["line"] == 3 and rejects[0]["code"] == "anonymous_not_allowed"
    assert rejects[0]["stage"] == "map" and rejects[0]["event"] == EVENTS[2]
    assert "--track-anonymous" in rejects[0]["message"]
    assert "4 events read" in result.stderr and "rejected: 1" in result.stderr
    assert not (tmp_path / "out.ndjson.partial").exists()


def test_summary_matches_the_files_written(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", EVENTS * 5)
    out = tmp_path / "o.ndjson"
    result = run("convert", str(src), "-o", str(out), "--rejects", str(tmp_path / "r.ndjson"))
    assert f"records:  {len(read_lines(out))} " in result.stderr
    assert f"rejected: {len(read_lines(tmp_path / 'r.ndjson'))} " in result.stderr


def test_clean_input_exits_zero(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[0], EVENTS[1]])
    result = run("convert", str(src), "-o", str(tmp_path / "o.ndjson"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o.rejects.ndjson").read_text() == ""


def test_stdout_carries_data_only(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", EVENTS)
    result = run("convert", str(src), "--rejects", str(tmp_path / "r.ndjson"))
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert len(lines) == 3 and all("type" in x for x in lines)


def test_stdin_gzip_and_several_inputs_in_order(tmp_path: Path) -> None:
    a = write_ndjson(tmp_path / "a.ndjson.gz", [EVENTS[0]], gz=True)
    b = write_ndjson(tmp_path / "b.ndjson", [EVENTS[1]])
    out = tmp_path / "o.ndjson"
    stdin = json.dumps(EVENTS[3]).encode() + b"\n"
    result = run("convert", str(a), "-", str(b), "-o", str(out), input=stdin)
    assert result.exit_code == 0, result.output
    assert [r["type"] for r in read_lines(out)] == ["profile", "event", "event"]
    assert read_lines(out)[1]["evtName"] == "Web Page Viewed: Home"


def test_batches_format_respects_limits(tmp_path: Path) -> None:
    events = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(2500)]
    events += [{"type": "identify", "userId": f"u{i}", "anonymousId": f"a{i}",
                "context": {"device": {"token": f"t{i}"}, "os": {"name": "iOS"}}}
               for i in range(150)]
    src = write_ndjson(tmp_path / "e.ndjson", events)
    out = tmp_path / "o.ndjson"
    result = run("convert", str(src), "-o", str(out), "--format", "batches",
                 "--object-id-mapping")
    assert result.exit_code == 0, result.output
    bodies = [b["d"] for b in read_lines(out)]
    sizes = [(len(b), b[0]["type"]) for b in bodies]
    assert all(n <= 1000 for n, _ in sizes)
    tokens = [b for b in bodies if b[0]["type"] == "token"]
    assert all(len(b) <= 100 and all(r["type"] == "token" for r in b) for b in tokens)
    assert sum(len(b) for b in tokens) == 150
    assert sum(len(b) for b in bodies) == 2500 + 150 * 2


def test_compat_mode_option(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [
        {"type": "track", "userId": 5, "event": "E", "properties": {"ts": "1468308340"}}])
    out = tmp_path / "o.ndjson"
    run("convert", str(src), "-o", str(out), "--compat", "rudderstack")
    assert read_lines(out)[0] == {"evtName": "E", "evtData": {"ts": "1468308340"},
                                  "ts": "1468308340", "type": "event", "identity": 5}
    run("convert", str(src), "-o", str(out))
    assert read_lines(out)[0]["ts"] == 1468308340 and read_lines(out)[0]["identity"] == "5"


@pytest.mark.parametrize(("setting", "event", "flag", "from_file", "from_flag"), [
    # an anonymous event: sent, then rejected (exit 3)
    ("track_anonymous = true", 2, ["--no-track-anonymous"], 0, 3),
    # compat from the file, the default mode for one run: RudderStack sends no time, D1 does
    ('compat = "rudderstack"', 0, ["--compat", "none"], "no ts", "ts"),
], ids=["track-anonymous", "compat"])
def test_config_file_sets_options_and_flags_win(tmp_path: Path, setting: str, event: int,
                                                flag: list[str], from_file: Any,
                                                from_flag: Any) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[event]])
    cfg = tmp_path / "ctmap.toml"
    cfg.write_text(setting + "\n")
    out = tmp_path / "o.ndjson"

    def outcome(*extra: str) -> Any:
        result = run("convert", str(src), "-o", str(out), "--config", str(cfg), *extra)
        if type(from_file) is int:
            return result.exit_code
        assert result.exit_code == 0
        return "ts" if type(read_lines(out)[0].get("ts")) is int else "no ts"

    assert outcome() == from_file
    assert outcome(*flag) == from_flag


def test_allow_sends_what_a_code_would_reject_from_flag_or_file(tmp_path: Path) -> None:
    long = dict(EVENTS[1], properties={"products": [{"sku": "x" * 100}] * 6})
    src = write_ndjson(tmp_path / "e.ndjson", [long])
    out, rejects = tmp_path / "o.ndjson", tmp_path / "r.ndjson"
    refused = run("convert", str(src), "-o", str(out), "--rejects", str(rejects))
    assert refused.exit_code == 3 and read_lines(out) == []
    assert "--allow value_too_long" in read_lines(rejects)[0]["message"]
    sent = run("convert", str(src), "-o", str(out), "--allow", "value_too_long")
    assert sent.exit_code == 0 and len(read_lines(out)) == 1
    assert "warnings: 1 (value_too_long 1)" in sent.stderr
    cfg = tmp_path / "ctmap.toml"
    cfg.write_text('allow = ["value_too_long"]\n')
    assert run("convert", str(src), "-o", str(out), "--config", str(cfg)).exit_code == 0
    cfg.write_text('allow = ["value_too_lng"]\n')
    result = run("convert", str(src), "-o", str(out), "--config", str(cfg))
    assert result.exit_code == 1 and "allow: cannot allow value_too_lng" in result.stderr
    result = run("convert", str(src), "-o", str(out), "--allow", "value_too_lng")
    assert result.exit_code == 2 and "Invalid value for '--allow'" in result.stderr


def test_config_file_problems_are_listed_at_once(tmp_path: Path) -> None:
    cfg = tmp_path / "ctmap.toml"
    cfg.write_text('track_anonymous = "yes"\ncompat = "segment"\nbogus = 1\n')
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[0]])
    result = run("convert", str(src), "--config", str(cfg))
    assert result.exit_code == 1
    assert "3 problem(s)" in result.stderr
    for word in ("track_anonymous", "compat", "bogus"):
        assert word in result.stderr


def test_config_file_problems_say_how_to_fix_them(tmp_path: Path) -> None:
    cfg = tmp_path / "ctmap.toml"
    cfg.write_text('track_anonymus = true\nobject_id_mapping = "yes"\n'
                   '[upload]\nregoin = "in1"\npasscode = "s3cret-pass"\n')
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[0]])
    result = run("convert", str(src), "--config", str(cfg))
    assert result.exit_code == 1 and "4 problem(s)" in result.stderr
    assert "track_anonymus: unknown setting; did you mean track_anonymous?" in result.stderr
    assert "upload.regoin: unknown setting; did you mean region? the [upload] section takes " \
           "region, account_id" in result.stderr
    assert "object_id_mapping: 'yes' is not of type 'boolean'; write true or false" \
           in result.stderr
    assert "upload.passcode: the passcode is not read from the settings file" in result.stderr
    assert "CLEVERTAP_PASSCODE" in result.stderr
    assert "s3cret-pass" not in result.output + result.stderr


def test_a_float_where_the_settings_file_wants_a_count_is_named(tmp_path: Path) -> None:
    # JSON Schema's "integer" takes 4.0; TOML reads it as a float, which no count can be.
    cfg = tmp_path / "ctmap.toml"
    cfg.write_text("max_event_properties = 5.0\n[upload]\nconcurrency = 4.0\n")
    result = run("convert", str(write_ndjson(tmp_path / "e.ndjson", [EVENTS[0]])), "--config",
                 str(cfg))
    assert result.exit_code == 1 and "2 problem(s)" in result.stderr
    assert "max_event_properties: 5.0 is not of type 'integer'" in result.stderr


def test_dry_run_options_without_dry_run_are_refused(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[0]])
    for extra in (["--line", "1"], ["--json"], ["--limit", "3"], ["--type", "track"]):
        result = run("convert", str(src), "-o", str(tmp_path / "o.ndjson"), *extra)
        assert result.exit_code == 2 and "add --dry-run" in result.stderr
    assert not (tmp_path / "o.ndjson").exists()


def test_missing_input_is_a_clear_error_before_any_output(tmp_path: Path) -> None:
    good = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1]])
    result = run("convert", str(good), str(tmp_path / "nope.ndjson"),
                 "-o", str(tmp_path / "o.ndjson"))
    assert result.exit_code == 1
    assert "nope.ndjson: no such file" in result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.ndjson"]  # no .partial left


@pytest.mark.parametrize("full", ["-o", "--rejects"])
def test_a_full_disk_is_an_error_naming_the_output(tmp_path: Path, full: str) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1], EVENTS[0], {"type": "bogus"}] * 50)
    other = "--rejects" if full == "-o" else "-o"
    result = run("convert", str(src), full, "/dev/full", other, str(tmp_path / "x.ndjson"))
    assert result.exit_code == 1
    assert "error: cannot write /dev/full (No space left on device); make room and rerun" \
        in result.stderr
    assert "unexpected" not in result.stderr
    assert (tmp_path / "x.ndjson.partial").exists() and not (tmp_path / "x.ndjson").exists()


@pytest.mark.parametrize("bad", ["-o", "--rejects"])
def test_an_output_under_a_file_is_an_error_naming_it(tmp_path: Path, bad: str) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1]])
    good = "--rejects" if bad == "-o" else "-o"
    result = run("convert", str(src), bad, str(src / "out.ndjson"),
                 good, str(tmp_path / "x.ndjson"))
    assert result.exit_code == 1
    assert f"cannot create {src / 'out.ndjson'} (a part of its directory path is a file)" \
        in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.ndjson"]  # no .partial left


def test_a_dangling_link_in_an_input_directory_is_named_as_one(tmp_path: Path) -> None:
    data = tmp_path / "dump"
    data.mkdir()
    write_ndjson(data / "a.ndjson", [EVENTS[1]])
    (data / "b.ndjson").symlink_to(tmp_path / "gone.ndjson")
    result = run("convert", str(data), "-o", str(tmp_path / "o.ndjson"))
    assert result.exit_code == 1
    assert f"b.ndjson: a link to {tmp_path / 'gone.ndjson'}, which does not exist" \
        in result.stderr
    assert not list(tmp_path.glob("*.partial"))


def truncated_gzip(path: Path, lines: int = 5000) -> Path:
    """A gzip of ``lines`` events cut half-way through its compressed stream."""
    data = gzip.compress(b"".join(json.dumps(EVENTS[1]).encode() + b"\n" for _ in range(lines)))
    path.write_bytes(data[: len(data) // 2])
    return path


def test_corrupt_gzip_names_the_file_and_keeps_a_partial(tmp_path: Path) -> None:
    src = truncated_gzip(tmp_path / "cut.ndjson.gz")
    out = tmp_path / "o.ndjson"
    result = run("convert", str(src), "-o", str(out))
    assert result.exit_code == 1
    assert "cut.ndjson.gz" in result.stderr and "truncated or corrupt" in result.stderr
    assert not out.exists() and (tmp_path / "o.ndjson.partial").exists()


def test_output_may_not_overwrite_an_input(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[0]])
    assert run("convert", str(src), "-o", str(src)).exit_code == 2


def test_usage_error_exit_code() -> None:
    assert run("convert").exit_code == 2
    assert run("convert", "x", "--format", "xml").exit_code == 2


def test_help_shows_examples_and_exit_codes() -> None:
    assert "Example" in run("convert", "--help").output
    assert "Exit codes" in run("--help").output


@pytest.mark.slow
def test_subprocess_streams_records_while_stdin_is_open(tmp_path: Path) -> None:
    """`ctmap convert - -o -` emits records before its input ends: it streams."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "convert", "-", "-o", "-",
         "--rejects", str(tmp_path / "r.ndjson"), "-q"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdin is not None and proc.stdout is not None
    line = json.dumps(EVENTS[1]).encode() + b"\n"
    # Enough records to pass stdout's buffer; written from a thread so neither pipe can block
    # the other, and stdin stays open until the first record has been read back.
    first_seen = threading.Event()
    stdin_closed = threading.Event()

    def feed() -> None:
        assert proc.stdin is not None
        proc.stdin.write(line * 2000)
        proc.stdin.flush()
        first_seen.wait(30)
        stdin_closed.set()
        proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    first = proc.stdout.readline()
    still_open = not stdin_closed.is_set()
    first_seen.set()
    assert first, "no output"
    assert still_open, "the process ended before its stdin closed"
    assert json.loads(first)["evtName"] == "Played"
    rest = proc.stdout.read()
    feeder.join(10)
    assert proc.wait(timeout=60) == 0
    assert 1 + rest.count(b"\n") == 2000


def test_workers_keep_lines_read_before_a_corrupt_gzip(tmp_path: Path) -> None:
    src = truncated_gzip(tmp_path / "cut.ndjson.gz")
    out = tmp_path / "o.ndjson"
    one = run("convert", str(src), "-o", str(out))
    single = (tmp_path / "o.ndjson.partial").read_bytes()
    two = run("convert", str(src), "-o", str(out), "--workers", "2")
    assert one.exit_code == two.exit_code == 1
    assert (tmp_path / "o.ndjson.partial").read_bytes() == single
    assert single.count(b"\n") > 1000


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_closed_pipe_ends_quietly_without_leftovers(tmp_path: Path, workers: str) -> None:
    """`ctmap convert ... | head -1`: no traceback, no stray worker, no temp files; and not
    exit 0, since the run did not finish (a pipeline with pipefail must see it)."""
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1]] * 50000)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "convert", str(src), "-o",
         "-", "--rejects", str(tmp_path / "r.ndjson"), "--workers", workers],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["evtName"] == "Played"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 1
    err = proc.stderr.read()
    assert b"Traceback" not in err and b"broken pipe" in err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("ctmap-")]
    ps = subprocess.run(["ps", "-eo", "args"], check=True, capture_output=True, text=True).stdout
    assert str(src) not in ps


@pytest.mark.parametrize("workers", ["1", "2"])
def test_gz_output_is_compressed_and_identical(tmp_path: Path, workers: str) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", EVENTS * 3)
    plain, packed = tmp_path / "o.ndjson", tmp_path / "o.ndjson.gz"
    run("convert", str(src), "-o", str(plain), "--rejects", str(tmp_path / "r1.ndjson"))
    run("convert", str(src), "-o", str(packed), "--rejects", str(tmp_path / "r2.ndjson.gz"),
        "--workers", workers)
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    assert gzip.decompress((tmp_path / "r2.ndjson.gz").read_bytes()) == \
        (tmp_path / "r1.ndjson").read_bytes()


def test_a_regular_file_under_dev_keeps_the_partial_file_protection(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm here")
    target = shm / f"ctmap-test-{os.getpid()}.ndjson"
    try:
        target.write_text("old\n")
        assert not written_in_place(str(target))
    finally:
        target.unlink(missing_ok=True)


def test_no_output_goes_inside_an_input_directory(tmp_path: Path) -> None:
    # Not even a new file: the next night's run would read it back as input.
    data = tmp_path / "dump"
    data.mkdir()
    write_ndjson(data / "a.ndjson", [EVENTS[1]] * 3)
    (data / "old.ndjson.partial").write_text(json.dumps(EVENTS[1]) + "\n")
    for args in (["-o", data / "records.ndjson"], ["-o", data / "a.ndjson"],
                 ["-o", tmp_path / "x.ndjson", "--rejects", data / "sub" / "r.ndjson"]):
        result = run("convert", str(data), *map(str, args))
        assert result.exit_code == 2 and "inside the input directory" in result.stderr
    assert not (data / "records.ndjson").exists()
    # A .partial file left in the directory is not read.
    result = run("convert", str(data), "-o", str(tmp_path / "records.ndjson"))
    assert result.exit_code == 0, result.output
    assert len(read_lines(tmp_path / "records.ndjson")) == 3


def test_output_and_rejects_may_not_be_one_file(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1]])
    both = str(tmp_path / "o.ndjson")
    result = run("convert", str(src), "-o", both, "--rejects", both)
    assert result.exit_code == 2 and "-o and --rejects are the same file" in result.stderr


def test_dev_null_output_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1]])
    before = os.stat("/dev/null")
    result = run("convert", str(src), "-o", "/dev/null", "--rejects", str(tmp_path / "r.nd"))
    assert result.exit_code == 0, result.output
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert not os.path.exists("/dev/null.partial")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_exits_130_and_leaves_only_a_partial_file(tmp_path: Path, signum: int,
                                                         workers: str) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1]] * 300_000)
    out = tmp_path / "o.ndjson"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "convert", str(src), "-o",
         str(out), "--workers", workers], stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(tmp_path)}, cwd=Path(__file__).resolve().parent.parent)
    partial = tmp_path / "o.ndjson.partial"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == 130
    assert proc.stderr is not None and b"interrupted" in proc.stderr.read()
    assert partial.exists() and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("ctmap-")]  # spill dir


@pytest.mark.slow
def test_spill_files_of_a_killed_run_are_removed_by_the_next(tmp_path: Path) -> None:
    """kill -9 cannot be cleaned up after, and --workers 2 over several gzip files spills each
    one's whole output to $TMPDIR: the next run removes what the killed one left, and leaves
    the directory of a run still going."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b"):
        write_ndjson(inputs / f"{name}.ndjson.gz", [EVENTS[1]] * 200_000, gz=True)
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    command = [sys.executable, "-c", "from cli.main import main; main()", "convert", "-q",
               "--workers", "2", "--rejects", str(tmp_path / "r.ndjson")]
    cwd = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([*command, str(inputs), "-o", str(tmp_path / "o.ndjson")],
                            env=env, cwd=cwd)
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in tmp_path.glob("ctmap-*/*")) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait(timeout=60)
    [left] = tmp_path.glob("ctmap-*")
    assert any(p.stat().st_size for p in left.iterdir())
    # Its worker ends on its own (its parent died); it shares the killed run's lock till then.
    while time.monotonic() < deadline:
        fd = os.open(left, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(0.01)
        finally:
            os.close(fd)
    held = tmp_path / "ctmap-spill-held"
    held.mkdir()
    (held / "1-0.records").write_bytes(b"{}\n")
    fd = os.open(held, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        subprocess.run([*command, str(inputs / "a.ndjson.gz"), "-o", str(tmp_path / "o2.ndjson")],
                       env=env, cwd=cwd, timeout=120, check=True)
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.glob("ctmap-*")) == ["ctmap-spill-held"]
    assert (held / "1-0.records").exists()


def test_two_runs_writing_one_file_do_not_mix_their_lines(tmp_path: Path) -> None:
    """Two `-o -` runs from one directory share the default rejects name: the second is
    refused before it writes, and the first's file holds its own lines only."""
    src = write_ndjson(tmp_path / "e.ndjson", EVENTS)
    first = Output(str(tmp_path / "r.ndjson"))  # a run still going
    first.write(b'{"first": 1}\n')
    second = run("convert", str(src), "-o", str(tmp_path / "o.ndjson"), "--rejects",
                 str(tmp_path / "r.ndjson"))
    assert second.exit_code == 1
    assert "another ctmap run is writing" in " ".join(second.stderr.split())
    assert not (tmp_path / "o.ndjson.partial").exists()
    first.commit()
    assert (tmp_path / "r.ndjson").read_bytes() == b'{"first": 1}\n'
    assert not (tmp_path / "r.ndjson.partial").exists()
    assert run("convert", str(src), "-o", str(tmp_path / "o.ndjson"), "--rejects",
               str(tmp_path / "r.ndjson")).exit_code == 3


def test_outputs_are_written_where_files_cannot_be_locked(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """On a file system without locks (NFS without its lock daemon: flock fails with ENOLCK)
    the outputs are written as before the lock existed, not refused."""
    src = write_ndjson(tmp_path / "e.ndjson", EVENTS)
    expected = run("convert", str(src), "-o", str(tmp_path / "a.ndjson.gz"), "--rejects",
                   str(tmp_path / "a.rej"))

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(writers.fcntl, "flock", no_locks)
    result = run("convert", str(src), "-o", str(tmp_path / "b.ndjson.gz"), "--rejects",
                 str(tmp_path / "b.rej"))
    assert result.exit_code == expected.exit_code == 3, result.stderr
    assert gzip.decompress((tmp_path / "b.ndjson.gz").read_bytes()) == \
        gzip.decompress((tmp_path / "a.ndjson.gz").read_bytes())
    assert (tmp_path / "b.rej").read_bytes() == (tmp_path / "a.rej").read_bytes()
    assert not list(tmp_path.glob("*.partial"))


def test_a_rejected_line_keeps_the_event_exactly_as_it_was_read(tmp_path: Path) -> None:
    # Spacing, key order, 1.0 and an escape as written: the rejects file holds these bytes.
    event = '{ "event" : "Played", "type":"track",\t"properties":{"x":1.0,"s":"\\u00e9"} }'
    checked_out = '{"type":"track","userId":"u","event":"App Launched","properties":{}}'
    src = tmp_path / "in.ndjson"
    src.write_bytes((event + "\r\n" + checked_out + "\n").encode())
    result = run("convert", str(src), "-o", str(tmp_path / "o.ndjson"))
    assert result.exit_code == 3, result.output
    lines = (tmp_path / "o.rejects.ndjson").read_bytes().splitlines()
    assert lines[0].endswith(b',"event":' + event.encode() + b"}")
    first, second = (json.loads(x) for x in lines)
    assert first["event"] == json.loads(event) and first["line"] == 1
    assert second["stage"] == "check" and second["record"]["evtName"] == "App Launched"
    assert second["event"] == json.loads(checked_out) and second["line"] == 2


@pytest.mark.parametrize("checks, passed, rejected", [
    ("strict", [], ["invalid_record_type", "invalid_record_type", "not_an_object"]),
    ("warn", [{"identity": "x"}, {"type": 5, "identity": "x"}], ["not_an_object"]),
    ("off", [{"identity": "x"}, {"type": 5, "identity": "x"}], ["not_an_object"]),
])
def test_odd_records_in_a_body_read_back_are_rejected_or_passed_not_a_crash(
        tmp_path: Path, checks: str, passed: list[Any], rejected: list[str]) -> None:
    src = write_ndjson(tmp_path / "bodies.ndjson",
                       [{"d": [{"identity": "x"}]}, {"d": [{"type": 5, "identity": "x"}, "str"]}])
    out, rejects = tmp_path / "out.ndjson", tmp_path / "rejects.ndjson"
    result = run("convert", str(src), "-o", str(out), "--rejects", str(rejects),
                 "--checks", checks)
    assert result.exit_code == 3, result.output
    assert read_lines(out) == passed
    got = read_lines(rejects)
    assert [r["code"] for r in got] == rejected
    assert (got[-1]["line"], got[-1]["index"], got[-1]["record"]) == (2, 2, "str")


def ctmap_process(*args: str, cwd: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    """ctmap in a process of its own, run from ``cwd``, on this checkout's source."""
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", *args], cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(root)}, **kwargs)


@pytest.mark.slow
def test_workers_stopped_early_never_hang_the_run(tmp_path: Path) -> None:
    # The first input fails at once, while the workers are still starting: they used to
    # take the stop in this process's SIGTERM handler, swallow it, and wait for good.
    for _ in range(6):
        proc = ctmap_process("convert", "missing.ndjson", "-o", "o.ndjson", "--workers", "2",
                             "-q", cwd=tmp_path, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1 and b"missing.ndjson" in err
        assert b"Traceback" not in err


def test_an_event_nested_too_deep_to_write_is_rejected_and_the_run_goes_on(
        tmp_path: Path) -> None:
    deep: Any = 1
    for _ in range(300):
        deep = {"a": deep}
    src = tmp_path / "e.ndjson"
    src.write_text(json.dumps({**EVENTS[1], "properties": {"p": deep}}) + "\n"
                   + json.dumps(EVENTS[1]) + "\n")
    out, rejects = tmp_path / "o.ndjson", tmp_path / "r.ndjson"
    result = run("convert", str(src), "-o", str(out), "--rejects", str(rejects))
    assert result.exit_code == 3, result.output
    assert len(read_lines(out)) == 1
    [line] = read_lines(rejects)
    assert line["code"] == "nesting_too_deep" and line["line"] == 1


def test_rejects_of_a_device_output_go_to_the_current_directory(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [{"type": "track", "event": "E"}])
    proc = ctmap_process("convert", str(src), "-o", "/dev/null", "-q", cwd=tmp_path)
    assert proc.wait(timeout=60) == 3
    assert len(read_lines(tmp_path / "ctmap-rejects.ndjson")) == 1


@pytest.mark.parametrize("args", [["-o", "-", "--rejects", "-"], ["-o", "."],
                                  ["--rejects", "."]])
def test_outputs_that_cannot_be_written_are_refused_first(tmp_path: Path,
                                                          args: list[str]) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1]])
    os.chdir(tmp_path)
    result = run("convert", str(src), *args)
    assert result.exit_code == 2
    assert "same file" in result.stderr or "is a directory" in result.stderr
    assert not list(tmp_path.glob("*.partial"))


def test_linked_directories_are_read_once(tmp_path: Path) -> None:
    data, real = tmp_path / "dump", tmp_path / "real"
    (data / "d1").mkdir(parents=True)
    real.mkdir()
    write_ndjson(data / "d1" / "a.ndjson", [EVENTS[1]])
    write_ndjson(real / "b.ndjson", [EVENTS[1]] * 2)
    (data / "d2").symlink_to(real)
    (real / "up").symlink_to(data)  # a loop back up
    out = tmp_path / "o.ndjson"
    result = run("convert", str(data), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert len(read_lines(out)) == 3


def test_an_archive_is_read_in_time_order_though_its_hours_are_not_zero_padded(
        tmp_path: Path) -> None:
    """RudderStack's archive writes gw/<date>/<H>/: hour 2 comes before hour 10."""
    day = tmp_path / "gw" / "2024-01-15"
    for hour in (0, 1, 2, 9, 10, 11, 23):
        (day / str(hour) / "inst").mkdir(parents=True)
        write_ndjson(day / str(hour) / "inst" / f"{hour * 100}.{hour * 100 + 99}.json",
                     [dict(EVENTS[1], event=f"hour {hour}")])
    out = tmp_path / "o.ndjson"
    assert run("convert", str(tmp_path / "gw"), "-o", str(out)).exit_code == 0
    assert [r["evtName"] for r in read_lines(out)] == [
        f"hour {h}" for h in (0, 1, 2, 9, 10, 11, 23)]


def test_an_output_given_as_a_link_is_written_through_it(tmp_path: Path) -> None:
    """`-o latest.ndjson`, a link to the dated file: the dated file is replaced, the link
    stays a link (and a link to a file not yet made makes it)."""
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1], EVENTS[2]])
    dated, latest = tmp_path / "2024-01-15.ndjson", tmp_path / "latest.ndjson"
    dated.write_text("yesterday\n")
    latest.symlink_to(dated.name)
    rejects = tmp_path / "rejects.ndjson"
    rejects.symlink_to("rejects-2024-01-15.ndjson")  # dangling until the run makes it
    result = run("convert", str(src), "-o", str(latest), "--rejects", str(rejects))
    assert result.exit_code == 3, result.output
    assert latest.is_symlink() and rejects.is_symlink()
    assert len(read_lines(dated)) == 1
    assert [r["code"] for r in read_lines(tmp_path / "rejects-2024-01-15.ndjson")] == [
        "anonymous_not_allowed"]
    assert not list(tmp_path.glob("*.partial"))


def test_a_file_met_twice_is_read_once_under_its_first_name(tmp_path: Path) -> None:
    """A 'latest' link beside the file it names, a hard link, or the file named again: its
    events go once, not once per name."""
    data = tmp_path / "dump"
    data.mkdir()
    write_ndjson(data / "events.ndjson", [EVENTS[1]] * 2)
    write_ndjson(data / "other.ndjson", [EVENTS[1]])
    (data / "latest.ndjson").symlink_to("events.ndjson")
    os.link(data / "other.ndjson", data / "other-copy.ndjson")
    out, rejects = tmp_path / "o.ndjson", tmp_path / "r.ndjson"
    result = run("convert", str(data), str(data / "events.ndjson"), "-o", str(out),
                 "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    assert len(read_lines(out)) == 3
    assert expand_inputs([str(data), str(data / "events.ndjson")]) == [
        str(data / "events.ndjson"), str(data / "other-copy.ndjson")]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_integer_beyond_64_bits_rejects_its_event_not_its_batch(tmp_path: Path,
                                                                   workers: str) -> None:
    big = 123456789012345678901234567890
    batch = [dict(EVENTS[1], properties={"n": i}) for i in range(5)]
    batch[2] = dict(EVENTS[1], properties={"n": big})
    plain = f'{{"type":"track", "userId":"u","event":"E","properties":{{"n":{big}}}}}'
    src = tmp_path / "e.ndjson"
    src.write_text(json.dumps({"batch": batch}) + "\n" + plain + "\n")
    out, rejects = tmp_path / "o.ndjson", tmp_path / "r.ndjson"
    result = run("convert", str(src), "-o", str(out), "--rejects", str(rejects),
                 "--workers", workers)
    assert result.exit_code == 3, result.output
    assert [r["evtData"]["n"] for r in read_lines(out)] == [0, 1, 3, 4]
    first, second = rejects.read_bytes().splitlines()
    # The batch's event, its number exact; the plain line, as the bytes read.
    assert json.loads(first)["index"] == 3 and json.loads(first)["event"]["properties"] == {
        "n": big}
    assert json.loads(first)["code"] == json.loads(second)["code"] == "number_out_of_range"
    assert second.endswith(b',"event":' + plain.encode() + b"}")


def _convert_lines(tmp_path: Path, lines: list[str], *args: str) -> tuple[Any, Path, Path]:
    """convert these lines (a file of them) with ``args``: the result, output and rejects."""
    src = tmp_path / "e.ndjson"
    src.write_text("\n".join(lines) + "\n")
    out, rejects = tmp_path / "o.ndjson", tmp_path / "r.ndjson"
    return run("convert", str(src), "-o", str(out), "--rejects", str(rejects), *args), out, rejects


def test_file_names_with_brackets_are_printed_as_they_are(tmp_path: Path) -> None:
    # Once read as rich markup: "out[x]" printed as "out", and "[/x]" an error after the run.
    src = tmp_path / "in[x].ndjson"
    src.write_text('{"type":"track","userId":"u","event":"E"}\n{"type":"track"}\n')
    out, rejects = tmp_path / "out[/x].ndjson", tmp_path / "r[bold].ndjson"
    result = run("convert", str(src), "-o", str(out), "--rejects", str(rejects))
    assert result.exit_code == 3, result.output
    assert f"-> {out}" in result.stderr and f"-> {rejects}" in result.stderr
    # On a terminal, the same lines go through rich, styled but not parsed.
    console = Console(file=io.StringIO(), force_terminal=True, no_color=True, width=200)
    print_lines(console, [[("  rejected: 1", "yellow"), (f" -> {rejects}", None)]])
    assert console.file.getvalue() == f"  rejected: 1 -> {rejects}\n"  # type: ignore[attr-defined]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_integer_beyond_64_bits_is_judged_where_it_would_be_sent(tmp_path: Path,
                                                                    workers: str) -> None:
    big = 123456789012345678901234567890
    lines = [
        # In a field the mapping never reads: the event goes, the number is not sent.
        f'{{"type":"track","userId":"u","event":"E","context":{{"app":{{"build":{big}}}}}}}',
        # In a field sent as text: exact (a nested value, a numeric user id).
        f'{{"type":"track","userId":{big},"event":"E","properties":{{"o":{{"n":{big}}}}}}}',
        # Sent as a number: refused by the checks.
        f'{{"type":"track","userId":"u","event":"E","properties":{{"n":{big}}}}}',
    ]
    result, out, rejects = _convert_lines(tmp_path, lines, "--workers", workers)
    assert result.exit_code == 3, result.output
    first, second = read_lines(out)
    assert first["evtData"] == {}
    assert second["identity"] == str(big) and second["evtData"]["o"] == f'{{"n":{big}}}'
    (reject,) = read_lines(rejects)
    assert (reject["line"], reject["stage"], reject["code"]) == (3, "check",
                                                                 "number_out_of_range")
    assert "evtData.n" in reject["message"] and str(big) in reject["message"]
    # Let through on request, the number written exactly; compat mode sends JS's double.
    for args, n in ((["--allow", "number_out_of_range"], big), (["--checks", "off"], big),
                    (["--compat", "rudderstack"], "1.2345678901234568e+29")):
        result, out, _ = _convert_lines(tmp_path, lines, "--workers", workers, *args)
        assert result.exit_code == 0, result.output
        assert f'"n":{n}}}'.encode() in out.read_bytes().splitlines()[2], args


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_line_without_a_string_type_is_rejected_as_the_bytes_read(tmp_path: Path,
                                                                    workers: str) -> None:
    # No type, a number for a type, no type with an integer beyond 64 bits, and a property
    # beyond 64 bits (refused by the checks): each line is the whole event, so the rejects
    # file keeps it as read, spacing and number forms too.
    lines = ['{"userId": "u1",  "event": "E", "properties": {"x": 1.0, "y": 1e2}}',
             '{"type": 5, "userId": "u1"}',
             '{"userId": "u1", "n": 123456789012345678901234567890}',
             '{"type": "track", "userId": "u1", "event": "E", "properties": {"n": -1e2, '
             '"big": 123456789012345678901234567890}}']
    result, _, rejects = _convert_lines(tmp_path, lines, "--workers", workers)
    assert result.exit_code == 3, result.output
    written = rejects.read_bytes().splitlines()
    assert [json.loads(r)["code"] for r in written] == [
        "missing_type", "unsupported_type", "missing_type", "number_out_of_range"]
    for line, reject in zip(lines, written, strict=True):
        assert reject.endswith(b',"event":' + line.encode() + b"}")



@pytest.mark.slow
def test_events_nested_up_to_the_read_limit_never_stop_the_run(tmp_path: Path) -> None:
    # Read to 1024 levels; written back (rejects, records sent as given) past Python's
    # default recursion limit.
    deep = "[" * 1000 + "1" + "]" * 1000
    lines = [
        '{"batch":[{"type":"track","event":"B","userId":"u","properties":{"x":DEEP}}]}',
        '{"type":"identify","userId":"u","traits":{"category-unsubscribe":{"email":DEEP}}}',
        json.dumps(EVENTS[1]),
    ]
    lines = [line.replace("DEEP", deep) for line in lines]
    (tmp_path / "deep.ndjson").write_text("\n".join(lines) + "\n")
    for args in (["-o", "o.ndjson"], ["--dry-run"]):
        proc = ctmap_process("convert", "deep.ndjson", *args, cwd=tmp_path,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 3, err
    assert len(read_lines(tmp_path / "o.ndjson")) == 1
    rejects = (tmp_path / "o.rejects.ndjson").read_bytes().splitlines()
    assert {orjson.loads(r)["code"] for r in rejects} == {"nesting_too_deep", "nested_value"}


def test_stdout_by_another_name_is_stdout(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1], {"type": "track", "event": "E"}])
    # stdout redirected to a file: records and rejects would both land in it.
    with (tmp_path / "both.ndjson").open("wb") as sink:
        proc = ctmap_process("convert", str(src), "-o", "-", "--rejects", "/dev/stdout",
                             cwd=tmp_path, stdout=sink, stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and b"same file" in err
    assert run("convert", str(src), "-o", "/dev/null", "--rejects", "/dev/null").exit_code == 3
    # Appended, as -o - is: what the shell wrote to the file before stays.
    log = tmp_path / "app.log"
    log.write_text("header\n")
    with log.open("ab") as sink:
        proc = ctmap_process("convert", str(src), "-o", "/dev/stdout", "--rejects", "r.ndjson",
                             cwd=tmp_path, stdout=sink)
        assert proc.wait(timeout=60) == 3
    assert log.read_text().startswith("header\n{")
    # A link to this process's stdout is written in place, not renamed over.
    (tmp_path / "d").mkdir()
    link = tmp_path / "d" / "mystdout"
    link.symlink_to("../" * len(tmp_path.parts) + "proc/self/fd/1")  # relative, into /proc
    out = tmp_path / "all.ndjson"
    with out.open("wb") as sink:
        proc = ctmap_process("convert", str(src), "-o", str(link), "--rejects", "r.ndjson",
                             cwd=tmp_path, stdout=sink)
        assert proc.wait(timeout=60) == 3
    assert link.is_symlink() and len(read_lines(out)) == 1


def test_a_closed_stdout_is_a_clear_error(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [EVENTS[1]])
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        f'"{sys.executable}" -c "from cli.main import main; main()" convert "{src}" -q >&-',
        shell=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=False, stderr=subprocess.PIPE, timeout=60, check=False)
    assert proc.returncode == 1
    assert b"stdout is closed" in proc.stderr and b"Traceback" not in proc.stderr


def test_an_unfinished_run_leaves_its_rejects_partial_too(tmp_path: Path) -> None:
    # The rejections of the part converted before the damage are not the run's rejects file:
    # like the records, they stay under .partial (a rerun writes the real one).
    data = gzip.compress(b"".join(json.dumps(e).encode() + b"\n" for e in EVENTS * 2000))
    src = tmp_path / "cut.ndjson.gz"
    src.write_bytes(data[: len(data) // 2])
    out, rejects = tmp_path / "o.ndjson", tmp_path / "r.ndjson"
    result = run("convert", str(src), "-o", str(out), "--rejects", str(rejects))
    assert result.exit_code == 1
    assert not out.exists() and not rejects.exists()
    kept = read_lines(tmp_path / "r.ndjson.partial")
    assert kept and {r["code"] for r in kept} == {"anonymous_not_allowed"}
    assert "r.ndjson.partial" in result.stderr and "o.ndjson.partial" in result.stderr


def test_the_summary_counts_unreadable_lines_by_type_too(tmp_path: Path) -> None:
    src = tmp_path / "e.ndjson"
    src.write_bytes(json.dumps(EVENTS[1]).encode() + b"\nnot json\n[1]\n")
    result = run("convert", str(src), "-o", str(tmp_path / "o.ndjson"))
    assert "3 events read" in result.stderr
    assert "by type:  (unreadable) 2, track 1" in result.stderr
