"""The CleverTap ``/1/upload`` client: where to send, how to authenticate, what answers mean.

One ``CleverTapClient`` holds one ``httpx.Client`` whose keep-alive pool is sized to the
upload's concurrency, with separate connect and read timeouts. ``send`` posts one upload body
and turns every possible outcome into one of four things (spec/clevertap-api.md s1.4-1.6):

- an ``Ack`` (HTTP 200): ``processed`` and the ``unprocessed[]`` entries, always read;
- ``TransientError`` (a ``RetriableUploadError``): 429, 5xx, 408, timeouts, dropped
  connections, an unreadable 200; ``ambiguous`` says whether CleverTap may have stored the
  records anyway (the answer was lost after the body was sent), which is what can duplicate;
- ``RequestRejectedError``: a whole-request 400 (or 413); the caller bisects the body;
- ``FatalUploadError``: 401/403 (credentials or region), redirects and other 4xx (endpoint).
"""

from __future__ import annotations

import email.utils
import importlib.metadata
import ipaddress
import math
import re
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson

from clevertap_mapper.errors import ConfigError, FatalUploadError, RetriableUploadError, UploadError
from clevertap_mapper.upload.secret import Secret

#: CleverTap's regional API hosts (spec s1.1); ``none`` is the default host api.clevertap.com,
#: as RudderStack's ``getEndpoint`` does. ``sk1`` is not in CleverTap's table but RudderStack
#: and Segment offer it (spec s1.1, marked U), so it is accepted.
REGIONS: Final = ("eu1", "in1", "sg1", "us1", "aps3", "mec1", "sk1", "none")
UPLOAD_PATH: Final = "/1/upload"
DEFAULT_TIMEOUT: Final = 60.0  # seconds to wait for an answer; CleverTap processes synchronously
CONNECT_TIMEOUT: Final = 10.0  # seconds to open a connection (capped by the read timeout)

_SKIPPED: Final = re.compile(r"Skipped record number\s*:\s*(\d+)")
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def upload_url(region: str | None, endpoint: str | None = None) -> str:
    """The full ``/1/upload`` URL for a region, or for an ``--endpoint`` base URL.

    Refuses (ConfigError) an unknown region, and an endpoint that is not https, except plain
    http to a loopback host (a local proxy or test server): the passcode must not cross a
    network in clear.

    >>> upload_url("in1")
    'https://in1.api.clevertap.com/1/upload'
    >>> upload_url("none")
    'https://api.clevertap.com/1/upload'
    >>> upload_url(None, "http://127.0.0.1:8080/ct/")
    'http://127.0.0.1:8080/ct/1/upload'
    """
    if region is not None and region not in REGIONS:
        raise ConfigError(f"unknown region {region!r}; use one of {', '.join(REGIONS)} "
                          "(the prefix of your CleverTap dashboard URL, or 'none' for "
                          "api.clevertap.com)")
    if endpoint is None:
        if region is None:
            raise ConfigError("no region: pass --region (one of "
                              f"{', '.join(REGIONS)}) or set region in the [upload] settings")
        host = "api.clevertap.com" if region == "none" else f"{region}.api.clevertap.com"
        return f"https://{host}{UPLOAD_PATH}"
    return _endpoint_url(endpoint)


