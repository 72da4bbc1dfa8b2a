"""Readers: files, gzip, directories and stdin, every RudderStack input shape, line numbers.

Each input line becomes events (a plain event, an HTTP batch envelope, an event-archive line or
a legacy gateway-backup row: spec/rudderstack-inputs.md), CleverTap records (ctmap's own
output, for ``upload``), or a Rejection that says what is wrong with the line and where. Only a
file that cannot be read (missing, UTF-16 text, a read error) stops the run, with InputError;
gzip data damaged part way gives its lines before the damage, then DamagedInputError.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from typing import Any, Final

from clevertap_mapper.errors import DamagedInputError, InputError
from clevertap_mapper.io.model import (
    RAW_TEXT_LIMIT,
    Position,
    Rejection,
    SourceEvent,
    SourceRecords,
)
from clevertap_mapper.jsonutil import loads
from clevertap_mapper.mapping.reads import decode_event

GZIP_MAGIC: Final = b"\x1f\x8b"
BOM: Final = b"\xef\xbb\xbf"
UTF16_BOMS: Final[tuple[bytes, ...]] = (b"\xff\xfe", b"\xfe\xff")  # little-, big-endian
STDIN: Final = "-"
RECORD_TYPES: Final = frozenset({"event", "profile", "token"})
_FIX_HINT: Final = "fix the line, or leave it in the rejects file"

Item = SourceEvent | SourceRecords | Rejection


def source_name(name: str) -> str:
    """How positions and messages name an input: its path, or ``<stdin>``."""
    return "<stdin>" if name == STDIN else name


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files as given, directories read recursively in natural name order.

    Names are in natural order, numbers by their value: RudderStack's archive writes hour
    folders without zero padding (``gw/2024-01-15/2/`` before ``.../10/``), and an archive
    read out of time order could leave a profile with an older value. Inside a directory,
    hidden files and ``*.partial`` files (ctmap's outputs while they are
    being written, or left by a run that did not finish) are skipped. Linked directories are
    read too, each directory once (a link back up does not loop). A regular file met again
    (through a link, another hard link, or named twice) is read once, under its first name:
    its events would otherwise go twice.
    """
    out: list[str] = []
    for name in inputs:
        if name != STDIN and os.path.isdir(name):
            found: list[str] = []
            seen: set[str] = set()
            for root, dirs, files in os.walk(name, followlinks=True):
                real = os.path.realpath(root)
                if real in seen:
                    dirs[:] = []
                    continue
                seen.add(real)
                dirs[:] = sorted((d for d in dirs if not d.startswith(".")), key=_natural)
                found.extend(os.path.join(root, f) for f in files
                             if not f.startswith(".") and not f.endswith(".partial"))
            out.extend(sorted(found, key=_natural))
        else:
            out.append(name)
    return _once_each(out)


_DIGITS: Final = re.compile(r"(\d+)")


def _natural(name: str) -> tuple[list[Any], str]:
    """Sort key: ``name`` in runs of text and numbers, numbers compared by value ("2" before
    "10"), then the name itself ("01" and "1" in a fixed order)."""
    parts: list[Any] = _DIGITS.split(name)
    parts[1::2] = [int(p) for p in parts[1::2]]
    return parts, name


def _once_each(names: list[str]) -> list[str]:
    """``names`` without a second name of a regular file already listed (same device and
    inode). Names that cannot be looked at stay, for the reader to report."""
    kept: list[str] = []
    files: set[tuple[int, int]] = set()
    for name in names:
        if name != STDIN:
            try:
                st = os.stat(name)
            except OSError:
                st = None
            if st is not None and stat.S_ISREG(st.st_mode):
                if (st.st_dev, st.st_ino) in files:
                    continue
                files.add((st.st_dev, st.st_ino))
        kept.append(name)
    return kept


def require_inputs(inputs: Iterable[str]) -> list[str]:
    """The inputs expanded (``expand_inputs``), once each exists; else the InputError of the
    first input (named, or found in a named directory) that does not: for a command to call
    before it opens any output, so that a mistyped path or a dangling link leaves nothing
    behind."""
    names = expand_inputs(inputs)
    for name in names:
        if name != STDIN and not os.path.exists(name):
            raise _missing(name)
    return names


def _missing(name: str) -> InputError:
    if os.path.islink(name):  # a dangling link: say so, "no such file" would puzzle
        return InputError(f"{name}: a link to {os.readlink(name)}, which does not exist; fix "
                          "or remove the link", source=name)
    return InputError(f"{name}: no such file; check the path", source=name)


