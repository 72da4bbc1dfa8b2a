"""Converting in several processes: ``--workers N``.

The input is cut into blocks of whole lines (``units``); ``in_workers`` converts them in this
process and ``N - 1`` forked ones and yields the results in input order. A worker reads a
block of a plain file itself, and leaves its output in shared memory (``_InSlot``), so only
positions, sizes and counts cross the pipes.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import mmap
import os
import pickle
import signal
import traceback
from collections import deque
from collections.abc import Generator, Iterator
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Final, NamedTuple

from clevertap_mapper.errors import CtmapError, InputError
from clevertap_mapper.io.readers import GZIP_MAGIC, STDIN, Block, read_blocks, source_name
from clevertap_mapper.stage import ChunkConverter, ChunkResult, Summary

Span = tuple[str, int, int]  # (path, byte offset, length) of whole lines in a plain file
# What a worker is given: a span of a file for it to read itself; whole lines; or the path of
# a gzip file for it to read and convert whole. (Whole lines travel in shared memory, and the
# message says only how many bytes: see _Worker.send.)
Payload = Span | bytes | str


class Unit(NamedTuple):
    """One piece of work: a block of lines (read here), or a whole gzip file."""

    source: str
    first: int  # the number of the first line
    payload: Payload
    block: Block | None  # None for a whole file


def units(files: list[str], block_bytes: int, whole_gzip: bool = False) -> Iterator[Unit]:
    """The work of converting ``files``, in order: blocks of about ``block_bytes`` of whole
    lines (more when one line is longer); with ``whole_gzip``, each gzip file whole, for a
    worker to inflate itself.

    A block of a plain (not gzipped) file goes to a worker as a span to read, which spares
    the pipe the whole input. A block converted here tells the reader how many lines it held
    (``ChunkConverter.block``), which numbers the next block from that; only the blocks sent
    to workers are counted apart.
    """
    for name in files:
        source = source_name(name)
        head = _head(name)  # None: not a regular file
        if head is not None and head[:2] == GZIP_MAGIC and whole_gzip:
            yield Unit(source, 1, name, None)
            continue
        reread = head is not None and head[:2] != GZIP_MAGIC
        for read in read_blocks(name):
            for block in _cut(read, block_bytes):
                payload = (name, block.offset, len(block.data)) if reread else block.data
                yield Unit(source, block.first, payload, block)


def _cut(block: Block, block_bytes: int) -> Iterator[Block]:
    """A read of two blocks or more cut into blocks of whole lines (for tests, mostly: a
    read is about one block)."""
    data = block.data
    if len(data) < 2 * block_bytes:
        yield block
        return
    start, lineno = 0, block.first
    while start < len(data):
        cut = data.rfind(b"\n", start, start + block_bytes)
        if cut < 0:  # one line longer than a block
            cut = data.find(b"\n", start + block_bytes)
        end = len(data) if cut < 0 else cut + 1
        piece = Block(lineno, data[start:end], block.offset + start)
        yield piece
        lineno += piece.line_count()
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


def _here(converter: ChunkConverter, unit: Unit, spill_dir: str | None) -> ChunkResult:
    """Convert a unit in this process; only a whole file is spilled (it may be large)."""
    if unit.block is None:
        assert spill_dir is not None and isinstance(unit.payload, str)
        return _convert_file(converter, unit.source, unit.payload, spill_dir)
    return converter.block(unit.source, unit.block)


def _convert(converter: ChunkConverter, source: str, first_line: int, payload: Payload,
             spill_dir: str | None) -> ChunkResult:
    """Convert what a worker is sent: a block (read here when given as a span), or a whole
    file, whose output goes to spill files in ``spill_dir``."""
    if isinstance(payload, str):
        assert spill_dir is not None
        return _convert_file(converter, source, payload, spill_dir)
    if isinstance(payload, bytes):
        block = payload
    else:
        path, offset, length = payload
        try:
            with open(path, "rb", buffering=0) as f:
                block = os.pread(f.fileno(), length, offset)
        except OSError as exc:
            raise InputError(f"{path}: read error at line {first_line} ({exc})", source=source,
                             line=first_line) from None
    return converter(source, first_line, block)


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
                result = converter.block(source, block)
                summary.merge(result.summary)
                records.write(result.records)  # type: ignore[arg-type]
                rejects.write(result.rejects)
        except InputError as exc:
            error = (str(exc), exc.source, exc.line)
    return ChunkResult(b"", [], b"", summary, paths, error)


_spill_count = itertools.count()


def _spill_paths(spill_dir: str) -> tuple[str, str]:
    """Two new file names in ``spill_dir``: for one unit's records, and for its rejects."""
    stem = os.path.join(spill_dir, f"{os.getpid()}-{next(_spill_count)}")
    return stem + ".records", stem + ".rejects"


