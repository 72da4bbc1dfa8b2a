"""Map and check, event by event and block by block: the per-event hot path of every command.

``Stage`` maps and checks one event and counts it; ``ChunkConverter`` turns a block of input
lines into encoded records and rejects, and is what worker processes run. This module is
compiled with mypyc (see setup.py); ``pipeline`` runs it over files, blocks and workers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from clevertap_mapper.checks import Checker
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import MappingError
from clevertap_mapper.io.model import Position, Rejection, SourceEvent, SourceRecords
from clevertap_mapper.io.readers import (
    RECORD_TYPES,
    Block,
    Item,
    plain_event,
    refused_line,
    unwrap,
)
from clevertap_mapper.jsonutil import dumps, loads
from clevertap_mapper.mapping.core import lower_type, map_or_reject
from clevertap_mapper.mapping.reads import KeyOrder, decoder, key_order

Format = Literal["records", "batches"]
BLOCK_BYTES = 1 << 20  # lines converted (or handed to a worker) at a time: about 1 MiB
Record = dict[str, Any]


@dataclass
class Summary:
    """What a run did, for the closing report and for scripts (``as_dict``)."""

    events: int = 0
    # A plain dict: compiled code updates it with dict primitives, a Counter by generic calls
    # (a quarter of a microsecond an event).
    by_type: dict[str, int] = field(default_factory=dict)
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
        for kind, n in other.by_type.items():
            self.by_type[kind] = self.by_type.get(kind, 0) + n
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
UNREADABLE = "(unreadable)"  # a line (or batch item) the reader rejected; the dry run's too


def event_type(event: Any) -> str:
    """An event's lower-cased ``type``, or ``(none)`` when it has no usable one."""
    t = event.get("type") if type(event) is dict else None
    return lower_type(t) if type(t) is str and t else NO_TYPE


class Stage:
    """Map and check one event (or one line of records), counting into a Summary.

    Shared by ``map_items`` (validate, the dry run) and ``ChunkConverter`` (convert, upload).
    """

    def __init__(self, config: MapperConfig, summary: Summary,
                 checker: Checker | None = None) -> None:
        self.config = config
        self.summary = summary
        # None when nothing is checked (no checker, or --checks off).
        self.checker = checker if checker is not None and checker.level != "off" else None

    def event(self, event: Any, pos: Position | tuple[str, int, int | None],
              event_json: bytes | None = None) -> tuple[list[Record], list[Rejection]]:
        """The records that go, and the rejections, for one event.

        ``event_json``: the event's own text, when it is a whole input line (see Rejection).
        """
        summary = self.summary
        summary.events += 1
        kind = event_type(event)
        summary.by_type[kind] = summary.by_type.get(kind, 0) + 1
        records = map_or_reject(event, self.config)
        if isinstance(records, MappingError):
            return [], [Rejection(_pos(pos), "map", records.code, records.message, event=event,
                                  event_json=event_json)]
        if self.checker is None:
            return records, []
        return self.checked(records, pos, event, event_json)

    def item(self, item: Item) -> tuple[list[Record], list[Rejection]]:
        """What one read item gives: an event mapped and checked, records checked, or the
        reader's own rejection (which counts as an event read, of type ``(unreadable)`` as in
        the dry run, so that the types add up to the events)."""
        if type(item) is SourceEvent:
            return self.event(item.event, item.pos)
        if type(item) is SourceRecords:
            return self.records(item.records, item.pos)
        assert isinstance(item, Rejection)
        self.summary.events += 1
        by_type = self.summary.by_type
        by_type[UNREADABLE] = by_type.get(UNREADABLE, 0) + 1
        return [], [item]

    def records(self, records: list[Record], pos: Position,
                ) -> tuple[list[Record], list[Rejection]]:
        """Already-mapped records (ctmap's own output read back): checks only."""
        self.summary.events += 1
        by_type = self.summary.by_type
        by_type["(records)"] = by_type.get("(records)", 0) + 1
        if self.checker is None:
            return records, []
        return self.checked(records, pos, None)

    def checked(self, records: list[Record], pos: Position | tuple[str, int, int | None],
                event: Any, event_json: bytes | None = None,
                ) -> tuple[list[Record], list[Rejection]]:
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
                                          event_json=event_json,
                                          record=record))
            else:
                kept.append(record)
        return kept, rejected


def _pos(pos: Position | tuple[str, int, int | None]) -> Position:
    if isinstance(pos, Position):
        return pos
    return Position(pos[0], pos[1], pos[2])  # (a star call would be a generic one)


