"""The convert pipeline: read -> map -> check -> write, streaming, with a summary.

``run_convert`` is what ``ctmap convert`` and library users call. Memory stays flat: a block
of about 1 MiB of lines and its output (a few per process with workers), and at most one open
upload body per kind, are held at a time. The per-event work is in ``stage`` (compiled).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import multiprocessing
import os
import signal
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.pool import AsyncResult

from clevertap_mapper.checks import Checker
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import InputError
from clevertap_mapper.io.readers import (
    BOM,
    GZIP_MAGIC,
    STDIN,
    expand_inputs,
    read_blocks,
    source_name,
)
from clevertap_mapper.io.writers import BatchWriter, Output, RejectsWriter
from clevertap_mapper.stage import (
    NO_TYPE,
    ChunkConverter,
    ChunkResult,
    Format,
    Mapped,
    Record,
    Summary,
    event_type,
    map_items,
)

__all__ = ["NO_TYPE", "Format", "Mapped", "Record", "Summary", "event_type", "map_items",
           "run_convert"]


ProgressHook = Callable[[Summary], None]

BLOCK_BYTES = 1 << 20  # input handed to a worker at a time: whole lines, about 1 MiB


Span = tuple[str, int, int]  # (path, byte offset, length) of whole lines in a plain file
# Whole lines; or a span for the converting process to read; or the path of a gzip file for it
# to read and convert whole.
Payload = bytes | Span | str


def _blocks(files: list[str], block_bytes: int,
            whole_gzip: bool = False) -> Iterator[tuple[str, int, Payload]]:
    """(source, first line number, whole lines) of every input, in order, for workers; a block
    holds at most about ``block_bytes`` (more only when one line is longer).

    A block of a plain (not gzipped) file is given as (path, offset, length) for a worker to
    read itself, which spares the pipe to the worker the whole input. With ``whole_gzip``, a
    gzip file is given by its path, for a worker to inflate itself.
    """
    for name in files:
        source = source_name(name)
        head = _head(name)  # None: not a regular file, read it here
        if head is not None and head[:2] != GZIP_MAGIC:
            start = len(BOM) if head == BOM else 0
            for lineno, offset, length in _spans(name, start, block_bytes):
                yield source, lineno, (name, offset, length)
            continue
        if head is not None and whole_gzip:
            yield source, 1, name
            continue
        for block in read_blocks(name):
            pieces = [(block.first, block.data)] if len(block.data) <= block_bytes else _cut(
                block.first, block.data, block_bytes)
            for lineno, piece in pieces:
                yield source, lineno, piece


def _spans(name: str, start: int, block_bytes: int) -> Iterator[tuple[int, int, int]]:
    """(first line number, offset, length) of the blocks of whole lines of a plain file.

    Only newlines are looked at, in one reused buffer: the process that converts a block reads
    it again itself, so the reader here costs little more than the disk read.
    """
    buf = bytearray(block_bytes)
    lineno, offset = 1, start
    try:
        with open(name, "rb", buffering=0) as f:
            while True:
                f.seek(offset)
                n = f.readinto(buf) or 0
                if n == 0:
                    return
                cut = buf.rfind(b"\n", 0, n) + 1  # 0: no newline in this read
                length = cut
                while length == 0:  # one line longer than a block: find its end
                    more = f.read(block_bytes)
                    at = more.find(b"\n")
                    if not more or at >= 0:
                        length = n + (at + 1 if at >= 0 else len(more))
                    n += len(more)
                lines = buf.count(b"\n", 0, length) if cut else 1
                yield lineno, offset, length
                lineno += lines
                offset += length
    except OSError as exc:
        raise InputError(f"{name}: read error after line {lineno - 1} ({exc})", source=name,
                         line=lineno) from None


def _cut(first: int, block: bytes, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """A large read cut into blocks of whole lines, with the number of each one's first line."""
    start, lineno = 0, first
    while start < len(block):
        cut = block.find(b"\n", start + block_bytes)
        end = len(block) if cut < 0 else cut + 1
        piece = block[start:end]
        yield lineno, piece
        lineno += piece.count(b"\n")
        start = end


