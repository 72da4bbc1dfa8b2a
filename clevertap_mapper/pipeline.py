"""The convert pipeline: read -> map -> check -> write, streaming, with a summary.

``run_convert`` is what ``ctmap convert`` and library users call. Memory stays flat: one line,
its records and at most one open upload body per kind are held at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

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
        self.strict = checker is not None and checker.level == "strict"
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
        assert self.check is not None
        kept: list[Record] = []
        rejected: list[Rejection] = []
        for record in records:
            findings = self.check(record)
            if not findings:
                kept.append(record)
                continue
            errors = [f for f in findings if f.severity == "error"] if self.strict else []
            for f in findings:
                if f not in errors:
                    self.summary.warnings[f.code] += 1
            if errors:
                first = errors[0]
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                rejected.append(Rejection(_pos(pos), "check", first.code, first.message + more,
                                          event=event, record=record))
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


def run_convert(inputs: list[str], config: MapperConfig, out: Output | None,
                rejects: RejectsWriter | None, *, fmt: Format = "records",
                checker: Checker | None = None, progress: ProgressHook | None = None,
                progress_every: int = 5000) -> Summary:
    """Convert ``inputs`` to CleverTap records in ``out`` (None: count only), rejects apart.

    Raises InputError when an input cannot be read at all; what was converted before stays in
    ``out`` (the caller decides whether to commit it).

    This is ``read_items`` + ``map_items`` fused into one loop, without their generator layers
    and per-event position objects (a Position is made only for a rejection): the hot path.
    """
    summary = Summary()
    stage = Stage(config, summary, checker)
    js_numbers = config.compat is not None
    writer = BatchWriter(out) if (out is not None and fmt == "batches") else None
    write = out.write if out is not None else None
    kinds = summary.records
    rejected = summary.rejected
    option = orjson.OPT_APPEND_NEWLINE

    def emit(records: list[Record], rejections: list[Rejection]) -> None:
        for record in records:
            kind = record["type"]
            kinds[kind] += 1
            if writer is not None:
                writer.add(dumps(record), kind == "token")
            elif write is not None:
                try:
                    write(orjson.dumps(record, option=option))
                except TypeError:  # an integer beyond 64 bits: exact, the slow way
                    write(dumps(record) + b"\n")
        for rejection in rejections:
            rejected[rejection.code] += 1
            if rejects is not None:
                rejects.write(rejection)

    n = 0
    try:
        for name in expand_inputs(inputs):
            source = "<stdin>" if name == STDIN else name
            for lineno, line in read_lines(name):
                n += 1
                if progress is not None and n % progress_every == 0:
                    progress(summary)
                try:
                    value = loads(line, js_numbers=js_numbers)
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
    finally:
        if writer is not None:
            writer.close()
            summary.bodies = writer.bodies
    return summary
