"""``run_upload`` against the CleverTap stand-in with faults: nothing lost, duplicates only
where an answer was lost, every refusal in the rejects file, limits and concurrency kept.

Retries use a fast policy (milliseconds) so the suite stays quick; the policy's own timing is
tested in test_upload_retry.py.
"""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from clevertap_mapper.checks import Checker
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import ConfigError, InputError
from clevertap_mapper.pipeline import Summary
from clevertap_mapper.upload import (
    Ack,
    Checkpoint,
    Credentials,
    RetryPolicy,
    Secret,
    Unprocessed,
    Uploader,
    UploadOptions,
    UploadReport,
    plan_bodies,
    run_upload,
)
from clevertap_mapper.upload.state import RejectsJournal
from tests.support.fake_clevertap import FakeCleverTap
from tests.support.upload_data import (
    ACCOUNT,
    PASSCODE,
    identify,
    key,
    tally,
    track,
    upload_bodies,
    write_ndjson,
)

CREDS = Credentials(ACCOUNT, Secret(PASSCODE))
FAST = RetryPolicy(max_retries=8, base_delay=0.002, max_delay=0.02)


@pytest.fixture
def ct() -> Iterator[FakeCleverTap]:
    with FakeCleverTap(ACCOUNT, PASSCODE, seed=7) as server:
        yield server


def upload(ct: FakeCleverTap, inputs: list[Path], tmp_path: Path, *,
           config: MapperConfig | None = None, checker: Checker | None = None,
           concurrency: int = 4, timeout: float = 2.0, max_retries: int = 8,
           profiles_first: bool = False, state: bool = True, policy: RetryPolicy | None = None,
           region: str | None = None, rejects_path: str | None = None,
           **kw: Any) -> UploadReport:
    options = UploadOptions(concurrency=concurrency, timeout=timeout, max_retries=max_retries,
                            profiles_first=profiles_first, grace=5.0)
    return run_upload([str(p) for p in inputs], config or MapperConfig(), CREDS, region=region,
                      endpoint=ct.url, checker=checker, options=options,
                      state_path=str(tmp_path / "job.state") if state else None,
                      rejects_path=rejects_path or str(tmp_path / "rejects.ndjson"),
                      policy=policy or RetryPolicy(max_retries, FAST.base_delay, FAST.max_delay),
                      **kw)


