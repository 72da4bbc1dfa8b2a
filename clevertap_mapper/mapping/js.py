"""JavaScript value semantics the reference transformer relies on.

The reference is written in JavaScript, so "truthy", ``String(x)``, ``Number(x)``,
``JSON.stringify`` and ``String.prototype.trim`` decide what it sends. These helpers reproduce
them for JSON values in Python (see spec/reference-mapping.md, "Conventions"). Python's own
truthiness differs (``[]`` and ``{}`` are falsy, ``True == 1``), so the core never uses it on
event values.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Final

import orjson


class _Missing:
    """A key that is absent (JS ``undefined``); distinct from JSON ``null`` (None)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

# ECMAScript WhiteSpace + LineTerminator: what String.prototype.trim removes.
JS_WHITESPACE: Final = (
    "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)

_MAX_SAFE_INT: Final = 2**53


def truthy(x: Any) -> bool:
    """JS truthiness: false for missing, null, false, 0, NaN and "" only ({} and [] are true)."""
    if x is None or x is False or x is MISSING:
        return False
    t = type(x)
    if t is str:
        return bool(x != "")
    if t is int:
        return bool(x != 0)
    if t is float:
        return bool(x == x and x != 0.0)
    return True


def usable(x: Any) -> bool:
    """The reference's "V": anything except missing, null, "" and NaN (0 and false count)."""
    if x is None or x is MISSING:
        return False
    t = type(x)
    if t is str:
        return bool(x != "")
    if t is float:
        return bool(x == x)
    return True


def defined(x: Any) -> bool:
    """The reference's "D": not missing and not null."""
    return x is not None and x is not MISSING


def is_zero_or_false(x: Any) -> bool:
    """``x === 0 || x === false`` with JS's type-strict equality (True is not 1 here)."""
    if x is False:
        return True
    t = type(x)
    return (t is int or t is float) and x == 0


def _double(n: int) -> float:
    """The double JS holds for an integer: Infinity past the doubles' range (~1.8e308)."""
    try:
        return float(n)
    except OverflowError:
        return math.inf if n > 0 else -math.inf


def number_to_string(x: float | int) -> str:
    """JS ``Number.prototype.toString()``: ``1.0`` -> ``"1"``, ``1e21`` -> ``"1e+21"``."""
    if type(x) is int:
        if -_MAX_SAFE_INT <= x <= _MAX_SAFE_INT:
            return str(x)
        x = _double(x)  # JS holds every number as a double
    assert isinstance(x, float)
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    if x.is_integer() and abs(x) <= _MAX_SAFE_INT:
        return str(int(x))
    sign, digit_tuple, exponent = Decimal(repr(x)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exponent, int)
    # Decimal point position n relative to the digit string, as in ECMA-262 Number::toString.
    n = exponent + len("".join(map(str, digit_tuple)))
    k = len(digits)
    s = "-" if sign else ""
    if k <= n <= 21:
        return s + digits + "0" * (n - k)
    if 0 < n <= 21:
        return s + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return s + "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{s}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def js_numbers(v: Any) -> Any:
    """``v`` with every integer beyond 2**53 rounded to the double JS would hold.

    Copy-on-write: ``v`` itself is never changed (records share nested values with the event
    they came from); a container is copied only when something inside it changes.
    """
    t = type(v)
    if t is int:
        # int(JS's text of the double): the integer JSON.stringify would print
        if -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT:
            return v
        double = _double(v)
        if not math.isfinite(double):
            return None  # JS holds Infinity, which JSON.stringify writes as null
        # From 1e21 JS writes an exponent, as orjson writes the double: "1.2e+29" both.
        return int(number_to_string(double)) if abs(double) < 1e21 else double
    if t is dict:
        changed: dict[str, Any] | None = None
        for k, x in v.items():
            tx = type(x)
            if tx is int or tx is dict or tx is list:
                y = js_numbers(x)
                if y is not x:
                    if changed is None:
                        changed = dict(v)
                    changed[k] = y
        return v if changed is None else changed
    if t is list:
        items: list[Any] | None = None
        for i, x in enumerate(v):
            tx = type(x)
            if tx is int or tx is dict or tx is list:
                y = js_numbers(x)
                if y is not x:
                    if items is None:
                        items = list(v)
                    items[i] = y
        return v if items is None else items
    return v


def to_string(x: Any) -> str:
    """JS ``String(x)`` for JSON values (objects -> ``[object Object]``, arrays joined by ``,``)."""
    t = type(x)
    if t is str:
        return x  # type: ignore[no-any-return]
    if x is True:
        return "true"
    if x is False:
        return "false"
    if x is None:
        return "null"
    if x is MISSING:
        return "undefined"
    if t is int or t is float:
        return number_to_string(x)
    if t is list:
        return ",".join("" if (v is None or v is MISSING) else to_string(v) for v in x)
    return "[object Object]"


_DECIMAL_LITERAL: Final = re.compile(
    r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Infinity)\Z"
)
_RADIX_LITERAL: Final = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)\Z")