def _head(name: str) -> bytes | None:
    """The first bytes of a regular file (None for stdin, a pipe, or what cannot be opened:
    the reader then says what is wrong)."""
    if name == STDIN or not os.path.isfile(name):
        return None
    try:
        with open(name, "rb") as f:
            return f.read(3)
    except OSError:
        return None


def _convert(converter: ChunkConverter, source: str, first_line: int, payload: Payload,
             spill_dir: str | None) -> ChunkResult:
    """Convert one unit of work; with ``spill_dir``, its output goes to files (see _spill)."""
    if isinstance(payload, str):
        assert spill_dir is not None
        return _convert_file(converter, source, payload, spill_dir)
    if isinstance(payload, bytes):
        block = payload
    else:
        path, offset, length = payload
        with open(path, "rb", buffering=0) as f:
            block = os.pread(f.fileno(), length, offset)
    result = converter(source, first_line, block)
    if spill_dir is not None and type(result.records) is bytes:
        result = _spill(result, spill_dir)
    return result


def _convert_file(converter: ChunkConverter, source: str, name: str,
                  spill_dir: str) -> ChunkResult:
    """A whole (gzip) file converted block by block into two spill files.

    An unreadable rest (truncated gzip) ends it: what was read before is kept, and the error
    travels with the result for the parent to raise once that is written.
    """
    summary = Summary()
    paths = _spill_paths(spill_dir)
    error: tuple[str, str, int | None] | None = None
    with open(paths[0], "wb") as records, open(paths[1], "wb") as rejects:
        try:
            for block in read_blocks(name):
                result = converter(source, block.first, block.data, block.lines())
                summary.merge(result.summary)
                records.write(result.records)  # type: ignore[arg-type]
                rejects.write(result.rejects)
        except InputError as exc:
            error = (str(exc), exc.source, exc.line)
    return ChunkResult(b"", [], b"", summary, paths, error)


_worker: tuple[ChunkConverter, str | None] | None = None


def _init_worker(converter: ChunkConverter, spill_dir: str | None) -> None:
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the pool ends its workers with SIGTERM
    _die_with_parent()
    _worker = (converter, spill_dir)


def _keep_freed_memory() -> None:
    """Ask glibc to keep up to 32 MiB of freed memory instead of handing it back at once.

    Each block allocates and frees a few MiB (the block, its lines, its output). By default
    glibc returns that to the kernel and the next block faults it in again, page by page:
    4% of convert's time. Peak memory does not change; the process just keeps what it had.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 16 << 20)  # M_MMAP_THRESHOLD: blocks come from the heap, not mmap
        libc.mallopt(-1, 32 << 20)  # M_TRIM_THRESHOLD: keep this much free heap
    except (OSError, AttributeError):
        pass  # not glibc: its allocator's own defaults apply


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
    return _convert(converter, source, first_line, payload, spill_dir)


_spill_count = itertools.count()


def _spill_paths(spill_dir: str) -> tuple[str, str]:
    """Two new file names in ``spill_dir``: for one unit's records, and for its rejects."""
    stem = os.path.join(spill_dir, f"{os.getpid()}-{next(_spill_count)}")
    return stem + ".records", stem + ".rejects"


def _spill(result: ChunkResult, spill_dir: str) -> ChunkResult:
    """Write a block's output to two files and return their names instead of the bytes.

    Sending the output back through the pool's pipe costs the parent process a copy and an
    unpickling of every byte; from a file the parent passes it to its output with sendfile,
    leaving its core to the workers.
    """
    paths = _spill_paths(spill_dir)
    for path, data in zip(paths, (result.records, result.rejects), strict=True):
        with open(path, "wb") as f:
            f.write(data)  # type: ignore[arg-type]
    return ChunkResult(b"", [], b"", result.summary, paths)


