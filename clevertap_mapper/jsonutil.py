"""JSON encoding and decoding for ctmap's inputs and outputs: orjson, with exact fallbacks.

orjson is fast but holds integers in 64 bits: on input it silently turns a longer integer into
a float, and on output it refuses one. These helpers keep such numbers exact (or refuse them
clearly) instead.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

import orjson

# A run of 19 digits is the shortest literal that can overflow 64 bits. Mapping every digit to
# "0" and searching for the run is ~10x faster than a regex over a 1 KB line.
_DIGITS_TO_ZERO: Final = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_RUN: Final = b"0" * 19
_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1


class OutOfRange:
    """A JSON integer beyond 64 bits, read exactly (by ``loads``): no JavaScript number holds
    it, so CleverTap would not store it as sent. ``first_out_of_range`` finds one; ``dumps``
    writes it back as the number it was."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value

    def message(self) -> str:
        text = str(self.value)
        return (f"the integer {text[:30]}{'...' if len(text) > 30 else ''} has more than 64 "
                "bits, which would lose digits; send it as a string")


def dumps(obj: Any) -> bytes:
    """Compact JSON, non-ASCII kept, NaN as null; exact for integers of any size."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(_nan_to_none(obj), ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False, default=_exact_number).encode("utf-8")


def _exact_number(value: Any) -> int:
    if type(value) is OutOfRange:
        return value.value
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


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


class LongNumberScan:
    """Which lines of a block need ``loads``'s exact path: the 19-digit runs of the whole block,
    found in one pass (0.7 us per 1.2 KB line, against 1.2 us for a pass per line).

    Ask ``needs_exact`` about each line in order; the others can go straight to orjson.
    """

    __slots__ = ("_hit", "_zeros")

    def __init__(self, block: bytes) -> None:
        self._zeros = block.translate(_DIGITS_TO_ZERO)
        self._hit = self._zeros.find(_LONG_RUN)

    def needs_exact(self, start: int, end: int) -> bool:
        """Whether ``block[start:end]`` (the next line, after those asked about) has a run."""
        if self._hit < 0 or self._hit >= end:
            return False
        self._hit = self._zeros.find(_LONG_RUN, end)
        return True


def loads_fast(data: bytes) -> Any:
    """orjson's parse alone: only for text a LongNumberScan has cleared."""
    return orjson.loads(data)


def loads(data: bytes | str, *, js_numbers: bool = False) -> Any:
    """Parse one JSON text.

    An integer beyond 64 bits becomes an OutOfRange (exact), or with ``js_numbers`` the double
    JavaScript would hold (what the reference transformer sees).
    Raises orjson.JSONDecodeError (a ValueError) for text that is not JSON.
    """
    value = orjson.loads(data)
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    if _LONG_RUN not in raw.translate(_DIGITS_TO_ZERO):
        return value  # no integer literal can be out of range: orjson's value is exact
    return json.loads(raw, parse_int=_js_int if js_numbers else _exact_int)


def _exact_int(text: str) -> int | OutOfRange:
    n = int(text)
    return n if _INT64_MIN <= n <= _UINT64_MAX else OutOfRange(n)


def _js_int(text: str) -> int | float:
    n = int(text)
    return n if _INT64_MIN <= n <= _UINT64_MAX else float(n)


def first_out_of_range(value: Any) -> OutOfRange | None:
    """The first OutOfRange in a value ``loads`` gave, if any (for the few lines that needed
    its exact path)."""
    stack = [value]  # (not recursive: a line may nest 1024 levels deep)
    while stack:
        item = stack.pop()
        if type(item) is OutOfRange:
            return item
        if type(item) is dict:
            stack.extend(reversed(list(item.values())))
        elif type(item) is list:
            stack.extend(reversed(item))
    return None