READ_BYTES: Final = 1 << 20  # one read of a file; also the most one gzip inflate step yields


def _raw_chunks(name: str) -> Iterator[bytes]:
    """The bytes of a file as they are read, or of stdin as soon as they arrive."""
    if name == STDIN:
        stream = sys.stdin.buffer
        read = stream.read1 if hasattr(stream, "read1") else stream.read
        while chunk := read(READ_BYTES):
            yield chunk
        return
    try:
        f = open(name, "rb", buffering=0)  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise _missing(name) from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory", source=name) from None
    except OSError as exc:
        raise InputError(f"{name}: cannot open ({exc.strerror})", source=name) from None
    with f:
        while chunk := f.read(READ_BYTES):
            yield chunk


class TruncatedInput(Exception):
    """The compressed stream ended early or is corrupt."""


def _decoded_chunks(name: str) -> Iterator[bytes]:
    """The input's bytes, gunzipped when they start with gzip's magic number (any file name)."""
    chunks = _raw_chunks(name)
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 2:
            break
    if head[:2] != GZIP_MAGIC:
        if head:
            yield head
        yield from chunks
        return
    inflate = zlib.decompressobj(wbits=31)
    pending = head
    while True:
        while pending:
            try:
                out = inflate.decompress(pending, READ_BYTES)
            except zlib.error as exc:
                raise TruncatedInput(str(exc)) from None
            if out:
                yield out
            if inflate.eof:
                pending = inflate.unused_data
                if pending.strip(b"\0"):  # another gzip member follows (concatenated .gz)
                    inflate = zlib.decompressobj(wbits=31)
                else:
                    pending = b""
            else:
                pending = inflate.unconsumed_tail
        more = next(chunks, None)
        if more is None:
            break
        pending = more
    if not inflate.eof:
        raise TruncatedInput("the compressed stream ends before its end marker")


class Block:
    """Whole lines of an input, read at once, the number of the first, and where they start in
    the (gunzipped) input.

    Whoever goes through the lines (``lines()``, or ``counted()`` after a pass of its own)
    leaves their count, from which the reader numbers the next block with no second pass
    over the bytes looking for newlines.
    """

    __slots__ = ("_count", "_lines", "data", "first", "offset")

    def __init__(self, first: int, data: bytes, offset: int) -> None:
        self.first = first
        self.data = data
        self.offset = offset
        self._lines: list[bytes] | None = None
        self._count = -1

    def lines(self) -> list[bytes]:
        if self._lines is None:
            self._lines = split_lines(self.data)
        return self._lines

    def counted(self, lines: int) -> None:
        """Told by whoever went through the lines without ``lines()`` how many there were."""
        self._count = lines

    def line_count(self) -> int:
        if self._count >= 0:
            return self._count
        if self._lines is not None:
            return len(self._lines)
        return _newlines(self.data) + (not self.data.endswith(b"\n"))


def _newlines(data: bytes) -> int:
    """``data.count(b"\\n")``, a third of the time: find runs memchr, count a byte loop
    (95 against 310 ns a 1.2 KB line, compiled). The parent of --workers counts every
    block it sends."""
    n = 0
    at = data.find(b"\n")
    while at >= 0:
        n += 1
        at = data.find(b"\n", at + 1)
    return n