def rejects(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "rejects.ndjson"
    return [orjson.loads(x) for x in path.read_bytes().splitlines()] if path.exists() else []


def assert_no_passcode(tmp_path: Path, *texts: str) -> None:
    for text in texts:
        assert PASSCODE not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSCODE.encode() not in path.read_bytes(), path


def assert_within_limits(ct: FakeCleverTap, concurrency: int) -> None:
    assert ct.max_in_flight <= concurrency
    for body in upload_bodies(ct.requests):
        tokens = [r for r in body if r.get("type") == "token"]
        assert len(body) <= 1000
        assert not tokens or (len(tokens) == len(body) <= 100)


BAD_RECORDS = [  # ctmap records (as `convert` writes them) that CleverTap refuses
    ({"type": "profile", "identity": "bad1", "profileData": {"n": -1, "Gender": "X"}}, 514),
    ({"type": "event", "identity": "bad2", "evtName": "Stayed", "evtData": {"n": -2}}, 513),
    ({"type": "event", "identity": "bad3", "evtName": "E", "evtData": {"n": -3}, "ts": "x"}, 525),
    ({"type": "token", "objectId": "o", "tokenData": {"id": "tok-bad", "type": "sms"}}, 534),
]


def mixed_inputs(tmp_path: Path, events: int, tokens: int) -> tuple[list[Path], set[Any]]:
    """RudderStack events (tracks, identifies with device tokens, two unreadable lines) and a
    file of ctmap records CleverTap refuses; returns the inputs and the good record keys."""
    lines: list[Any] = [track(n) for n in range(events)]
    lines += [identify(events + n, token=True) for n in range(tokens)]
    lines.insert(10, b"{not json")
    lines.insert(500, {"type": "track", "event": "No Id", "properties": {"n": -9}})
    good: set[tuple[str, Any]] = {("event", n) for n in range(events)}
    good |= {("profile", events + n) for n in range(tokens)}
    good |= {("token", f"tok-{events + n}") for n in range(tokens)}
    events_file = write_ndjson(tmp_path / "events.ndjson", lines)
    records_file = write_ndjson(tmp_path / "records.ndjson", [r for r, _ in BAD_RECORDS])
    return [events_file, records_file], good


def test_faults_at_realistic_rates_lose_nothing(ct: FakeCleverTap, tmp_path: Path) -> None:
    inputs, good = mixed_inputs(tmp_path, events=9000, tokens=1500)
    ct.set(rate_429=0.10, rate_5xx=0.05, rate_timeout=0.03, rate_drop_before=0.03,
           rate_drop_after=0.03, rate_555=0.01, slow_seconds=0.6)
    ct.script(["429", "500", "timeout", "drop_before", "drop_after", "503"])
    report = upload(ct, inputs, tmp_path, config=MapperConfig(object_id_mapping=True),
                    timeout=0.3)
    ct.wait_idle()

    assert report.outcome == "complete", report.error
    counts = tally(ct.accepted)
    assert good <= set(counts), "a good record was lost"
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= report.possible_duplicates
    assert report.ambiguous >= 3  # the scripted timeout and drops at least
    assert report.retries >= 6 and report.throttled >= 1
    assert_within_limits(ct, 4)

    found = rejects(tmp_path)
    by_code = {r["clevertap"]["code"]: r for r in found if r["stage"] == "upload"}
    for record, code in BAD_RECORDS:
        assert by_code[code]["record"] == record
        assert by_code[code]["source"].endswith("records.ndjson")
        assert by_code[code]["code"] == "clevertap_rejected"
    stream = sorted((r["line"], r["code"]) for r in found if r["stage"] != "upload")
    assert stream == [(11, "invalid_json"), (501, "anonymous_not_allowed")]
    assert report.accepted == len(good)  # each record acknowledged once, whatever was resent
    assert report.pending_records == 0 and report.unread is False
    assert report.job_rejected_total == len(BAD_RECORDS) + 2
    assert_no_passcode(tmp_path, str(report.as_dict()))


def test_exactly_once_when_no_answer_is_lost(ct: FakeCleverTap, tmp_path: Path) -> None:
    inputs, good = mixed_inputs(tmp_path, events=6000, tokens=400)
    ct.set(rate_429=0.2, rate_5xx=0.1, rate_555=0.05)
    report = upload(ct, inputs, tmp_path, config=MapperConfig(object_id_mapping=True))
    assert report.outcome == "complete"
    counts = tally(ct.accepted)
    assert set(counts) == good and set(counts.values()) == {1}
    assert report.possible_duplicates == 0 and report.ambiguous == 0
    assert report.accepted == len(good)
    assert report.rejected[f"clevertap_{BAD_RECORDS[0][1]}"] == 1
    assert_within_limits(ct, 4)


def test_bisection_isolates_the_records_that_break_a_body(ct: FakeCleverTap,
                                                          tmp_path: Path) -> None:
    events = [track(n) for n in range(2000)]
    events[777] = track(777, name="__poison_400__")
    events[1500] = track(1500, name="__poison_400__")
    report = upload(ct, [write_ndjson(tmp_path / "e.ndjson", events)], tmp_path,
                    concurrency=2)
    assert report.outcome == "complete"
    counts = tally(ct.accepted)
    assert set(counts) == {("event", n) for n in range(2000)} - {("event", 777),
                                                                 ("event", 1500)}
    assert set(counts.values()) == {1}
    found = rejects(tmp_path)
    assert sorted(r["line"] for r in found) == [778, 1501]
    assert {r["clevertap"]["code"] for r in found} == {400}
    assert all(r["clevertap"]["error"] == "Malformed request" for r in found)
    assert report.bisected <= 2 * 10  # about log2(1000) splits per poisoned body
    assert report.requests <= 2 + 2 * 2 * 10


def test_wrong_passcode_stops_at_once(tmp_path: Path) -> None:
    with FakeCleverTap(ACCOUNT, "another-passcode") as ct:
        events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(5000)])
        report = upload(ct, [events], tmp_path, region="eu1")
    assert report.outcome == "failed"
    assert report.error is not None
    for word in ("account id", ACCOUNT, "passcode", "region"):
        assert word in report.error
    assert len(ct.requests) <= 4  # only the requests already in flight
    assert ct.accepted == []
    assert_no_passcode(tmp_path, report.error)


