"""JSON encoding and decoding for ctmap's inputs and outputs.

Input is read with msgspec, which keeps every integer exact (orjson silently turns one beyond
64 bits into a float), and only in compat mode with orjson, whose floats for such integers
are the doubles JavaScript reads. Output is written with orjson, which refuses an integer
beyond 64 bits: ``dumps`` writes those exactly instead (the checks reject records that hold
one, see checks.py, unless told to let them through).
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgspec
import orjson

_decode = msgspec.json.Decoder().decode


def dumps(obj: Any) -> bytes:
    """Compact JSON, non-ASCII kept, NaN as null; exact for integers of any size."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(_nan_to_none(obj), ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")


def trimmed(data: bytes) -> bytes:
    """``data`` in a bytes object of exactly its size, for encoded text held in numbers.

    orjson returns its whole growth buffer (some 4-8 KB even for a short text), so a thousand
    encoded 1 KB records held for an upload body cost 8 MB instead of 1 MB.
    """
    return bytes(memoryview(data))


def _nan_to_none(v: Any) -> Any:
    if type(v) is float and not math.isfinite(v):
        return None
    if type(v) is dict:
        return {k: _nan_to_none(x) for k, x in v.items()}
    if type(v) is list:
        return [_nan_to_none(x) for x in v]
    return v


def loads(data: bytes | str, *, js_numbers: bool = False) -> Any:
    """Parse one JSON text, integers exact (or, with ``js_numbers``, an integer beyond 64 bits
    as the double JavaScript would hold: what the reference transformer sees).

    Raises orjson.JSONDecodeError (a ValueError) for text that is not JSON, with orjson's
    message (line and column). Text that only orjson reads (nested past msgspec's recursion
    limit, some 990 levels, but within orjson's 1024) is orjson's value.
    """
    if js_numbers:
        return orjson.loads(data)
    try:
        return _decode(data)
    except (msgspec.DecodeError, RecursionError):
        return orjson.loads(data)