def read_blocks(name: str) -> Iterator[Block]:
    """The Blocks of an input, a read at a time.

    Blocks end at a newline (the last may lack one). A file is read 1 MiB at a time; stdin is
    passed on as soon as a line is complete, so records flow while its writer still writes.
    A UTF-8 BOM at the start is dropped; a UTF-16 one is an InputError naming the fix. When
    gzip data turns out truncated or corrupt, the complete lines before the damage are
    yielded, then DamagedInputError names the file and line.
    """
    lineno = 1
    offset = 0
    partial = b""
    longer: list[bytes] = []  # reads of a line longer than a read, joined once it ends
    first = True
    try:
        for chunk in _decoded_chunks(name):
            data = chunk
            if first:
                if len(partial + data) < len(BOM) and BOM.startswith(partial + data):
                    partial += data  # a BOM split across reads: wait for more
                    continue
                first = False
                data = partial + data
                partial = b""
                if data.startswith(BOM):
                    data = data[len(BOM):]
                    offset = len(BOM)
                elif data.startswith(UTF16_BOMS):  # every line would be rejected, misnumbered
                    raise InputError(
                        f"{source_name(name)}: the input is UTF-16 text (it starts with a UTF-16 "
                        "byte order mark, as PowerShell's > writes), not UTF-8. Convert it to "
                        "UTF-8 (iconv -f UTF-16 -t UTF-8) and read that instead",
                        source=source_name(name), line=1)
            cut = data.rfind(b"\n")
            if cut < 0:
                # Not ``partial += data``, which copies the line so far again on every read:
                # minutes for a line of a few hundred MB from a pipe (a JSON array exported
                # on one line, say).
                longer.append(data)
                continue
            if longer:
                partial = b"".join((partial, *longer))
                longer = []
            if partial or cut + 1 < len(data):
                # One copy: the line carried from the last read and this read's whole lines.
                block = b"".join((partial, memoryview(data)[:cut + 1]))
            else:
                block = data  # the read ends with a whole line: no copy at all
            partial = data[cut + 1:]
            numbered = Block(lineno, block, offset)
            yield numbered
            lineno += numbered.line_count()
            offset += len(block)
        if longer:
            partial = b"".join((partial, *longer))
        if partial:
            yield Block(lineno, partial, offset)
    except TruncatedInput as exc:
        where = (f"truncated or corrupt after line {lineno - 1} ({exc}); the lines before it "
                 "are intact" if lineno > 1 else f"corrupt from its start ({exc})")
        source = source_name(name)
        raise DamagedInputError(f"{source}: the gzip data is {where}. Re-copy or re-download "
                                "the file", source=source, line=lineno) from None
    except OSError as exc:
        source = source_name(name)
        raise InputError(f"{source}: read error after line {lineno - 1} ({exc})",
                         source=source, line=lineno) from None


def split_lines(block: bytes) -> list[bytes]:
    """The lines of a block, without their newlines."""
    lines = block.split(b"\n")
    if not lines[-1]:
        lines.pop()
    return lines


