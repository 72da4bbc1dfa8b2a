"""Numbered upload bodies: limits, order, positions, rejections attached once, profiles first,
and the same numbering on every run (what makes resuming possible)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clevertap_mapper.config import MapperConfig
from clevertap_mapper.pipeline import Summary
from clevertap_mapper.upload.plan import Body, plan_bodies
from tests.support.upload_data import identify, key, track, write_ndjson

OBJECT_ID = MapperConfig(object_id_mapping=True)


def plan(paths: list[Path], config: MapperConfig | None = None,
         **kw: Any) -> tuple[list[Body], Summary]:
    summary = Summary()
    bodies = list(plan_bodies([str(p) for p in paths], config or MapperConfig(), summary, **kw))
    return bodies, summary


def records(body: Body) -> list[dict[str, Any]]:
    """A body's records, decoded from the JSON that is sent."""
    return [orjson.loads(r) for r in body.records]


def test_bodies_respect_cleverTap_limits_and_keep_order(tmp_path: Path) -> None:
    events: list[Any] = []
    for n in range(2500):
        events.append(track(n) if n % 10 else identify(n, token=True))
    path = write_ndjson(tmp_path / "e.ndjson", events)
    bodies, summary = plan([path], OBJECT_ID)
    regular = [b for b in bodies if not b.is_token]
    tokens = [b for b in bodies if b.is_token]
    assert [len(b.records) for b in regular] == [1000, 1000, 500]
    assert [len(b.records) for b in tokens] == [100, 100, 50]
    assert all(all(r["type"] == "token" for r in records(b)) for b in tokens)
    assert all(all(r["type"] != "token" for r in records(b)) for b in regular)
    assert [b.seq for b in bodies] == list(range(len(bodies)))
    ns = [key(r)[1] for b in regular for r in records(b)]
    assert ns == list(range(2500))  # order kept, nothing lost or doubled
    assert summary.events == 2500 and summary.records["token"] == 250


def test_positions_point_at_each_records_event(tmp_path: Path) -> None:
    batch_line = {"batch": [track(100), identify(101)]}
    path = write_ndjson(tmp_path / "e.ndjson", [track(0), batch_line, b"", track(1)])
    [body], _ = plan([path])
    where = [(p.line, p.index) for p in body.positions]
    assert where == [(1, None), (2, 1), (2, 2), (4, None)]
    assert [key(r)[1] for r in records(body)] == [0, 100, 101, 1]


def test_rejections_ride_with_the_next_body_once(tmp_path: Path) -> None:
    lines: list[Any] = [b"{oops", *[track(n) for n in range(1000)], {"type": "track"},
                        track(1000), b"[1]"]
    path = write_ndjson(tmp_path / "e.ndjson", lines)
    bodies, summary = plan([path])
    assert [len(b.records) for b in bodies] == [1000, 1]
    assert [r.code for r in bodies[0].rejections] == ["invalid_json"]
    assert [r.pos.line for r in bodies[1].rejections] == [1002, 1004]
    assert sum(summary.rejected.values()) == 3


def test_trailing_rejections_get_a_body_of_their_own(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "e.ndjson", [b"nope", b"null"])
    [body], _ = plan([path])
    assert body.records == [] and len(body.rejections) == 2


def test_profiles_first_sends_every_profile_before_any_event(tmp_path: Path) -> None:
    events: list[Any] = []
    for n in range(1500):
        events.append(identify(n, token=n % 3 == 0) if n % 2 else track(n))
    events.append(b"{bad")
    path = write_ndjson(tmp_path / "e.ndjson", events)
    bodies, summary = plan([path], OBJECT_ID, profiles_first=True)
    kinds = [r["type"] for b in bodies for r in records(b)]
    first_event = kinds.index("event")
    assert "profile" not in kinds[first_event:] and "token" not in kinds[first_event:]
    assert kinds.count("event") == 750 and kinds.count("profile") == 750
    assert summary.events == 1501  # counted once, not per pass
    assert sum(len(b.rejections) for b in bodies) == 1


def test_the_same_inputs_number_the_same_bodies(tmp_path: Path) -> None:
    events = [track(n) if n % 7 else identify(n, token=True) for n in range(1800)]
    path = write_ndjson(tmp_path / "e.ndjson", [*events, b"x"])
    first, _ = plan([path], OBJECT_ID)
    second, _ = plan([path], OBJECT_ID)
    assert [(b.seq, b.records, b.rejections) for b in first] == \
        [(b.seq, b.records, b.rejections) for b in second]


def test_records_from_convert_pass_through(tmp_path: Path) -> None:
    record = {"type": "event", "identity": "u1", "evtName": "E", "evtData": {"n": 5}}
    records_file = write_ndjson(tmp_path / "records.ndjson", [record])
    bodies_file = write_ndjson(tmp_path / "bodies.ndjson", [{"d": [record, record, 7]}])
    bodies, _ = plan([records_file, bodies_file])
    assert records(bodies[0]) == [record] * 3
    assert [r.code for r in bodies[0].rejections] == ["not_an_object"]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(["event", "profile", "token", "bad"]), max_size=400),
       limits=st.tuples(st.integers(1, 60), st.integers(1, 20)))
def test_batching_keeps_order_count_and_limits(tmp_path: Path, kinds: list[str],
                                               limits: tuple[int, int]) -> None:
    lines: list[bytes] = []
    for n, kind in enumerate(kinds):
        if kind == "bad":
            lines.append(b"{")
        elif kind == "token":
            lines.append(orjson.dumps({"type": "token", "objectId": "o",
                                         "tokenData": {"id": f"tok-{n}", "type": "fcm"}}))
        else:
            data = "evtData" if kind == "event" else "profileData"
            lines.append(orjson.dumps({"type": kind, "identity": "u", "evtName": "E",
                                         data: {"n": n}}))
    path = write_ndjson(tmp_path / "h.ndjson", lines)
    bodies, _ = plan([path], max_records=limits[0], max_tokens=limits[1])
    for body in bodies:
        limit = limits[1] if body.is_token else limits[0]
        assert 0 < len(body.records) <= limit or (not body.records and body.rejections)
        assert len({r["type"] == "token" for r in records(body)}) == (1 if body.records else 0)
        assert body.is_token == any(r["type"] == "token" for r in records(body))
    sent = [key(r) for b in bodies for r in records(b)]
    regular = [k for k in sent if k[0] != "token"]
    assert len(sent) == len(kinds) - kinds.count("bad")
    assert [k[1] for k in regular] == sorted(k[1] for k in regular)
    assert sum(len(b.rejections) for b in bodies) == kinds.count("bad")
