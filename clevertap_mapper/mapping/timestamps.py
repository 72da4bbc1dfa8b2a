"""Timestamp parsing: one place for every date the mapping reads.

Two rule sets live here:
- ``reference_ts``: what the reference does to a ``ts`` value (spec section 7): numbers and
  numeric-looking strings pass through unchanged; date strings become epoch seconds through
  JavaScript's ``Date`` parser; unparseable ones become NaN (sent as ``null``).
- ``epoch_seconds``: ctmap's default (fix D2): every accepted value becomes integer epoch
  seconds, and anything that is not a time is refused (``None``).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from clevertap_mapper.mapping.js import to_number, to_string, truthy

_MS_THRESHOLD_INT: Final = 10**11  # 1e11 s is the year 5138: anything larger is ms, us or ns.
# A birthday in seconds is before 2100 (4102444800 is 2100-01-01): a larger number is ms, us
# or ns. The event-time threshold would read the ms of a birthday from late 1966 to early
# 1973 (under 1e11 ms from 1970) as seconds, centuries ahead.
BIRTHDAY_MAX_SECONDS: Final = 4_102_444_800
# Digits of the longest integer text read exactly; a longer one is read as a float (which is
# infinite from 309 digits: not a time), as int() refuses texts of over 4300 digits.
_MAX_INT_DIGITS: Final = 30

_NUMERIC: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_INTEGER: Final = re.compile(r"[+-]?[0-9]+\Z")
MICROS: Final = 1_000_000  # microseconds a second

# ECMAScript's date-time string format (ECMA-262 21.4.1.32), which V8 tries first.
_ES_ISO: Final = re.compile(
    r"(?P<y>[+-]\d{6}|\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2}))?)?"
    r"(?:T(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?"
    r"(?P<z>Z|[+-]\d{2}:\d{2})?)?\Z"
)
# Forms V8's legacy parser reads that show up in real data.
_LEGACY_YMD: Final = re.compile(
    r"(?P<y>\d{4})[-/](?P<mo>\d{1,2})[-/](?P<d>\d{1,2})"
    r"(?:[ T]+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d+))?)?)?"
    r"\s*(?P<z>Z|UTC|GMT|[+-]\d{2}:?\d{2})?\Z", re.IGNORECASE
)
_LEGACY_MDY: Final = re.compile(
    r"(?P<mo>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"
    r"(?:\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?\Z"
)
_LEGACY_BARE_NUMBERS: Final = re.compile(
    r"(?:[a-z]+\s+)*(?P<a>\d{1,2})(?:[,/ ](?P<b>\d{1,2}))?\Z", re.IGNORECASE)
_MONTHS: Final = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_LEGACY_MONTH_NAME: Final = re.compile(
    r"(?:[a-z]+,?\s+)?(?P<mon>[a-z]{3})[a-z]*\.?\s+(?P<d>\d{1,2}),?\s+(?P<y>\d{4})"
    r"(?:\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?\Z", re.IGNORECASE
)


def _utc_ms(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0,
            frac: str | None = None, offset_min: int = 0) -> float:
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 24 and mi <= 59 and s <= 59):
        return math.nan
    if h == 24 and (mi or s or (frac and int(frac))):
        return math.nan
    from calendar import timegm  # noqa: PLC0415 - compat mode's dates only: not at every start

    try:
        base = timegm((y, mo, d, 0, 0, 0, 0, 0, 0))
        datetime(y, mo, d)  # validates the day of the month
    except (ValueError, OverflowError):
        return math.nan
    ms = (base + h * 3600 + mi * 60 + s - offset_min * 60) * 1000.0
    if frac:
        ms += int(frac[:3].ljust(3, "0"))
    return ms


def _offset_minutes(z: str | None) -> int:
    if not z or z.upper() in ("Z", "UTC", "GMT"):
        return 0
    sign = -1 if z[0] == "-" else 1
    digits = z[1:].replace(":", "")
    return sign * (int(digits[:2]) * 60 + int(digits[2:4]))


def js_date_parse(text: str) -> float:
    """Milliseconds since the epoch as JS ``Date.parse`` gives them in a UTC container; NaN if none.

    Covers ECMAScript's ISO format exactly, plus the legacy forms seen in real dumps
    (``2021-03-04 05:06:07``, ``02/25/2020``, RFC 2822 dates, ``March 10, 2021``).
    Offset-less date-times are read as UTC: the reference runs with TZ=UTC (spec section 18).
    """
    s = text.strip()
    m = _ES_ISO.match(s)
    if m:
        y = int(m["y"])
        return _utc_ms(y, int(m["mo"] or 1), int(m["d"] or 1), int(m["h"] or 0),
                       int(m["mi"] or 0), int(m["s"] or 0), m["f"], _offset_minutes(m["z"]))
    m = _LEGACY_BARE_NUMBERS.match(s)
    if m:
        # V8's legacy parser skips unknown leading words and reads 1-2 small numbers as
        # month[/day] of 2001 ("Order 5" -> 2001-05-01, "1,2" -> 2001-01-02); "0" is 2000.
        month, day = int(m["a"]), int(m["b"] or 1)
        if month == 0 and m["b"] is None:
            return 946684800000.0
        return _utc_ms(2001, month, day)
    for pattern in (_LEGACY_YMD, _LEGACY_MDY):
        m = pattern.match(s)
        if m:
            return _utc_ms(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"] or 0),
                           int(m["mi"] or 0), int(m["s"] or 0), m.groupdict().get("f"),
                           _offset_minutes(m.groupdict().get("z")))
    m = _LEGACY_MONTH_NAME.match(s)
    if m and m["mon"].lower() in _MONTHS:
        return _utc_ms(int(m["y"]), _MONTHS[m["mon"].lower()], int(m["d"]), int(m["h"] or 0),
                       int(m["mi"] or 0), int(m["s"] or 0))
    if "," in s and any(c.isalpha() for c in s):
        from email.utils import parsedate_tz  # noqa: PLC0415 - rare: a process's start spared

        parsed = parsedate_tz(s)
        if parsed is not None:
            y, mo, d, h, mi, sec = parsed[:6]
            off = (parsed[9] or 0) // 60
            return _utc_ms(y, mo, d, h, mi, sec, None, off)
    return math.nan


def reference_ts(raw: Any) -> Any:
    """The reference's ``ts`` conversion: dates -> epoch seconds, everything else untouched.

    Only a truthy value whose ``Number()`` is 0 or NaN is parsed as a date; numbers and
    numeric strings (``"1468308340"``, ms epochs) pass through as they are.
    """
    if not truthy(raw):
        return raw
    n = to_number(raw)
    if n == 0 or n != n:
        if type(raw) is dict:
            return math.nan
        ms = js_date_parse(to_string(raw))
        return math.nan if ms != ms else math.floor(ms / 1000)
    return raw


def _scale_to_seconds(x: float, limit: int) -> float:
    while abs(x) >= limit:
        x /= 1000
    return x


def _scale_int_to_seconds(x: int, limit: int) -> int:
    """``_scale_to_seconds`` floored, exactly (a ns epoch is past a double's 2**53)."""
    divisor = 1
    while abs(x) >= limit * divisor:
        divisor *= 1000
    return x // divisor  # floored once, as the float rule floors the scaled value


_EPOCH: Final = datetime(1970, 1, 1)
_EPOCH_UTC: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_from_iso: Final = datetime.fromisoformat
# (tuple[int, ...]: compiled, a tuple of a fixed length is held unboxed, and indexing it by a
# variable builds the tuple again.)
_MONTH_DAYS: Final[tuple[int, ...]] = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_FRACTION_SCALE: Final[tuple[int, ...]] = (0, 100_000, 10_000, 1000, 100, 10, 1)  # by digits
_DASH: Final = ord("-")
_PLUS: Final = ord("+")
_COLON: Final = ord(":")
_DOT: Final = ord(".")
_T: Final = ord("T")
_Z: Final = ord("Z")


def _two_digits(text: str, i: int) -> int:
    """The number written by the two ASCII digits at ``i``, or -1."""
    a = ord(text[i]) - 48
    b = ord(text[i + 1]) - 48
    if a < 0 or a > 9 or b < 0 or b > 9:
        return -1
    return a * 10 + b


def _days_from_march_0000(y: int, m: int, d: int) -> int:
    """Days from 0000-03-01 to a date of the proleptic Gregorian calendar (year >= 1).

    (Counted from there, not from 1970, so that every product in ``_iso_parts`` is of small
    non-negative numbers: compiled, a product of an operand of 2**30 or more, or a negative
    one, is made with Python's long integers, which took longer than fromisoformat.)
    """
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy


_SECONDS_TO_1970: Final = 719468 * 86400  # from 0000-03-01 to 1970-01-01
# _iso_parts pays only compiled: as interpreted Python it takes five times fromisoformat's
# time, so the pure build (no C compiler) keeps to fromisoformat.
_READ_ISO_HERE: Final = __file__.endswith((".so", ".pyd"))  # an extension module: compiled


def _iso_parts(text: str) -> tuple[int, int]:
    """(seconds since the epoch, microseconds after them) of the ISO-8601 forms events carry,
    read in integer arithmetic; (0, -1) for any other text.

    The forms: ``YYYY-MM-DD``, or ``YYYY-MM-DDTHH:MM:SS`` with 1-6 digits of fraction or none,
    then ``Z``, ``+HH:MM``, ``-HH:MM`` or nothing (UTC). Events carry up to four such times,
    and this takes a third of fromisoformat and timedelta's time. Every other text, and an
    impossible date, goes to fromisoformat, which decides (tests/test_properties.py holds the
    two to the same results).
    """
    n = len(text)
    if n != 10 and n < 19:
        return 0, -1
    century = _two_digits(text, 0)
    y = _two_digits(text, 2)
    mo = _two_digits(text, 5)
    d = _two_digits(text, 8)
    if (century < 0 or y < 0 or mo < 1 or mo > 12 or d < 1 or ord(text[4]) != _DASH
            or ord(text[7]) != _DASH):
        return 0, -1
    y += century * 100
    if y < 1:
        return 0, -1
    if d > 28:
        leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
        if d > _MONTH_DAYS[mo] + (1 if mo == 2 and leap else 0):
            return 0, -1
    seconds = _days_from_march_0000(y, mo, d) * 86400
    if n == 10:
        return seconds - _SECONDS_TO_1970, 0
    h = _two_digits(text, 11)
    mi = _two_digits(text, 14)
    s = _two_digits(text, 17)
    if (ord(text[10]) != _T or ord(text[13]) != _COLON or ord(text[16]) != _COLON or h < 0
            or h > 23 or mi < 0 or mi > 59 or s < 0 or s > 59):
        return 0, -1
    seconds += h * 3600 + mi * 60 + s
    pos = 19
    fraction = 0
    if pos < n and ord(text[pos]) == _DOT:
        end = pos + 1
        while end < n and end - pos <= 7:
            digit = ord(text[end]) - 48
            if digit < 0 or digit > 9:
                break
            fraction = fraction * 10 + digit
            end += 1
        places = end - pos - 1
        if places < 1 or places > 6:
            return 0, -1
        fraction *= _FRACTION_SCALE[places]
        pos = end
    if pos < n:
        sign = ord(text[pos])
        if sign == _Z and pos + 1 == n:
            pass
        elif pos + 6 == n and ord(text[pos + 3]) == _COLON:
            oh = _two_digits(text, pos + 1)
            om = _two_digits(text, pos + 4)
            if oh < 0 or oh > 23 or om < 0 or om > 59:
                return 0, -1
            if sign == _PLUS:  # the local time is ahead of UTC by the offset
                seconds -= oh * 3600 + om * 60
            elif sign == _DASH:
                seconds += oh * 3600 + om * 60
            else:
                return 0, -1
        else:
            return 0, -1
    return seconds - _SECONDS_TO_1970, fraction


def iso_micros(text: str) -> int | None:
    """Microseconds since the epoch of an ISO-8601 date or date-time, exactly; offset-less
    read as UTC."""
    if _READ_ISO_HERE:
        seconds, fraction = _iso_parts(text)
        if fraction >= 0:
            return seconds * MICROS + fraction
    return _stdlib_iso_micros(text)


def _stdlib_iso_micros(text: str) -> int | None:
    """``iso_micros`` by fromisoformat: any form it takes, or None."""
    try:
        dt = _from_iso(text)
    except ValueError:
        try:  # it takes no surrounding white space: strip only the texts that have some
            dt = _from_iso(text.strip())
        except ValueError:
            return None
    # What ``dt.replace(tzinfo=UTC).timestamp()`` computes, in whole microseconds, without
    # its 0.6 us detour through a second datetime for the offset-less dates (birthdays).
    return (dt - (_EPOCH if dt.tzinfo is None else _EPOCH_UTC)) // _MICROSECOND


def iso_seconds(text: str) -> int | None:
    """``iso_micros`` in whole seconds, floored (what an event time is sent as)."""
    if _READ_ISO_HERE:
        seconds, fraction = _iso_parts(text)
        if fraction >= 0:
            return seconds  # floored: the fraction is never negative
    micros = _stdlib_iso_micros(text)
    return None if micros is None else micros // MICROS


def epoch_seconds(raw: Any, *, allow_negative: bool = False,
                  max_seconds: int = _MS_THRESHOLD_INT) -> int | None:
    """ctmap's ``ts`` rule (fix D2): integer epoch seconds, or None when ``raw`` is not a time.

    Numbers and numeric strings are seconds, floored; values of 1e11 and more are divided by
    1000 until below (so ms, us and ns epochs work; integers exactly); ``max_seconds``
    lowers that bound (birthdays: BIRTHDAY_MAX_SECONDS). ISO-8601 strings with
    an offset are exact; without one, or date-only (also ``20210310``), they are UTC.
    Booleans, objects, garbage and values <= 0 (unless ``allow_negative``, for birthdays) are
    refused.
    """
    t = type(raw)
    if t is int:
        result = _scale_int_to_seconds(raw, max_seconds)
    elif t is float:
        if not math.isfinite(raw):
            return None
        result = math.floor(_scale_to_seconds(raw, max_seconds))
    elif t is str:
        if _READ_ISO_HERE:
            seconds, fraction = _iso_parts(raw)  # the usual date or date-time, read at once
            if fraction >= 0:
                return seconds if seconds > 0 or allow_negative else None
        text = raw.strip()
        micros = None
        if len(text) == 8 and text.isdigit():
            # ISO's basic date (20210310); as seconds it would be a day of 1970-73, which no
            # event time or birthday given so is: an impossible date is not a time.
            micros = iso_micros(text)
            if micros is None:
                return None
        elif text[4:5] == "-" and text[:4].isdigit():  # a year and a dash: a date
            micros = iso_micros(text)
        if micros is not None:
            result = micros // MICROS
        elif len(text.lstrip("+-")) <= _MAX_INT_DIGITS and _INTEGER.match(text):
            result = _scale_int_to_seconds(int(text), max_seconds)
        elif _NUMERIC.match(text):
            value = float(text)
            if not math.isfinite(value):
                return None
            result = math.floor(_scale_to_seconds(value, max_seconds))
        else:
            micros = iso_micros(text) if text[:4].isdigit() else None
            if micros is None:
                return None
            result = micros // MICROS
    else:
        return None
    if result <= 0 and not allow_negative:
        return None
    return result