def _spill(result: ChunkResult, spill_dir: str) -> ChunkResult:
    """Write a block's output to two files and return their names instead of the bytes (for
    output too large for a slot: see _InSlot)."""
    paths = _spill_paths(spill_dir)
    for path, data in zip(paths, (result.records, result.rejects), strict=True):
        with open(path, "wb") as f:
            f.write(data)  # type: ignore[arg-type]
    return ChunkResult(b"", [], b"", result.summary, paths)


WAITING = 3  # blocks that may wait at a worker (a whole file counts as three)
SLOTS = WAITING  # per worker, for the blocks sent and not yet answered (see _Worker)
SLOT_BYTES = 4 << 20  # a block's input is about 1 MiB, and its output about as much


class _InSlot(NamedTuple):
    """A worker's answer whose output it left in its shared-memory slot for this block:
    ``records_size`` bytes of records, then ``rejects_size`` bytes of rejects.

    Blocks and their output travel by shared memory, one copy on each side. Through a pipe,
    a process blocks on a large message until the other reads it, which it does only between
    blocks; spill files cost the file system's work for every block (allocating, then
    dropping, the pages of files written once and read once): 7% of --workers 2's time.
    """

    summary: Summary
    records_size: int
    rejects_size: int
    record_sizes: list[int] | None  # the batches format's records, one by one
    token_at: list[int]


def _pass_back(result: ChunkResult, slot: mmap.mmap,
               spill_dir: str | None) -> ChunkResult | _InSlot:
    """How a worker answers with a block's output: in its slot when it fits; else in spill
    files (or, for the batches format's list of records, through the pipe). A whole file's
    output is in spill files already."""
    if result.spilled is not None:
        return result
    records = result.records
    sizes: list[int] | None = None
    if isinstance(records, bytes):
        blob = records
    else:
        sizes = [len(r) for r in records]
        blob = b"".join(records)
    end = len(blob) + len(result.rejects)
    if end <= len(slot):
        slot[:len(blob)] = blob
        slot[len(blob):end] = result.rejects
        return _InSlot(result.summary, len(blob), len(result.rejects), sizes, result.token_at)
    return result if spill_dir is None or sizes is not None else _spill(result, spill_dir)


def _taken(answer: _InSlot, slot: mmap.mmap) -> ChunkResult:
    """The ChunkResult of an answer in ``slot``, copied out of it."""
    blob = slot[:answer.records_size]
    rejects = slot[answer.records_size:answer.records_size + answer.rejects_size]
    if answer.record_sizes is None:
        return ChunkResult(blob, [], rejects, answer.summary)
    ends = list(itertools.accumulate(answer.record_sizes))
    records = [blob[end - size:end] for size, end in zip(answer.record_sizes, ends, strict=True)]
    return ChunkResult(records, answer.token_at, rejects, answer.summary)


_STOP_SIGNALS: Final = {signal.SIGINT, signal.SIGTERM}


def _die_with_parent() -> None:
    """Ask Linux to end this worker when its parent dies, even by SIGKILL (a forked worker
    holds copies of its parent's ends of the pipes, so it would never see them close)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: in_workers still ends its workers on every way out


def _serve(conn: Connection, converter: ChunkConverter, spill_dir: str | None,
           inputs: list[mmap.mmap], outputs: list[mmap.mmap]) -> None:
    """A worker process: convert each block it is sent and answer, in the order sent, until
    told to stop (None) or its parent goes away. The n-th block comes in ``inputs[n %
    SLOTS]`` when its message says only its size; its output goes to ``outputs[n % SLOTS]``
    (see _pass_back).

    An input that cannot be read answers with the error in the result (``ChunkResult.error``);
    anything else (a bug) with its traceback, as text.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by _Worker, for the fork
    _die_with_parent()
    for number in itertools.count():
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        source, first, sent = task
        payload = inputs[number % SLOTS][:sent] if isinstance(sent, int) else sent
        try:
            result = _convert(converter, source, first, payload, spill_dir)
            answer: ChunkResult | _InSlot | str = _pass_back(result, outputs[number % SLOTS],
                                                              spill_dir)
        except InputError as exc:
            answer = ChunkResult(b"", [], b"", Summary(),
                                 error=(str(exc), exc.source, exc.line))
        except Exception:  # a bug: its traceback goes to the parent, which stops the run
            answer = traceback.format_exc()
        conn.send_bytes(pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))


def _how(exitcode: int | None) -> str:
    """How a process ended, for a person: its exit code, or the signal that killed it."""
    if exitcode is None or exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = f"signal {-exitcode}"
    hint = "; out of memory, the kernel may have killed it" if name == "SIGKILL" else ""
    return f"killed by {name}{hint}"


class WorkerFailed(CtmapError):
    """A worker process died or hit a bug; the run cannot go on."""