def test_retry_after_is_honoured(ct: FakeCleverTap, tmp_path: Path) -> None:
    ct.set(retry_after=0.75)
    ct.script(["429", "429"])
    slept: list[float] = []
    report = upload(ct, [write_ndjson(tmp_path / "e.ndjson", [track(1)])], tmp_path,
                    sleep=slept.append)
    assert report.outcome == "complete" and report.throttled == 2
    assert [d for d in slept if d > 0] == [0.75, 0.75]


def test_backoff_delays_come_from_the_policy(ct: FakeCleverTap, tmp_path: Path) -> None:
    ct.script(["503", "500", "503"])
    slept: list[float] = []
    policy = RetryPolicy(max_retries=5, base_delay=1.0, max_delay=3.0)
    report = upload(ct, [write_ndjson(tmp_path / "e.ndjson", [track(1)])], tmp_path,
                    policy=policy, sleep=slept.append, random=lambda: 1.0)
    assert report.outcome == "complete"
    assert slept == [1.0, 2.0, 3.0]


def test_429s_lower_the_concurrency(ct: FakeCleverTap, tmp_path: Path) -> None:
    ct.script(["429"] * 8)
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(8000)])
    report = upload(ct, [events], tmp_path, concurrency=4)
    assert report.outcome == "complete"
    assert report.lowest_concurrency < 4
    assert len(ct.accepted) == 8000


def test_gives_up_then_a_rerun_resumes(ct: FakeCleverTap, tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(5000)])
    ct.script(["ok", "ok"])
    ct.set(rate_5xx=1.0)
    first = upload(ct, [events], tmp_path, concurrency=1, max_retries=2)
    assert first.outcome == "gave_up" and "gave up on body 3 after 3 attempts" in str(
        first.error)
    # pending: the body given up on, and those read meanwhile (at most 2 x concurrency)
    assert first.accepted == 2000 and first.unread
    assert first.pending_records in (1000, 2000, 3000)
    state = orjson.loads((tmp_path / "job.state").read_bytes())
    assert state["next_body"] == 2 and state["complete"] is False

    ct.set(rate_5xx=0.0)
    ct.reset()
    second = upload(ct, [events], tmp_path, concurrency=1, max_retries=2)
    assert second.outcome == "complete" and second.resumed
    assert second.bodies_skipped == 2 and second.accepted == 3000
    assert {key(r)[1] for r in ct.accepted} == set(range(2000, 5000))
    assert second.job_accepted == 5000


def test_a_partly_answered_body_resends_only_its_open_records(ct: FakeCleverTap,
                                                              tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(1000)])
    ct.set(rate_555=0.05)
    ct.script(["ok", "500", "500", "500"])  # the 555 resend fails 3 times: give up
    first = upload(ct, [events], tmp_path, concurrency=1, max_retries=2)
    assert first.outcome == "gave_up"
    open_records = first.pending_records
    assert 0 < open_records < 100 and first.accepted == 1000 - open_records
    state = orjson.loads((tmp_path / "job.state").read_bytes())
    assert len(state["partial"]["0"]) == open_records

    ct.set(rate_555=0.0)
    second = upload(ct, [events], tmp_path, concurrency=1)
    assert second.outcome == "complete"
    assert second.records_sent == open_records  # only what was open
    counts = tally(ct.accepted)
    assert set(counts) == {("event", n) for n in range(1000)} and set(counts.values()) == {1}


