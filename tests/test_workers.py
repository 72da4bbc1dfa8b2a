"""``--workers N`` gives the same output, byte for byte, as one process."""

from __future__ import annotations

import errno
import gzip
import json
import multiprocessing
import os
import re
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clevertap_mapper import MapperConfig, pipeline
from clevertap_mapper.checks import Checker
from clevertap_mapper.errors import InputError
from clevertap_mapper.io.readers import Block
from clevertap_mapper.io.writers import Output, RejectsWriter
from clevertap_mapper.pipeline import run_convert
from clevertap_mapper.stage import ChunkConverter, ChunkResult
from clevertap_mapper.workers import WorkerFailed, in_workers, units

ids = st.sampled_from(["u1", "u2", 7, "", None])
event = st.fixed_dictionaries(
    {"type": st.sampled_from(["track", "identify", "page", "screen", "alias", "group", 5])},
    optional={"userId": ids, "anonymousId": ids, "previousId": ids,
              "event": st.sampled_from(["Played", "Order Completed", ""]),
              "properties": st.dictionaries(st.sampled_from(["a", "ts", "products", "revenue"]),
                                            st.integers() | st.text(max_size=5), max_size=3),
              "traits": st.dictionaries(st.sampled_from(["email", "gender", "x.y"]),
                                        st.text(max_size=5), max_size=3),
              "timestamp": st.sampled_from(["2024-01-01T00:00:00Z", "bad"])})
line = st.one_of(event.map(json.dumps), st.sampled_from(["", "{oops", "[1]", "  "]),
                 st.lists(event, max_size=3).map(lambda b: json.dumps({"batch": b})))


def run(tmp: Path, src: Path, workers: int, fmt: Any = "records") -> tuple[bytes, bytes, dict]:
    """Output, rejects and summary of converting ``src`` in blocks of 200 bytes."""
    out, rej = Output(str(tmp / f"o{workers}")), RejectsWriter(str(tmp / f"r{workers}"))
    summary = run_convert([str(src)], MapperConfig(track_anonymous=True), out, rej, fmt=fmt,
                          checker=Checker("strict"), workers=workers, block_bytes=200)
    out.commit()
    rej.commit()
    return (tmp / f"o{workers}").read_bytes(), (tmp / f"r{workers}").read_bytes(), \
        summary.as_dict()


def convert(tmp: Path, lines: list[str], workers: int, fmt: Any, head: str = "",
            end: str = "\n") -> tuple[bytes, bytes, dict]:
    src = tmp / "in.ndjson"
    src.write_text(head + "\n".join(lines) + end)
    return run(tmp, src, workers, fmt)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(line, min_size=1, max_size=60), st.sampled_from(["records", "batches"]),
       st.sampled_from([2, 3]), st.sampled_from(["", "\ufeff"]), st.sampled_from(["\n", ""]))
def test_workers_output_is_identical(tmp_path: Path, lines: list[str], fmt: Any, workers: int,
                                     head: str, end: str) -> None:
    # Blocks of 200 bytes: lines longer than a block, a BOM, no newline at the end.
    one = convert(tmp_path, lines, 1, fmt, head, end)
    assert convert(tmp_path, lines, workers, fmt, head, end) == one


def convert_dir(tmp: Path, parts: list[list[str]], workers: int) -> tuple[bytes, bytes, dict]:
    src = tmp / "in"
    src.mkdir(exist_ok=True)
    for i, lines in enumerate(parts):
        (src / f"part-{i}.ndjson.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return run(tmp, src, workers)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(line, min_size=1, max_size=20), min_size=2, max_size=6),
       st.sampled_from([2, 3]))
def test_workers_given_whole_gzip_files_give_the_same_output(tmp_path: Path,
                                                             parts: list[list[str]],
                                                             workers: int) -> None:
    # Several gzip files: each goes whole to one process, which inflates it itself.
    run = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    run.mkdir()
    assert convert_dir(run, parts, workers) == convert_dir(run, parts, 1)


