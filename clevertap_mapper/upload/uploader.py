"""The upload: numbered bodies -> CleverTap, concurrently, with retries and a checkpoint.

``run_upload`` is what ``ctmap upload`` and library users call. ``Uploader`` is its engine:

- the calling thread reads and maps the inputs (``plan_bodies``), skips bodies the checkpoint
  says are acknowledged, and hands the rest to ``concurrency`` worker threads, keeping at
  most ``concurrency + 1`` bodies outstanding (one ready for the next free worker), so
  memory stays flat;
- a worker owns one body until it is resolved: it sends it (each request gated by the
  ``AdaptiveLimiter``), reads every 2xx answer (``processed`` records are done, each
  ``unprocessed[]`` entry is matched back to its record and rejected, except code 555, which
  is resent later; when ``processed`` falls short of the records not named, none of those
  counts as accepted: each is rejected as ``clevertap_unconfirmed``), retries
  429/5xx/timeouts/dropped connections with backoff, and bisects a whole-request 400 down to
  the records that cause it;
- progress is committed after every answer that resolves records: rejections first, then
  the checkpoint (see ``state``), so a crash resends at most the bodies in flight;
- a retry bound reached stops the run ("gave up", the CLI's exit 4), 401/403 stops it at
  once ("failed", exit 1), as does a state or rejects file that cannot be written; an input
  that cannot be read to its end stops it ("failed") once the bodies read before it are
  delivered;
  ``stop`` (Ctrl-C, SIGTERM) stops taking work, and the reading at its next read, waits
  ``grace`` seconds for requests in flight, and saves ("interrupted", exit 130). Whatever was
  not acknowledged stays pending for the next run.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import queue
import random as _random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from clevertap_mapper.checks import Checker
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import ConfigError, DamagedInputError, FatalUploadError, InputError
from clevertap_mapper.io.model import Rejection
from clevertap_mapper.io.readers import STDIN, expand_inputs, require_inputs, source_name
from clevertap_mapper.io.writers import MAX_BATCH_RECORDS, MAX_TOKEN_BATCH_RECORDS
from clevertap_mapper.pipeline import Summary
from clevertap_mapper.text import plural
from clevertap_mapper.upload.client import (
    DEFAULT_TIMEOUT,
    Ack,
    CleverTapClient,
    Credentials,
    RequestRejectedError,
    TransientError,
    Unprocessed,
    upload_url,
)
from clevertap_mapper.upload.plan import Body, Stopped, check_passes, plan_bodies
from clevertap_mapper.upload.retry import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    MAX_CONCURRENCY,
    AdaptiveLimiter,
    Clock,
    Random,
    RetryPolicy,
)
from clevertap_mapper.upload.state import Checkpoint, RejectsJournal, describe_inputs

Outcome = Literal["complete", "gave_up", "interrupted", "failed"]
Send = Callable[[bytes], Ack]
Sleep = Callable[[float], None]

SERVER_ERROR_CODE: Final = 555  # "Miscellaneous server error": the one transient record code
REJECTED_CODE: Final = "clevertap_rejected"  # the rejects-file code of CleverTap's refusals
# The code of records an answer did not account for (neither processed nor unprocessed[]).
UNCONFIRMED_CODE: Final = "clevertap_unconfirmed"
DEFAULT_GRACE: Final = 10.0  # seconds to let requests in flight finish after Ctrl-C/SIGTERM
_SKIPPED_SUFFIX: Final = re.compile(r"\.?\s*Skipped record number\s*:\s*\d+\s*$")
_TICK: Final = 0.2  # how often waiting threads look at the stop flag


def rejection_key(code: int | None) -> str:
    """The summary/totals key of a CleverTap record code: ``clevertap_523``."""
    return f"clevertap_{code if code is not None else 'unknown'}"


@dataclass(frozen=True, slots=True)
class UploadOptions:
    """How to deliver: concurrency, timeouts, retries, order. Defaults are documented in
    ``retry`` and ``client``; ``grace`` is the wait for requests in flight on Ctrl-C."""

    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    profiles_first: bool = False
    grace: float = DEFAULT_GRACE

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ConfigError(f"concurrency must be between 1 and {MAX_CONCURRENCY} (CleverTap "
                              f"allows {MAX_CONCURRENCY} concurrent upload requests per "
                              f"account), not {self.concurrency}")
        if not self.timeout > 0:
            raise ConfigError("timeout must be more than 0 seconds")
        if self.max_retries < 0:
            raise ConfigError("max_retries must be 0 or more")


@dataclass
class UploadReport:
    """What an upload run did, for the closing summary and scripts (``as_dict``).

    ``summary`` counts what was read and mapped. ``rejected`` counts the rejections written
    to the rejects file by this run, by code (``clevertap_<code>`` for CleverTap's).
    ``job_accepted`` / ``job_rejected`` add up every run of a checkpointed job.
    """

    summary: Summary = field(default_factory=Summary)
    outcome: Outcome = "complete"
    error: str | None = None
    bodies: int = 0
    bodies_skipped: int = 0
    bodies_acked: int = 0
    requests: int = 0
    records_sent: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    throttled: int = 0
    ambiguous: int = 0
    possible_duplicates: int = 0
    bisected: int = 0
    mismatches: int = 0
    pending_records: int = 0
    unread: bool = False
    lowest_concurrency: int = 0
    already_complete: bool = False
    resumed: bool = False
    state_path: str | None = None
    rejects_path: str | None = None
    job_accepted: int = 0
    job_rejected: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def job_rejected_total(self) -> int:
        return sum(self.job_rejected.values())

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"outcome": self.outcome, "error": self.error}
        out["read"] = self.summary.as_dict()
        del out["read"]["bodies"]  # convert's count of the bodies it wrote; upload's is below
        for f in dataclasses.fields(self):
            if f.name in ("summary", "outcome", "error"):
                continue
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, Counter) else value
        out["rejected_total"] = self.rejected_total
        return out


class _Halt(Exception):
    """A worker stops work on its body (stop requested, or the run failed elsewhere)."""


class _GaveUp(Exception):
    """A request failed ``max_retries + 1`` times."""


@dataclass(slots=True)
class _Chunk:
    """Part of a body to send in one request: indices into the body; ``retries``: failed
    attempts of this request; ``resends``: how often these records came back with 555."""

    indices: list[int]
    retries: int = 0
    wait: float = 0.0
    resends: int = 0


@dataclass(slots=True)
class _Job:
    """A body being delivered, with the results not yet committed to the checkpoint."""

    body: Body  # body.records: the encoded records, as they are sent
    pending: set[int]
    stream_due: bool
    accepted: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    acked: bool = False

    @classmethod
    def of(cls, body: Body, pending: list[int] | None) -> _Job:
        indices = set(range(len(body.records))) if pending is None else set(pending)
        # A body the checkpoint knows in part had its read/map rejections written already.
        return cls(body, indices, stream_due=pending is None)

    def record(self, index: int) -> dict[str, Any]:
        """Record ``index`` of the body, decoded from what was sent."""
        record: dict[str, Any] = orjson.loads(self.body.records[index])
        return record

    @property
    def progressed(self) -> bool:
        """CleverTap resolved records of this body since the last commit."""
        return bool(self.accepted or self.rejections)


class Uploader:
    """Delivers numbered bodies through ``send`` (module docstring). One use per instance.

    ``send`` posts one encoded body and returns the Ack or raises (``CleverTapClient.send``).
    ``sleep``, ``random`` and ``clock`` are injectable for tests; by default the backoff sleep
    wakes early when the run stops.
    """

    def __init__(self, send: Send, checkpoint: Checkpoint, rejects: RejectsJournal | None, *,
                 concurrency: int = DEFAULT_CONCURRENCY, policy: RetryPolicy | None = None,
                 limiter: AdaptiveLimiter | None = None, sleep: Sleep | None = None,
                 random: Random | None = None, clock: Clock = time.monotonic,
                 grace: float = DEFAULT_GRACE, stop: threading.Event | None = None,
                 progress: Callable[[UploadReport], None] | None = None,
                 progress_every: float = 0.25) -> None:
        self._send = send
        self._checkpoint = checkpoint
        self._rejects = rejects
        self._concurrency = concurrency
        self._policy = policy or RetryPolicy()
        self._limiter = limiter or AdaptiveLimiter(concurrency, clock=clock)
        self._sleep = sleep
        self._random = random or _random.Random().random
        self._clock = clock
        self._grace = grace
        self._stop = stop or threading.Event()
        self._progress = progress
        self._progress_every = progress_every
        self._last_progress = -float("inf")
        self._halt = threading.Event()  # set on stop, give-up or failure: no new requests
        self._lock = threading.Lock()  # guards the report, the checkpoint and the journal
        self._cond = threading.Condition(self._lock)
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._outstanding: dict[int, _Job] = {}  # bodies handed to workers, not yet finished
        self._closed = False  # run() has returned: late workers must not touch files
        self._failure: tuple[Outcome, BaseException] | None = None
        self.input_error: InputError | None = None  # an input that could not be read to its end
        self.report = UploadReport(lowest_concurrency=concurrency)

    def stop(self) -> None:
        """Ask the run to stop (safe from a signal handler): no new work, save, return."""
        self._stop.set()
        self._halt.set()

    def stopping(self) -> bool:
        """The run is stopping (asked to, or failed): the body stream may stop reading
        (``plan_bodies``'s ``stop``), since no more bodies will be taken."""
        return self._stop.is_set() or self._halt.is_set()

    # ---- the calling thread ------------------------------------------------------------------

    def run(self, bodies: Iterable[Body]) -> UploadReport:
        """Deliver ``bodies``; returns the report (``outcome`` says how it ended).

        401/403 and the like end it with outcome "failed" (``error`` says what to check).
        So does an input that cannot be read to its end (InputError from the body stream,
        kept in ``input_error``), once the bodies read before it are delivered and saved.
        Whatever else the body stream raises is raised after the work in flight is done and
        saved.
        """
        report = self.report
        started = self._clock()
        workers = [threading.Thread(target=self._worker, name=f"ctmap-upload-{i}", daemon=True)
                   for i in range(self._concurrency)]
        for w in workers:
            w.start()
        window = self._concurrency + 1
        finished_reading = False
        try:
            try:
                for body in bodies:
                    report.bodies = body.seq + 1
                    if self._check_stop():
                        break
                    if self._checkpoint.is_acked(body.seq):
                        report.bodies_skipped += 1
                        continue
                    pending = self._checkpoint.pending_of(body.seq, len(body.records))
                    job = _Job.of(body, pending)
                    del body  # its record dicts go now, not after the next body is batched
                    if not job.pending:
                        try:
                            self._commit(job, final=True)
                        except FatalUploadError as error:  # the rejects file is full
                            self._fail("failed", error)
                            break
                        continue
                    if not self._reserve(job, window):
                        with self._lock:
                            report.pending_records += len(job.pending)
                        break
                    self._queue.put(job)
                    self._tick()
                else:
                    self._checkpoint.check_end(report.bodies)  # ConfigError if damaged
                    finished_reading = True
            except KeyboardInterrupt:
                self.stop()
            except Stopped:
                pass  # the stream saw the stop (or the failure) between two reads
            except InputError as error:
                # An input cannot be read further: deliver what was read (the bodies in flight),
                # then end as failed, with a summary of what went and what did not.
                self._drain(None)
                self._fail("failed", error)
                if self._failure is not None and self._failure[1] is error:
                    self.input_error = error  # not when a worse failure came first
            except BaseException:
                self._drain(None)
                raise
            self._drain(self._grace if self._stop.is_set() else None)
        finally:
            self._halt.set()
            for _ in workers:
                self._queue.put(None)
            with self._lock:
                self._closed = True
                for job in self._outstanding.values():  # still in flight after the grace
                    report.pending_records += len(job.pending)
                report.unread = not finished_reading
                report.lowest_concurrency = self._limiter.lowest
                if finished_reading and self._failure is None and not self._stop.is_set():
                    self._checkpoint.record_end(report.bodies)
                report.job_accepted = self._checkpoint.accepted
                report.job_rejected = Counter(self._checkpoint.rejected)
                report.resumed = self._checkpoint.resumed
                try:
                    self._checkpoint.save()
                except FatalUploadError as error:  # the disk is full
                    self._fail_locked("failed", error)
                report.elapsed = self._clock() - started
        if self._failure is not None:
            outcome, exc = self._failure
            report.outcome = outcome
            report.error = str(exc)
            if not isinstance(exc, (_GaveUp, FatalUploadError, InputError)):
                raise exc  # a bug: let it surface with its traceback
        elif self._stop.is_set():
            report.outcome = "interrupted"
        elif report.pending_records:
            report.outcome = "gave_up"
        return report

    def _check_stop(self) -> bool:
        if self._stop.is_set():
            self._halt.set()
        return self._halt.is_set()

    def _reserve(self, job: _Job, window: int) -> bool:
        """Wait for room in the window of outstanding bodies; False if the run is stopping."""
        with self._cond:
            while len(self._outstanding) >= window:
                if self._check_stop():
                    return False
                self._cond.wait(_TICK)
                self._tick_locked()
            if self._check_stop():
                return False
            self._outstanding[job.body.seq] = job
            return True

    def _drain(self, limit: float | None) -> None:
        """Wait until no body is outstanding (at most ``limit`` seconds once stopping)."""
        deadline: float | None = None
        with self._cond:
            while self._outstanding:
                if self._stop.is_set():
                    self._halt.set()
                    if limit is not None:
                        deadline = deadline or time.monotonic() + limit
                        if time.monotonic() >= deadline:
                            break
                self._cond.wait(_TICK)
                self._tick_locked()

    def _tick(self) -> None:
        with self._lock:
            self._tick_locked()

    def _tick_locked(self) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if now - self._last_progress >= self._progress_every:
            self._last_progress = now
            self._progress(self.report)

    # ---- workers -------------------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                self._deliver(job)
            except _Halt:
                pass
            except _GaveUp as exc:
                self._fail("gave_up", exc)
            except FatalUploadError as exc:
                self._fail("failed", exc)
            except BaseException as exc:  # a bug must stop the run, not hang it
                self._fail("failed", exc)
            finally:
                self._finish(job)

    def _fail(self, outcome: Outcome, exc: BaseException) -> None:
        with self._lock:
            self._fail_locked(outcome, exc)
        self._halt.set()

    def _fail_locked(self, outcome: Outcome, exc: BaseException) -> None:
        """Note how the run failed (the lock held): the first failure, unless a worse one
        ("failed" after a "gave_up") comes later."""
        if self._failure is None or (outcome == "failed" and self._failure[0] != "failed"):
            self._failure = (outcome, exc)

    def _finish(self, job: _Job) -> None:
        if not job.acked and job.progressed:
            try:
                self._commit(job, final=False)
            except BaseException as exc:
                self._fail("failed", exc)
        with self._cond:
            if self._closed:
                return
            if not job.acked:
                self.report.pending_records += len(job.pending)
            del self._outstanding[job.body.seq]
            self._cond.notify_all()

    def _pause(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._halt.wait(seconds)

    def _deliver(self, job: _Job) -> None:
        """Send one body until every record is accepted or rejected (module docstring)."""
        policy = self._policy
        work: deque[_Chunk] = deque([_Chunk(sorted(job.pending))])
        while work:
            chunk = work[0]
            if self._halt.is_set():
                raise _Halt
            self._pause(chunk.wait)
            chunk.wait = 0.0
            if self._halt.is_set() or not self._limiter.acquire(self._halt):
                raise _Halt
            payload = b'{"d":[' + b",".join(job.body.records[i] for i in chunk.indices) + b"]}"
            with self._lock:
                self.report.requests += 1
                self.report.records_sent += len(chunk.indices)
            try:
                ack = self._send(payload)
            except TransientError as exc:
                self._limiter.release(throttled=exc.throttled)
                with self._lock:
                    self.report.throttled += exc.throttled
                    if exc.ambiguous:  # CleverTap may have stored these: a resend may double
                        self.report.ambiguous += 1
                        self.report.possible_duplicates += len(chunk.indices)
                if policy.exhausted(chunk.retries):
                    raise _GaveUp(f"gave up on body {job.body.seq + 1} after "
                                  f"{chunk.retries + 1} attempts; last error: {exc}") from None
                chunk.retries += 1
                chunk.wait = policy.delay(chunk.retries, exc.retry_after, self._random)
                with self._lock:
                    self.report.retries += 1
                continue
            except RequestRejectedError as exc:
                self._limiter.release()
                work.popleft()
                self._bisect(job, chunk, exc, work)
                continue
            except BaseException:
                self._limiter.release()
                raise
            self._limiter.release(ok=True)
            work.popleft()
            again = self._apply(job, chunk, ack)
            if again and policy.exhausted(chunk.resends):
                for index, entry in again:
                    self._reject(job, index, entry.code, entry.error)
            elif again:
                # 555 is CleverTap's own failure (spec s1.5): resend those records, and only
                # those, in a later request, at most max_retries times.
                resends = chunk.resends + 1
                work.append(_Chunk([index for index, _ in again],
                                   wait=policy.delay(resends, None, self._random),
                                   resends=resends))
                with self._lock:
                    self.report.retries += 1
            if work and job.progressed:
                self._commit(job, final=False)
        self._commit(job, final=True)

    def _bisect(self, job: _Job, chunk: _Chunk, exc: RequestRejectedError,
                work: deque[_Chunk]) -> None:
        """A whole-request 400: reject a lone record with CleverTap's answer; otherwise send
        the two halves separately, so the good records go and the bad ones are isolated."""
        if len(chunk.indices) == 1:
            self._reject(job, chunk.indices[0], exc.code, exc.error)
            return
        mid = len(chunk.indices) // 2
        work.appendleft(_Chunk(chunk.indices[mid:], resends=chunk.resends))
        work.appendleft(_Chunk(chunk.indices[:mid], resends=chunk.resends))
        with self._lock:
            self.report.bisected += 1

    def _apply(self, job: _Job, chunk: _Chunk, ack: Ack) -> list[tuple[int, Unprocessed]]:
        """Resolve a chunk from a 200 answer; returns the records to resend (code 555)."""
        indices = chunk.indices
        open_slots = set(range(len(indices)))
        failed: list[tuple[int, Unprocessed]] = []
        unmatched: list[Unprocessed] = []
        for entry in ack.unprocessed:
            slot = self._match(job, indices, open_slots, entry)
            if slot is None:
                unmatched.append(entry)
            else:
                open_slots.discard(slot)
                failed.append((slot, entry))
        again: list[tuple[int, Unprocessed]] = []
        for slot, entry in failed:
            if entry.code == SERVER_ERROR_CODE:
                again.append((indices[slot], entry))
            else:
                self._reject(job, indices[slot], entry.code, entry.error)
        expected = len(indices) - len(ack.unprocessed)
        if unmatched or ack.processed != expected:
            with self._lock:
                self.report.mismatches += 1
        if len(open_slots) - len(unmatched) > ack.processed:
            # CleverTap stored fewer records than it found no fault with (a "fail" with an
            # empty unprocessed[], say) and does not say which: none counts as accepted, and
            # each goes to the rejects file once (an unmatched entry is one of them).
            for slot in sorted(open_slots):
                self._unconfirmed(job, indices[slot], ack, len(indices))
            open_slots.clear()
            unmatched = []
        for entry in unmatched:
            # CleverTap named a record we cannot find in what we sent: keep its answer.
            job.rejections.append(Rejection(
                job.body.positions[indices[0]], "upload", REJECTED_CODE,
                f"CleverTap rejected a record of this body that ctmap could not match to an "
                f"input line (code {entry.code}: {entry.error})", record=entry.record,
                clevertap={"code": entry.code, "error": entry.error}))
        for slot in open_slots:
            job.pending.discard(indices[slot])
        # Each unmatched entry is one of these records, in the rejects file with its answer.
        job.accepted += max(0, len(open_slots) - len(unmatched))
        return sorted(again, key=lambda pair: pair[0])

    @staticmethod
    def _match(job: _Job, indices: list[int], open_slots: set[int],
               entry: Unprocessed) -> int | None:
        """Which slot of the chunk an ``unprocessed[]`` entry is about: the 1-based record
        number CleverTap gives, checked against the echoed record; else the echoed record."""
        n = entry.number
        by_number = n - 1 if n is not None and 1 <= n <= len(indices) else None
        if by_number in open_slots and (entry.record is None
                                        or entry.record == job.record(indices[by_number])):
            return by_number
        if entry.record is not None:
            for slot in sorted(open_slots):
                if job.record(indices[slot]) == entry.record:
                    return slot
        return by_number if by_number in open_slots else None

    def _reject(self, job: _Job, index: int, code: int | None, error: str) -> None:
        job.pending.discard(index)
        # The record number CleverTap quotes counts within one request: useless to a reader,
        # so the message drops it (``clevertap.error`` keeps CleverTap's text as sent).
        why = _SKIPPED_SUFFIX.sub("", error).strip() or "no reason given"
        job.rejections.append(Rejection(
            job.body.positions[index], "upload", REJECTED_CODE,
            f"CleverTap rejected the record (code {code}: {why}); fix the event and upload "
            "it again", record=job.record(index),
            clevertap={"code": code, "error": error}))

    def _unconfirmed(self, job: _Job, index: int, ack: Ack, sent: int) -> None:
        job.pending.discard(index)
        job.rejections.append(Rejection(
            job.body.positions[index], "upload", UNCONFIRMED_CODE,
            f"CleverTap answered status {ack.status!r}, {ack.processed} processed, for "
            f"{sent} records, without naming the others: this record may not be stored; "
            "check it in CleverTap before uploading it again", record=job.record(index),
            clevertap={"status": ack.status, "processed": ack.processed,
                       "unprocessed": [{"code": e.code, "error": e.error}
                                       for e in ack.unprocessed]}))

    def _commit(self, job: _Job, *, final: bool) -> None:
        """Make a job's progress durable: rejections to the journal, then the checkpoint."""
        with self._lock:
            if self._closed:
                return  # the run is over; this body stays pending for the next one
            rejections: list[Rejection] = []
            if job.stream_due:
                rejections.extend(job.body.rejections)
            rejections.extend(job.rejections)
            counts = Counter(rejection_key((r.clevertap or {}).get("code"))
                             if r.code == REJECTED_CODE else r.code for r in rejections)
            if self._rejects is not None:
                self._rejects.write(rejections)  # raises: nothing below happens, all kept
            job.stream_due = False
            job.rejections = []
            accepted, job.accepted = job.accepted, 0
            if final:
                last = job.body.positions[-1] if job.body.positions else None
                self._checkpoint.record_ack(job.body.seq, last, accepted, counts)
                job.acked = True
                self.report.bodies_acked += 1
            else:
                self._checkpoint.record_partial(job.body.seq, sorted(job.pending), accepted,
                                                counts)
            self._checkpoint.save()
            self.report.accepted += accepted
            self.report.rejected.update(counts)
            self._tick_locked()


# ---- the library entry point ---------------------------------------------------------------


def job_settings(mapper: MapperConfig, checker: Checker | None, *, profiles_first: bool,
                 account_id: str | None, url: str) -> dict[str, Any]:
    """The settings part of the checkpoint fingerprint: everything that decides which records
    end up in which numbered body (the ctmap version too: another may map or batch otherwise),
    and where they go (account and upload URL: a state made against a test endpoint must not
    skip bodies against the real one)."""
    return {
        "ctmap_version": _ctmap_version(),
        "url": url,
        "mapping": dataclasses.asdict(mapper),
        "checks": None if checker is None else checker.level,
        "max_event_properties": None if checker is None else checker.max_event_properties,
        "allow": [] if checker is None else sorted(checker.allow),
        "profiles_first": profiles_first,
        "max_records": MAX_BATCH_RECORDS,
        "max_token_records": MAX_TOKEN_BATCH_RECORDS,
        "account_id": account_id,
    }


def _ctmap_version() -> str:
    try:
        return importlib.metadata.version("ctmap")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


def run_upload(inputs: list[str], mapper: MapperConfig, credentials: Credentials, *,
               region: str | None, endpoint: str | None = None,
               checker: Checker | None = None, options: UploadOptions | None = None,
               state_path: str | None = None, rejects_path: str | None = None,
               restart: bool = False, stop: threading.Event | None = None,
               progress: Callable[[UploadReport], None] | None = None,
               policy: RetryPolicy | None = None, sleep: Sleep | None = None,
               random: Random | None = None) -> UploadReport:
    """Map ``inputs`` and upload them to CleverTap; the report says how it ended.

    ``state_path``: checkpoint there (resume if it matches, refuse if it belongs to another
    job, unless ``restart``). ``rejects_path``: where rejected events and records go
    (appended when resuming). Set ``stop`` to end the run early (state saved). Raises
    ConfigError before any network use for a bad region/endpoint/settings; CleverTap refusing
    the credentials ends the run with outcome "failed".

    Example::

        report = run_upload(["events.ndjson"], MapperConfig(),
                            Credentials("ACC-ID", Secret(os.environ["CLEVERTAP_PASSCODE"])),
                            region="in1", state_path="sync.state")
    """
    options = options or UploadOptions()
    url = upload_url(region, endpoint)
    _check_inputs(inputs)
    check_passes(inputs, options.profiles_first)
    policy = policy or RetryPolicy(max_retries=options.max_retries)
    settings = job_settings(mapper, checker, profiles_first=options.profiles_first,
                            account_id=credentials.account_id, url=url)
    described = describe_inputs(inputs) if state_path is not None else []
    checkpoint = Checkpoint.open(state_path, described, settings, restart=restart)
    try:
        if checkpoint.complete:
            return _already_complete(checkpoint, rejects_path)
        rejects = (RejectsJournal(rejects_path, append=checkpoint.resumed,
                                  checkpointed=checkpoint.path is not None)
                   if rejects_path is not None else None)
        try:
            with CleverTapClient(url, credentials, pool_size=options.concurrency,
                                 timeout=options.timeout, region=region) as client:
                uploader = Uploader(client.send, checkpoint, rejects,
                                    concurrency=options.concurrency, policy=policy,
                                    sleep=sleep, random=random, grace=options.grace,
                                    stop=stop, progress=progress)
                uploader.report.state_path = state_path
                uploader.report.rejects_path = rejects_path
                bodies = plan_bodies(inputs, mapper, uploader.report.summary, checker=checker,
                                     profiles_first=options.profiles_first,
                                     stop=uploader.stopping)
                report = uploader.run(_closing(bodies))
                if uploader.input_error is not None:
                    report.error = _unread_input_text(
                        uploader.input_error, report, checkpoint, inputs,
                        profiles_first=options.profiles_first)
                return report
        finally:
            if rejects is not None:
                rejects.close()
    finally:
        checkpoint.close()


def _check_inputs(inputs: list[str]) -> None:
    """Refuse a missing input before anything is sent (a typo in the last of ten paths must
    not be found after the first nine went out), and one that is not a regular file."""
    for name in require_inputs(inputs):  # (one walk of the directories, not two)
        if name != STDIN and not os.path.isfile(name):
            raise InputError(f"{name}: not a regular file; upload reads files, or - for stdin",
                             source=name)


def _unread_input_text(error: InputError, report: UploadReport, checkpoint: Checkpoint,
                       inputs: list[str], *, profiles_first: bool) -> str:
    """The error of an input that could not be read to its end, with what was delivered, what
    was not, and what to do: a data engineer must neither lose records nor send them twice."""
    source, line = error.source, error.line or 1
    files = [source_name(name) for name in expand_inputs(inputs)]
    later = files[files.index(source) + 1:] if source in files else []
    after = ("" if not later else f" and {', '.join(later)}" if len(later) <= 3
             else f" and the {len(later)} inputs after it")
    rerun = ("Rerunning this command sends nothing twice" if checkpoint.path is not None
             else "Without --state a rerun sends everything again")
    if report.pending_records:
        went = (f"{plural(report.pending_records, 'record')} read before it were not delivered"
                + (" and stay pending in the state: rerun this command to send them"
                   if checkpoint.path is not None else ""))
    else:
        went = "every line before it was delivered (accepted, or in the rejects file)"
    if not isinstance(error, DamagedInputError):  # a read error: it may strike elsewhere next
        done = checkpoint.delivered_through
        upto = (f"through {done['source']} line {done['line']}" if done is not None
                else "nothing")
        return (f"{error}. Upload: delivered {upto}; what was read after that was not sent. "
                f"{rerun} once {source} reads again"
                + ("" if checkpoint.path is None else ": it sends the rest"))
    stale = ("this state no longer matches it and --restart would send everything again"
             if checkpoint.path is not None else "a rerun would send everything again")
    if profiles_first:
        return (f"{error}. Upload: the profile pass of --profiles-first met it, so no event "
                f"was sent; of the profiles and device tokens, {went}. {rerun}. Once the file "
                "is repaired, " + ("rerun with --restart" if checkpoint.path is not None
                                   else "rerun") + ": the profiles and tokens go again "
                "(setting the same values), then every event once")
    return (f"{error}. Upload: {went}; nothing after it was read or sent (the rest of "
            f"{source}{after}). {rerun} and stops here again. Once the file is repaired, "
            f"{stale}: upload only what is left, as a new job: its lines from line {line} on "
            f"(zcat {source} | tail -n +{line} > rest.ndjson){after}")


def _closing(bodies: Iterator[Body]) -> Iterator[Body]:
    """``bodies``, closed (files released) even when the run stops early."""
    try:
        yield from bodies
    finally:
        close = getattr(bodies, "close", None)
        if close is not None:
            close()


def _already_complete(checkpoint: Checkpoint, rejects_path: str | None) -> UploadReport:
    """A rerun of a finished job: nothing is read or sent."""
    return UploadReport(
        already_complete=True, resumed=True, state_path=checkpoint.path,
        rejects_path=rejects_path, bodies=checkpoint.bodies_total or 0,
        bodies_skipped=checkpoint.bodies_total or 0, job_accepted=checkpoint.accepted,
        job_rejected=Counter(checkpoint.rejected))
