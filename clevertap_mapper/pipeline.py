"""The convert pipeline: read -> map -> check -> write, streaming, with a summary.

``run_convert`` is what ``ctmap convert`` and library users call. Memory stays flat: one line,
its records and at most one open upload body per kind are held at a time.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult
from typing import Any, Literal

from clevertap_mapper.checks import Checker
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import MappingError
from clevertap_mapper.io.model import Position, Rejection, SourceEvent, SourceRecords
from clevertap_mapper.io.readers import (
    RECORD_TYPES,
    STDIN,
    Item,
    expand_inputs,
    parse_error,
    read_lines,
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


def _type_of(event: Any) -> str:
    t = event.get("type") if type(event) is dict else None
    return t.lower() if type(t) is str else "(none)"


class Stage:
    """Map and check one event (or one line of records), counting into a Summary.

    Shared by ``map_items`` (upload, validate) and the fused loop of ``run_convert``.
    """

    def __init__(self, config: MapperConfig, summary: Summary,
                 checker: Checker | None = None) -> None:
        self.config = config
        self.summary = summary
        self.checker = checker
        self.check = checker.check if checker is not None and checker.level != "off" else None

    def event(self, event: Any, pos: Position | tuple[str, int, int | None],
              ) -> tuple[list[Record], list[Rejection]]:
        """The records that go, and the rejections, for one event."""
        summary = self.summary
        summary.events += 1
        summary.by_type[_type_of(event)] += 1
        try:
            records = map_event(event, self.config)
        except MappingError as exc:
            return [], [Rejection(_pos(pos), "map", exc.code, exc.message, event=event)]
        if self.check is None:
            return records, []
        return self.checked(records, pos, event)

    def records(self, records: list[Record], pos: Position,
                ) -> tuple[list[Record], list[Rejection]]:
        """Already-mapped records (ctmap's own output read back): checks only."""
        self.summary.events += 1
        self.summary.by_type["(records)"] += 1
        if self.check is None:
            return records, []
        return self.checked(records, pos, None)

    def checked(self, records: list[Record], pos: Position | tuple[str, int, int | None],
                event: Any) -> tuple[list[Record], list[Rejection]]:
        assert self.check is not None and self.checker is not None
        kept: list[Record] = []
        rejected: list[Rejection] = []
        for record in records:
            findings = self.check(record)
            if not findings:
                kept.append(record)
                continue
            verdict = self.checker.verdict(findings)
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
STDIN_BLOCK_BYTES = 1 << 16  # smaller for a pipe, so records flow while its writer still writes


@dataclass(slots=True)
class ChunkResult:
    """What converting one block of lines produced, encoded, in input order.

    ``records`` is one NDJSON blob (records format) or a list of encoded records with the
    indices of the device-token ones (batches format, which groups them in the parent).
    """

    records: bytes | list[bytes]
    token_at: list[int]
    rejects: list[bytes]
    summary: Summary


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
                rejects.append(dumps(rejection.as_dict()))

        lines = block.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        for lineno, line in enumerate(lines, first_line):
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
        return ChunkResult(encoded, token_at, rejects, summary)


def read_blocks(inputs: list[str], block_bytes: int = BLOCK_BYTES,
                ) -> Iterator[tuple[str, int, bytes]]:
    """(source, first line number, whole lines) of about BLOCK_BYTES, input after input.

    Built on ``read_lines`` so gzip, stdin, BOM and line numbers work as everywhere else; when
    an input turns out corrupt, the complete lines before the damage are still yielded before
    the InputError.
    """
    for name in expand_inputs(inputs):
        source = "<stdin>" if name == STDIN else name
        limit = min(STDIN_BLOCK_BYTES, block_bytes) if name == STDIN else block_bytes
        lines: list[bytes] = []
        first = size = 0
        try:
            for lineno, line in read_lines(name):
                if not lines:
                    first = lineno
                whole = line if line.endswith(b"\n") else line + b"\n"
                lines.append(whole)
                size += len(whole)
                if size >= limit:
                    yield source, first, b"".join(lines)
                    lines, size = [], 0
        finally:
            if lines:
                yield source, first, b"".join(lines)


_worker_convert: ChunkConverter | None = None


def _init_worker(converter: ChunkConverter) -> None:
    global _worker_convert
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _worker_convert = converter


def _work(source: str, first_line: int, block: bytes) -> ChunkResult:
    assert _worker_convert is not None
    return _worker_convert(source, first_line, block)


def _in_workers(blocks: Iterator[tuple[str, int, bytes]], converter: ChunkConverter,
                workers: int) -> Iterator[ChunkResult]:
    """Blocks converted by ``workers`` processes, yielded in input order.

    At most ``3 * workers`` blocks are in flight, so memory does not grow with the input. If
    reading fails, what was read before is still converted and yielded, then the error raised.
    """
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(converter,)) as pool:
        pending: deque[AsyncResult[ChunkResult]] = deque()
        try:
            for block in blocks:
                pending.append(pool.apply_async(_work, block))
                if len(pending) >= 3 * workers:
                    yield pending.popleft().get()
        finally:
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
    blocks = read_blocks(inputs, block_bytes)
    if workers > 1:
        results: Iterator[ChunkResult] = _in_workers(blocks, converter, workers)
    else:
        results = (converter(*block) for block in blocks)
    try:
        for result in results:
            summary.merge(result.summary)
            if writer is not None:
                tokens = set(result.token_at)
                for i, encoded in enumerate(result.records):
                    writer.add(encoded, i in tokens)  # type: ignore[arg-type]
            elif out is not None and result.records:
                out.write(result.records)  # type: ignore[arg-type]
            if rejects is not None:
                for line in result.rejects:
                    rejects.write_encoded(line)
            if progress is not None:
                progress(summary)
    finally:
        if writer is not None:
            writer.close()
            summary.bodies = writer.bodies
    return summary
