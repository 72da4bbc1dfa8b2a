"""End to end, as processes: ``ctmap upload`` against the CleverTap stand-in running as its own
process (so it keeps counting when the client dies).

- kill -9 in the middle of a slow upload, rerun with the same --state: nothing lost,
  duplicates at most the bodies in flight; a rerun of the finished job sends nothing;
- SIGTERM: exit 130 after the requests in flight are answered, resume without duplicates;
- 100,000 events with faults on: the summary accounts for every event;
- the passcode is searched for in every output and file of these runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_clevertap import read_accepted_file
from tests.support.upload_data import ACCOUNT, PASSCODE, identify, tally, track, write_ndjson

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CTMAP = [sys.executable, "-c", "from cli.main import main; main()"]
CLIENT_ENV = {**os.environ, "CLEVERTAP_ACCOUNT_ID": ACCOUNT, "CLEVERTAP_PASSCODE": PASSCODE,
              "NO_COLOR": "1"}


class StandIn:
    """The fake CleverTap as a subprocess, recording accepted records to a file."""

    def __init__(self, directory: Path, *flags: str) -> None:
        self.accepted_file = directory / "accepted.ndjson"
        env = {**os.environ, "CT_PASS": PASSCODE}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_clevertap", "--port", "0",
             "--account-id", ACCOUNT, "--passcode-env", "CT_PASS",
             "--accepted-file", str(self.accepted_file), *flags],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stderr is not None
        line = self.process.stdout.readline()
        assert line.startswith("listening "), line + self.process.stderr.read()
        self.url = line.split()[1]

    def accepted(self) -> list[dict[str, Any]]:
        return read_accepted_file(self.accepted_file) if self.accepted_file.exists() else []

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=10)


@pytest.fixture
def stand_in(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StandIn]:
    flags: tuple[str, ...] = getattr(request, "param", ())
    server = StandIn(tmp_path, *flags)
    try:
        yield server
    finally:
        server.stop()


def ctmap_upload(tmp_path: Path, name: str, *args: object) -> subprocess.Popen[bytes]:
    """Start ``ctmap upload ARGS`` with stdout/stderr to files named after ``name``."""
    out = (tmp_path / f"{name}.out").open("wb")
    err = (tmp_path / f"{name}.err").open("wb")
    try:
        return subprocess.Popen([*CTMAP, "upload", *map(str, args)], cwd=ROOT,
                                env=CLIENT_ENV, stdout=out, stderr=err)
    finally:
        out.close()
        err.close()


def finish(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    return process.wait(timeout=timeout)


def wait_for_progress(state: Path, bodies: int, process: subprocess.Popen[bytes],
                      timeout: float = 20) -> None:
    """Until the checkpoint shows ``bodies`` acknowledged bodies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "ctmap finished before it could be interrupted"
        try:
            data = json.loads(state.read_text())
        except (FileNotFoundError, ValueError):
            data = None
        if data and data["next_body"] + len(data["acked_above"]) >= bodies:
            return
        time.sleep(0.02)
    raise AssertionError("no progress in the state file")