def to_number(x: Any) -> float:
    """JS ``Number(x)`` for JSON values; NaN where JS gives NaN."""
    if x is True:
        return 1.0
    if x is False or x is None:
        return 0.0
    t = type(x)
    if t is int:
        return _double(x)
    if t is float:
        return float(x)
    if t is str:
        s = x.strip(JS_WHITESPACE)
        if s == "":
            return 0.0
        if _DECIMAL_LITERAL.match(s):
            return float(s.replace("Infinity", "inf"))
        if _RADIX_LITERAL.match(s):
            return _double(int(s, 0))
        return math.nan
    if t is list:
        if not x:
            return 0.0
        if len(x) == 1:
            return to_number(to_string(x[0]))
        return math.nan
    return math.nan


_ARRAY_INDEX: Final = re.compile(r"(?:0|[1-9][0-9]{0,9})\Z")


def is_array_index(key: str) -> bool:
    """JS orders object keys that are array indices ("0", "17", not "01") first, ascending."""
    # The first character alone settles almost every key, without the regex.
    return (key != "" and "0" <= key[0] <= "9" and bool(_ARRAY_INDEX.match(key))
            and int(key) < 2**32 - 1)


def js_key_order(d: dict[str, Any]) -> list[str]:
    """Own-key order of a JS object built from ``d``: integer-like keys first, ascending."""
    ints = [k for k in d if is_array_index(k)]
    if not ints:
        return list(d)
    ints.sort(key=int)
    rest = [k for k in d if not is_array_index(k)]
    return ints + rest


def _needs_js_encoder(v: Any) -> bool:
    """True when orjson's output could differ from JSON.stringify for ``v``."""
    t = type(v)
    if t is str:
        return False
    if t is dict:
        return _object_needs_js_encoder(v)
    if t is list:
        return _array_needs_js_encoder(v)
    if t is float:
        # Plain decimals print alike in orjson and JS; integral floats (1.0), exponents and
        # non-finite values do not (orjson writes 5e-6 where JS writes 0.000005).
        return v.is_integer() or not (1e-5 <= abs(v) < 1e15)
    if t is int:
        return not (-_MAX_SAFE_INT <= v <= _MAX_SAFE_INT)
    return False


def _js_json_slow(v: Any, exact_ints: bool) -> str:
    t = type(v)
    if t is dict:
        parts = []
        for k in js_key_order(v):
            x = v[k]
            if x is MISSING:
                continue
            parts.append(orjson.dumps(k).decode() + ":" + _js_json_slow(x, exact_ints))
        return "{" + ",".join(parts) + "}"
    if t is list:
        return "[" + ",".join("null" if x is MISSING else _js_json_slow(x, exact_ints)
                              for x in v) + "]"
    if t is float or t is int:
        if t is float and (v != v or math.isinf(v)):
            return "null"
        if t is int and exact_ints:
            return str(v)
        text = number_to_string(v)
        return "null" if text.endswith("Infinity") else text  # an int past the doubles
    return orjson.dumps(v).decode()


# Typed containers, so that compiled code walks them with the dict and list primitives.
def _object_needs_js_encoder(d: dict[str, Any]) -> bool:
    return any(is_array_index(k) or _needs_js_encoder(x) for k, x in d.items())


def _array_needs_js_encoder(items: list[Any]) -> bool:
    return any(_needs_js_encoder(x) for x in items)


def json_stringify(v: Any, exact_ints: bool = False) -> str:
    """JS ``JSON.stringify(v)``: compact, non-ASCII kept, JS number and key order.

    ``exact_ints``: integers past 2**53 are written as they are, not as the double JS holds.
    """
    if _needs_js_encoder(v):
        return _js_json_slow(v, exact_ints)
    return orjson.dumps(v).decode()


def trim(s: str) -> str:
    """JS ``String.prototype.trim`` (differs from ``str.strip()`` on U+FEFF and U+001C-U+001F)."""
    return s.strip(JS_WHITESPACE)


_HTML_ESCAPES: Final = str.maketrans({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;",
    "=": "&#x3D;",
})


def html_escape(s: str) -> str:
    """Handlebars' ``{{value}}`` escaping, which the reference applies to page/screen names."""
    return s.translate(_HTML_ESCAPES)
