"""The upload checkpoint (``--state FILE``) and the append-only rejects journal.

Why bodies are numbered: for the same inputs and settings, the stream of upload bodies is
deterministic (read -> map -> check -> batch never looks at the clock or the network). So body
number ``seq`` names the same records on every run, and the checkpoint only has to remember
which numbers CleverTap acknowledged:

- ``next_body``: every body below it is acknowledged (the contiguous watermark);
- ``acked_above``: bodies above the watermark that finished early (bodies finish out of order
  with several in flight; at most a window's worth);
- ``partial``: for a body CleverTap answered in part (some records need a resend after a 555,
  or a 400 is being bisected), the indices of its records still unresolved, so a rerun sends
  only those;
- ``inputs`` / ``settings``: the fingerprint (path, size, mtime of every input; mapping and
  batching settings, account id, upload URL and ctmap version: ``uploader.job_settings``). A
  rerun with anything different is refused: the numbers would name other records, or the
  bodies acknowledged went elsewhere. ``--restart`` starts over.
- ``totals``: accepted and rejected counts over all runs of this job, for the exit code of a
  rerun.

Write order, after a body (or part of it) is acknowledged: its rejections are appended to the
rejects file and fsynced first, then the state is written to a temporary file, fsynced and
renamed over the old one (atomic on POSIX). A crash between the two repeats that body's reject
lines on the rerun; it can never lose them. A ``kill -9`` at any point leaves the previous
complete state, so at most the bodies in flight are sent again.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Final

import orjson

from clevertap_mapper.errors import ConfigError, FatalUploadError
from clevertap_mapper.io.model import Position, Rejection
from clevertap_mapper.io.readers import STDIN, expand_inputs

STATE_FORMAT: Final = "ctmap-upload-state"
STATE_VERSION: Final = 1

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]


def describe_inputs(inputs: Iterable[str]) -> list[dict[str, Any]]:
    """The input part of the fingerprint: absolute path, size and mtime of every input file.

    stdin cannot be fingerprinted (nor read twice), so it cannot be checkpointed.
    """
    out: list[dict[str, Any]] = []
    for name in expand_inputs(inputs):
        if name == STDIN:
            raise ConfigError("--state cannot checkpoint stdin ('-'): a rerun could not tell "
                              "what was already sent; upload from a file, or drop --state")
        try:
            st = os.stat(name)
        except OSError as exc:
            raise ConfigError(f"{name}: cannot read ({exc.strerror}); check the path") from None
        out.append({"path": os.path.abspath(name), "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns})
    return out


def fsync_directory(path: str) -> None:
    """Make a rename in ``path``'s directory durable (best effort; not every FS allows it)."""
    directory = os.path.dirname(os.path.abspath(path))
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, whole."""
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_directory(path)


@dataclass
class Checkpoint:
    """Which upload bodies of a job are acknowledged (module docstring). ``path`` None: the
    same bookkeeping in memory only (no ``--state``)."""

    path: str | None
    inputs: list[dict[str, Any]]
    settings: dict[str, Any]
    next_body: int = 0
    acked_above: set[int] = field(default_factory=set)
    partial: dict[int, list[int]] = field(default_factory=dict)
    complete: bool = False
    bodies_total: int | None = None
    delivered_through: dict[str, Any] | None = None
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    resumed: bool = False
    _last_positions: dict[int, Position] = field(default_factory=dict, repr=False)
    _lock_file: IO[bytes] | None = field(default=None, repr=False)

    # ---- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | None, inputs: list[dict[str, Any]], settings: dict[str, Any], *,
             restart: bool = False) -> Checkpoint:
        """The job's checkpoint: loaded from ``path`` when it exists and matches the
        fingerprint, new when there is none (or ``restart``); ConfigError when it belongs to
        another job. Holds a lock so two runs cannot share one state file."""
        if path is None:
            return cls(None, inputs, settings, runs=1)
        lock = _lock(path)
        try:
            state = None if restart else cls._load(path, inputs, settings)
        except BaseException:
            lock.close()
            raise
        if state is None:
            state = cls(path, inputs, settings)
        state._lock_file = lock
        state.runs += 1
        return state

    @classmethod
    def read(cls, path: str, inputs: list[dict[str, Any]],
             settings: dict[str, Any]) -> Checkpoint | None:
        """The job's checkpoint as saved (None when there is none), for a look only: no lock,
        and nothing is ever saved from it. ConfigError as ``open``."""
        return cls._load(path, inputs, settings)

    @classmethod
    def _load(cls, path: str, inputs: list[dict[str, Any]],
              settings: dict[str, Any]) -> Checkpoint | None:
        try:
            with open(path, "rb") as f:
                data = orjson.loads(f.read())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the state file ({exc}); fix or remove it, "
                              "or rerun with --restart to start over") from None
        if type(data) is not dict or data.get("format") != STATE_FORMAT:
            raise ConfigError(f"{path}: not a ctmap upload state file; pass another --state")
        if data.get("version") != STATE_VERSION:
            raise ConfigError(f"{path}: state file version {data.get('version')} is not "
                              f"supported (expected {STATE_VERSION}); rerun with --restart")
        problem = _difference(data.get("inputs"), inputs, data.get("settings"), settings)
        if problem:
            raise ConfigError(f"{path} belongs to another upload: {problem}. Its body numbers "
                              "would name other records. Rerun with the same inputs and "
                              "settings to resume, or add --restart to upload everything again "
                              "from the start")
        try:
            return cls(path, inputs, settings, resumed=True, **_progress(data))
        except _Damaged as exc:
            raise _damaged(path, f" ({exc})") from None

    # ---- queries -------------------------------------------------------------------------

    def is_acked(self, seq: int) -> bool:
        """Was body ``seq`` fully acknowledged by an earlier run (or this one)?"""
        return seq < self.next_body or seq in self.acked_above

    def pending_of(self, seq: int, size: int | None = None) -> list[int] | None:
        """Indices still to send of a body CleverTap answered in part, or None (send all).
        With ``size`` (the body's records), ConfigError when the state names a record the
        body does not have: the state file was damaged (edited by hand, say)."""
        pending = self.partial.get(seq)
        if pending and size is not None and pending[-1] >= size:
            raise _damaged(self.path, f": it lists record {pending[-1] + 1} of body {seq + 1} "
                           f"as still to send, but that body has {size} records")
        return pending

    def check_end(self, bodies_total: int) -> None:
        """ConfigError when the state names a body at or past ``bodies_total``, the number
        of bodies the inputs make: the state file was damaged."""
        beyond = [seq for seq in (*self.acked_above, *self.partial) if seq >= bodies_total]
        if self.next_body > bodies_total or beyond:
            seq = max([self.next_body - 1, *beyond])
            raise _damaged(self.path, f": it names body {seq + 1}, but the inputs make "
                           f"{bodies_total} bodies")

    # ---- updates (the caller serialises them) -----------------------------------------------

    def record_partial(self, seq: int, pending: list[int], accepted: int,
                       rejected: Counter[str]) -> None:
        """Body ``seq`` is resolved except the records at ``pending``."""
        self.partial[seq] = sorted(pending)
        self._count(accepted, rejected)

    def record_ack(self, seq: int, last: Position | None, accepted: int,
                   rejected: Counter[str]) -> None:
        """Body ``seq`` is fully acknowledged; move the watermark over what is contiguous."""
        self.partial.pop(seq, None)
        self._count(accepted, rejected)
        if seq < self.next_body:
            return
        self.acked_above.add(seq)
        if last is not None:
            self._last_positions[seq] = last
        while self.next_body in self.acked_above:
            self.acked_above.discard(self.next_body)
            pos = self._last_positions.pop(self.next_body, None)
            if pos is not None:
                self.delivered_through = {"source": pos.source, "line": pos.line}
            self.next_body += 1

    def record_end(self, bodies_total: int) -> None:
        """The whole stream has been numbered; complete when every body is acknowledged."""
        self.bodies_total = bodies_total
        self.complete = self.next_body >= bodies_total and not self.partial

    def _count(self, accepted: int, rejected: Counter[str]) -> None:
        self.accepted += accepted
        self.rejected.update(rejected)

    # ---- persistence -----------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "runs": self.runs,
            "complete": self.complete,
            "next_body": self.next_body,
            "acked_above": sorted(self.acked_above),
            "partial": {str(k): v for k, v in sorted(self.partial.items())},
            "bodies_total": self.bodies_total,
            "delivered_through": self.delivered_through,
            "totals": {"accepted": self.accepted, "rejected": dict(self.rejected)},
            "inputs": self.inputs,
            "settings": self.settings,
        }

    def save(self) -> None:
        """Write the state atomically (no-op without a path). A failed write (disk full)
        leaves the previous state whole and raises FatalUploadError naming the file."""
        if self.path is not None:
            try:
                atomic_write(self.path, orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2))
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.remove(f"{self.path}.tmp")
                raise FatalUploadError(
                    f"cannot save the state file {self.path} ({exc.strerror or exc}); it still "
                    "holds the progress saved before: make room and rerun the same command "
                    "(what was acknowledged since is sent again)") from None

    def close(self) -> None:
        """Release the lock on the state file."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _damaged(path: str | None, what: str) -> ConfigError:
    """The error for a state file that no run of ctmap wrote: ``what`` follows "damaged"."""
    return ConfigError(f"{path}: the state file is damaged{what}; restore it from a backup, "
                       "or rerun with --restart to upload everything again from the start")


class _Damaged(ValueError):
    """A field of a state file that no run of ctmap writes (its message names it)."""


def _number(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise _Damaged(f"{what} must be a whole number, 0 or more, not {value!r:.40}")
    return value


def _progress(data: dict[str, Any]) -> dict[str, Any]:
    """The progress fields of a loaded state, checked (types and ranges: an index is never
    negative, a body above the watermark is above it, pending records are listed once and
    in order), so that a damaged file is refused as such and never sends the wrong records;
    _Damaged names the field."""
    for name in ("next_body", "acked_above", "partial", "complete", "totals"):
        if name not in data:
            raise _Damaged(f"{name} is missing")
    next_body = _number(data["next_body"], "next_body")
    acked = data["acked_above"]
    if type(acked) is not list:
        raise _Damaged("acked_above must be a list of body numbers")
    acked_above = {_number(x, "each of acked_above") for x in acked}
    if any(x <= next_body for x in acked_above):
        raise _Damaged("acked_above names a body that is not above next_body")
    if type(data["partial"]) is not dict:
        raise _Damaged("partial must map body numbers to lists of record numbers")
    partial: dict[int, list[int]] = {}
    for key, value in data["partial"].items():
        if not key.isdigit() or not key.isascii():
            raise _Damaged(f"partial: {key!r:.40} is not a body number")
        if type(value) is not list:
            raise _Damaged(f'partial["{key}"] must be a list of record numbers')
        indices = [_number(i, f'each of partial["{key}"]') for i in value]
        if indices != sorted(set(indices)):
            raise _Damaged(f'partial["{key}"] must list record numbers in order, each once')
        partial[int(key)] = indices
    complete = data["complete"]
    if type(complete) is not bool:
        raise _Damaged("complete must be true or false")
    total = data.get("bodies_total")
    bodies_total = None if total is None else _number(total, "bodies_total")
    if complete and (bodies_total is None or next_body < bodies_total or partial
                     or acked_above):
        raise _Damaged("complete is true, but not every body is acknowledged")
    delivered = data.get("delivered_through")
    if delivered is not None and (type(delivered) is not dict
                                  or type(delivered.get("source")) is not str):
        raise _Damaged("delivered_through must name a source and a line")
    if delivered is not None:
        _number(delivered.get("line"), "delivered_through.line")
    totals = data["totals"]
    if type(totals) is not dict or type(totals.get("rejected")) is not dict:
        raise _Damaged("totals must hold accepted and rejected")
    return {
        "next_body": next_body,
        "acked_above": acked_above,
        "partial": partial,
        "complete": complete,
        "bodies_total": bodies_total,
        "delivered_through": delivered,
        "accepted": _number(totals.get("accepted"), "totals.accepted"),
        "rejected": Counter({str(k): _number(v, f"totals.rejected.{k}")
                             for k, v in totals["rejected"].items()}),
        "runs": _number(data.get("runs", 0), "runs"),
    }


def _lock(path: str) -> IO[bytes]:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle = open(f"{path}.lock", "ab")  # noqa: SIM115 - held for the run, closed by close()
    if fcntl is not None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ConfigError(f"{path} is in use by another ctmap upload; wait for it to "
                              "finish (two runs sharing one state would send twice)") from None
    return handle


def _difference(old_inputs: Any, inputs: list[dict[str, Any]], old_settings: Any,
                settings: dict[str, Any]) -> str | None:
    """What differs between the stored fingerprint and this run's, in words; None if equal."""
    if old_inputs != inputs:
        if type(old_inputs) is not list:
            return "its input list is missing"
        old = {i.get("path"): i for i in old_inputs if type(i) is dict}
        new = {i["path"]: i for i in inputs}
        added = [p for p in new if p not in old]
        removed = [p for p in old if p not in new]
        changed = [p for p in new if p in old and old[p] != new[p]]
        parts = []
        if changed:
            parts.append(f"input {changed[0]} changed (size or modification time) since")
        if added:
            parts.append(f"input {added[0]} was not part of it")
        if removed:
            parts.append(f"input {removed[0]} is missing from this run")
        return "; ".join(parts) or "the inputs are in another order"
    if old_settings != settings:
        if type(old_settings) is not dict:
            return "its settings are missing"
        keys = sorted(k for k in set(old_settings) | set(settings)
                      if old_settings.get(k) != settings.get(k))
        return f"the settings differ ({', '.join(keys)})"
    return None


class RejectsJournal:
    """The upload's rejects file: appended and fsynced as bodies are acknowledged.

    Unlike ``convert``'s rejects (written to ``.partial`` and renamed at the end), an upload's
    rejects must survive a crash in the middle, and a resumed run adds to them. A name ending
    in ``.gz`` is compressed, as convert's is: each append is a whole gzip member, so what is
    on disk after any append (of this run or a resumed one) reads with ``zcat``.
    """

    def __init__(self, path: str, *, append: bool, checkpointed: bool = True) -> None:
        """``checkpointed``: a state file records what was sent (what a rerun does differs)."""
        self.path = path
        self.count = 0
        self._checkpointed = checkpointed
        self._gzip = path != STDIN and path.endswith(".gz")
        self._out: IO[bytes]
        if path == STDIN:  # ``--rejects -``: stdout, as convert does
            if sys.stdout is None:
                raise ConfigError("stdout is closed, so '--rejects -' cannot be written; "
                                  "give --rejects FILE")
            self._out = sys.stdout.buffer
            return
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            # Unbuffered: a failed write leaves nothing behind for close() to fail on again.
            self._out = open(path, "ab" if append else "wb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(f"cannot create the rejects file {path} ({exc.strerror or exc}); "
                              "check the path and its permissions") from None

    def write(self, rejections: list[Rejection]) -> None:
        """Append and make durable (before the checkpoint that says they were written).

        A write that fails (disk full, quota) is cut back off the file, so no half line is
        left for the next run to append to, and raises FatalUploadError naming the file: the
        caller has not checkpointed these rejections, so a rerun writes them again.
        """
        if not rejections:
            return
        data = memoryview(b"".join(r.encode() + b"\n" for r in rejections))
        if self._gzip:
            data = memoryview(gzip.compress(data, compresslevel=6, mtime=0))
        try:
            start: int | None = self._out.tell()
        except OSError:
            start = None  # a pipe
        try:
            while data:
                data = data[self._out.write(data) or 0:]
            self._out.flush()
            try:
                if self.path != STDIN:  # stdout: taken by a pipe, a terminal or the shell's file
                    os.fsync(self._out.fileno())
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.EROFS):
                    raise  # EINVAL/EROFS: /dev/null or a pipe: nothing to make durable
        except OSError as exc:
            if start is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._out.fileno(), start)
                    # ftruncate leaves the offset past the end: the next write would leave a
                    # hole of NULs (where zcat stops), and the next cut would extend the file.
                    self._out.seek(start)
            rerun = ("the records whose rejections it could not take stay pending in the "
                     "state: make room and rerun the same command" if self._checkpointed else
                     "make room and rerun (without --state the rerun sends every record again)")
            raise FatalUploadError(f"cannot write the rejects file {self.path} "
                                   f"({exc.strerror or exc}); {rerun}") from None
        self.count += len(rejections)

    def close(self) -> None:
        if self.path == STDIN:
            self._out.flush()  # stdout stays open for the summary
        else:
            self._out.close()