def test_555_until_the_bound_becomes_a_rejection(ct: FakeCleverTap, tmp_path: Path) -> None:
    ct.set(rate_555=1.0)
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(3)])
    report = upload(ct, [events], tmp_path, max_retries=2)
    assert report.outcome == "complete" and report.requests == 3
    assert report.rejected == Counter(clevertap_555=3)
    assert {r["clevertap"]["code"] for r in rejects(tmp_path)} == {555}


def test_stop_saves_and_a_rerun_finishes(ct: FakeCleverTap, tmp_path: Path) -> None:
    ct.set(latency=0.15)
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(20000)])
    stop = threading.Event()
    threading.Timer(0.4, stop.set).start()
    first = upload(ct, [events], tmp_path, concurrency=2, stop=stop)
    assert first.outcome == "interrupted"
    assert 0 < first.accepted < 20000 and first.unread
    assert all(r["status"] == 200 for r in ct.requests)  # requests in flight were answered
    ct.set(latency=0.0)
    second = upload(ct, [events], tmp_path, concurrency=4)
    assert second.outcome == "complete" and second.bodies_skipped == first.bodies_acked
    counts = tally(ct.accepted)
    assert len(counts) == 20000 and set(counts.values()) == {1}


@pytest.mark.parametrize("profiles_first", [False, True], ids=["all-rejected", "profile-pass"])
def test_a_stop_is_taken_while_no_body_fills(ct: FakeCleverTap, tmp_path: Path,
                                             profiles_first: bool) -> None:
    """Ctrl-C while the input makes no body (every event rejected, or --profiles-first's
    profile pass over events only) stops the reading at the next read (1 MiB), not when a
    body finally fills; a rerun then does the whole job."""
    if profiles_first:
        lines = [track(n) for n in range(30000)]
    else:
        lines = [{"type": "track", "event": "Product Viewed",  # no userId: rejected
                  "properties": {"n": n, "sku": "x" * 40}} for n in range(30000)]
    events = write_ndjson(tmp_path / "e.ndjson", lines)
    assert events.stat().st_size > 2 * 1024 * 1024  # several reads
    stop = threading.Event()
    stop.set()
    first = upload(ct, [events], tmp_path, profiles_first=profiles_first, stop=stop)
    assert first.outcome == "interrupted" and first.unread
    assert 0 < first.summary.events < 30000 and ct.requests == []
    second = upload(ct, [events], tmp_path, profiles_first=profiles_first)
    assert second.outcome == "complete" and second.summary.events == 30000
    if profiles_first:
        assert len(ct.accepted) == 30000
    else:
        assert sum(second.rejected.values()) == 30000 == len(rejects(tmp_path))


def test_a_finished_job_sends_nothing_again(ct: FakeCleverTap, tmp_path: Path) -> None:
    inputs, _ = mixed_inputs(tmp_path, events=1200, tokens=0)
    first = upload(ct, inputs, tmp_path)
    assert first.outcome == "complete"
    before = len(ct.requests)
    lines = rejects(tmp_path)
    again = upload(ct, inputs, tmp_path)
    assert again.already_complete and len(ct.requests) == before
    assert again.job_rejected_total == first.job_rejected_total == len(BAD_RECORDS) + 2
    assert rejects(tmp_path) == lines


