"""The fast read (mapping/reads.py) gives the mapping what the full read does.

``decode_event`` keeps only the fields the mapping reads; every event below is mapped from
both reads, in the default mode's settings, and the outcomes must be equal.
"""

from __future__ import annotations

import ast
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.gen_events import generate
from clevertap_mapper import MapperConfig, MappingError
from clevertap_mapper.checks import Checker
from clevertap_mapper.io.readers import read_items
from clevertap_mapper.jsonutil import dumps, loads
from clevertap_mapper.mapping import core
from clevertap_mapper.mapping.core import map_or_reject
from clevertap_mapper.mapping.reads import READ, decode_event, decoder, key_order
from clevertap_mapper.stage import ChunkConverter
from tests.conftest import CONFORMANCE

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [MapperConfig(), MapperConfig(track_anonymous=True),
           MapperConfig(track_anonymous=True, object_id_mapping=True)]


def _outcome(event: Any, config: MapperConfig) -> Any:
    out = map_or_reject(event, config)
    return (out.code, out.message) if isinstance(out, MappingError) else dumps(out)


def _same(line: bytes) -> bool:
    """Whether the fast read took the line (and, if so, maps it as the full read does)."""
    fast = decode_event(line)
    if fast is None:
        return False
    full = loads(line)
    for config in CONFIGS:
        assert _outcome(fast, config) == _outcome(full, config), (config, line[:300])
    return True


def _file_lines() -> list[bytes]:
    found: list[bytes] = []
    for path in [*sorted((ROOT / "samples").glob("*.ndjson")),
                 *sorted((ROOT / "samples" / "nasty").glob("*.ndjson"))]:
        found.extend(line for line in path.read_bytes().splitlines() if line.strip())
    for name in ("public.ndjson", "reference-tests.ndjson"):
        path = CONFORMANCE / name
        if path.exists():
            found.extend(dumps(json.loads(line)["event"])
                         for line in path.read_bytes().splitlines() if line.strip())
    return found


def test_the_fast_read_maps_the_samples_and_conformance_events_as_the_full_read() -> None:
    lines = _file_lines()
    taken = sum(_same(line) for line in lines)
    assert taken > len(lines) / 2  # most are plain ASCII events: the test tests something


def test_the_fast_read_maps_generated_events_as_the_full_read() -> None:
    lines = [dumps(event) for event in generate(3000, seed=7)]
    assert all(_same(line) for line in lines)


# ---- adversarial events: every key the mapping reads, dotted forms, junk, wrong types -------
# Listed by hand from the spec (reference-mapping.md s3, s4, s8, s10), not taken from READ,
# so that a key READ lacks is a key these events still have.

_NAMES = ["email", "userId", "id", "name", "firstName", "firstname", "first_name", "lastName",
          "lastname", "last_name", "phone", "gender", "employed", "birthday", "education",
          "married", "customerType", "avatar", "ts", "overrideFields", "products", "revenue",
          "checkout_id", "event", "token", "x", "a.b", "Items"]
_TOP = ["userId", "anonymousId", "previousId", "event", "name", "integrations", "timestamp",
        "originalTimestamp", "sentAt", "receivedAt", "traits", "properties", "messageId",
        "channel", "a.b", "context.traits", "context.device", "context.os",
        "context.device.token", "context.os.name", "context.app",
        *(f"{root}.{n}" for root in ("traits", "context.traits", "properties") for n in _NAMES)]
_CONTEXT = ["traits", "device", "os", "app", "library", "ip", "device.token", "device.id",
            "os.name", *(f"traits.{n}" for n in _NAMES)]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.sampled_from(["identify", "track", "page", "screen", "alias", "Order Completed",
                     "2021-03-10T11:59:22Z", "1468308340", "android", "iOS", "female", "fcm"]))
_ids = st.one_of(st.sampled_from(["u1", "a1", "", "1990-01-02", "M"]), _scalars)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(_NAMES), inner, max_size=4)),
    max_leaves=12)
_objects = st.dictionaries(st.sampled_from(_NAMES), _values, max_size=5)
_context = st.one_of(
    st.dictionaries(st.sampled_from(_CONTEXT),
                    st.one_of(_ids, _values, _objects,
                              st.fixed_dictionaries({"token": _scalars, "name": _scalars})),
                    max_size=6),
    _values)