def _endpoint_url(endpoint: str) -> str:
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"--endpoint {endpoint!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigError(f"--endpoint {endpoint!r} must be an https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("--endpoint must not carry a user name or password")
    if parts.query or parts.fragment:
        raise ConfigError(f"--endpoint {endpoint!r} must not have a query or fragment; "
                          f"give the base URL ({UPLOAD_PATH} is appended)")
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigError(f"--endpoint {endpoint!r}: plain http:// is allowed only to a loopback "
                          "host (127.0.0.1, ::1, localhost); the passcode must not cross a "
                          "network unencrypted. Use https://")
    path = parts.path.rstrip("/")
    if path.endswith(UPLOAD_PATH):  # tolerate a full upload URL
        path = path[: -len(UPLOAD_PATH)]
    return f"{parts.scheme}://{parts.netloc}{path}{UPLOAD_PATH}"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the usual names of localhost."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who we are to CleverTap: the account id (not secret) and the passcode (a Secret)."""

    account_id: str
    passcode: Secret

    def __post_init__(self) -> None:
        if not self.account_id.strip():
            raise ConfigError("the CleverTap account id is empty")
        value = self.passcode.reveal()
        if not value:
            raise ConfigError("the CleverTap passcode is empty")
        # Header values must be visible ASCII; say so without echoing the value.
        if not all(33 <= ord(c) <= 126 for c in value):
            raise ConfigError("the CleverTap passcode holds spaces, control or non-ASCII "
                              "characters; check the value (a stray newline or quote?)")
        if not all(33 <= ord(c) <= 126 for c in self.account_id):
            raise ConfigError(f"the CleverTap account id {self.account_id!r} holds spaces, "
                              "control or non-ASCII characters")

    def headers(self) -> dict[str, str]:
        """The request headers CleverTap requires (spec s1.2), passcode in clear."""
        return {
            "X-CleverTap-Account-Id": self.account_id,
            "X-CleverTap-Passcode": self.passcode.reveal(),
            "Content-Type": "application/json; charset=utf-8",
        }

    def redacted_headers(self) -> dict[str, str]:
        """The same headers with the passcode shown as ``***`` (for --dry-run)."""
        return self.headers() | {"X-CleverTap-Passcode": str(self.passcode)}


@dataclass(frozen=True, slots=True)
class Unprocessed:
    """One ``unprocessed[]`` entry of a 200 answer: CleverTap's code, text and echoed record.

    ``number`` is the 1-based position in the request body parsed from "Skipped record
    number : K" (spec s1.4; the 512 text has no space before "Skipped", so parse loosely).
    """

    code: int | None
    error: str
    record: Any
    number: int | None


@dataclass(frozen=True, slots=True)
class Ack:
    """An HTTP 200 answer: how many records CleverTap processed, and the ones it did not."""

    status: str
    processed: int
    unprocessed: list[Unprocessed] = field(default_factory=list)


class TransientError(RetriableUploadError):
    """A failure worth retrying. ``ambiguous``: the body was sent and the answer lost, so
    CleverTap may have stored the records (a retry may duplicate them)."""

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None, ambiguous: bool = False) -> None:
        super().__init__(message, status=status, retry_after=retry_after)
        self.ambiguous = ambiguous

    @property
    def throttled(self) -> bool:
        """CleverTap said "too many concurrent requests" (429)."""
        return self.status == 429


