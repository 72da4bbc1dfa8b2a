"""Writers: records, upload bodies and rejects as NDJSON, written atomically.

A file output is written to ``NAME.partial`` and renamed when the run completes, so a crashed
or killed run never leaves a file that looks complete (and could be uploaded twice).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
from collections.abc import Iterator
from typing import IO, Final, Generic, TypeVar

from clevertap_mapper.errors import ConfigError, OutputError
from clevertap_mapper.io.model import Rejection
from clevertap_mapper.jsonutil import trimmed

MAX_BATCH_RECORDS: Final = 1000  # CleverTap: 1000 event/profile records per /1/upload call
MAX_TOKEN_BATCH_RECORDS: Final = 100  # CleverTap: 100 device-token records per call

T = TypeVar("T")


def written_in_place(name: str) -> bool:
    """Whether ``name`` is a file to write in place, never via ``.partial`` and a rename:
    /dev/null, a named pipe, or /dev/stdout and the like (a link into /proc/.../fd), even
    when what it leads to is a regular file (stdout redirected to one). A regular file
    reached without such a link (one on /dev/shm, say) is not."""
    if not os.path.exists(name):
        return False
    if not os.path.isfile(name):
        return True
    path = os.path.abspath(name)
    for _ in range(40):  # as deep as the kernel follows links
        if not os.path.islink(path):
            return False
        path = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
        if path.startswith("/proc/"):
            return True
    return False


class Output:
    """A byte sink: stdout for ``-``, else a file written via ``.partial`` and renamed on commit.

    A name ending in ``.gz`` is written gzip-compressed.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        with self._reported("cannot create"):
            self._open(name)

    def _open(self, name: str) -> None:
        self.is_stdout = name == "-"
        self.is_special = not self.is_stdout and written_in_place(name)
        # A link (``latest.ndjson`` -> a dated file) is written through: its target is
        # replaced, and the link stays a link.
        self._target = os.path.realpath(name) if os.path.islink(name) else name
        self._tmp = f"{self._target}.partial"
        self._file: IO[bytes] | None = None
        self._sendfile = True  # the stream is the file's own bytes, so the kernel may copy
        if self.is_stdout:
            if sys.stdout is None:  # started with stdout closed (>&-)
                raise ConfigError("stdout is closed, so '-' cannot be written; give -o FILE")
            self.stream: IO[bytes] = sys.stdout.buffer
        elif self.is_special:
            # Appending: /dev/stdout redirected to a file must not cut what the shell (or an
            # earlier command of the same redirection) wrote there.
            self.stream = open(name, "ab")  # noqa: SIM115 - closed by commit/abort
        else:
            directory = os.path.dirname(os.path.abspath(self._target))
            os.makedirs(directory, exist_ok=True)
            self.stream = self._open_partial()
            if name.endswith(".gz"):
                import gzip  # noqa: PLC0415 - (and shutil below: not at every start)

                self._file = self.stream
                self.stream = gzip.GzipFile(  # type: ignore[assignment]
                    filename=os.path.basename(name[:-3]), fileobj=self._file, mode="wb",
                    compresslevel=6, mtime=0)
                self._sendfile = False

    def _open_partial(self) -> IO[bytes]:
        """``NAME.partial``, emptied, and locked (flock) until this run has renamed it.

        Two runs writing one name (two ``-o -`` runs in one directory share the default
        rejects name) would otherwise mix their lines into one file, which both then take
        for their own: the second is refused instead, before it writes anything.
        """
        while True:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputError(f"cannot write {self.name}: another ctmap run is writing "
                                  f"{self._tmp}; wait for it, or give this run another name",
                                  path=self.name) from None
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    os.close(fd)
                    raise
                break  # a file system without locks (NFS without lockd): written as before
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self._tmp))
            except FileNotFoundError:
                same = False
            if same:  # not renamed to its output name by the run that held it till now
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        return open(fd, "wb", buffering=1 << 20)  # closed by commit/abort

    def write(self, data: bytes) -> None:
        with self._reported():
            self.stream.write(data)

    @contextlib.contextmanager
    def _reported(self, what: str = "cannot write") -> Iterator[None]:
        """An OSError in the block as an OutputError naming this output and the fix (a broken
        pipe stays one: the CLI says that the reader of stdout went away)."""
        try:
            yield
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._error(exc, what) from None

    def _error(self, exc: OSError, what: str) -> OutputError:
        where = "stdout" if self.name == "-" else self.name
        why = exc.strerror or str(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)):  # from makedirs
            why = "a part of its directory path is a file"
        fix = "make room and rerun" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else \
            "check the path and its permissions"
        return OutputError(f"{what} {where} ({why}); {fix}", path=self.name)

    def write_file(self, path: str) -> None:
        """Append the contents of file ``path`` (the kernel copies: sendfile where it can)."""
        with self._reported():
            self._write_file(path)

    def _write_file(self, path: str) -> None:
        with open(path, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            if not size:
                return
            self.stream.flush()
            sent = 0
            if self._sendfile:
                try:
                    while sent < size:
                        n = os.sendfile(self.stream.fileno(), src.fileno(), sent, size - sent)
                        if n == 0:
                            break
                        sent += n
                except OSError as exc:
                    if exc.errno not in _NO_SENDFILE:
                        raise
                    self._sendfile = False
            if sent < size:
                import shutil  # noqa: PLC0415

                src.seek(sent)
                shutil.copyfileobj(src, self.stream)

    def _close(self) -> None:
        self.stream.close()
        if self._file is not None:
            self._file.close()

    def commit(self) -> None:
        """Finish: flush, and move the file into place."""
        with self._reported():
            self.stream.flush()
            if not self.is_stdout:
                if self._file is not None:
                    self.stream.close()  # the gzip trailer
                    self.stream = self._file
                if not self.is_special:
                    self.stream.flush()
                    os.replace(self._tmp, self._target)  # still locked: see _open_partial
                self._close()

    def discard(self) -> None:
        """Stop before anything was written: remove the partial file, and close."""
        if not self.is_stdout and not self.is_special:
            with contextlib.suppress(OSError):
                os.remove(self._tmp)  # before the lock goes: no other run can hold it yet
        self.abort()

    def abort(self) -> str | None:
        """Stop without committing; returns the name of the partial file left behind."""
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            self.stream.flush()
        if self.is_stdout:
            return None
        with contextlib.suppress(ValueError, OSError):  # what it could not write, it cannot now
            self._close()
        return None if self.is_special else self._tmp


# flock() cannot lock on this file system (NFS without its lock daemon, some FUSE mounts).
_NO_LOCKS: Final = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL})

