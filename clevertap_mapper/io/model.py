"""What flows through a run: events read with their position, and rejections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from clevertap_mapper.jsonutil import dumps, trimmed

Stage = Literal["read", "map", "check", "upload"]

RAW_TEXT_LIMIT = 2000  # characters of an unreadable line kept in the rejects file


# The encoded fields of a rejects-file line before and after its line number, by source and
# reason: most rejections of a run share them (an anonymous event's: a quarter of a dump).
_HEADS: dict[tuple[str, str, str, str], tuple[bytes, bytes]] = {}
_HEADS_MAX = 1000  # reasons that quote the event (a bad timestamp's) make new ones


def _head(source: str, stage: str, code: str, message: str) -> tuple[bytes, bytes]:
    key = (source, stage, code, message)
    parts = _HEADS.get(key)
    if parts is None:
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        tail = dumps({"stage": stage, "code": code, "message": message})
        parts = (b'{"source":' + dumps(source) + b',"line":', b"," + tail[1:-1])
        _HEADS[key] = parts
    return parts


@dataclass(slots=True)
class Position:
    """Where an event came from: file, 1-based line, and 1-based place inside a batch line.

    Treat it as immutable. (It is not frozen: a frozen dataclass is made in three times the
    time, and upload keeps a Position for every record it sends.)
    """

    source: str
    line: int
    index: int | None = None

    # Written out: compiled, the __init__ that @dataclass generates runs as interpreted code
    # (a third of a microsecond, for every rejection).
    def __init__(self, source: str, line: int, index: int | None = None) -> None:
        self.source = source
        self.line = line
        self.index = index

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}"
        return where if self.index is None else f"{where} (event {self.index} of the batch)"


@dataclass(slots=True)
class SourceEvent:
    """One RudderStack event, ready to map."""

    pos: Position
    event: Any

    def __init__(self, pos: Position, event: Any) -> None:  # written out: see Position's
        self.pos = pos
        self.event = event


@dataclass(slots=True)
class SourceRecords:
    """CleverTap records read back from ctmap's own output (records or batches format)."""

    pos: Position
    records: list[dict[str, Any]]

    def __init__(self, pos: Position, records: list[dict[str, Any]]) -> None:  # see Position's
        self.pos = pos
        self.records = records


@dataclass(slots=True)
class Rejection:
    """An event or record that could not go, with the reason (one line of the rejects file)."""

    pos: Position
    stage: Stage
    code: str
    message: str
    event: Any = None
    raw: str | None = None
    record: Any = None
    clevertap: dict[str, Any] | None = None
    encoded: bytes | None = None  # set by compact(): the rejects-file line, without newline
    # The event as it was read, when it was a whole input line: the rejects file keeps those
    # bytes instead of encoding the parsed event again (exactly what came in, and 10x cheaper).
    event_json: bytes | None = None

    def __init__(self, pos: Position, stage: Stage, code: str, message: str, event: Any = None,
                 raw: str | None = None, record: Any = None,
                 clevertap: dict[str, Any] | None = None, encoded: bytes | None = None,
                 event_json: bytes | None = None) -> None:  # written out: see Position's
        self.pos = pos
        self.stage = stage
        self.code = code
        self.message = message
        self.event = event
        self.raw = raw
        self.record = record
        self.clevertap = clevertap
        self.encoded = encoded
        self.event_json = event_json

    def encode(self) -> bytes:
        """The rejects-file line (JSON, no newline)."""
        if self.encoded is not None:
            return self.encoded
        if self.event_json is None or self.raw is not None:
            return dumps(self.as_dict())
        # The same object as as_dict() gives, "event" last, with the event's own text.
        pos = self.pos
        if pos.index is not None or self.clevertap is not None or self.record is not None:
            head = dumps(self._fields())
            return b"".join((head[:-1], b',"event":', self.event_json.strip(), b"}"))
        before, after = _head(pos.source, self.stage, self.code, self.message)
        return b"".join((before, str(pos.line).encode(), after, b',"event":',
                         self.event_json.strip(), b"}"))

    def compact(self) -> Rejection:
        """This rejection holding only its encoded line, so the event can leave memory while
        the rejection waits to be written (upload writes it when its body is acknowledged)."""
        return Rejection(self.pos, self.stage, self.code, self.message,
                         clevertap=self.clevertap, encoded=trimmed(self.encode()))

    def as_dict(self) -> dict[str, Any]:
        out = self._fields()
        if self.raw is not None:
            out["raw"] = self.raw
        else:
            out["event"] = self.event
        return out

    def _fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.pos.source, "line": self.pos.line}
        if self.pos.index is not None:
            out["index"] = self.pos.index
        out |= {"stage": self.stage, "code": self.code, "message": self.message}
        if self.clevertap is not None:
            out["clevertap"] = self.clevertap
        if self.record is not None:
            out["record"] = self.record
        return out

    def describe(self) -> str:
        """One line for a terminal: ``file:line: message [code]``."""
        return f"{self.pos}: {self.message} [{self.code}]"