class _Worker:
    """A forked process converting the blocks it is sent, answering in the same order.

    Plain pipes, no multiprocessing.Pool: a Pool adds three threads to this process, and one
    of them wakes on every answer before it is read, spinning until it is, which took 6% of
    this process's CPU (and its GIL) from converting.
    """

    def __init__(self, converter: ChunkConverter, spill_dir: str | None) -> None:
        context = get_context("fork")
        self.conn, child = context.Pipe()
        # Shared with the process forked below: the n-th block sent may travel in inputs[n %
        # SLOTS], its output in outputs[n % SLOTS], each copied out by the side that reads
        # it. Either is written again only for the block sent SLOTS later, which in_workers
        # sends only once the n-th answer was read (it never lets more than WAITING blocks
        # wait at a worker).
        self.inputs = [mmap.mmap(-1, SLOT_BYTES) for _ in range(SLOTS)]
        self.outputs = [mmap.mmap(-1, SLOT_BYTES) for _ in range(SLOTS)]
        self.process = context.Process(
            target=_serve, args=(child, converter, spill_dir, self.inputs, self.outputs),
            name="ctmap-worker", daemon=True)
        # Forked with SIGINT and SIGTERM blocked: until _serve has put its own handlers in,
        # this process's (SIGTERM raises KeyboardInterrupt) would run there, and a stop sent
        # that early was swallowed, leaving the worker waiting and this process joining it.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        child.close()
        self.waiting = 0  # blocks sent and not yet answered (a whole file counts WAITING)
        self.sent = 0
        self.answered = 0

    @staticmethod
    def takes(unit: Unit) -> bool:
        """Whether a worker may be sent ``unit``: lines that fit a slot, a span, or a file.

        (Lines larger than a slot would go through the pipe, and this process would wait
        there until the worker read them, while the worker may wait for this process to read
        a large answer.)
        """
        return type(unit.payload) is not bytes or len(unit.payload) <= SLOT_BYTES

    def send(self, unit: Unit, weight: int) -> None:
        """Send ``unit`` (one that ``takes`` accepts); lines travel in the next input slot."""
        message: Payload | int = unit.payload
        if isinstance(message, bytes):
            self.inputs[self.sent % SLOTS][:len(message)] = message
            message = len(message)
        self.sent += 1
        self.conn.send((unit.source, unit.first, message))
        self.waiting += weight

    def ready(self) -> bool:
        return self.conn.poll()

    def answer(self, weight: int) -> ChunkResult:
        """The answer to the oldest block sent."""
        try:
            answer = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            self.process.join(1)
            raise WorkerFailed(f"a worker process ended unexpectedly ({_how(self.process.exitcode)}"
                               "); the run stopped there") from None
        self.waiting -= weight
        slot = self.outputs[self.answered % SLOTS]
        self.answered += 1
        if isinstance(answer, _InSlot):
            return _taken(answer, slot)
        if not isinstance(answer, ChunkResult):
            raise WorkerFailed(f"a worker process failed:\n{answer}")
        return answer

    def stop(self, *, at_once: bool) -> None:
        """End the process: once idle it reads the stop; ``at_once`` (an error, Ctrl-C) does
        not wait for the blocks it still has."""
        if not at_once:
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        if self.process.is_alive():  # never wait on a worker for good
            self.process.kill()
            self.process.join()
        self.conn.close()
        for slot in (*self.inputs, *self.outputs):
            slot.close()


def in_workers(work: Iterator[Unit], converter: ChunkConverter, workers: int,
               spill_dir: str | None) -> Generator[ChunkResult, None, None]:
    """Blocks converted by this process and ``workers - 1`` forked ones, yielded in input order.

    A block goes to the least busy worker process while fewer than WAITING wait there (a
    whole file counts as WAITING); otherwise this process converts it itself, meanwhile none
    of the others runs dry. So ``workers`` processes convert: on N cores, ``--workers N`` keeps
    N busy, not N plus a parent that mostly waits. At most ``WAITING * workers`` blocks are
    held, so memory does not grow with the input. If reading fails, what was read before is still
    converted and yielded, then the error raised.
    """
    pool = [_Worker(converter, spill_dir) for _ in range(workers - 1)]
    # Results in input order: converted here, or (the worker converting it, its weight).
    pending: deque[ChunkResult | tuple[_Worker, int]] = deque()

    def ready(head: ChunkResult | tuple[_Worker, int]) -> bool:
        return isinstance(head, ChunkResult) or head[0].ready()

    def done(head: ChunkResult | tuple[_Worker, int]) -> ChunkResult:
        if isinstance(head, ChunkResult):
            return head
        worker, weight = head
        return worker.answer(weight)

    finished = False
    try:
        try:
            for unit in work:
                weight = WAITING if unit.block is None else 1
                worker = min(pool, key=lambda w: w.waiting)
                if worker.waiting + weight <= WAITING and _Worker.takes(unit):
                    worker.send(unit, weight)
                    pending.append((worker, weight))
                else:
                    pending.append(_here(converter, unit, spill_dir))
                while pending and (len(pending) >= WAITING * workers or ready(pending[0])):
                    yield done(pending.popleft())
        except InputError:
            while pending:  # what was read before the damage still goes out
                yield done(pending.popleft())
            raise
        while pending:
            yield done(pending.popleft())
        finished = True
    finally:
        for worker in pool:
            worker.stop(at_once=not finished)