def assert_passcode_nowhere(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file() and path.name != "accepted.ndjson":  # the server's own file
            assert PASSCODE.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("stand_in", [("--latency", "0.25")], indirect=True)
def test_kill_9_then_rerun_loses_nothing(stand_in: StandIn, tmp_path: Path) -> None:
    total = 24000
    events = write_ndjson(tmp_path / "events.ndjson", [track(n) for n in range(total)])
    state = tmp_path / "job.state"
    args = (events, "--endpoint", stand_in.url, "--state", state, "--concurrency", "4")

    first = ctmap_upload(tmp_path, "first", *args)
    wait_for_progress(state, 5, first)
    first.send_signal(signal.SIGKILL)
    assert finish(first) == -signal.SIGKILL
    time.sleep(0.4)  # let the requests that were in flight land at the stand-in
    before = len(stand_in.accepted())
    assert 5000 <= before < total

    second = ctmap_upload(tmp_path, "second", *args)
    assert finish(second) == 0, (tmp_path / "second.err").read_text()
    counts = tally(stand_in.accepted())
    assert set(counts) == {("event", n) for n in range(total)}  # nothing lost
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= 4 * 1000  # at most the bodies in flight at the kill
    summary = (tmp_path / "second.err").read_text()
    assert "resumed" in summary and "acknowledged by an earlier run" in summary

    accepted = len(stand_in.accepted())
    third = ctmap_upload(tmp_path, "third", *args)  # a rerun of the finished job
    assert finish(third) == 0
    assert "nothing to do" in (tmp_path / "third.err").read_text()
    time.sleep(0.4)  # what it might have sent has landed
    assert len(stand_in.accepted()) == accepted
    assert_passcode_nowhere(tmp_path)


@pytest.mark.parametrize("stand_in", [("--latency", "0.25")], indirect=True)
def test_sigterm_saves_and_exits_130(stand_in: StandIn, tmp_path: Path) -> None:
    total = 16000
    events = write_ndjson(tmp_path / "events.ndjson", [track(n) for n in range(total)])
    state = tmp_path / "job.state"
    args = (events, "--endpoint", stand_in.url, "--state", state, "--concurrency", "2")
    first = ctmap_upload(tmp_path, "first", *args)
    wait_for_progress(state, 2, first)
    first.send_signal(signal.SIGTERM)
    assert finish(first) == 130
    err = (tmp_path / "first.err").read_text()
    assert "interrupted" in err and "rerun the same command" in err

    second = ctmap_upload(tmp_path, "second", *args)
    assert finish(second) == 0
    counts = tally(stand_in.accepted())
    assert len(counts) == total and set(counts.values()) == {1}  # in-flight work was saved
    assert_passcode_nowhere(tmp_path)


@pytest.mark.parametrize("stand_in", [(
    "--rate-429", "0.08", "--rate-5xx", "0.04", "--rate-timeout", "0.02",
    "--rate-drop-before", "0.02", "--rate-drop-after", "0.02", "--rate-555", "0.002",
    "--slow-seconds", "1.2", "--seed", "3")], indirect=True)
def test_100k_events_with_faults_are_all_accounted_for(stand_in: StandIn,
                                                       tmp_path: Path) -> None:
    lines: list[Any] = []
    for n in range(100_000):
        lines.append(identify(n, token=True) if n % 50 == 0 else track(n))
        if n % 20_000 == 7:
            lines.append(b"{truncated")
    lines.append(track(-1, name="Notification Sent"))  # refused by checks (a system event)
    events = write_ndjson(tmp_path / "events.ndjson", lines)
    state = tmp_path / "job.state"
    process = ctmap_upload(tmp_path, "run", events, "--endpoint", stand_in.url, "--state", state,
                           "--concurrency", "8", "--timeout", "1", "--object-id-mapping",
                           "--json")
    code = finish(process, timeout=120)
    err = (tmp_path / "run.err").read_text()
    assert code == 3, err
    report = json.loads((tmp_path / "run.out").read_text())
    read = report["read"]
    assert read["events"] == 100_000 + 5 + 1
    records = read["records"]  # records that passed the checks: tracks 1, identifies 2
    assert records == 98_000 + 2 * 2_000
    assert report["accepted"] == records
    assert report["rejected"] == {"invalid_json": 5, "restricted_event": 1}
    assert report["pending_records"] == 0 and report["outcome"] == "complete"
    # every event is read = accepted (as its records) + rejected; nothing lost at CleverTap
    counts = tally(stand_in.accepted())
    assert len(counts) == records
    assert sum(n - 1 for n in counts.values()) <= report["possible_duplicates"]
    assert "accepted: 102,000" in err and "rejected: 6" in err
    assert_passcode_nowhere(tmp_path)