def map_items(items: Iterable[Item], config: MapperConfig, summary: Summary,
              checker: Checker | None = None) -> Iterator[Mapped | Rejection]:
    """Map and check a stream of read items, counting into ``summary``."""
    stage = Stage(config, summary, checker)
    for item in items:
        records, rejections = stage.item(item)
        yield from rejections
        if records:
            yield Mapped(item.pos, records, item.event if type(item) is SourceEvent else None)


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
    # (message, source, line) of an InputError that ended a whole file after this output.
    error: tuple[str, str, int | None] | None = None
    lines: int = 0  # the lines of the block, blank ones included


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
        # The key order of the input's lines (see reads.decoder), taken from its first plain
        # event. (Once an input, not once a block: each event type, and each event without
        # some key, gives an order of its own, and a decoder takes 0.35 ms to make.)
        self.order: KeyOrder = ((), ())
        self.ordered: str | None = None  # the input it is of

    def __call__(self, source: str, first_line: int, block: bytes) -> ChunkResult:
        """Convert ``block``, whose first line is number ``first_line``."""
        summary = Summary()
        out = _Encoded()
        count = self.into(Stage(self.config, summary, self.checker), out, source, first_line,
                          block)
        out.count_into(summary)
        encoded: bytes | list[bytes] = out.records
        if self.joined:
            encoded = _lines(out.records)
        return ChunkResult(encoded, out.token_at, _lines(out.rejects), summary, lines=count)

    def block(self, source: str, block: Block) -> ChunkResult:
        """Convert a reader's Block, and tell it how many lines it held (the reader numbers
        the next block from that, with no pass of its own over the bytes)."""
        result = self(source, block.first, block.data)
        block.counted(result.lines)
        return result

    def into(self, stage: Stage, out: Sink, source: str, first_line: int,
             block: bytes) -> int:
        """Map and check the lines of ``block`` through ``stage``, into ``out``; how many
        lines there were.

        A line is first read for just the fields the mapping reads (``plain_event``); one
        that is not a plain event of the usual shape is read whole. (Compat mode reads every
        line whole: its integers beyond 64 bits must be JavaScript's doubles before mapping.)
        Each line is found with ``find``, which runs memchr: ``split`` looks at every byte
        in a loop of its own, 390 ns a 1.2 KB line against 150 ns.
        """
        js_numbers = self.js_numbers
        # Whether to try plain_event first: while the lines are plain events. After one that
        # is not (a batch envelope, an archive row, a bad line) the next is read whole first,
        # so that a file of envelopes is not parsed twice a line.
        fast = not js_numbers
        decode = decoder(self.order)
        size = len(block)
        start = 0
        lineno = first_line - 1
        while start < size:
            end = block.find(b"\n", start)
            if end < 0:
                end = size  # the last line of an input that does not end with a newline
            line = block[start:end]
            lineno += 1
            start = end + 1
            tried = fast  # whether plain_event has had this line
            if fast:
                event = plain_event(line, decode)
                if event is not None:
                    if self.ordered != source:
                        self.ordered = source
                        self.order = key_order(event)
                        decode = decoder(self.order)
                    records, rejections = stage.event(event, (source, lineno, None), line)
                    out.add(records, rejections, lineno, None)
                    continue
                fast = False
            try:
                value = loads(line, js_numbers=js_numbers)
            except (ValueError, RecursionError) as exc:
                if not line.strip():
                    continue  # a blank line: skipped, not a rejection
                refused = refused_line(line, Position(source, lineno), exc, js_numbers or tried)
                if type(refused) is SourceEvent:  # the line is the event: keep its bytes
                    records, rejections = stage.event(refused.event, refused.pos, line)
                else:
                    records, rejections = stage.item(refused)
                out.add(records, rejections, lineno, None)
                continue
            kind = value.get("type") if type(value) is dict else None
            # (Results are unpacked before add(): a star call would go through the generic
            # calling convention, not the compiled one.)
            if type(kind) is str and kind not in RECORD_TYPES:
                fast = not js_numbers  # a plain event: so, likely, is the next line
                records, rejections = stage.event(value, (source, lineno, None), line)
                out.add(records, rejections, lineno, None)
                continue
            for item in unwrap(value, source, lineno):
                if type(item) is SourceEvent and item.event is value:
                    # The whole line is the event (no string type, say): keep its bytes.
                    records, rejections = stage.event(value, item.pos, line)
                else:
                    records, rejections = stage.item(item)
                out.add(records, rejections, lineno, item.pos.index)
        return lineno - first_line + 1


def _lines(encoded: list[bytes]) -> bytes:
    """NDJSON of encoded lines, each ending with a newline; ``encoded`` gets an empty last item
    for the last newline. (Not ``b"\\n".join(...) + b"\\n"``, which copies a block's output a
    second time.)"""
    if not encoded:
        return b""
    encoded.append(b"")
    return b"\n".join(encoded)


class Sink:
    """Where ``ChunkConverter.into`` puts what each event (or line of records) gave.

    A sink counts records by kind and rejections by code in plain dicts, which compiled code
    updates without generic calls, and adds them to a Summary in ``count_into``.
    """

    __slots__ = ("kinds", "rejected")

    def __init__(self) -> None:
        self.kinds: dict[str, int] = {}
        self.rejected: dict[str, int] = {}

    def add(self, mapped: list[Record], rejections: list[Rejection], line: int,
            index: int | None) -> None:
        """The records and rejections of the event at ``line`` (``index``: in a batch)."""
        raise NotImplementedError

    def count_into(self, summary: Summary) -> None:
        """Add what was counted since the last call to ``summary``."""
        summary.records.update(self.kinds)
        summary.rejected.update(self.rejected)
        self.kinds.clear()
        self.rejected.clear()


class _Encoded(Sink):
    """A block's records and rejects, encoded as they come, counted into its summary.

    (A class rather than a closure: compiled, a closure and its frame form a reference cycle
    that only the cyclic GC frees, which let each block's output pile up in memory.)
    """

    __slots__ = ("records", "rejects", "token_at")

    def __init__(self) -> None:
        super().__init__()
        self.records: list[bytes] = []
        self.token_at: list[int] = []  # indices of the device-token records
        self.rejects: list[bytes] = []

    def add(self, mapped: list[Record], rejections: list[Rejection], line: int,
            index: int | None) -> None:
        kinds = self.kinds
        for record in mapped:
            # Not always a str: with checks off, a record read back goes out as it came.
            kind = str(record.get("type"))
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "token":
                self.token_at.append(len(self.records))
            self.records.append(dumps(record))
        rejected = self.rejected
        for rejection in rejections:
            code = rejection.code
            rejected[code] = rejected.get(code, 0) + 1
            self.rejects.append(rejection.encode())