def _in_workers(blocks: Iterator[tuple[str, int, Payload]], converter: ChunkConverter,
                workers: int, spill_dir: str | None) -> Iterator[ChunkResult]:
    """Blocks converted by this process and ``workers - 1`` forked ones, yielded in input order.

    A block goes to a worker process while fewer than three per worker wait there (a whole
    file counts as three); otherwise this process converts it itself, meanwhile none of the
    others runs dry. So ``workers`` processes convert: on N cores, ``--workers N`` keeps N
    busy, not N plus a parent that mostly waits. At most ``3 * workers`` blocks are held, so
    memory does not grow with the input. If reading fails, what was read before is still
    converted and yielded, then the error raised.
    """
    context = multiprocessing.get_context("fork")
    room = 3 * (workers - 1)  # blocks that may wait at the workers
    with context.Pool(workers - 1, initializer=_init_worker,
                      initargs=(converter, spill_dir)) as pool:
        # Results in input order: converted here, or (in a worker, its weight in blocks).
        pending: deque[ChunkResult | tuple[AsyncResult[ChunkResult], int]] = deque()
        waiting = 0  # weight of the blocks sent to workers and not yet taken back

        def ready(head: ChunkResult | tuple[AsyncResult[ChunkResult], int]) -> bool:
            return type(head) is ChunkResult or head[0].ready()  # type: ignore[index]

        def done(head: ChunkResult | tuple[AsyncResult[ChunkResult], int]) -> ChunkResult:
            nonlocal waiting
            if isinstance(head, ChunkResult):
                return head
            waiting -= head[1]
            return head[0].get()

        try:
            for block in blocks:
                source, first, payload = block
                weight = 3 if type(payload) is str else 1
                if waiting + weight <= room:
                    pending.append((pool.apply_async(_work, block), weight))
                    waiting += weight
                else:  # converted here; only a whole file is spilled (it may be large)
                    pending.append(_convert(converter, source, first, payload,
                                            spill_dir if type(payload) is str else None))
                while pending and (len(pending) >= 3 * workers or ready(pending[0])):
                    yield done(pending.popleft())
        except InputError:
            while pending:  # what was read before the damage still goes out
                yield done(pending.popleft())
            raise
        while pending:
            yield done(pending.popleft())


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
    _keep_freed_memory()
    summary = Summary()
    writer = BatchWriter(out) if (out is not None and fmt == "batches") else None
    converter = ChunkConverter(config, checker, fmt)
    files = expand_inputs(inputs)
    with contextlib.ExitStack() as stack:
        if workers > 1:
            spill_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="ctmap-"))
            # Several gzip files go to the workers whole, to inflate themselves; one is
            # inflated here and handed out in blocks, so that it is still shared.
            blocks = _blocks(files, block_bytes, whole_gzip=writer is None and len(files) > 1)
            results: Iterator[ChunkResult] = _in_workers(
                blocks, converter, workers, spill_dir if writer is None else None)
        else:
            results = (converter(source_name(name), block.first, block.data, block.lines())
                       for name in files for block in read_blocks(name))
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
                elif writer is not None:
                    tokens = set(result.token_at)
                    for i, encoded in enumerate(result.records):
                        writer.add(encoded, i in tokens)  # type: ignore[arg-type]
                elif out is not None and result.records:
                    out.write(result.records)  # type: ignore[arg-type]
                if result.spilled is None and rejects is not None and result.rejects:
                    rejects.write_lines(result.rejects, result.summary.rejected_total)
                if progress is not None:
                    progress(summary)
                if result.error is not None:
                    message, source, line = result.error
                    raise InputError(message, source=source, line=line)
        finally:
            if writer is not None:
                writer.close()
                summary.bodies = writer.bodies
    return summary