def test_resumed_runs_append_rejects_without_repeating_them(ct: FakeCleverTap,
                                                            tmp_path: Path) -> None:
    lines: list[Any] = []
    for n in range(4000):
        lines.append(track(n))
        if n % 1000 == 10:
            lines.append(b"{broken")  # one unreadable line per body
    events = write_ndjson(tmp_path / "e.ndjson", lines)
    ct.script(["ok"])
    ct.set(rate_5xx=1.0)
    first = upload(ct, [events], tmp_path, concurrency=1, max_retries=0)
    assert first.outcome == "gave_up"
    assert len(rejects(tmp_path)) == 1  # only the acknowledged body's line so far
    ct.set(rate_5xx=0.0)
    second = upload(ct, [events], tmp_path, concurrency=1)
    assert second.outcome == "complete"
    found = rejects(tmp_path)
    assert sorted(r["line"] for r in found) == [12, 1013, 2014, 3015]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("where", [5, 2500], ids=["in-a-body", "after-the-last-record"])
def test_a_rejects_file_that_cannot_be_written_loses_no_rejection(ct: FakeCleverTap,
                                                                  tmp_path: Path,
                                                                  where: int) -> None:
    # A read rejection is written when its body is acknowledged (by a worker), or, after the
    # last record, with a body of no records (by the reading thread).
    lines: list[Any] = [track(n) for n in range(2500)]
    lines.insert(where, b"{broken")
    events = write_ndjson(tmp_path / "e.ndjson", lines)
    full = upload(ct, [events], tmp_path, concurrency=1, rejects_path="/dev/full")
    assert full.outcome == "failed"
    assert full.error is not None and "cannot write the rejects file /dev/full" in full.error
    # The disk has room again: the rerun writes the rejection the full disk did not take.
    again = upload(ct, [events], tmp_path, concurrency=1)
    assert again.outcome == "complete"
    assert [(r["line"], r["code"]) for r in rejects(tmp_path)] == [(where + 1, "invalid_json")]
    assert set(tally(ct.accepted)) == {("event", n) for n in range(2500)}


@pytest.mark.parametrize("twice", ["file", "directory", "link"])
def test_a_file_given_twice_is_sent_once(ct: FakeCleverTap, tmp_path: Path,
                                         twice: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    events = write_ndjson(folder / "e.ndjson", [track(n) for n in range(10)])
    if twice == "link":
        (folder / "latest.ndjson").symlink_to("e.ndjson")
        inputs = [folder]
    else:
        inputs = [folder if twice == "directory" else events, folder / "." / "e.ndjson"]
    report = upload(ct, inputs, tmp_path)
    assert report.outcome == "complete"
    assert tally(ct.accepted) == {("event", n): 1 for n in range(10)}


def test_a_state_made_against_one_endpoint_is_refused_against_another(
        ct: FakeCleverTap, tmp_path: Path) -> None:
    """A job tried against a test endpoint, then run against the real one with the same
    account and state: the bodies the test endpoint took must not be skipped."""
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(10)])
    assert upload(ct, [events], tmp_path).outcome == "complete"
    with FakeCleverTap(ACCOUNT, PASSCODE, seed=8) as real, \
            pytest.raises(ConfigError, match=r"settings differ \(url\)"):
        upload(real, [events], tmp_path)
    with FakeCleverTap(ACCOUNT, PASSCODE, seed=8) as real:
        assert upload(real, [events], tmp_path, restart=True).outcome == "complete"
        assert tally(real.accepted) == {("event", n): 1 for n in range(10)}


def test_a_state_made_with_other_allowed_codes_is_refused(ct: FakeCleverTap,
                                                        tmp_path: Path) -> None:
    """--allow changes which records go, so which records each body number names."""
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(10)])
    assert upload(ct, [events], tmp_path, checker=Checker()).outcome == "complete"
    with pytest.raises(ConfigError, match=r"settings differ \(allow\)"):
        upload(ct, [events], tmp_path, checker=Checker(allow=["value_too_long"]))


