"""The convert pipeline: read -> map -> check -> write, streaming, with a summary.

``run_convert`` is what ``ctmap convert`` and library users call. Memory stays flat: one line,
its records and at most one open upload body per kind are held at a time.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import multiprocessing
import os
import signal
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult
from typing import Any, Literal

from clevertap_mapper.checks import Checker
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import InputError, MappingError
from clevertap_mapper.io.model import Position, Rejection, SourceEvent, SourceRecords
from clevertap_mapper.io.readers import (
    BOM,
    GZIP_MAGIC,
    RECORD_TYPES,
    STDIN,
    Item,
    expand_inputs,
    parse_error,
    read_blocks,
    split_lines,
    unwrap,
)
from clevertap_mapper.io.writers import BatchWriter, Output, RejectsWriter
from clevertap_mapper.jsonutil import dumps, loads
from clevertap_mapper.mapping.core import map_event

Format = Literal["records", "batches"]
Record = dict[str, Any]


@dataclass
class Summary:
    """What a run did, for the closing report and for scripts (``as_dict``)."""

    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    bodies: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def merge(self, other: Summary) -> None:
        """Add another summary's counts to this one (a chunk's, a worker's)."""
        self.events += other.events
        self.by_type.update(other.by_type)
        self.records.update(other.records)
        self.rejected.update(other.rejected)
        self.warnings.update(other.warnings)
        self.bodies += other.bodies

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "events_by_type": dict(self.by_type),
            "records": sum(self.records.values()),
            "records_by_kind": dict(self.records),
            "rejected": self.rejected_total,
            "rejected_by_code": dict(self.rejected),
            "warnings_by_code": dict(self.warnings),
            "bodies": self.bodies,
        }


@dataclass(slots=True)
class Mapped:
    """The records of one event (or of one line of already-mapped records)."""

    pos: Position
    records: list[Record]
    event: Any = None


NO_TYPE = "(none)"


def event_type(event: Any) -> str:
    """An event's lower-cased ``type``, or ``(none)`` when it has no usable one."""
    t = event.get("type") if type(event) is dict else None
    return t.lower() if type(t) is str and t else NO_TYPE


class Stage:
    """Map and check one event (or one line of records), counting into a Summary.

    Shared by ``map_items`` (upload, validate) and the fused loop of ``run_convert``.
    """

    def __init__(self, config: MapperConfig, summary: Summary,
                 checker: Checker | None = None) -> None:
        self.config = config
        self.summary = summary
        # None when nothing is checked (no checker, or --checks off).
        self.checker = checker if checker is not None and checker.level != "off" else None

    def event(self, event: Any, pos: Position | tuple[str, int, int | None],
              ) -> tuple[list[Record], list[Rejection]]:
        """The records that go, and the rejections, for one event."""
        summary = self.summary
        summary.events += 1
        summary.by_type[event_type(event)] += 1
        try:
            records = map_event(event, self.config)
        except MappingError as exc:
            return [], [Rejection(_pos(pos), "map", exc.code, exc.message, event=event)]
        if self.checker is None:
            return records, []
        return self.checked(records, pos, event)

    def records(self, records: list[Record], pos: Position,
                ) -> tuple[list[Record], list[Rejection]]:
        """Already-mapped records (ctmap's own output read back): checks only."""
        self.summary.events += 1
        self.summary.by_type["(records)"] += 1
        if self.checker is None:
            return records, []
        return self.checked(records, pos, None)

    def checked(self, records: list[Record], pos: Position | tuple[str, int, int | None],
                event: Any) -> tuple[list[Record], list[Rejection]]:
        checker = self.checker
        assert checker is not None
        kept: list[Record] = []
        rejected: list[Rejection] = []
        for record in records:
            findings = checker.check(record)
            if not findings:
                kept.append(record)
                continue
            verdict = checker.verdict(findings)
            for f in findings:
                if verdict is None or f.severity != "error":
                    self.summary.warnings[f.code] += 1
            if verdict is not None:
                rejected.append(Rejection(_pos(pos), "check", *verdict, event=event,
                                          record=record))
            else:
                kept.append(record)
        return kept, rejected


def _pos(pos: Position | tuple[str, int, int | None]) -> Position:
    return pos if type(pos) is Position else Position(*pos)  # type: ignore[misc]


def map_items(items: Iterable[Item], config: MapperConfig, summary: Summary,
              checker: Checker | None = None) -> Iterator[Mapped | Rejection]:
    """Map and check a stream of read items, counting into ``summary``."""
    stage = Stage(config, summary, checker)
    for item in items:
        if type(item) is SourceEvent:
            records, rejections = stage.event(item.event, item.pos)
            event = item.event
        elif type(item) is SourceRecords:
            records, rejections = stage.records(item.records, item.pos)
            event = None
        else:
            assert isinstance(item, Rejection)
            summary.events += 1
            yield item
            continue
        yield from rejections
        if records:
            yield Mapped(item.pos, records, event)