_types = st.sampled_from(["identify", "track", "page", "screen", "alias", "Track"])


@settings(max_examples=600, deadline=None)
@given(_types, st.dictionaries(st.sampled_from(_TOP), st.one_of(_ids, _values, _objects),
                               max_size=6),
       st.one_of(st.nothing(), _context) | st.none())
def test_the_fast_read_maps_any_event_as_the_full_read(kind: str, fields: dict[str, Any],
                                                        context: Any) -> None:
    event = {"type": kind, **fields}
    if context is not None:
        event["context"] = context
    _same(dumps(event))


# A value each name makes a difference with (an email, a gender the table maps, ...).
_VALUE = {"gender": "female", "birthday": "1990-01-02", "ts": "2021-03-10T11:59:22Z",
          "overrideFields": {"o": 1}, "products": [{"p": 1}], "revenue": 5, "employed": "Y",
          "traits": {"email": "t@x"}, "device": {"token": "tok"}, "os": {"name": "iOS"},
          "integrations": {"clevertap": {"deviceTokenType": "fcm"}}, "token": "tok",
          "name": "iOS"}


@pytest.mark.parametrize("kind", ["identify", "track", "page", "screen", "alias"])
def test_every_key_the_mapping_can_read_is_read(kind: str) -> None:
    # Each key alone (with a userId, and without one, when it may be the id), at the top level
    # and inside context, with a value its name makes a difference with: a key the fast read
    # dropped would be a difference in some record.
    # A device token needs an OS name too: each is also tried beside the other, in context
    # or as a literal top-level key (which get-value reads only when there is no context).
    backgrounds: list[dict[str, Any]] = [
        {}, {"context": {"os": {"name": "android"}}}, {"context": {"device": {"token": "t"}}},
        {"context.os.name": "android"}, {"context.device.token": "t"}]
    for where, keys in (("top", _TOP), ("context", _CONTEXT)):
        for key, user, background in itertools.product(
                keys, ({"userId": "u1", "anonymousId": "a1"}, {}), backgrounds):
            value = _VALUE.get(key.rsplit(".", 1)[-1], f"v-{key}")
            event = {"type": kind, "event": "Order Completed", **user, **background}
            if where == "top":
                event[key] = value
            else:
                event["context"] = {**event.get("context", {}), key: value}
            assert _same(dumps(event)), (where, key)


# ---- what the fast read leaves to the full one ------------------------------------------------

@pytest.mark.parametrize("line", [
    b'{"type":"track","context":{"app":"\xff"}}',  # skipped strings' UTF-8 is checked apart
    b'{"type":"track","context":{"app":"\xed\xa0\x80"}}',  # a surrogate, in UTF-8
    b'{"type":"track","context":null}',  # a non-object where an object is read
    b'{"type":"track","context":{"device":"phone"}}',
    b'[{"type":"track"}]',
    b'{"type":"track",}',
    b""])
def test_lines_the_fast_read_leaves_to_the_full_read(line: bytes) -> None:
    assert decode_event(line) is None


def test_a_line_not_ascii_is_read_fast_when_it_is_utf8() -> None:
    assert decode_event('{"type":"track","userId":"\u00e9","context":{"app":"\u00e9"}}'
                        .encode()) == {"type": "track", "userId": "\u00e9", "context": {}}


def test_a_line_the_fast_read_leaves_is_judged_by_the_full_read() -> None:
    # Invalid UTF-8 in a field the mapping never reads is still an unreadable line.
    lines = [b'{"type":"track","userId":"u","event":"E","context":{"app":"\xff"}}',
             b'{"type":"track","userId":"u","event":"E","context":{"app":"\xc3\xa9"}}']
    result = ChunkConverter(MapperConfig(), Checker(), "records")("x", 1, b"\n".join(lines))
    assert result.summary.records["event"] == 1
    assert b'"line":1' in result.rejects and b"invalid_utf8" in result.rejects