def _raw_text(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
    return text if len(text) <= RAW_TEXT_LIMIT else text[:RAW_TEXT_LIMIT] + "..."


def parse_error(pos: Position, line: bytes, exc: Exception) -> Rejection:
    """A Rejection for a line that is not a JSON value we can take."""
    text = str(exc)
    if line.startswith(BOM):  # only the file's own start drops one (read_blocks)
        code, why = "invalid_json", ("the line starts with a UTF-8 byte order mark, as when "
                                     "files are joined with cat; remove it")
    elif "UTF-8" in text:
        code, why = "invalid_utf8", "the line is not valid UTF-8 text"
    elif "surrogate" in text:
        code, why = "invalid_json", f"a \\u escape is half of a surrogate pair ({text})"
    elif "depth limit" in text or "recursion" in text.lower():
        code, why = "nesting_too_deep", "the line nests objects/arrays over 1024 levels deep"
    else:
        code, why = "invalid_json", f"not valid JSON ({text})"
    return Rejection(pos, "read", code, f"{why}; {_FIX_HINT}", raw=_raw_text(line))


def read_items(inputs: Iterable[str], *, js_numbers: bool = False) -> Iterator[Item]:
    """Every event (or record) of every input, in order, with its position; or a Rejection.

    ``js_numbers``: read integers beyond 64 bits as JavaScript would (compat mode), as doubles.
    """
    for name in expand_inputs(inputs):
        source = source_name(name)
        for block in read_blocks(name):
            for lineno, line in enumerate(block.lines(), block.first):
                if not line.strip():
                    continue
                try:
                    value = loads(line, js_numbers=js_numbers)
                except (ValueError, RecursionError) as exc:
                    yield refused_line(line, Position(source, lineno), exc, js_numbers)
                    continue
                if type(value) is dict and "type" in value:  # most lines: no generator
                    yield _typed(value, Position(source, lineno))
                else:
                    yield from unwrap(value, source, lineno)


def plain_event(line: bytes, decode: Any = None) -> dict[str, Any] | None:
    """A plain event line read for the fields the mapping reads (``decode_event``), or None
    when the line is not a plain event of the usual shape (and must be read whole).

    convert reads each line so first while the lines before were plain events. Every read
    also falls back to it when the full read refuses a line: the full read refuses a number
    past the doubles' range (``1e999``, or an integer of over 4300 digits) wherever it is,
    the fast read only where the mapping reads, and whether such a line goes must not depend
    on the line before it or on the command. (Not in compat mode, which reads lines whole.)
    """
    event = decode_event(line, decode)
    if type(event) is not dict:
        return None
    kind = event.get("type")
    return event if type(kind) is str and kind not in RECORD_TYPES else None


def refused_line(line: bytes, pos: Position, exc: Exception,
                 fast_read: bool) -> SourceEvent | Rejection:
    """What a line the full read refused (with ``exc``) gives: the fast read's event when it
    takes the line (a number past the doubles' range where the mapping does not read: see
    ``plain_event``), else the reader's rejection. ``fast_read``: the fast read has had the
    line already, or must not (compat mode)."""
    event = None if fast_read else plain_event(line)
    if event is not None:
        return SourceEvent(pos, event)
    return parse_error(pos, line, exc)


def unwrap(value: Any, source: str, lineno: int) -> Iterator[Item]:
    """The events inside one parsed line, whatever its shape."""
    if type(value) is not dict:
        yield Rejection(Position(source, lineno), "read", "not_an_object",
                        f"the line holds {_kind(value)}, not a JSON object; each line must be "
                        f"one event, a {{\"batch\": [...]}} envelope or an archive row; "
                        f"{_FIX_HINT}", event=value)
        return
    if "type" in value:
        yield _typed(value, Position(source, lineno))
        return
    batch = value.get("batch")
    if type(batch) is list:  # HTTP API batch envelope
        yield from _batch(batch, value, source, lineno)
        return
    payload = value.get("payload")
    if type(payload) is dict:  # event archive: {"userId", "payload", "createdAt", "messageId"}
        yield SourceEvent(Position(source, lineno), payload)
        return
    legacy = value.get("event_payload")
    if type(legacy) is dict and type(legacy.get("batch")) is list:  # legacy gw_jobs backup row
        yield from _batch(legacy["batch"], legacy, source, lineno)
        return
    d = value.get("d")
    if type(d) is list and "type" not in value:  # an upload body written by ctmap convert
        yield from _body(d, source, lineno)
        return
    yield SourceEvent(Position(source, lineno), value)  # mapping rejects it: no type


def _typed(value: dict[str, Any], pos: Position) -> SourceEvent | SourceRecords:
    """A line with a ``type``: an event, or a record of ctmap's own output."""
    kind = value["type"]
    if type(kind) is str and kind in RECORD_TYPES:
        return SourceRecords(pos, [value])
    return SourceEvent(pos, value)


def _body(records: list[Any], source: str, lineno: int) -> Iterator[Item]:
    """The records of an upload body, in order; an item that is not an object is rejected by
    itself."""
    objects: list[dict[str, Any]] = []
    for i, record in enumerate(records, 1):
        if type(record) is dict:
            objects.append(record)
            continue
        if objects:
            yield SourceRecords(Position(source, lineno), objects)
            objects = []
        yield Rejection(Position(source, lineno, i), "read", "not_an_object",
                        f"record {i} of the body holds {_kind(record)}, not a record object; "
                        f"{_FIX_HINT}", record=record)
    if objects:
        yield SourceRecords(Position(source, lineno), objects)


def _batch(batch: list[Any], envelope: dict[str, Any], source: str,
           lineno: int) -> Iterator[Item]:
    """Events of a batch, with the envelope's context/integrations merged in (event keys win).

    A gateway job payload (``{"batch": [...], "receivedAt": ...}``, also inside legacy backup
    rows) holds the server's ``receivedAt`` once for the whole batch; RudderStack's processor
    stamps it on every event before computing ``timestamp``, so an event without its own gets
    the envelope's (spec/rudderstack-inputs.md; rudder-server processor enhanceWithTimeFields).
    """
    shared = {k: envelope[k] for k in ("context", "integrations")
              if type(envelope.get(k)) is dict}
    received_at = envelope.get("receivedAt")
    if type(received_at) is not str:
        received_at = None
    for i, given in enumerate(batch, 1):
        pos = Position(source, lineno, i)
        if type(given) is not dict:
            yield Rejection(pos, "read", "not_an_object", f"batch item {i} holds {_kind(given)}, "
                            f"not an event object; {_FIX_HINT}", event=given)
            continue
        event = given
        if shared or (received_at is not None and event.get("receivedAt") is None):
            event = dict(event)
            for key, value in shared.items():
                own = event.get(key)
                event[key] = {**value, **own} if type(own) is dict else (
                    value if own is None else own)
            if received_at is not None and event.get("receivedAt") is None:
                event["receivedAt"] = received_at
        yield SourceEvent(pos, event)


def _kind(value: Any) -> str:
    if type(value) is list:
        return "an array"
    if type(value) is str:
        return "a string"
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    return "a number"