# sendfile() cannot write to this kind of output: copy through Python instead.
_NO_SENDFILE: Final = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF})


class Batcher(Generic[T]):
    """Groups items into upload bodies: at most ``max_records`` each, device tokens in bodies
    of their own of at most ``max_tokens``. Order is kept within each kind.

    ``add`` returns a body as soon as one is full; ``drain`` returns what is left at the end.
    The one batching rule, for convert's ``--format batches`` (``BatchWriter``) and upload's
    bodies (``upload.plan``).
    """

    def __init__(self, max_records: int = MAX_BATCH_RECORDS,
                 max_tokens: int = MAX_TOKEN_BATCH_RECORDS) -> None:
        self._limits = {False: max_records, True: max_tokens}
        self._open: dict[bool, list[T]] = {False: [], True: []}

    def add(self, item: T, is_token: bool) -> list[T] | None:
        body = self._open[is_token]
        body.append(item)
        if len(body) < self._limits[is_token]:
            return None
        self._open[is_token] = []
        return body

    def drain(self) -> list[list[T]]:
        bodies = [body for body in (self._open[False], self._open[True]) if body]
        self._open = {False: [], True: []}
        return bodies


class BatchWriter:
    """Writes ``{"d": [...]}`` upload bodies, one per line, obeying CleverTap's per-call limits."""

    def __init__(self, out: Output, max_records: int = MAX_BATCH_RECORDS,
                 max_tokens: int = MAX_TOKEN_BATCH_RECORDS) -> None:
        self._out = out
        self._batcher: Batcher[bytes] = Batcher(max_records, max_tokens)
        self.bodies = 0

    def add(self, encoded: bytes, is_token: bool) -> None:
        body = self._batcher.add(trimmed(encoded), is_token)  # held until the body is full
        if body is not None:
            self._write(body)

    def _write(self, body: list[bytes]) -> None:
        self._out.write(b'{"d":[' + b",".join(body) + b"]}\n")
        self.bodies += 1

    def close(self) -> None:
        for body in self._batcher.drain():
            self._write(body)


class RejectsWriter:
    """The rejects file: one JSON object per rejected event or record (shared/DESIGN.md s3)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self._out = Output(name)

    def write(self, rejection: Rejection) -> None:
        self.write_encoded(rejection.encode())

    def write_encoded(self, line: bytes) -> None:
        """Write one rejection already encoded as JSON (no newline)."""
        self.write_lines(line + b"\n", 1)

    def write_file(self, path: str, count: int) -> None:
        """Append ``count`` rejections from an NDJSON file."""
        self._out.write_file(path)
        self.count += count

    def write_lines(self, lines: bytes, count: int) -> None:
        """Write ``count`` rejections already encoded as NDJSON lines."""
        self._out.write(lines)
        self.count += count

    def commit(self) -> None:
        self._out.commit()

    def abort(self) -> str | None:
        return self._out.abort()