def test_a_truncated_gzip_among_several_keeps_what_came_before(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    good = json.dumps({"type": "track", "userId": "u", "event": "E"}) + "\n"
    for i in range(4):
        data = gzip.compress((good * 3000).encode())
        (src / f"p{i}.ndjson.gz").write_bytes(data if i != 2 else data[: len(data) // 2])
    outputs = []
    for workers in (1, 2, 3):
        out, rej = Output(str(tmp_path / f"o{workers}")), RejectsWriter(str(tmp_path / "r"))
        with pytest.raises(InputError, match=r"p2\.ndjson\.gz"):
            run_convert([str(src)], MapperConfig(), out, rej, workers=workers)
        out.commit()
        rej.abort()  # the next run's writer takes the same name
        outputs.append((tmp_path / f"o{workers}").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert 6000 < outputs[0].count(b"\n") < 9000  # p0, p1 and the readable part of p2


def test_workers_run_where_the_temporary_directory_cannot_be_locked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$TMPDIR on a file system without locks (flock fails with ENOLCK): the spill directory
    goes unlocked and is removed at the end; the run is not ended by the lock."""
    src = tmp_path / "in"
    src.mkdir()
    good = json.dumps({"type": "track", "userId": "u", "event": "E"}) + "\n"
    for i in range(3):
        (src / f"p{i}.ndjson.gz").write_bytes(gzip.compress((good * 100).encode()))
    spill = tmp_path / "tmp"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(pipeline.fcntl, "flock", no_locks)
    out, rej = Output(str(tmp_path / "o")), RejectsWriter(str(tmp_path / "r"))
    summary = run_convert([str(src)], MapperConfig(), out, rej, workers=2)
    out.commit()
    rej.commit()
    assert summary.events == 300 and (tmp_path / "o").read_bytes().count(b"\n") == 300
    assert not list(spill.iterdir())


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("gzipped", [False, True])
def test_line_numbers_hold_across_reads(tmp_path: Path, workers: int, gzipped: bool) -> None:
    # Some 3 MiB of lines, so a reader numbers lines over several 1 MiB reads and blocks.
    good = json.dumps({"type": "track", "userId": "u", "event": "E",
                       "properties": {"pad": "x" * 80}})
    bad_at = {1, 9_999, 10_000, 20_001, 31_234, 32_000}
    lines = ["{oops" if n in bad_at else good for n in range(1, 32_001)]
    text = ("\n".join(lines) + "\n").encode()
    src = tmp_path / "in.ndjson"
    src.write_bytes(gzip.compress(text) if gzipped else text)
    out, rej = Output(str(tmp_path / "o")), RejectsWriter(str(tmp_path / "r"))
    summary = run_convert([str(src)], MapperConfig(), out, rej, workers=workers,
                          block_bytes=100_000)
    rej.commit()
    rejected = [json.loads(r) for r in (tmp_path / "r").read_text().splitlines()]
    assert [r["line"] for r in rejected] == sorted(bad_at)
    assert summary.events == 32_000


class Dies:
    """A ChunkConverter, except that a worker process given a block holding "marker" ends
    (as when the kernel's OOM killer picks it) or hits a bug."""

    def __init__(self, how: str) -> None:
        self.converter = ChunkConverter(MapperConfig(track_anonymous=True), None, "records")
        self.how = how
        self.parent = os.getpid()

    def __call__(self, source: str, first_line: int, block: bytes) -> ChunkResult:
        if b"marker" in block and os.getpid() != self.parent:
            if self.how == "exit":
                os._exit(9)
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("a bug in converting")
        return self.converter(source, first_line, block)

    def block(self, source: str, block: Block) -> ChunkResult:
        result = self(source, block.first, block.data)
        block.counted(result.lines)
        return result


@pytest.mark.parametrize(("how", "says"), [("exit", "ended unexpectedly (exit code 9)"),
                                           ("kill", "ended unexpectedly (killed by SIGKILL"),
                                           ("bug", "RuntimeError: a bug in converting")])
def test_a_worker_that_dies_stops_the_run_with_a_clear_error(tmp_path: Path, how: str,
                                                             says: str) -> None:
    # 300 good lines, then 100 that a worker process cannot convert: it gets some of them.
    # Lines of one length, 20 to a block.
    good = json.dumps({"type": "track", "userId": "u", "event": "normal"})
    bad = json.dumps({"type": "track", "userId": "u", "event": "marker"})
    src = tmp_path / "in.ndjson"
    src.write_text("\n".join([good] * 300 + [bad] * 100) + "\n")
    work = units([str(src)], 20 * (len(good) + 1))
    got = 0
    with pytest.raises(WorkerFailed, match=re.escape(says)):
        for result in in_workers(work, Dies(how), 2, None):  # type: ignore[arg-type]
            got += result.records.count(b"\n")  # type: ignore[arg-type]
    # Every block before the one a worker failed on, in order.
    assert got % 20 == 0 and 300 <= got < 400
    assert [p for p in multiprocessing.active_children() if p.name == "ctmap-worker"] == []


def test_stopping_early_ends_the_worker_processes(tmp_path: Path) -> None:
    # What Ctrl-C or an error in writing does: the consumer stops taking results.
    src = tmp_path / "in.ndjson"
    src.write_text((json.dumps({"type": "track", "userId": "u", "event": "E"}) + "\n") * 2000)
    converter = ChunkConverter(MapperConfig(), None, "records")
    results = in_workers(units([str(src)], 500), converter, 3, None)
    next(results)
    assert len([p for p in multiprocessing.active_children() if p.name == "ctmap-worker"]) == 2
    results.close()
    assert [p for p in multiprocessing.active_children() if p.name == "ctmap-worker"] == []


@pytest.mark.parametrize("slot_bytes", [1, 300, 4 << 20])
@pytest.mark.parametrize("fmt", ["records", "batches"])
@pytest.mark.parametrize("gzipped", [False, True])
def test_blocks_and_output_too_large_for_a_slot_take_the_slow_way(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slot_bytes: int, fmt: Any,
        gzipped: bool) -> None:
    # Blocks a worker does not read itself (from gzip) travel in shared memory, and so does
    # its output; what is larger than a slot goes through the pipe or spill files instead.
    monkeypatch.setattr("clevertap_mapper.workers.SLOT_BYTES", slot_bytes)
    lines = [json.dumps({"type": "track", "userId": f"u{n}", "event": "E"}) if n % 3 else
             "{oops" for n in range(300)]
    text = ("\n".join(lines) + "\n").encode()
    src = tmp_path / "in.ndjson"
    src.write_bytes(gzip.compress(text) if gzipped else text)
    assert run(tmp_path, src, 2, fmt) == run(tmp_path, src, 1, fmt)
