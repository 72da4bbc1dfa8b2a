"""A local stand-in for CleverTap's ``POST /1/upload`` API, for tests.

Why: upload code has to be tested against the things the real API does (HTTP 200 with
per-record failures, 401 on bad credentials, 429 when more than 15 requests are in flight,
5xx, slow answers, dropped connections) without touching a real CleverTap account. This
module runs a real HTTP/1.1 server on 127.0.0.1 so the client under test uses its real
transport (connection pool, keep-alive, timeouts), and it records what "CleverTap" accepted
so tests can count lost and duplicated records.

What it checks is taken from /work/shared/spec/clevertap-api.md (sections 0-2): the
``{"d": [...]}`` envelope, 1000 records per call (100 if any record is a device token),
the record-level error codes 509-534 and 555, and the response shape
``{"status", "processed", "unprocessed": [{"status", "code", "error", "record"}]}``.
Things the spec marks uncertain (payload byte limit, ``Retry-After``) are options.

Use from tests::

    with FakeCleverTap(latency=0.1) as ct:
        httpx.post(ct.url + "/1/upload", ...)
        assert len(ct.accepted) == 3

or as a separate process (so a test can kill the client and still count what arrived)::

    python -m tests.support.fake_clevertap --port 0 --passcode-env CT_PASS \\
        --accepted-file accepted.ndjson
    # first stdout line: "listening http://127.0.0.1:PORT"

Order of checks for ``POST /1/upload``: concurrency cap (429) and the request's fault
(scripted or random) come first, as they would at CleverTap's front door; then the
``latency`` delay; then credentials (401), Content-Type (400), size (413), envelope (400),
poison (400), record-count limits (400); then per-record validation (HTTP 200). The
``drop_after`` and ``timeout`` faults act last: the request is processed, then its answer is
lost or late.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import hmac
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, NamedTuple, cast

import orjson

__all__ = [
    "FAULTS",
    "RESTRICTED_EVENTS",
    "TOKEN_TYPES",
    "UPLOAD_PATH",
    "FakeCleverTap",
    "FakeOptions",
    "Rejection",
    "main",
    "read_accepted_file",
    "validate_record",
]

UPLOAD_PATH = "/1/upload"

#: System events CleverTap refuses on upload (record code 513), spec §2.1.
RESTRICTED_EVENTS: frozenset[str] = frozenset(
    {
        "Notification Sent",
        "Notification Viewed",
        "Notification Clicked",
        "Notification Delivered",
        "Notification Replied",
        "UTM Visited",
        "App Launched",
        "App Uninstalled",
        "App Version Changed",
        "Stayed",
        "Reply Sent",
        "Experiment Rendered",
        "Reachable By",
        "Identity Reset",
        "Identity Set",
        "Identity Error",
    }
)

#: ``tokenData.type`` values accepted for device tokens (spec §1.3).
TOKEN_TYPES: frozenset[str] = frozenset({"apns", "fcm", "gcm", "wns", "mpns", "chrome"})

#: Keys that may identify the user of an event or profile record (spec §1.3).
IDENTITY_KEYS: tuple[str, ...] = ("identity", "FBID", "GPID", "objectId")

#: profileData keys RudderStack keeps as arrays (spec §2.3).
PROFILE_ARRAY_KEYS: frozenset[str] = frozenset({"category-unsubscribe", "category-resubscribe"})

#: Multi-value operation keys allowed in a profileData value dict (spec §1.3).
PROFILE_OPERATIONS: frozenset[str] = frozenset({"$add", "$remove", "$set", "$delete"})

#: Fault names accepted by :meth:`FakeCleverTap.script`. ``ok`` means "no fault".
FAULTS: frozenset[str] = frozenset(
    {
        "ok",
        "429",
        "500",
        "502",
        "503",
        "504",
        "timeout",
        "drop_before",
        "drop_after",
        "malformed_400",
    }
)

_SERVER_ERRORS: dict[int, str] = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable. Please retry later.",
    504: "Gateway Timeout",
}

_JSON = "application/json; charset=utf-8"
_DRAIN_CHUNK = 64 * 1024
_MAX_DRAIN = 64 * 1024 * 1024


def _fail(error: str, code: int) -> dict[str, Any]:
    """A whole-request failure body, shaped like CleverTap's (``status``, ``error``, ``code``)."""
    return {"status": "fail", "error": error, "code": code}


