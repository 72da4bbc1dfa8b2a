"""Path lookups: the unrolled fast path of get() agrees with the general get-value walk."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from clevertap_mapper.mapping.js import MISSING
from clevertap_mapper.mapping.paths import Path, _walk, get, set_path

KEYS = ["a", "b", "c", "0", "1", "a.b", "b.c", "a.b.c"]
PATHS = [Path(".".join(p)) for n in (1, 2, 3, 4)
         for p in itertools.product(["a", "b", "c", "0"], repeat=n)]
trees = st.recursive(st.sampled_from([1, "x", None, True]),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
                     max_leaves=12)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(KEYS), trees, max_size=5))
def test_fast_get_equals_the_general_walk(root: dict[str, Any]) -> None:
    for path in PATHS:
        assert repr(get(root, path)) == repr(_walk(root, path)), path.text


def test_literal_dotted_keys_are_found() -> None:
    assert get({"traits.email": "a"}, Path("traits.email")) == "a"
    assert get({"context": {"traits.email": "b"}}, Path("context.traits.email")) == "b"
    assert get({"context.traits": {"email": "c"}}, Path("context.traits.email")) == "c"
    assert get({"a": [{"b": 1}]}, Path("a.0.b")) == 1
    assert get({"a": "text"}, Path("a.b")) is MISSING


def test_set_path_follows_set_value() -> None:
    cases = {"a.b": {"a": {"b": 1}}, "c.0": {"c": [1]}, "x/y.z": {"x/y.z": 1},
             ".lead": {"": {"lead": 1}}, "1e3": {"1000": 1}, " 5": {"5": 1}, "0x10": {"16": 1},
             "1.0": {"1": [1]}, "a.": {"a": 1}, "": {}}
    for key, expected in cases.items():
        target: dict[str, Any] = {}
        set_path(target, key, 1)
        assert target == expected, key