class RequestRejectedError(UploadError):
    """CleverTap refused the whole request (400 "Malformed request", 413): some record(s) in
    it are at fault. Retrying the same body cannot help; bisecting it isolates them."""

    def __init__(self, message: str, *, status: int, code: int | None, error: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.error = error


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    CleverTap documents no such header (spec s1.6), but proxies and gateways send one.

    >>> parse_retry_after("2.5"), parse_retry_after(None), parse_retry_after("soon")
    (2.5, None, None)
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _json(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _snippet(payload: Any, content: bytes, credentials: Credentials | None) -> str:
    """The server's own words, passcode scrubbed (before cutting: a cut could leave a part
    of it that no longer matches), at most 200 characters."""
    if type(payload) is dict and isinstance(payload.get("error"), str):
        text = str(payload["error"])
    else:
        text = content.decode("utf-8", "replace").strip() or "(empty body)"
    text = _scrub(text, credentials)
    return text if len(text) <= 200 else text[:200] + "..."


def _parse_unprocessed(entries: Any, credentials: Credentials | None) -> list[Unprocessed]:
    out: list[Unprocessed] = []
    if type(entries) is not list:
        return out
    for entry in entries:
        if type(entry) is not dict:
            continue
        code = entry.get("code")
        error = entry.get("error")
        text = _scrub(error, credentials) if isinstance(error, str) else ""
        match = _SKIPPED.search(text)
        out.append(Unprocessed(code if type(code) is int else None, text, entry.get("record"),
                               int(match.group(1)) if match else None))
    return out


def classify(status: int, headers: httpx.Headers | dict[str, str], content: bytes, *,
             where: str, credentials: Credentials | None = None,
             region: str | None = None) -> Ack:
    """What an HTTP answer from ``/1/upload`` means (spec s1.4-1.6); raises unless it is 2xx.

    ``where`` (the URL) and ``region`` only go into messages. The server's own text goes into
    them too, with the passcode scrubbed: a gateway's error page may echo the request headers.
    """
    payload = _json(content)
    text = _snippet(payload, content, credentials)
    if 200 <= status < 300:  # spec s1.6: 200, 201, 202 and 204 all carry the body's verdict
        if type(payload) is not dict or type(payload.get("processed")) is not int:
            # The body was processed, but we cannot tell how: resend (may duplicate).
            raise TransientError(f"HTTP {status} with an unreadable body ({text})",
                                 status=status, ambiguous=True)
        return Ack(str(payload.get("status", "")), payload["processed"],
                   _parse_unprocessed(payload.get("unprocessed"), credentials))
    if status in (401, 403):
        account = credentials.account_id if credentials is not None else "?"
        reg = region if region is not None else "(from --endpoint)"
        message = (f"CleverTap refused the request with HTTP {status} ({text}) at {where}: "
                   f"check the account id ({account}), the passcode (CLEVERTAP_PASSCODE or "
                   f"--passcode-file) and the region ({reg}); a wrong region looks like wrong "
                   "credentials")
        raise FatalUploadError(_scrub(message, credentials), status=status)
    if status == 429:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        raise TransientError(f"HTTP 429 ({text})", status=status, retry_after=retry_after)
    if status >= 500 or status == 408:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        raise TransientError(f"HTTP {status} ({text})", status=status, retry_after=retry_after)
    if status in (400, 413):
        code = payload.get("code") if type(payload) is dict else None
        raise RequestRejectedError(f"HTTP {status} ({text})", status=status,
                                   code=code if type(code) is int else status, error=text)
    if 300 <= status < 400:
        message = (f"{where} answered HTTP {status} (a redirect to "
                   f"{headers.get('Location', '?')}); ctmap does not follow redirects with "
                   "the passcode: check --region / --endpoint")
        raise FatalUploadError(_scrub(message, credentials), status=status)
    message = f"{where} answered HTTP {status} ({text}); check --region / --endpoint"
    raise FatalUploadError(_scrub(message, credentials), status=status)


def _user_agent() -> str:
    try:
        return f"ctmap/{importlib.metadata.version('ctmap')}"
    except importlib.metadata.PackageNotFoundError:
        return "ctmap"


def _scrub(text: str, credentials: Credentials | None) -> str:
    return credentials.passcode.scrub(text) if credentials is not None else text


class CleverTapClient:
    """Posts upload bodies to one account's ``/1/upload`` over pooled keep-alive connections.

    Thread-safe: several workers may call ``send`` at once (up to ``pool_size`` connections).
    ``transport`` is for tests that need a custom httpx transport; normally left out.
    """

    def __init__(self, url: str, credentials: Credentials, *, pool_size: int = 4,
                 timeout: float = DEFAULT_TIMEOUT, region: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self.region = region
        self._credentials = credentials
        self._http = httpx.Client(
            headers=credentials.headers() | {"User-Agent": _user_agent()},
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size,
                                keepalive_expiry=15.0),  # below common LB idle timeouts
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout), pool=timeout),
            follow_redirects=False,  # never carry the passcode to another host
            transport=transport,
        )

    def send(self, body: bytes) -> Ack:
        """POST one ``{"d": [...]}`` body; an Ack, or TransientError / RequestRejectedError /
        FatalUploadError (see the module docstring)."""
        try:
            response = self._http.post(self.url, content=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached CleverTap: safe to resend.
            raise TransientError(self._describe(exc, "could not connect")) from None
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
            # Our request could not be written (a bad header, a bad URL): retrying cannot help.
            raise FatalUploadError(self._describe(exc, "cannot send the request")) from None
        except httpx.TimeoutException as exc:
            raise TransientError(self._describe(exc, "no answer in time"),
                                 ambiguous=True) from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            # RemoteProtocolError ("Server disconnected without sending a response"),
            # ReadError, WriteError: the body may or may not have been processed.
            raise TransientError(self._describe(exc, "connection lost"),
                                 ambiguous=True) from None
        return classify(response.status_code, response.headers, response.content,
                        where=self.url, credentials=self._credentials, region=self.region)

    def _describe(self, exc: Exception, what: str) -> str:
        detail = str(exc) or type(exc).__name__
        return self._credentials.passcode.scrub(f"{what}: {type(exc).__name__}: {detail}")

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    def __enter__(self) -> CleverTapClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CleverTapClient({self.url!r}, account_id={self._credentials.account_id!r})"