INVALID_CREDENTIALS: dict[str, Any] = _fail("Invalid Credentials", 401)
MALFORMED: dict[str, Any] = _fail("Malformed request", 400)
TOO_MANY_CONCURRENT: dict[str, Any] = _fail("Too many concurrent requests", 429)


# --------------------------------------------------------------------------------------
# Record validation
# --------------------------------------------------------------------------------------


class Rejection(NamedTuple):
    """Why one record was not processed: CleverTap's record-level code and message.

    ``glue`` is what goes between the message and "Skipped record number : K". CleverTap's
    real 512 text has no space there ("...for field : prop1.Skipped record number : 1",
    rudder-transformer PR #3048) while other texts have one, so clients must parse loosely.
    """

    code: int
    message: str
    glue: str = " "

    def error_text(self, number: int) -> str:
        """The ``error`` string CleverTap puts in ``unprocessed[]`` for record ``number``."""
        return f"{self.message}{self.glue}Skipped record number : {number}"


def _non_empty_str(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _is_nested(value: object) -> bool:
    return isinstance(value, dict | list)


def validate_record(
    record: object,
    *,
    max_event_props: int = 256,
    max_identity_len: int = 1024,
    allow_profile_arrays: bool = False,
) -> Rejection | None:
    """Check one upload record the way CleverTap does; ``None`` means it would be processed.

    Why a free function: tests of the mapper can call it directly to assert that what they
    produce would pass, without running a server.
    """
    if not isinstance(record, dict):
        return Rejection(524, "Record is incorrect. 524 - Data is neither event nor profile.")
    rtype = record.get("type")
    if rtype == "token":
        return _validate_token(record)
    if rtype not in ("event", "profile"):
        return Rejection(524, "Record type is incorrect. 524 - Data is neither event nor profile.")

    if not any(_non_empty_str(record.get(key)) for key in IDENTITY_KEYS):
        return Rejection(
            523,
            "Identity is missing. 523 - Set one of identity, FBID, GPID or objectId.",
        )
    identity = record.get("identity")
    if isinstance(identity, str) and len(identity) > max_identity_len:
        return Rejection(
            523,
            f"Identity is incorrect. 523 - identity must be at most {max_identity_len} characters.",
        )
    if "ts" in record:
        ts = record["ts"]
        if not isinstance(ts, int) or isinstance(ts, bool) or ts <= 0:
            return Rejection(
                525, "Timestamp is incorrect. 525 - ts must be a UNIX epoch in seconds."
            )
    if rtype == "event":
        return _validate_event(record, max_event_props)
    return _validate_profile(record, allow_profile_arrays)


def _validate_event(record: dict[str, Any], max_event_props: int) -> Rejection | None:
    name = record.get("evtName")
    if not _non_empty_str(name):
        return Rejection(509, "Event Name is incorrect. ErrorCode: 509 - Event name is mandatory.")
    if name in RESTRICTED_EVENTS:
        return Rejection(
            513,
            f"Event Name is incorrect. ErrorCode: 513 - {name} is a restricted system event.",
        )
    data = record.get("evtData")
    if not isinstance(data, dict):
        return Rejection(512, "Event data is incorrect. 512 - evtData must be an object.")
    for key, value in data.items():
        if not _is_nested(value):
            continue
        if (
            key == "Items"
            and name == "Charged"
            and isinstance(value, list)
            and all(isinstance(item, dict) for item in value)
        ):
            continue
        return Rejection(
            512,
            "Event data is incorrect. 512 - Only Items can have a nested structure, "
            f"incorrect nested structure for field : {key}.",
            glue="",
        )
    if len(data) > max_event_props:
        return Rejection(
            522,
            f"Event data is incorrect. 522 - Event properties limit ({max_event_props}) exceeded.",
        )
    return None


def _validate_profile(record: dict[str, Any], allow_profile_arrays: bool) -> Rejection | None:
    data = record.get("profileData")
    if not isinstance(data, dict):
        return Rejection(524, "Profile data is incorrect. 524 - profileData must be an object.")
    if "Gender" in data and data["Gender"] not in ("M", "F"):
        return Rejection(514, "Gender is incorrect. 514 - Gender must be M or F.")
    for key, value in data.items():
        if not _is_nested(value):
            continue
        if key in PROFILE_ARRAY_KEYS and isinstance(value, list):
            continue
        if isinstance(value, dict) and value and set(value) <= PROFILE_OPERATIONS:
            continue
        if allow_profile_arrays and isinstance(value, list):
            continue
        return Rejection(
            512,
            "Profile data is incorrect. 512 - Nested structures are not allowed, "
            f"incorrect nested structure for field : {key}.",
            glue="",
        )
    return None


def _validate_token(record: dict[str, Any]) -> Rejection | None:
    if not _non_empty_str(record.get("objectId")):
        return Rejection(530, "Token data is incorrect. 530 - Invalid 'objectId'.")
    data = record.get("tokenData")
    if not isinstance(data, dict):
        return Rejection(531, "Token data is incorrect. 531 - Invalid token data.")
    if not _non_empty_str(data.get("id")):
        return Rejection(532, "Token data is incorrect. 532 - Token 'id' is not present.")
    if "type" not in data:
        return Rejection(533, "Token data is incorrect. 533 - Token 'type' is not present.")
    if data["type"] not in TOKEN_TYPES:
        return Rejection(
            534, "Token data is incorrect. 534 - Token 'type' is not valid for 'objectId'."
        )
    return None


# --------------------------------------------------------------------------------------
# Options and server state
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class FakeOptions:
    """Everything about the fake's behaviour that a test may change, at start or at runtime.

    The ``rate_*`` request-level rates are probabilities per request and are mutually
    exclusive (their sum must be <= 1); ``rate_5xx`` picks 500 or 503 with equal odds.
    ``rate_555`` is per valid record. All draws come from one ``random.Random(seed)``, so a
    run is reproducible for a given seed and request arrival order.
    """

    account_id: str = "TEST-ACC"
    passcode: str = "test-passcode"
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_timeout: float = 0.0
    rate_drop_before: float = 0.0
    rate_drop_after: float = 0.0
    rate_555: float = 0.0
    seed: int = 0
    #: Seconds for a ``Retry-After`` header on 429 answers; ``None`` sends no header
    #: (CleverTap documents none, spec §1.6).
    retry_after: float | None = None
    #: How late a ``timeout`` fault answers (after the records were accepted).
    slow_seconds: float = 5.0
    #: Delay added to every upload request before it is processed ("processing time").
    latency: float = 0.0
    max_concurrency: int = 15
    max_body_bytes: int = 10 * 1024 * 1024
    max_records: int = 1000
    max_token_records: int = 100
    max_event_props: int = 256
    max_identity_len: int = 1024
    #: evtName / profileData key that makes the whole request fail with 400 (for bisection
    #: tests); ``None`` disables it.
    poison: str | None = "__poison_400__"
    #: Accept plain lists as profileData values (multi-value properties, spec §2.3).
    allow_profile_arrays: bool = False
    #: Keep no accepted record in memory (``accepted`` stays empty and the request log holds
    #: no bodies; the accepted file, if any, still gets them): for benchmarks, where holding
    #: every record made the stand-in's garbage collector, not the client, set the pace.
    count_only: bool = False

    def validate(self) -> None:
        """Raise ``ValueError`` for rates outside [0, 1] or request-level rates summing over 1."""
        rates = (
            self.rate_429,
            self.rate_5xx,
            self.rate_timeout,
            self.rate_drop_before,
            self.rate_drop_after,
            self.rate_555,
        )
        if any(not 0.0 <= rate <= 1.0 for rate in rates):
            raise ValueError("fault rates must be between 0 and 1")
        if sum(rates[:5]) > 1.0 + 1e-9:
            raise ValueError("request-level fault rates must sum to at most 1")
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")


_OPTION_NAMES = frozenset(field.name for field in dataclasses.fields(FakeOptions))


@dataclasses.dataclass
class _Ticket:
    """One upload request's bookkeeping while it is in flight."""

    entry: dict[str, Any]
    options: FakeOptions
    fault: str
    over_capacity: bool
    record_seed: int
    ended: bool = False


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its :class:`FakeCleverTap` and its open connections.

    Open connections are tracked so :meth:`FakeCleverTap.stop` can cut idle keep-alive
    connections; otherwise a pooled client connection would keep being served after stop.
    """

    daemon_threads = True
    request_queue_size = 256  # a burst of concurrent connects must not hit SYN backlog drops
    fake: FakeCleverTap

    def __init__(self, address: tuple[str, int], fake: FakeCleverTap) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away; report anything else."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)

    def cut_connections(self) -> None:
        """Shut down every open connection (clients see a reset / EOF)."""
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class FakeCleverTap:
    """A CleverTap ``/1/upload`` stand-in running on a background thread.

    Attributes read by tests (all thread-safe snapshots): :attr:`accepted` (records
    CleverTap would have stored, in arrival order), :attr:`rejected` (the ``unprocessed``
    entries it answered), :attr:`requests` (one dict per HTTP request), :attr:`max_in_flight`.
    """

    def __init__(
        self,
        account_id: str = "TEST-ACC",
        passcode: str = "test-passcode",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        script: Iterable[str] = (),
        accepted_file: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        unknown = set(options) - _OPTION_NAMES
        if unknown:
            raise TypeError(f"unknown FakeCleverTap options: {sorted(unknown)}")
        self._options = FakeOptions(account_id=account_id, passcode=passcode, **options)
        self._options.validate()
        self._host = host
        self._port = port
        self._lock = threading.Condition()
        self._rng = random.Random(self._options.seed)
        self._script: collections.deque[str] = collections.deque()
        self._accepted: list[dict[str, Any]] = []
        self._rejected: list[dict[str, Any]] = []
        self._requests: list[dict[str, Any]] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._seq = 0
        self._stopping = threading.Event()
        self._accepted_path = Path(accepted_file) if accepted_file is not None else None
        self._accepted_out: IO[bytes] | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.script(script)

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeCleverTap:
        """Bind and start serving on a daemon thread; returns ``self``. Idempotent."""
        if self._httpd is not None:
            return self
        if self._accepted_path is not None:
            self._accepted_out = self._accepted_path.open("ab")
        self._stopping.clear()
        self._httpd = _HTTPServer((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # how fast stop() returns
            name=f"fake-clevertap-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed handlers and cut open connections. Idempotent."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.cut_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None
        with self._lock:
            if self._accepted_out is not None:
                self._accepted_out.close()
                self._accepted_out = None

    def __enter__(self) -> FakeCleverTap:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- addresses ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when constructed with ``port=0``)."""
        if self._httpd is None:
            raise RuntimeError("FakeCleverTap is not running; call start() or use `with`")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``; clients append ``/1/upload``."""
        return f"http://{self._host}:{self.port}"

    @property
    def upload_url(self) -> str:
        """``url + "/1/upload"``."""
        return self.url + UPLOAD_PATH

    # ---- observations ------------------------------------------------------------------

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Snapshot of every record CleverTap would have stored, in arrival order."""
        with self._lock:
            return list(self._accepted)

    @property
    def rejected(self) -> list[dict[str, Any]]:
        """Snapshot of every ``unprocessed`` entry answered (code, error, record)."""
        with self._lock:
            return list(self._rejected)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Snapshot of per-request dicts, in arrival order.

        Keys: ``seq``, ``method``, ``path``, ``query``, ``client`` ("host:port", equal across
        requests on one keep-alive connection), ``headers`` (lower-cased names, the passcode
        included), ``arrived``/``finished`` (``time.time()``), ``size`` (body bytes),
        ``body`` (parsed JSON, or the raw bytes if not JSON, or ``None`` if unread),
        ``fault`` (applied fault name or ``None``), ``status`` (HTTP status sent, ``None``
        if the connection was dropped or not answered yet), ``response`` (body sent).
        Entries of requests still in flight are updated in place.
        """
        with self._lock:
            return list(self._requests)

    @property
    def max_in_flight(self) -> int:
        """Most ``POST /1/upload`` requests inside the server at once (429'd ones included)."""
        with self._lock:
            return self._max_in_flight

    @property
    def in_flight(self) -> int:
        """``POST /1/upload`` requests inside the server right now."""
        with self._lock:
            return self._in_flight

    @property
    def options(self) -> FakeOptions:
        """A copy of the current options."""
        with self._lock:
            return dataclasses.replace(self._options)

    @property
    def script_remaining(self) -> int:
        """How many scripted faults are still queued."""
        with self._lock:
            return len(self._script)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no upload request is in flight; ``False`` on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    # ---- control -----------------------------------------------------------------------

    def reset(self) -> None:
        """Forget recordings, ``max_in_flight`` and queued faults; reseed the RNG.

        Options (rates, latency, ...) are kept; change them with :meth:`set`.
        """
        with self._lock:
            self._accepted.clear()
            self._rejected.clear()
            self._requests.clear()
            self._script.clear()
            self._max_in_flight = self._in_flight
            self._rng = random.Random(self._options.seed)

    def script(self, faults: Iterable[str]) -> None:
        """Queue faults for the next upload requests, one per request, in order.

        Names are in :data:`FAULTS`. A scripted entry replaces the random request-level
        draw for that request (per-record ``rate_555`` still applies). Requests turned
        away by the concurrency cap do not consume an entry.
        """
        items = [str(fault) for fault in faults]
        bad = [fault for fault in items if fault not in FAULTS]
        if bad:
            raise ValueError(f"unknown faults {bad}; expected some of {sorted(FAULTS)}")
        with self._lock:
            self._script.extend(items)

    def set(self, **options: Any) -> None:
        """Change options at runtime (see :class:`FakeOptions`); applies to later requests.

        Setting ``seed`` reseeds the RNG.
        """
        unknown = set(options) - _OPTION_NAMES
        if unknown:
            raise TypeError(f"unknown FakeCleverTap options: {sorted(unknown)}")
        with self._lock:
            updated = dataclasses.replace(self._options, **options)
            updated.validate()
            self._options = updated
            if "seed" in options:
                self._rng = random.Random(updated.seed)

    # ---- used by the handler -------------------------------------------------------------

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; ``False`` if the server is stopping (give up the request)."""
        if seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)

    def _new_entry(self, handler: _Handler) -> dict[str, Any]:
        path, _, query = handler.path.partition("?")
        self._seq += 1
        entry: dict[str, Any] = {
            "seq": self._seq,
            "method": handler.command,
            "path": path,
            "query": query,
            "client": "{}:{}".format(*handler.client_address[:2]),
            "headers": {name.lower(): value for name, value in handler.headers.items()},
            "arrived": time.time(),
            "finished": None,
            "size": None,
            "body": None,
            "fault": None,
            "status": None,
            "response": None,
        }
        self._requests.append(entry)
        return entry

    def _record_other(self, handler: _Handler) -> dict[str, Any]:
        """Record a request that is not ``POST /1/upload`` (no in-flight accounting)."""
        with self._lock:
            return self._new_entry(handler)

    def _begin(self, handler: _Handler) -> _Ticket:
        """Admit an upload request: count it in flight and decide its fault."""
        with self._lock:
            options = dataclasses.replace(self._options)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            over = self._in_flight > options.max_concurrency
            # Always draw the same numbers per request so the sequence depends only on seed
            # and arrival order, never on which faults were scripted.
            pick, flavour = self._rng.random(), self._rng.random()
            record_seed = self._rng.getrandbits(64)
            if over:
                fault = "429"
            elif self._script:
                fault = self._script.popleft()
            else:
                fault = _draw_fault(options, pick, flavour)
            entry = self._new_entry(handler)
            if over:
                entry["fault"] = "concurrency_429"
            elif fault != "ok":
                entry["fault"] = fault
            return _Ticket(entry, options, fault, over, record_seed)

    def _end(self, ticket: _Ticket, status: int | None, response: Any) -> None:
        """Leave the in-flight set (before the answer is written: see _Handler._answer)."""
        with self._lock:
            if ticket.ended:
                return
            ticket.ended = True
            ticket.entry["status"] = status
            ticket.entry["response"] = response
            ticket.entry["finished"] = time.time()
            self._in_flight -= 1
            self._lock.notify_all()

    def _commit(self, accepted: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> None:
        """Store one request's results and append accepted records to the accepted file."""
        with self._lock:
            if not self._options.count_only:
                self._accepted.extend(accepted)
            self._rejected.extend(rejected)
            if self._accepted_out is not None and accepted:
                self._accepted_out.write(b"".join(orjson.dumps(r) + b"\n" for r in accepted))
                self._accepted_out.flush()


def _draw_fault(options: FakeOptions, pick: float, flavour: float) -> str:
    """Map a uniform draw onto the request-level fault rates (cumulative thresholds)."""
    threshold = 0.0
    for name, rate in (
        ("429", options.rate_429),
        ("5xx", options.rate_5xx),
        ("timeout", options.rate_timeout),
        ("drop_before", options.rate_drop_before),
        ("drop_after", options.rate_drop_after),
    ):
        threshold += rate
        if pick < threshold:
            if name == "5xx":
                return "500" if flavour < 0.5 else "503"
            return name
    return "ok"


def _process_records(
    records: list[Any], options: FakeOptions, record_seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Validate records; returns (accepted records, ``unprocessed`` entries)."""
    rng = random.Random(record_seed)
    accepted: list[dict[str, Any]] = []
    unprocessed: list[dict[str, Any]] = []
    for number, record in enumerate(records, start=1):
        rejection = validate_record(
            record,
            max_event_props=options.max_event_props,
            max_identity_len=options.max_identity_len,
            allow_profile_arrays=options.allow_profile_arrays,
        )
        if rejection is None and options.rate_555 > 0 and rng.random() < options.rate_555:
            rejection = Rejection(555, "Miscellaneous server error.")
        if rejection is None:
            accepted.append(record)
            continue
        unprocessed.append(
            {
                "status": "fail",
                "code": rejection.code,
                "error": rejection.error_text(number),
                "record": record,
            }
        )
    return accepted, unprocessed


def _envelope_error(payload: Any, options: FakeOptions) -> dict[str, Any] | None:
    """Whole-request problems with a parsed body, or ``None`` if records can be validated."""
    if not isinstance(payload, dict):
        return MALFORMED
    records = payload.get("d")
    if not isinstance(records, list) or not records:
        return MALFORMED
    if options.poison is not None:
        for record in records:
            if not isinstance(record, dict):
                continue
            profile = record.get("profileData")
            if record.get("evtName") == options.poison or (
                isinstance(profile, dict) and options.poison in profile
            ):
                return MALFORMED
    if len(records) > options.max_records:
        return _fail(
            f"Too many records: a maximum of {options.max_records} records can be sent "
            f"per API call (got {len(records)})",
            400,
        )
    has_token = any(isinstance(r, dict) and r.get("type") == "token" for r in records)
    if has_token and len(records) > options.max_token_records:
        return _fail(
            f"Too many records: a maximum of {options.max_token_records} device token "
            f"records can be sent per API call (got {len(records)})",
            400,
        )
    return None


class _BadFraming(Exception):
    """The request body framing (Content-Length / chunked) could not be read."""


class _Handler(BaseHTTPRequestHandler):
    """Serves one connection; HTTP/1.1 so clients can keep connections alive."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeCleverTap/1.0"
    timeout = 30  # idle keep-alive connections give up their thread after this
    # Headers and body are written separately; without TCP_NODELAY, Nagle plus the
    # client's delayed ACK adds ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging: tests read :attr:`FakeCleverTap.requests` instead."""

    def handle(self) -> None:
        # A client reset or the fake stopping is not an error worth a traceback.
        with contextlib.suppress(OSError):
            super().handle()

    # ---- plumbing ----------------------------------------------------------------------

    def _write(
        self,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        body = orjson.dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _read_body(self, limit: int) -> tuple[bytes, bool]:
        """Read the body (Content-Length or chunked); returns (body, too_large).

        An over-limit body is drained and discarded so the connection stays usable.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        raw_length = self.headers.get("Content-Length")
        try:
            length = int(raw_length) if raw_length is not None else 0
        except ValueError as exc:
            raise _BadFraming("bad Content-Length") from exc
        if length < 0:
            raise _BadFraming("negative Content-Length")
        if length <= limit:
            body = self.rfile.read(length)
            if len(body) != length:
                raise _BadFraming("body shorter than Content-Length")
            return body, False
        if length > limit + _MAX_DRAIN:
            self.close_connection = True
            return b"", True
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(_DRAIN_CHUNK, remaining))
            if not chunk:
                raise _BadFraming("body shorter than Content-Length")
            remaining -= len(chunk)
        return b"", True

    def _read_chunked(self, limit: int) -> tuple[bytes, bool]:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise _BadFraming("bad chunk size") from exc
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            data = self.rfile.read(size)
            self.rfile.readline()
            total += size
            if total <= limit:
                parts.append(data)
        if total > limit:
            return b"", True
        return b"".join(parts), False

    def _drain(self) -> None:
        """Discard a body we will not use, so the next request on the connection parses."""
        try:
            self._read_body(_MAX_DRAIN)
        except _BadFraming:
            self.close_connection = True

    def _other(self) -> None:
        """Anything but ``POST /1/upload``: 405 on the upload path, 404 elsewhere."""
        entry = self.server.fake._record_other(self)
        self._drain()
        if entry["path"] == UPLOAD_PATH:
            status, payload = 405, _fail("Method Not Allowed", 405)
            headers = {"Allow": "POST"}
        else:
            status, payload, headers = 404, _fail("Not Found", 404), {}
        entry["status"], entry["response"], entry["finished"] = status, payload, time.time()
        self._write(status, payload, headers)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _other

    # ---- POST --------------------------------------------------------------------------

    def do_POST(self) -> None:
        if self.path.partition("?")[0] != UPLOAD_PATH:
            self._other()
            return
        fake = self.server.fake
        ticket = fake._begin(self)
        try:
            self._upload(fake, ticket)
        finally:
            fake._end(ticket, ticket.entry["status"], ticket.entry["response"])

    def _answer(
        self,
        fake: FakeCleverTap,
        ticket: _Ticket,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        """Leave the in-flight count, then write the answer.

        Order matters: a client that gets an answer and at once sends its next request (on
        another connection) must not find this one still counted, or a client that keeps
        exactly ``max_concurrency`` requests open would get spurious 429s.
        """
        fake._end(ticket, status, payload)
        self._write(status, payload, headers, close=close)

    def _drop(self, fake: FakeCleverTap, ticket: _Ticket) -> None:
        """Close the connection without an answer (the client sees EOF or a reset)."""
        fake._end(ticket, None, None)
        self.close_connection = True

    def _upload(self, fake: FakeCleverTap, ticket: _Ticket) -> None:
        """Serve one ``POST /1/upload``: front-door faults, then checks, then the answer.

        ``drop_after`` and ``timeout`` act on whatever the answer turns out to be (a 200 or
        an error such as 401): the request was processed, only the answer goes astray.
        """
        options, fault = ticket.options, ticket.fault
        if fault == "drop_before":
            self._drop(fake, ticket)
            return
        try:
            body, too_large = self._read_body(options.max_body_bytes)
        except _BadFraming as exc:
            self._answer(fake, ticket, 400, _fail(str(exc), 400), close=True)
            return
        ticket.entry["size"] = len(body)

        if fault == "429":
            headers = {}
            if options.retry_after is not None:
                headers["Retry-After"] = f"{options.retry_after:g}"
            self._answer(fake, ticket, 429, TOO_MANY_CONCURRENT, headers)
            return
        if fault.isdigit() and int(fault) in _SERVER_ERRORS:
            code = int(fault)
            self._answer(fake, ticket, code, _fail(_SERVER_ERRORS[code], code))
            return
        if fault == "malformed_400":
            self._answer(fake, ticket, 400, MALFORMED)
            return
        if not fake._sleep(options.latency):
            self._drop(fake, ticket)  # stopping: behave like a crashed server
            return

        status, response = self._process(fake, ticket, body, too_large)
        if fault == "drop_after":
            self._drop(fake, ticket)
            return
        if fault == "timeout" and not fake._sleep(options.slow_seconds):
            self._drop(fake, ticket)
            return
        self._answer(fake, ticket, status, response, close=self.close_connection)

    def _process(
        self, fake: FakeCleverTap, ticket: _Ticket, body: bytes, too_large: bool
    ) -> tuple[int, dict[str, Any]]:
        """Check credentials, headers and body, validate and store records; the answer."""
        options = ticket.options
        payload: Any = None
        parsed = False
        if not too_large:
            try:
                payload = orjson.loads(body)
                parsed = True
            except orjson.JSONDecodeError:
                pass
            if not options.count_only:  # (every body kept would be every record kept)
                ticket.entry["body"] = payload if parsed else body

        headers = self.headers
        account_ok = hmac.compare_digest(
            headers.get("X-CleverTap-Account-Id", "").encode(), options.account_id.encode()
        )
        passcode_ok = hmac.compare_digest(
            headers.get("X-CleverTap-Passcode", "").encode(), options.passcode.encode()
        )
        if not (account_ok and passcode_ok):
            return 401, INVALID_CREDENTIALS
        content_type = headers.get("Content-Type", "")
        if not content_type.lower().startswith("application/json"):
            return 400, _fail(f"Content-Type must be application/json, got {content_type!r}", 400)
        if too_large:
            return 413, _fail(f"Request body larger than {options.max_body_bytes} bytes", 413)
        problem = _envelope_error(payload, options) if parsed else MALFORMED
        if problem is not None:
            return 400, problem

        accepted, unprocessed = _process_records(payload["d"], options, ticket.record_seed)
        fake._commit(accepted, unprocessed)
        if not accepted:
            status = "fail"
        elif unprocessed:
            status = "partial"
        else:
            status = "success"
        return 200, {"status": status, "processed": len(accepted), "unprocessed": unprocessed}


# --------------------------------------------------------------------------------------
# Subprocess entry point
# --------------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_clevertap",
        description="Run a fake CleverTap /1/upload server until SIGTERM/SIGINT.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=0, help="0 picks a free port (default)")
    add("--account-id", default="TEST-ACC")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--passcode", help="passcode (prefer --passcode-env)")
    secret.add_argument("--passcode-env", metavar="VAR", help="read the passcode from $VAR")
    add("--accepted-file", type=Path, help="append accepted records here as JSON lines")
    add("--script", default="", help="comma-separated faults for the first requests")
    for field in dataclasses.fields(FakeOptions):
        if field.name in {"account_id", "passcode", "poison", "retry_after", "seed"}:
            continue
        # With postponed annotations field.type is the annotation text.
        flag = "--" + field.name.replace("_", "-")
        if field.type == "bool":
            add(flag, action="store_true", default=field.default)
        elif field.type in ("int", "float"):
            add(flag, type=int if field.type == "int" else float, default=field.default)
    add("--seed", type=int, default=0)
    add("--retry-after", type=float, default=None)
    add("--poison", default="__poison_400__", help="empty string disables the poison rule")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the fake as a process; print ``listening URL`` first, stop on SIGTERM/SIGINT."""
    args = _parse_args(argv)
    if args.passcode_env is not None:
        passcode = os.environ.get(args.passcode_env)
        if passcode is None:
            print(f"environment variable {args.passcode_env} is not set", file=sys.stderr)
            return 2
    else:
        passcode = args.passcode if args.passcode is not None else "test-passcode"
    options = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(FakeOptions)
        if field.name not in {"account_id", "passcode"}
    }
    options["poison"] = args.poison or None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        fake = FakeCleverTap(
            args.account_id,
            passcode,
            host=args.host,
            port=args.port,
            script=[s.strip() for s in args.script.split(",") if s.strip()],
            accepted_file=args.accepted_file,
            **options,
        )
    except ValueError as exc:
        print(f"fake_clevertap: {exc}", file=sys.stderr)
        return 2
    with fake:
        print(f"listening {fake.url}", flush=True)
        while not stop.wait(0.2):
            pass
    accepted = len(fake.accepted)
    print(f"stopped: {len(fake.requests)} requests, {accepted} records accepted", flush=True)
    return 0


def read_accepted_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records written by ``--accepted-file``, skipping a torn last line (killed writer)."""
    records: list[dict[str, Any]] = []
    with Path(path).open("rb") as handle:
        for line in handle:
            if line.endswith(b"\n"):
                records.append(cast(dict[str, Any], orjson.loads(line)))
    return records


if __name__ == "__main__":
    sys.exit(main())
