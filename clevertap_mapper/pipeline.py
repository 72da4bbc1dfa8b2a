"""The convert pipeline: read -> map -> check -> write, streaming, with a summary.

``run_convert`` is what ``ctmap convert`` and library users call. Memory stays flat: a block
of about 1 MiB of lines and its output (a few per process with workers), and at most one open
upload body per kind, are held at a time. The per-event work is in ``stage`` (compiled).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
from collections.abc import Callable, Iterator

from clevertap_mapper.checks import Checker
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import InputError
from clevertap_mapper.io.readers import expand_inputs, read_blocks, source_name
from clevertap_mapper.io.writers import BatchWriter, Output, RejectsWriter
from clevertap_mapper.stage import (
    BLOCK_BYTES,
    NO_TYPE,
    UNREADABLE,
    ChunkConverter,
    ChunkResult,
    Format,
    Mapped,
    Record,
    Summary,
    event_type,
    map_items,
)

__all__ = ["NO_TYPE", "UNREADABLE", "Format", "Mapped", "Record", "Summary", "event_type",
           "map_items", "run_convert"]


ProgressHook = Callable[[Summary], None]

SPILL_PREFIX = "ctmap-spill-"  # in the temporary directory ($TMPDIR), for --workers N


def _spill_directory(stack: contextlib.ExitStack) -> str:
    """A new directory for the workers' spill files, removed when ``stack`` closes, and
    locked (flock) while this run lives.

    A run killed outright (kill -9, the OOM killer, a cron timeout's SIGKILL) cannot remove
    its directory, and a whole gzip file's records and rejects may be spilled there (hundreds
    of MB): the lock dies with the run, so the next run removes such directories first. A
    directory is made under another name and renamed once locked, so that no run takes a
    directory being made for an abandoned one.
    """
    import shutil  # noqa: PLC0415 - (and tempfile: only with workers)
    import tempfile  # noqa: PLC0415

    base = tempfile.gettempdir()
    _remove_abandoned_spills(base)
    made = tempfile.mkdtemp(prefix=".ctmap-new-", dir=base)
    fd = os.open(made, os.O_RDONLY | os.O_DIRECTORY)
    stack.callback(os.close, fd)  # last in, first out: the lock goes after the directory
    # A file system without locks (NFS without its lock daemon): unlocked, so no run takes
    # it for abandoned (see _remove_abandoned_spills); removed at the end as before.
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX)
    path = os.path.join(base, SPILL_PREFIX + os.path.basename(made)[len(".ctmap-new-"):])
    os.rename(made, path)
    stack.callback(shutil.rmtree, path, ignore_errors=True)
    return path


def _remove_abandoned_spills(base: str) -> None:
    """Remove the spill directories in ``base`` that no living run holds (see
    _spill_directory); another user's, or one that cannot be looked at, stay."""
    try:
        entries = [e for e in os.scandir(base) if e.name.startswith(SPILL_PREFIX)]
    except OSError:
        return
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False) or \
                    entry.stat(follow_symlinks=False).st_uid != os.geteuid():
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # held: a run is using it
        else:
            import shutil  # noqa: PLC0415 - only with workers

            shutil.rmtree(entry.path, ignore_errors=True)
        finally:
            os.close(fd)


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
            # (Imported here: multiprocessing is a tenth of a one-process run's start.)
            from clevertap_mapper.workers import in_workers, units  # noqa: PLC0415

            spill_dir = _spill_directory(stack)
            # Several gzip files go to the workers whole, to inflate themselves; one is
            # inflated here and handed out in blocks, so that it is still shared.
            work = units(files, block_bytes, whole_gzip=writer is None and len(files) > 1)
            # Closed on the way out before the spill directory is removed: that ends the
            # workers, which may still be writing there (after an error, or Ctrl-C).
            results: Iterator[ChunkResult] = stack.enter_context(contextlib.closing(in_workers(
                work, converter, workers, spill_dir if writer is None else None)))
        else:
            results = (converter.block(source_name(name), block)
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