def test_core_reads_no_top_level_key_the_fast_read_drops() -> None:
    # core.py's own event.get("...") / event["..."] reads; table paths are found by reads.py.
    tree = ast.parse(Path(core.__file__.replace(".so", ".py")).read_text()
                     if core.__file__.endswith(".py") else
                     (ROOT / "clevertap_mapper" / "mapping" / "core.py").read_text())
    keys: set[str] = set()
    for node in ast.walk(tree):
        target = key = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "get" and node.args:
            target, key = node.func.value, node.args[0]
        elif isinstance(node, ast.Subscript):
            target, key = node.value, node.slice
        if isinstance(target, ast.Name) and target.id == "event" \
                and isinstance(key, ast.Constant) and isinstance(key.value, str):
            keys.add(key.value)
    assert keys, "the scan found no reads: it no longer matches how core.py reads"
    assert keys <= set(READ), keys - set(READ)


@pytest.mark.parametrize("number", [b"1e999", b"-1E+400", b"7" * 5000])
def test_a_number_past_the_doubles_where_the_mapping_does_not_read_is_judged_alike(
        number: bytes, tmp_path: Path) -> None:
    # The fast read skips the number; the full read refuses it. The line must go whichever
    # line came before it (an envelope turns the fast read off) and in validate's read too;
    # in a field the mapping reads it is refused everywhere.
    event = b'{"type":"track","userId":"u","event":"E","context":{"screen":{"d":%s}}}' % number
    read = b'{"type":"track","userId":"u","event":"E","properties":{"d":%s}}' % number
    plain = b'{"type":"track","userId":"v","event":"E"}'
    envelope = b'{"batch":[%s]}' % plain
    for before in (plain, envelope):
        block = b"\n".join([before, event, read])
        result = ChunkConverter(MapperConfig(), Checker(), "records")("x", 1, block)
        assert result.summary.records["event"] == 2, before
        assert result.rejects.count(b'"code":"invalid_json"') == 1
        assert b'"line":3' in result.rejects
        path = tmp_path / "in.ndjson"
        path.write_bytes(block + b"\n")
        items = list(read_items([str(path)]))
        assert [type(i).__name__ for i in items] == ["SourceEvent", "SourceEvent", "Rejection"]
        assert items[1].event == decode_event(event)


# ---- the decoder for the lines' own key order --------------------------------------------------

_LINES = [dumps(event) for event in generate(400, seed=11)]


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(READ)), st.permutations(list(READ["context"])),
       st.integers(0, len(READ)), st.integers(0, len(READ["context"])))
def test_a_decoder_in_any_key_order_reads_what_the_default_one_does(
        top: list[str], context: list[str], n_top: int, n_context: int) -> None:
    # The order only makes msgspec's walk to each key shorter: what is read, and in which
    # order it lands in the dict, are the line's.
    ordered = decoder((tuple(top[:n_top]), tuple(context[:n_context])))
    dotted = {"type": "identify", "traits.email": "a@b", "context.traits.phone": "1",
              "context": {"traits.name": "N", "os": {"name": "iOS"}}}
    lines = [*_LINES, dumps(dotted)]
    for line in lines:
        a, b = decode_event(line, ordered), decode_event(line)
        assert a == b and list(a) == list(b), line[:200]
        if type(a.get("context")) is dict:
            assert list(a["context"]) == list(b["context"])


def test_convert_reads_each_input_in_the_order_of_its_first_event() -> None:
    converter = ChunkConverter(MapperConfig(), Checker("strict"), "records")
    first = {"context": {"os": {"name": "iOS"}, "traits": {}}, "userId": "u", "type": "track",
             "event": "E"}
    block = b"\n".join(dumps(e) for e in [first, {"type": "page", "userId": "v"}]) + b"\n"
    converter("a.ndjson", 1, block)
    assert converter.order == (("context", "userId", "type", "event"), ("os", "traits"))
    assert converter.order == key_order(decode_event(dumps(first)))
    # Another block of the same input keeps it; another input takes its own.
    converter("a.ndjson", 3, dumps({"type": "track", "event": "E", "userId": "u"}) + b"\n")
    assert converter.order[0] == ("context", "userId", "type", "event")
    converter("b.ndjson", 1, dumps({"type": "track", "event": "E", "userId": "u"}) + b"\n")
    assert converter.order == (("type", "event", "userId"), ())