def test_a_state_made_by_another_ctmap_version_is_refused(ct: FakeCleverTap,
                                                         tmp_path: Path) -> None:
    """Another version may map or batch otherwise: its body numbers could name other records."""
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(10)])
    assert upload(ct, [events], tmp_path).outcome == "complete"
    state = tmp_path / "job.state"
    data = orjson.loads(state.read_bytes())
    assert data["settings"]["ctmap_version"] not in ("", "0.0.1")
    data["settings"]["ctmap_version"] = "0.0.1"
    state.write_bytes(orjson.dumps(data))
    with pytest.raises(ConfigError, match=r"settings differ \(ctmap_version\)"):
        upload(ct, [events], tmp_path)


def test_a_rejects_file_that_cannot_be_written_without_state_says_what_a_rerun_does(
        ct: FakeCleverTap, tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "e.ndjson", [b"{broken", *[track(n) for n in range(5)]])
    report = upload(ct, [events], tmp_path, state=False, rejects_path="/dev/full")
    assert report.outcome == "failed" and report.error is not None
    assert "without --state the rerun sends every record again" in report.error
    assert "pending in the state" not in report.error


def test_a_rejects_file_that_cannot_be_created_is_refused_naming_it(
        ct: FakeCleverTap, tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "e.ndjson", [track(1)])
    where = str(events / "rejects.ndjson")  # under a file
    with pytest.raises(ConfigError, match=f"cannot create the rejects file {where}"):
        upload(ct, [events], tmp_path, rejects_path=where)
    assert ct.requests == []


def test_profiles_first_orders_the_requests(ct: FakeCleverTap, tmp_path: Path) -> None:
    lines = [track(n) if n % 2 else identify(n, token=n % 4 == 0) for n in range(3000)]
    events = write_ndjson(tmp_path / "e.ndjson", lines)
    report = upload(ct, [events], tmp_path, concurrency=1, profiles_first=True,
                    config=MapperConfig(object_id_mapping=True))
    assert report.outcome == "complete"
    kinds = [r["type"] for body in upload_bodies(ct.requests) for r in body]
    first_event = kinds.index("event")
    assert set(kinds[first_event:]) == {"event"}
    assert len(ct.accepted) == 1500 + 1500 + 750


def test_without_state_nothing_is_saved(ct: FakeCleverTap, tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "e.ndjson", [track(1)])
    report = upload(ct, [events], tmp_path, state=False)
    assert report.outcome == "complete" and report.state_path is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.ndjson", "rejects.ndjson"]


def test_a_missing_input_is_refused_before_sending(ct: FakeCleverTap, tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(10)])
    with pytest.raises(InputError, match="no such file"):
        upload(ct, [events, tmp_path / "missing.ndjson"], tmp_path, state=False)
    assert ct.requests == []


