"""Tests for the CleverTap stand-in server in ``tests/support/fake_clevertap.py``.

Why: every upload test trusts this fake, so its answers (statuses, bodies, record codes,
faults, what it counts as accepted) are pinned here against the spec, using httpx over a
real socket the way the uploader will.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.fake_clevertap import (
    RESTRICTED_EVENTS,
    FakeCleverTap,
    read_accepted_file,
    validate_record,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "TEST-ACC"
PASSCODE = "test-passcode"
HEADERS = {
    "X-CleverTap-Account-Id": ACCOUNT,
    "X-CleverTap-Passcode": PASSCODE,
    "Content-Type": "application/json; charset=utf-8",
}
SKIPPED = re.compile(r"Skipped record number\s*:\s*(\d+)$")


def event(name: str = "Product Viewed", **extra: Any) -> dict[str, Any]:
    """A valid event record; ``extra`` overrides or adds fields."""
    record: dict[str, Any] = {
        "type": "event",
        "identity": "user-1",
        "ts": 1_700_000_000,
        "evtName": name,
        "evtData": {"Price": 9.5},
    }
    record.update(extra)
    return record


def profile(**data: Any) -> dict[str, Any]:
    """A valid profile record with ``profileData`` = {"Name": "Ann", **data}."""
    return {"type": "profile", "identity": "user-1", "profileData": {"Name": "Ann", **data}}


def token(**extra: Any) -> dict[str, Any]:
    """A valid device-token record; ``extra`` overrides fields."""
    record: dict[str, Any] = {
        "type": "token",
        "objectId": "obj-1",
        "tokenData": {"id": "tok-1", "type": "fcm"},
    }
    record.update(extra)
    return record


def body(*records: Any) -> bytes:
    return orjson.dumps({"d": list(records)})


@pytest.fixture
def ct() -> Iterator[FakeCleverTap]:
    with FakeCleverTap(ACCOUNT, PASSCODE) as server:
        yield server


@pytest.fixture
def client(ct: FakeCleverTap) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ct.url, headers=HEADERS, timeout=5) as http:
        yield http


def post(client: httpx.Client, content: bytes, **kwargs: Any) -> httpx.Response:
    return client.post("/1/upload", content=content, **kwargs)


# ---- request-level answers -------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-CleverTap-Passcode": "wrong"}, id="wrong-passcode"),
        pytest.param({"X-CleverTap-Account-Id": "OTHER"}, id="wrong-account"),
        pytest.param({"X-CleverTap-Passcode": ""}, id="empty-passcode"),
    ],
)
def test_bad_credentials_get_401(
    ct: FakeCleverTap, client: httpx.Client, headers: dict[str, str]
) -> None:
    response = post(client, body(event()), headers=headers)
    assert response.status_code == 401
    assert response.content == b'{"status":"fail","error":"Invalid Credentials","code":401}'
    assert ct.accepted == []


def test_missing_credentials_get_401(ct: FakeCleverTap) -> None:
    response = httpx.post(
        ct.upload_url, content=body(event()), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "Invalid Credentials"


def test_requests_record_headers_including_passcode(
    ct: FakeCleverTap, client: httpx.Client
) -> None:
    post(client, body(event()))
    [entry] = ct.requests
    assert entry["headers"]["x-clevertap-passcode"] == PASSCODE
    assert entry["headers"]["x-clevertap-account-id"] == ACCOUNT
    assert entry["body"] == {"d": [event()]}
    assert entry["status"] == 200
    assert entry["fault"] is None
    assert entry["arrived"] <= entry["finished"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"", id="empty-body"),
        pytest.param(b'{"d": []}', id="empty-list"),
        pytest.param(b'{"d": {"type": "event"}}', id="d-not-a-list"),
        pytest.param(b'{"records": [{"type": "event"}]}', id="no-d"),
        pytest.param(b"[1, 2]", id="top-level-list"),
    ],
)
def test_malformed_bodies_get_400(ct: FakeCleverTap, client: httpx.Client, content: bytes) -> None:
    response = post(client, content)
    assert response.status_code == 400
    assert response.json() == {"status": "fail", "error": "Malformed request", "code": 400}
    assert ct.accepted == []


def test_wrong_content_type_gets_400(ct: FakeCleverTap, client: httpx.Client) -> None:
    response = post(client, body(event()), headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert ct.accepted == []


@pytest.mark.parametrize(
    ("records", "status", "limit_text"),
    [
        pytest.param([event()] * 1001, 400, "1000", id="1001-events"),
        pytest.param([event()] * 1000, 200, None, id="1000-events-ok"),
        pytest.param([token()] * 101, 400, "100", id="101-tokens"),
        pytest.param([token()] + [event()] * 100, 400, "100", id="token-in-101-mixed"),
        pytest.param([token()] * 100, 200, None, id="100-tokens-ok"),
    ],
)
def test_record_count_limits(
    ct: FakeCleverTap,
    client: httpx.Client,
    records: list[dict[str, Any]],
    status: int,
    limit_text: str | None,
) -> None:
    response = post(client, body(*records))
    assert response.status_code == status
    if limit_text is not None:
        assert limit_text in response.json()["error"]
        assert ct.accepted == []
    else:
        assert len(ct.accepted) == len(records)


def test_oversized_body_gets_413_and_connection_stays_usable() -> None:
    with (
        FakeCleverTap(max_body_bytes=2000) as ct,
        httpx.Client(base_url=ct.url, headers=HEADERS) as http,
    ):
        big = body(*[event()] * 50)
        assert len(big) > 2000
        assert post(http, big).status_code == 413
        assert post(http, body(event())).status_code == 200
        assert len(ct.accepted) == 1
        assert len({entry["client"] for entry in ct.requests}) == 1  # same connection


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/1/upload", 405, id="get-upload"),
        pytest.param("PUT", "/1/upload", 405, id="put-upload"),
        pytest.param("POST", "/1/profile", 404, id="post-other-path"),
        pytest.param("GET", "/", 404, id="get-root"),
    ],
)
def test_wrong_method_or_path(
    ct: FakeCleverTap, client: httpx.Client, method: str, path: str, status: int
) -> None:
    response = client.request(method, path, content=body(event()))
    assert response.status_code == status
    assert response.json()["code"] == status
    assert ct.accepted == []


def test_query_string_is_ignored_and_recorded(ct: FakeCleverTap, client: httpx.Client) -> None:
    response = client.post("/1/upload?dryRun=1", content=body(event()))
    assert response.status_code == 200
    assert ct.requests[0]["query"] == "dryRun=1"


def test_chunked_body_is_read(ct: FakeCleverTap, client: httpx.Client) -> None:
    payload = body(event(), event("Other"))
    response = client.post("/1/upload", content=iter([payload[:10], payload[10:]]))
    assert response.status_code == 200
    assert len(ct.accepted) == 2


def test_keep_alive_reuses_one_connection(ct: FakeCleverTap, client: httpx.Client) -> None:
    for _ in range(3):
        assert post(client, body(event())).status_code == 200
    assert len({entry["client"] for entry in ct.requests}) == 1


# ---- record-level validation -------------------------------------------------------------


def _without(record: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != key}


INVALID_RECORDS = [
    pytest.param({"type": "page", "identity": "u"}, 524, id="unknown-type"),
    pytest.param(_without(event(), "type"), 524, id="no-type"),
    pytest.param("not an object", 524, id="not-an-object"),
    pytest.param(_without(event(), "identity"), 523, id="event-no-identity"),
    pytest.param(event(identity=""), 523, id="empty-identity"),
    pytest.param(event(identity=12345), 523, id="numeric-identity-only"),
    pytest.param(event(identity="x" * 1025), 523, id="identity-too-long"),
    pytest.param(_without(profile(), "identity"), 523, id="profile-no-identity"),
    pytest.param(event(ts="1700000000"), 525, id="ts-string"),
    pytest.param(event(ts=1.7e9), 525, id="ts-float"),
    pytest.param(event(ts=True), 525, id="ts-bool"),
    pytest.param(event(ts=0), 525, id="ts-zero"),
    pytest.param(event(ts=-5), 525, id="ts-negative"),
    pytest.param(_without(event(), "evtName"), 509, id="no-evtName"),
    pytest.param(event(""), 509, id="empty-evtName"),
    pytest.param(event(evtName=7), 509, id="numeric-evtName"),
    pytest.param(event("App Launched"), 513, id="restricted-event"),
    pytest.param(event(evtData=[1]), 512, id="evtData-list"),
    pytest.param(_without(event(), "evtData"), 512, id="no-evtData"),
    pytest.param(event(evtData={"a": {"b": 1}}), 512, id="nested-object"),
    pytest.param(event(evtData={"tags": ["a"]}), 512, id="nested-list"),
    pytest.param(event(evtData={"Items": [{"x": 1}]}), 512, id="items-not-charged"),
    pytest.param(event("Charged", evtData={"Items": [1, 2]}), 512, id="items-not-objects"),
    pytest.param(event("Charged", evtData={"Items": {"x": 1}}), 512, id="items-object"),
    pytest.param(event(evtData={f"k{i}": i for i in range(257)}), 522, id="257-props"),
    pytest.param(_without(profile(), "profileData"), 524, id="no-profileData"),
    pytest.param(profile() | {"profileData": "x"}, 524, id="profileData-string"),
    pytest.param(profile(Gender="Male"), 514, id="gender-invalid"),
    pytest.param(profile(Address={"city": "X"}), 512, id="profile-nested-object"),
    pytest.param(profile(Interests=["a"]), 512, id="profile-plain-list"),
    pytest.param(profile(Tags={"$append": ["a"]}), 512, id="profile-unknown-operation"),
    pytest.param(token(objectId=""), 530, id="token-no-objectId"),
    pytest.param(_without(token(), "objectId") | {"identity": "u"}, 530, id="token-identity"),
    pytest.param(token(tokenData="abc"), 531, id="tokenData-not-object"),
    pytest.param(token(tokenData={"type": "fcm"}), 532, id="token-no-id"),
    pytest.param(token(tokenData={"id": "t"}), 533, id="token-no-type"),
    pytest.param(token(tokenData={"id": "t", "type": "sms"}), 534, id="token-bad-type"),
]


@pytest.mark.parametrize(("record", "code"), INVALID_RECORDS)
def test_invalid_record_codes(
    ct: FakeCleverTap, client: httpx.Client, record: Any, code: int
) -> None:
    response = post(client, body(record))
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "fail"
    assert answer["processed"] == 0
    [entry] = answer["unprocessed"]
    assert entry["status"] == "fail"
    assert entry["code"] == code
    assert entry["record"] == record
    match = SKIPPED.search(entry["error"])
    assert match is not None and match.group(1) == "1"
    assert ct.accepted == []
    assert [r["code"] for r in ct.rejected] == [code]


VALID_RECORDS = [
    pytest.param(event(), id="event"),
    pytest.param(_without(event(), "ts"), id="event-no-ts"),
    pytest.param(_without(event(), "identity") | {"FBID": "fb"}, id="fbid-only"),
    pytest.param(_without(event(), "identity") | {"GPID": "gp"}, id="gpid-only"),
    pytest.param(_without(event(), "identity") | {"objectId": "o"}, id="objectid-only"),
    pytest.param(event(identity=12, objectId="o"), id="bad-identity-but-objectId"),
    pytest.param(event(identity="x" * 1024), id="identity-1024"),
    pytest.param(event(evtData={}), id="empty-evtData"),
    pytest.param(event(evtData={f"k{i}": i for i in range(256)}), id="256-props"),
    pytest.param(
        event("Charged", evtData={"Amount": 3, "Items": [{"Category": "books"}]}),
        id="charged-items",
    ),
    pytest.param(event("Notification Bounced"), id="not-in-restricted-list"),
    pytest.param(profile(), id="profile"),
    pytest.param(profile(Gender="F"), id="gender-f"),
    pytest.param(profile(Tags={"$add": ["a", "b"]}), id="profile-add"),
    pytest.param(profile(Tags={"$remove": ["a"], "$add": ["b"]}), id="profile-remove-add"),
    pytest.param(profile(**{"category-unsubscribe": ["News"]}), id="category-unsubscribe"),
    pytest.param(profile(**{"MSG-sms": False, "DOB": "$D_1487576752"}), id="msg-and-date"),
    pytest.param(token(), id="token"),
    pytest.param(token(tokenData={"id": "t", "type": "chrome", "keys": {}}), id="chrome"),
]


@pytest.mark.parametrize("record", VALID_RECORDS)
def test_valid_records_are_accepted(
    ct: FakeCleverTap, client: httpx.Client, record: dict[str, Any]
) -> None:
    assert validate_record(record) is None
    response = post(client, body(record))
    assert response.json() == {"status": "success", "processed": 1, "unprocessed": []}
    assert ct.accepted == [record]


def test_every_restricted_event_gets_513() -> None:
    for name in RESTRICTED_EVENTS:
        rejection = validate_record(event(name))
        assert rejection is not None and rejection.code == 513, name


def test_512_text_matches_clevertap() -> None:
    rejection = validate_record(event(evtData={"prop1": {"a": 1}}))
    assert rejection is not None
    assert rejection.error_text(1) == (
        "Event data is incorrect. 512 - Only Items can have a nested structure, "
        "incorrect nested structure for field : prop1.Skipped record number : 1"
    )


def test_profile_arrays_can_be_allowed() -> None:
    assert validate_record(profile(Interests=["a"]), allow_profile_arrays=True) is None


@pytest.mark.parametrize(
    ("records", "status", "skipped"),
    [
        pytest.param([event(), event()], "success", [], id="success"),
        pytest.param([event(), event(""), event(), event(ts=0)], "partial", [2, 4], id="partial"),
        pytest.param([event(""), profile(Gender="X")], "fail", [1, 2], id="fail"),
    ],
)
def test_statuses_and_record_numbers(
    ct: FakeCleverTap,
    client: httpx.Client,
    records: list[dict[str, Any]],
    status: str,
    skipped: list[int],
) -> None:
    answer = post(client, body(*records)).json()
    assert answer["status"] == status
    assert answer["processed"] == len(records) - len(skipped)
    numbers = []
    for entry in answer["unprocessed"]:
        match = SKIPPED.search(entry["error"])
        assert match is not None
        numbers.append(int(match.group(1)))
    assert numbers == skipped
    assert [u["record"] for u in answer["unprocessed"]] == [records[k - 1] for k in skipped]
    assert ct.accepted == [r for k, r in enumerate(records, 1) if k not in skipped]


def test_poison_record_fails_whole_request(ct: FakeCleverTap, client: httpx.Client) -> None:
    for poisoned in (event("__poison_400__"), profile(__poison_400__=1)):
        response = post(client, body(event(), poisoned, event()))
        assert response.status_code == 400
        assert response.json() == {"status": "fail", "error": "Malformed request", "code": 400}
    assert ct.accepted == []


def test_poison_string_is_configurable(ct: FakeCleverTap, client: httpx.Client) -> None:
    ct.set(poison="Bad Event")
    assert post(client, body(event("Bad Event"))).status_code == 400
    assert post(client, body(event("__poison_400__"))).status_code == 200


# ---- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "accepted"),
    [
        pytest.param("ok", 200, 2, id="ok"),
        pytest.param("429", 429, 0, id="429"),
        pytest.param("500", 500, 0, id="500"),
        pytest.param("503", 503, 0, id="503"),
        pytest.param("malformed_400", 400, 0, id="malformed_400"),
        pytest.param("drop_before", None, 0, id="drop_before"),
        pytest.param("drop_after", None, 2, id="drop_after"),
    ],
)
def test_scripted_fault(
    ct: FakeCleverTap, client: httpx.Client, fault: str, status: int | None, accepted: int
) -> None:
    ct.script([fault])
    records = [event(), event("Second")]
    if status is None:
        with pytest.raises(httpx.TransportError):
            post(client, body(*records))
    else:
        response = post(client, body(*records))
        assert response.status_code == status
        assert response.json()["code" if status != 200 else "status"] == (
            status if status != 200 else "success"
        )
    assert ct.wait_idle()
    assert len(ct.accepted) == accepted
    assert ct.requests[0]["status"] == status
    assert ct.script_remaining == 0
    # the script is spent: the next request is answered normally
    assert post(client, body(event())).status_code == 200


def test_429_bodies_and_retry_after(ct: FakeCleverTap, client: httpx.Client) -> None:
    ct.script(["429", "429"])
    first = post(client, body(event()))
    assert first.json() == {"status": "fail", "error": "Too many concurrent requests", "code": 429}
    assert "retry-after" not in first.headers
    ct.set(retry_after=2)
    assert post(client, body(event())).headers["retry-after"] == "2"


def test_timeout_fault_accepts_then_answers_late() -> None:
    with FakeCleverTap(slow_seconds=0.6) as ct:
        ct.script(["timeout", "timeout"])
        with (
            httpx.Client(base_url=ct.url, headers=HEADERS, timeout=0.2) as http,
            pytest.raises(httpx.ReadTimeout),
        ):
            post(http, body(event()))
        assert len(ct.accepted) == 1  # CleverTap did process it
        started = time.monotonic()
        with httpx.Client(base_url=ct.url, headers=HEADERS, timeout=5) as http:
            assert post(http, body(event())).status_code == 200
        assert time.monotonic() - started >= 0.5
        assert len(ct.accepted) == 2
        assert ct.wait_idle()


def test_stop_does_not_wait_for_slow_answers() -> None:
    ct = FakeCleverTap(slow_seconds=30).start()
    ct.script(["timeout"])
    errors: list[Exception] = []

    def send() -> None:
        with httpx.Client(base_url=ct.url, headers=HEADERS, timeout=10) as http:
            try:
                post(http, body(event()))
            except httpx.TransportError as exc:
                errors.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    deadline = time.monotonic() + 5
    while not ct.accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    ct.stop()
    thread.join(5)
    assert time.monotonic() - started < 2
    assert not thread.is_alive()
    assert len(errors) == 1  # the answer never came
    assert len(ct.accepted) == 1


def test_fault_errors_with_drop_after_still_processed(
    ct: FakeCleverTap, client: httpx.Client
) -> None:
    ct.script(["drop_after"])
    with pytest.raises(httpx.TransportError):
        post(client, body(event(), event("")))
    assert len(ct.accepted) == 1
    assert [r["code"] for r in ct.rejected] == [509]


def test_script_rejects_unknown_fault(ct: FakeCleverTap) -> None:
    with pytest.raises(ValueError, match="unknown faults"):
        ct.script(["explode"])


def test_random_faults_are_deterministic_for_a_seed() -> None:
    def run(seed: int) -> list[int | None]:
        with (
            FakeCleverTap(rate_429=0.3, rate_5xx=0.3, seed=seed) as ct,
            httpx.Client(base_url=ct.url, headers=HEADERS) as http,
        ):
            return [post(http, body(event())).status_code for _ in range(30)]

    first = run(7)
    assert first == run(7)
    assert {429, 200} <= set(first)
    assert set(first) & {500, 503}
    assert first != run(8)


def test_random_555_rejects_records_without_accepting(
    ct: FakeCleverTap, client: httpx.Client
) -> None:
    ct.set(rate_555=1.0)
    answer = post(client, body(event(), event())).json()
    assert answer["status"] == "fail"
    assert [u["code"] for u in answer["unprocessed"]] == [555, 555]
    assert answer["unprocessed"][1]["error"].endswith("Skipped record number : 2")
    assert ct.accepted == []
    ct.set(rate_555=0.5, seed=3)
    answer = post(client, body(*[event()] * 100)).json()
    assert answer["status"] == "partial"
    assert 20 < answer["processed"] < 80
    assert len(ct.accepted) == answer["processed"]


def test_random_drops_at_runtime(ct: FakeCleverTap, client: httpx.Client) -> None:
    ct.set(rate_drop_before=1.0)
    with pytest.raises(httpx.TransportError):
        post(client, body(event()))
    ct.set(rate_drop_before=0.0, rate_drop_after=1.0)
    with pytest.raises(httpx.TransportError):
        post(client, body(event()))
    assert ct.wait_idle()
    assert len(ct.accepted) == 1


def test_set_rejects_bad_values(ct: FakeCleverTap) -> None:
    with pytest.raises(ValueError):
        ct.set(rate_429=0.7, rate_5xx=0.7)
    with pytest.raises(TypeError):
        ct.set(rate_teapot=1)
    with pytest.raises(TypeError):
        FakeCleverTap(bogus=1)


def test_concurrency_cap_answers_429() -> None:
    with FakeCleverTap(max_concurrency=2, latency=0.4, retry_after=1) as ct:
        statuses: list[int] = []
        lock = threading.Lock()
        barrier = threading.Barrier(5)

        def send() -> None:
            with httpx.Client(base_url=ct.url, headers=HEADERS, timeout=5) as http:
                barrier.wait()
                response = post(http, body(event()))
            with lock:
                statuses.append(response.status_code)
                if response.status_code == 429:
                    assert response.headers["retry-after"] == "1"

        threads = [threading.Thread(target=send) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert sorted(statuses) == [200, 200, 429, 429, 429]
        assert ct.max_in_flight >= 3  # 429s leave at once, so not always 5
        assert len(ct.accepted) == 2
        assert sum(r["fault"] == "concurrency_429" for r in ct.requests) == 3


def test_client_at_exactly_the_cap_never_sees_429() -> None:
    """The server leaves the in-flight count before answering, so no spurious 429s."""
    with FakeCleverTap(max_concurrency=3) as ct:
        statuses: list[int] = []

        def send() -> None:
            with httpx.Client(base_url=ct.url, headers=HEADERS, timeout=5) as http:
                statuses.extend(post(http, body(event())).status_code for _ in range(40))

        threads = [threading.Thread(target=send) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert statuses == [200] * 120
        assert ct.max_in_flight <= 3


def test_latency_delays_every_request(ct: FakeCleverTap, client: httpx.Client) -> None:
    ct.set(latency=0.2)
    started = time.monotonic()
    post(client, body(event()))
    assert time.monotonic() - started >= 0.2


def test_reset_forgets_recordings(ct: FakeCleverTap, client: httpx.Client) -> None:
    post(client, body(event(), event("")))
    ct.script(["500"])
    ct.reset()
    assert (ct.accepted, ct.rejected, ct.requests, ct.max_in_flight) == ([], [], [], 0)
    assert ct.script_remaining == 0


def test_stop_cuts_idle_keep_alive_connections() -> None:
    ct = FakeCleverTap().start()
    with httpx.Client(base_url=ct.url, headers=HEADERS, timeout=2) as http:
        assert post(http, body(event())).status_code == 200
        ct.stop()
        with pytest.raises(httpx.TransportError):
            post(http, body(event()))
    assert len(ct.accepted) == 1


def test_count_only_answers_the_same_but_keeps_no_record(tmp_path: Path) -> None:
    accepted_file = tmp_path / "accepted.ndjson"
    with FakeCleverTap(ACCOUNT, PASSCODE, count_only=True, accepted_file=accepted_file) as ct, \
            httpx.Client(base_url=ct.url, headers=HEADERS, timeout=5) as http:
        response = post(http, body(event(), event("Other"), {"type": "event"}))
    assert response.json()["processed"] == 2 and len(response.json()["unprocessed"]) == 1
    assert ct.accepted == [] and len(ct.rejected) == 1
    assert [entry["body"] for entry in ct.requests] == [None]
    assert len(accepted_file.read_bytes().splitlines()) == 2


# ---- subprocess entry point --------------------------------------------------------------


def test_subprocess_entry_point(tmp_path: Path) -> None:
    accepted_file = tmp_path / "accepted.ndjson"
    env = {**os.environ, "CT_TEST_PASS": "s3cret"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.fake_clevertap",
            "--port",
            "0",
            "--account-id",
            "ACC-9",
            "--passcode-env",
            "CT_TEST_PASS",
            "--latency",
            "0.05",
            "--script",
            "500",
            "--accepted-file",
            str(accepted_file),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"listening (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        headers = {**HEADERS, "X-CleverTap-Account-Id": "ACC-9", "X-CleverTap-Passcode": "s3cret"}
        with httpx.Client(base_url=match.group(1), headers=headers, timeout=5) as http:
            assert post(http, body(event())).status_code == 500
            answer = post(http, body(event("A"), event(""), profile())).json()
            assert answer["status"] == "partial"
            assert (
                post(http, body(event()), headers={"X-CleverTap-Passcode": PASSCODE}).status_code
                == 401
            )
        records = read_accepted_file(accepted_file)
        assert [r.get("evtName") for r in records] == ["A", None]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0