ProgressHook = Callable[[Summary], None]

BLOCK_BYTES = 1 << 20  # input handed to a worker at a time: whole lines, about 1 MiB


@dataclass(slots=True)
class ChunkResult:
    """What converting one block of lines produced, encoded, in input order.

    ``records`` is one NDJSON blob (records format) or a list of encoded records with the
    indices of the device-token ones (batches format, which groups them in the parent).
    """

    records: bytes | list[bytes]
    token_at: list[int]
    rejects: bytes  # NDJSON lines of the rejects file
    summary: Summary
    # Set by a worker that wrote records and rejects to files instead (see _spill).
    spilled: tuple[str, str] | None = None


class ChunkConverter:
    """Converts a block of whole lines of one source: the unit of work for workers.

    A plain event line, by far the most common, goes straight from bytes to encoded records;
    a Position is made only for a rejection. Every other shape goes through ``unwrap``.
    """

    def __init__(self, config: MapperConfig, checker: Checker | None, fmt: Format) -> None:
        self.config = config
        self.checker = checker
        self.joined = fmt == "records"
        self.js_numbers = config.compat is not None

    def __call__(self, source: str, first_line: int, block: bytes) -> ChunkResult:
        summary = Summary()
        stage = Stage(self.config, summary, self.checker)
        records: list[bytes] = []
        token_at: list[int] = []
        rejects: list[bytes] = []
        kinds = summary.records

        def emit(mapped: list[Record], rejections: list[Rejection]) -> None:
            for record in mapped:
                kind = record["type"]
                kinds[kind] += 1
                if kind == "token":
                    token_at.append(len(records))
                records.append(dumps(record))
            for rejection in rejections:
                summary.rejected[rejection.code] += 1
                rejects.append(rejection.encode())

        for lineno, line in enumerate(split_lines(block), first_line):
            try:
                value = loads(line, js_numbers=self.js_numbers)
            except (ValueError, RecursionError) as exc:
                if not line.strip():
                    continue  # a blank line: skipped, not a rejection
                summary.events += 1
                emit([], [parse_error(Position(source, lineno), line, exc)])
                continue
            kind = value.get("type") if type(value) is dict else None
            if type(kind) is str and kind not in RECORD_TYPES:
                emit(*stage.event(value, (source, lineno, None)))
                continue
            for item in unwrap(value, source, lineno):
                if type(item) is SourceEvent:
                    emit(*stage.event(item.event, item.pos))
                elif type(item) is SourceRecords:
                    emit(*stage.records(item.records, item.pos))
                else:
                    assert isinstance(item, Rejection)
                    summary.events += 1
                    emit([], [item])
        encoded: bytes | list[bytes] = records
        if self.joined:
            encoded = b"\n".join(records) + b"\n" if records else b""
        return ChunkResult(encoded, token_at, b"\n".join(rejects) + b"\n" if rejects else b"",
                           summary)


Span = tuple[str, int, int]  # (path, byte offset, length) of whole lines in a plain file
Payload = bytes | Span


def _blocks(inputs: list[str], block_bytes: int, spans: bool = False,
            ) -> Iterator[tuple[str, int, Payload]]:
    """(source, first line number, whole lines) of every input, in order; a block holds at
    most about ``block_bytes`` (more only when one line is longer).

    With ``spans``, a block of a plain (not gzipped) file is given as (path, offset, length)
    for a worker to read itself, which spares the pipe to the worker the whole input.
    """
    for name in expand_inputs(inputs):
        source = "<stdin>" if name == STDIN else name
        offset = _plain_file_start(name) if spans else None
        for first, block in read_blocks(name):
            start, lineno = 0, first
            while start < len(block):  # cut a large read into blocks of whole lines
                cut = block.find(b"\n", start + block_bytes) if len(block) > block_bytes else -1
                end = len(block) if cut < 0 else cut + 1
                piece = block if (start == 0 and end == len(block)) else block[start:end]
                if offset is None:
                    yield source, lineno, piece
                else:
                    yield source, lineno, (name, offset, len(piece))
                    offset += len(piece)
                lineno += piece.count(b"\n")
                start = end


def _plain_file_start(name: str) -> int | None:
    """Where the lines of a plain regular file start (after a BOM); None for gzip or a pipe."""
    if name == STDIN or not os.path.isfile(name):
        return None
    with open(name, "rb") as f:
        head = f.read(3)
    if head[:2] == GZIP_MAGIC:
        return None
    return len(BOM) if head == BOM else 0


