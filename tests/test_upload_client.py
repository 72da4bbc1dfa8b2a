"""The CleverTap client: regions, endpoints, credentials, secrets, and what answers mean.

HTTP goes to the CleverTap stand-in on 127.0.0.1 (tests/support/fake_clevertap.py) through the
real httpx transport; only ``classify`` is also called directly, with answers as data.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import orjson
import pytest

from clevertap_mapper.errors import ConfigError, FatalUploadError
from clevertap_mapper.upload.client import (
    REGIONS,
    CleverTapClient,
    Credentials,
    RequestRejectedError,
    TransientError,
    classify,
    is_loopback,
    parse_retry_after,
    upload_url,
)
from clevertap_mapper.upload.secret import Secret
from tests.support.fake_clevertap import FakeCleverTap
from tests.support.upload_data import ACCOUNT, PASSCODE

CREDS = Credentials(ACCOUNT, Secret(PASSCODE))
GOOD = {"type": "event", "identity": "u1", "evtName": "Viewed", "evtData": {"n": 1}}


def body(*records: object) -> bytes:
    return orjson.dumps({"d": list(records)})


@pytest.fixture
def ct() -> Iterator[FakeCleverTap]:
    with FakeCleverTap(ACCOUNT, PASSCODE) as server:
        yield server


# ---- where to send -------------------------------------------------------------------------


@pytest.mark.parametrize("region", [r for r in REGIONS if r != "none"])
def test_each_region_has_its_host(region: str) -> None:
    assert upload_url(region) == f"https://{region}.api.clevertap.com/1/upload"


def test_region_none_is_the_default_host() -> None:
    assert upload_url("none") == "https://api.clevertap.com/1/upload"


@pytest.mark.parametrize("region", ["eu2", "IN1", "", "in1.evil.com", "api"])
def test_unknown_region_is_refused(region: str) -> None:
    with pytest.raises(ConfigError, match="unknown region"):
        upload_url(region)


def test_no_region_and_no_endpoint_is_refused() -> None:
    with pytest.raises(ConfigError, match="--region"):
        upload_url(None)


@pytest.mark.parametrize(("endpoint", "url"), [
    ("https://proxy.example.com", "https://proxy.example.com/1/upload"),
    ("https://proxy.example.com/ct/", "https://proxy.example.com/ct/1/upload"),
    ("https://proxy.example.com:8443/1/upload", "https://proxy.example.com:8443/1/upload"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/1/upload"),
    ("http://127.9.9.9", "http://127.9.9.9/1/upload"),
    ("http://localhost:1234", "http://localhost:1234/1/upload"),
    ("http://[::1]:1234", "http://[::1]:1234/1/upload"),
], ids=["https", "https-path", "full-url", "ipv4-loopback", "loopback-net", "localhost", "ipv6"])
def test_endpoint_overrides_the_region(endpoint: str, url: str) -> None:
    assert upload_url("in1", endpoint) == url


@pytest.mark.parametrize("endpoint", [
    "http://example.com", "http://10.0.0.1:8080", "http://128.0.0.1", "http://[::2]",
    "http://localhost.evil.com",
], ids=["name", "private-ip", "not-loopback", "ipv6", "lookalike"])
def test_plain_http_is_refused_off_loopback(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="plain http:// is allowed only to a loopback"):
        upload_url("in1", endpoint)


@pytest.mark.parametrize(("endpoint", "why"), [
    ("ftp://example.com", "https:// URL"),
    ("example.com", "https:// URL"),
    ("https://user:pw@example.com", "user name or password"),
    ("https://example.com/?x=1", "query or fragment"),
    ("https://example.com:99999", "not a valid URL"),
])
def test_malformed_endpoints_are_refused(endpoint: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        upload_url(None, endpoint)


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("LOCALHOST")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


# ---- credentials and secrets -----------------------------------------------------------------


def test_secret_never_shows_itself() -> None:
    secret = Secret(PASSCODE)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>20}",
             repr(CREDS), str(CREDS), repr([CREDS])]
    assert all(PASSCODE not in text for text in shown)
    assert secret.reveal() == PASSCODE
    assert secret.scrub(f"a {PASSCODE} b") == "a *** b"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)


def test_redacted_headers_hide_the_passcode() -> None:
    headers = CREDS.redacted_headers()
    assert headers["X-CleverTap-Passcode"] == "***"
    assert headers["X-CleverTap-Account-Id"] == ACCOUNT
    assert CREDS.headers()["X-CleverTap-Passcode"] == PASSCODE


@pytest.mark.parametrize("passcode", ["", "has space", "new\nline", "caf\u00e9"])
def test_unusable_passcodes_are_refused_without_echo(passcode: str) -> None:
    with pytest.raises(ConfigError) as info:
        Credentials(ACCOUNT, Secret(passcode))
    if passcode:
        assert passcode not in str(info.value)


# ---- reading answers ---------------------------------------------------------------------------


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("tomorrow") is None


def test_200_with_unprocessed_entries_is_read() -> None:
    answer = {"status": "partial", "processed": 1, "unprocessed": [
        {"status": "fail", "code": 512, "record": GOOD,
         "error": "Event data is incorrect. 512 - Only Items can have a nested structure, "
                  "incorrect nested structure for field : prop1.Skipped record number : 2"}]}
    ack = classify(200, {}, orjson.dumps(answer), where="x")
    assert ack.processed == 1
    [entry] = ack.unprocessed
    assert (entry.code, entry.number, entry.record) == (512, 2, GOOD)


@pytest.mark.parametrize("status", [201, 202])
def test_every_2xx_answer_is_read(status: int) -> None:
    ack = classify(status, {}, b'{"status":"success","processed":3,"unprocessed":[]}',
                   where="x")
    assert (ack.status, ack.processed, ack.unprocessed) == ("success", 3, [])
    with pytest.raises(TransientError) as info:  # 204 No Content: the verdict is unknown
        classify(204, {}, b"", where="x")
    assert info.value.ambiguous


@pytest.mark.parametrize("status", [200, 400, 413, 429, 500, 502, 408, 404, 401])
def test_a_passcode_echoed_by_the_server_is_scrubbed(status: int) -> None:
    # A gateway's error page may quote the request headers back.
    echo = orjson.dumps({"error": f"bad gateway; X-CleverTap-Passcode: {PASSCODE}"})
    with pytest.raises((TransientError, RequestRejectedError, FatalUploadError)) as info:
        classify(status, {}, echo, where="x", credentials=CREDS)
    assert PASSCODE not in str(info.value)
    assert PASSCODE not in str(getattr(info.value, "error", ""))


def test_a_passcode_across_the_cut_of_a_long_page_is_scrubbed() -> None:
    page = ("<html>" + "x" * (200 - len("<html>") - 8) + f"Passcode: {PASSCODE}</html>").encode()
    with pytest.raises(TransientError) as info:
        classify(500, {}, page, where="x", credentials=CREDS)
    assert PASSCODE[:4] not in str(info.value)


def test_a_passcode_in_an_unprocessed_entry_is_scrubbed() -> None:
    answer = {"status": "partial", "processed": 0, "unprocessed": [
        {"status": "fail", "code": 512, "error": f"bad header {PASSCODE}", "record": GOOD}]}
    ack = classify(200, {}, orjson.dumps(answer), where="x", credentials=CREDS)
    assert PASSCODE not in ack.unprocessed[0].error


@pytest.mark.parametrize("content", [b"", b"<html>", b'{"status":"success"}', b"[]"])
def test_unreadable_200_is_retried_as_ambiguous(content: bytes) -> None:
    with pytest.raises(TransientError) as info:
        classify(200, {}, content, where="x")
    assert info.value.ambiguous


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 408])
def test_transient_statuses(status: int) -> None:
    with pytest.raises(TransientError) as info:
        classify(status, {"Retry-After": "7"}, b'{"status":"fail"}', where="x")
    assert info.value.status == status
    assert info.value.retry_after == 7.0
    assert not info.value.ambiguous
    assert info.value.throttled == (status == 429)


@pytest.mark.parametrize("status", [400, 413])
def test_whole_request_refusals_are_bisectable(status: int) -> None:
    with pytest.raises(RequestRejectedError) as info:
        classify(status, {}, b'{"status":"fail","error":"Malformed request","code":400}',
                 where="x")
    assert info.value.error == "Malformed request"


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_names_what_to_check(status: int) -> None:
    with pytest.raises(FatalUploadError) as info:
        classify(status, {}, b'{"status":"fail","error":"Invalid Credentials","code":401}',
                 where="https://in1.api.clevertap.com/1/upload", credentials=CREDS,
                 region="in1")
    message = str(info.value)
    assert "account id" in message and ACCOUNT in message
    assert "passcode" in message and "region (in1)" in message
    assert PASSCODE not in message


@pytest.mark.parametrize("status", [301, 404, 405, 409])
def test_other_answers_are_fatal(status: int) -> None:
    with pytest.raises(FatalUploadError, match="--endpoint"):
        classify(status, {"Location": "https://elsewhere"}, b"", where="x")


# ---- over the wire -------------------------------------------------------------------------------


def test_send_posts_headers_and_reuses_connections(ct: FakeCleverTap) -> None:
    with CleverTapClient(ct.upload_url, CREDS, pool_size=2) as client:
        acks = [client.send(body(GOOD)) for _ in range(3)]
    assert [a.processed for a in acks] == [1, 1, 1]
    requests = ct.requests
    headers = requests[0]["headers"]
    assert headers["x-clevertap-account-id"] == ACCOUNT
    assert headers["x-clevertap-passcode"] == PASSCODE
    assert headers["content-type"].startswith("application/json")
    assert len({r["client"] for r in requests}) == 1  # one keep-alive connection


def test_send_reports_rejected_records(ct: FakeCleverTap) -> None:
    bad = {"type": "event", "identity": "u1", "evtName": "", "evtData": {}}
    with CleverTapClient(ct.upload_url, CREDS) as client:
        ack = client.send(body(GOOD, bad))
    assert ack.processed == 1
    assert [(u.code, u.number, u.record) for u in ack.unprocessed] == [(509, 2, bad)]


def test_wrong_passcode_is_fatal_and_not_echoed(ct: FakeCleverTap) -> None:
    wrong = Credentials(ACCOUNT, Secret("wrong-" + PASSCODE))
    with CleverTapClient(ct.upload_url, wrong, region="eu1") as client, \
            pytest.raises(FatalUploadError) as info:
        client.send(body(GOOD))
    assert info.value.status == 401
    assert "wrong-" not in str(info.value) and PASSCODE not in str(info.value)
    assert PASSCODE not in repr(client)


def test_poison_body_is_a_whole_request_refusal(ct: FakeCleverTap) -> None:
    poison = dict(GOOD, evtName="__poison_400__")
    with CleverTapClient(ct.upload_url, CREDS) as client, \
            pytest.raises(RequestRejectedError):
        client.send(body(GOOD, poison))
    assert ct.accepted == []


def test_429_carries_retry_after(ct: FakeCleverTap) -> None:
    ct.set(retry_after=1.5)
    ct.script(["429"])
    with CleverTapClient(ct.upload_url, CREDS) as client, pytest.raises(TransientError) as info:
        client.send(body(GOOD))
    assert info.value.throttled and info.value.retry_after == 1.5


@pytest.mark.parametrize(("fault", "ambiguous", "stored"), [
    ("drop_before", True, 0),  # the client cannot tell a drop before from one after
    ("drop_after", True, 1),
    ("timeout", True, 1),
    ("503", False, 0),
])
def test_lost_answers_are_transient(ct: FakeCleverTap, fault: str, ambiguous: bool,
                                    stored: int) -> None:
    ct.set(slow_seconds=0.8)
    ct.script([fault])
    with CleverTapClient(ct.upload_url, CREDS, timeout=0.3) as client, \
            pytest.raises(TransientError) as info:
        client.send(body(GOOD))
    assert info.value.ambiguous is ambiguous
    assert PASSCODE not in str(info.value)
    ct.wait_idle(5)
    assert len(ct.accepted) == stored


def test_connection_refused_is_transient_and_safe() -> None:
    with FakeCleverTap(ACCOUNT, PASSCODE) as server:
        url = server.upload_url
    with CleverTapClient(url, CREDS, timeout=1) as client, pytest.raises(TransientError) as info:
        client.send(body(GOOD))
    assert not info.value.ambiguous