def test_a_corrupt_input_stops_after_sending_every_line_before_the_damage(
        ct: FakeCleverTap, tmp_path: Path) -> None:
    """A truncated gzip among the inputs: every line before the damage is delivered (its
    last, unfilled body too: those lines are the same on every read of the file), the run
    ends as failed with a report saying so, and a rerun sends nothing twice."""
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(2500)])
    packed = gzip.compress(b"".join(orjson.dumps(track(10000 + n)) + b"\n"
                                   for n in range(9000)))
    broken = tmp_path / "broken.ndjson.gz"
    broken.write_bytes(packed[: len(packed) // 2])
    intact = sum(1 for _ in _lines_before_damage(broken))
    assert 0 < intact < 9000 and (2500 + intact) % 1000
    report = upload(ct, [events, broken], tmp_path)
    assert report.outcome == "failed" and report.unread and report.pending_records == 0
    assert report.error is not None and "truncated or corrupt" in report.error
    assert "every line before it was delivered" in report.error
    assert f"tail -n +{intact + 1}" in report.error
    assert tally(ct.accepted) == tally([*map(_mapped, range(2500)),
                                        *map(_mapped, range(10000, 10000 + intact))])
    again = upload(ct, [events, broken], tmp_path)
    assert again.outcome == "failed" and again.accepted == 0
    assert tally(ct.accepted).most_common(1)[0][1] == 1


def _lines_before_damage(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as f:
        try:
            for line in f:
                if line.endswith(b"\n"):
                    yield line
        except EOFError:
            return


def _mapped(n: int) -> dict[str, Any]:
    return {"type": "event", "evtData": {"n": n}}


# ---- matching CleverTap's answers back to records (a scripted sender, no HTTP) -------------


def scripted(answers: list[Ack]) -> Any:
    def send(body: bytes) -> Ack:
        return answers.pop(0)
    return send


def run_scripted(tmp_path: Path, answers: list[Ack], records: list[dict[str, Any]]) -> \
        UploadReport:
    path = write_ndjson(tmp_path / "r.ndjson", records)
    state = Checkpoint.open(None, [], {})
    summary = Summary()
    uploader = Uploader(scripted(answers), state, None, concurrency=1, policy=FAST)
    report = uploader.run(plan_bodies([str(path)], MapperConfig(), summary))
    return report


def record(n: int) -> dict[str, Any]:
    return {"type": "event", "identity": "u", "evtName": "E", "evtData": {"n": n}}


def test_unprocessed_entries_match_by_number_and_content(tmp_path: Path) -> None:
    records = [record(n) for n in range(4)]
    answers = [Ack("partial", 1, [
        Unprocessed(509, "x. Skipped record number : 2", records[1], 2),  # number + echo
        Unprocessed(512, "y.Skipped record number : 1", records[3], 1),  # echo wins
        Unprocessed(523, "z", None, 3),  # number only
    ])]
    report = run_scripted(tmp_path, answers, records)
    assert report.rejected == Counter(clevertap_509=1, clevertap_512=1, clevertap_523=1)
    assert report.accepted == 1 and report.mismatches == 0


def test_answers_that_do_not_add_up_are_noted(tmp_path: Path) -> None:
    records = [record(n) for n in range(3)]
    # CleverTap names a record that is not one of ours, and processed the other two.
    answers = [Ack("partial", 2, [Unprocessed(509, "?", {"other": 1}, None)])]
    report = run_scripted(tmp_path, answers, records)
    assert report.mismatches == 1
    assert report.rejected == Counter(clevertap_509=1)
    assert report.accepted == 2


@pytest.mark.parametrize("ack", [
    Ack("fail", 0, []),  # a failure that names no record
    Ack("partial", 1, []),  # one of three stored, and not a word on which
    Ack("partial", 0, [Unprocessed(509, "?", {"other": 1}, None)]),
])
def test_records_an_answer_does_not_account_for_are_not_counted_as_accepted(
        tmp_path: Path, ack: Ack) -> None:
    records = [record(n) for n in range(3)]
    rejects = tmp_path / "rejects.ndjson"
    state = Checkpoint.open(None, [], {})
    uploader = Uploader(scripted([ack]), state, RejectsJournal(str(rejects), append=False),
                        concurrency=1,
                        policy=FAST)
    report = uploader.run(plan_bodies([str(write_ndjson(tmp_path / "r.ndjson", records))],
                                      MapperConfig(), Summary()))
    assert report.accepted == 0 and report.mismatches == 1
    assert report.rejected == Counter(clevertap_unconfirmed=3)  # each record once
    lines = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    unconfirmed = [line for line in lines if line["code"] == "clevertap_unconfirmed"]
    assert [line["record"] for line in unconfirmed] == records
    assert "may not be stored" in unconfirmed[0]["message"]


def test_progress_is_reported(ct: FakeCleverTap, tmp_path: Path) -> None:
    seen: list[int] = []
    events = write_ndjson(tmp_path / "e.ndjson", [track(n) for n in range(3000)])
    upload(ct, [events], tmp_path, progress=lambda r: seen.append(r.accepted))
    assert seen and seen == sorted(seen)  # throttled: at least the first, never backwards