def _payload_bytes(payload: Payload) -> bytes:
    if type(payload) is bytes:
        return payload
    path, offset, length = payload
    with open(path, "rb", buffering=0) as f:
        return os.pread(f.fileno(), length, offset)


_worker: tuple[ChunkConverter, str | None] | None = None


def _init_worker(converter: ChunkConverter, spill_dir: str | None) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool ends its workers with SIGTERM
    _die_with_parent()
    _worker = (converter, spill_dir)


def _die_with_parent() -> None:
    """Ask Linux to end this worker when its parent dies, even by SIGKILL (a forked worker
    holds the pool's pipes open itself, so it would never see them close)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the pool's own shutdown still ends workers on every normal exit


def _work(source: str, first_line: int, payload: Payload) -> ChunkResult:
    assert _worker is not None
    converter, spill_dir = _worker
    result = converter(source, first_line, _payload_bytes(payload))
    if spill_dir is not None and type(result.records) is bytes:
        result = _spill(result, spill_dir)
    return result


_spill_count = itertools.count()


def _spill(result: ChunkResult, spill_dir: str) -> ChunkResult:
    """Write a block's output to two files and return their names instead of the bytes.

    Sending the output back through the pool's pipe costs the parent process a copy and an
    unpickling of every byte; from a file the parent passes it to its output with sendfile,
    leaving its core to the workers.
    """
    stem = os.path.join(spill_dir, f"{os.getpid()}-{next(_spill_count)}")
    for suffix, data in ((".records", result.records), (".rejects", result.rejects)):
        with open(stem + suffix, "wb") as f:
            f.write(data)  # type: ignore[arg-type]
    return ChunkResult(b"", [], b"", result.summary, (stem + ".records", stem + ".rejects"))


def _in_workers(blocks: Iterator[tuple[str, int, Payload]], converter: ChunkConverter,
                workers: int, spill_dir: str | None) -> Iterator[ChunkResult]:
    """Blocks converted by ``workers`` processes, yielded in input order.

    At most ``3 * workers`` blocks are in flight, so memory does not grow with the input. If
    reading fails, what was read before is still converted and yielded, then the error raised.
    """
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker,
                      initargs=(converter, spill_dir)) as pool:
        pending: deque[AsyncResult[ChunkResult]] = deque()
        try:
            for block in blocks:
                pending.append(pool.apply_async(_work, block))
                if len(pending) >= 3 * workers:
                    yield pending.popleft().get()
        except InputError:
            while pending:  # what was read before the damage still goes out
                yield pending.popleft().get()
            raise
        while pending:
            yield pending.popleft().get()


def run_convert(inputs: list[str], config: MapperConfig, out: Output | None,
                rejects: RejectsWriter | None, *, fmt: Format = "records",
                checker: Checker | None = None, progress: ProgressHook | None = None,
                workers: int = 1, block_bytes: int = BLOCK_BYTES) -> Summary:
    """Convert ``inputs`` to CleverTap records in ``out`` (None: count only), rejects apart.

    ``workers`` > 1 converts blocks of about ``block_bytes`` of lines in that many processes;
    the output is the same, byte for byte, in the same order. Raises InputError when an input
    cannot be read at all; what was converted before stays in ``out`` (the caller decides
    whether to commit it).
    """
    summary = Summary()
    writer = BatchWriter(out) if (out is not None and fmt == "batches") else None
    converter = ChunkConverter(config, checker, fmt)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            spill_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="ctmap-"))
            results: Iterator[ChunkResult] = _in_workers(
                _blocks(inputs, block_bytes, spans=True), converter, workers,
                spill_dir if writer is None else None)
        else:
            results = (converter(source, first, block)  # type: ignore[arg-type]
                       for source, first, block in _blocks(inputs, block_bytes))
        try:
            for result in results:
                summary.merge(result.summary)
                if result.spilled is not None:
                    records_file, rejects_file = result.spilled
                    if out is not None:
                        out.write_file(records_file)
                    if rejects is not None:
                        rejects.write_file(rejects_file, result.summary.rejected_total)
                    os.unlink(records_file)
                    os.unlink(rejects_file)
                    continue
                if writer is not None:
                    tokens = set(result.token_at)
                    for i, encoded in enumerate(result.records):
                        writer.add(encoded, i in tokens)  # type: ignore[arg-type]
                elif out is not None and result.records:
                    out.write(result.records)  # type: ignore[arg-type]
                if rejects is not None and result.rejects:
                    rejects.write_lines(result.rejects, result.summary.rejected_total)
                if progress is not None:
                    progress(summary)
        finally:
            if writer is not None:
                writer.close()
                summary.bodies = writer.bodies
    return summary
