"""The pure mapping core: one RudderStack event in, CleverTap records (or a MappingError) out.

It follows spec/reference-mapping.md section by section; the section numbers in comments point
there. In the default mode the six fixes of shared/DESIGN.md section 2 (D1-D6) apply, each in
one named function below; ``compat="rudderstack"`` skips them. Even in compat mode, events the
reference crashes on (a 500) or would send without any identity are rejected, because
CleverTap cannot take them.

No I/O, clock, environment or global state: safe to call from any thread or process.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

import orjson

from clevertap_mapper.errors import MappingError
from clevertap_mapper.mapping import tables as T
from clevertap_mapper.mapping.js import (
    MISSING,
    defined,
    html_escape,
    is_zero_or_false,
    js_numbers,
    json_stringify,
    number_to_string,
    to_string,
    trim,
    truthy,
    usable,
)
from clevertap_mapper.mapping.paths import (
    OBJECT_PROTOTYPE_MEMBERS,
    RESERVED_KEYS,
    Path,
    get,
    own_items,
    set_path,
)
from clevertap_mapper.mapping.reads import CONTEXT_DOTTED, TOP_DOTTED
from clevertap_mapper.mapping.timestamps import (
    BIRTHDAY_MAX_SECONDS,
    MICROS,
    epoch_seconds,
    iso_micros,
    iso_seconds,
    reference_ts,
)

if TYPE_CHECKING:
    from clevertap_mapper.config import MapperConfig
    from clevertap_mapper.mapping.trace import Trace

Record = dict[str, Any]

MAX_IDENTITY_LENGTH = 1024  # CleverTap identities: strings of at most 1024 characters
_FUNCTION = object()  # a JS function value (Object.prototype member): vanishes from JSON
# A quarter of a typical dump: one error for all of them, never raised (map_event raises a
# copy), so no traceback ever hangs on it.
_ANONYMOUS = MappingError("anonymous_not_allowed", "the event has no userId and anonymous "
                          "tracking is off; add a userId or rerun with --track-anonymous")


def map_event(event: Any, config: MapperConfig, trace: Trace | None = None) -> list[Record]:
    """Map one RudderStack event to its CleverTap records (1, or 2 for identify + device token).

    Raises MappingError (with ``.code`` and ``.message``) when the event cannot be sent.

    >>> from clevertap_mapper import MapperConfig
    >>> map_event({"type": "track", "userId": "u1", "event": "Signed Up",
    ...            "timestamp": "2024-01-02T03:04:05Z"}, MapperConfig())
    [{'evtName': 'Signed Up', 'evtData': {}, 'type': 'event', 'ts': 1704164645, 'identity': 'u1'}]
    """
    outcome = map_or_reject(event, config, trace)
    if isinstance(outcome, MappingError):
        raise MappingError(outcome.code, outcome.message)  # a copy: outcome may be shared
    return outcome


# The usual spellings of ``type``, looked up rather than lowered: lower() makes a new string.
_LOWER_TYPES: Final = {t: t for t in ("identify", "track", "page", "screen", "alias")}


def lower_type(raw_type: str) -> str:
    """``raw_type.lower()``."""
    return _LOWER_TYPES.get(raw_type) or raw_type.lower()


def map_or_reject(event: Any, config: MapperConfig,
                  trace: Trace | None = None) -> list[Record] | MappingError:
    """``map_event``'s outcome as a value: the MappingError is returned, not raised.

    What every command runs. The verdicts reached before any mapping (an anonymous event, a
    quarter of a typical dump, is one) are returned without raising at all: compiled, an
    exception costs a microsecond on its way through two frames.
    """
    if type(event) is not dict:
        return MappingError("not_an_object", "the event is not a JSON object; each line must "
                            "hold one RudderStack event object")
    raw_type = event.get("type", MISSING)
    if not truthy(raw_type):
        return MappingError("missing_type", "the event has no `type`; set it to identify, "
                            "track, page, screen or alias")
    if type(raw_type) is not str:
        return MappingError("unsupported_type", "`type` must be a string, not "
                            f"{_describe(raw_type)} (the reference crashes on this event)")
    kind = lower_type(raw_type)
    try:
        if kind == "identify":
            records = _identify(event, config, trace)
        elif kind in ("track", "page", "screen"):
            # The generic userId lookup, read once: s10.1 and s10.5 use it.
            uid, uid_path = _first_usable(event, T.USER_ID_ONLY)
            if not config.track_anonymous and not truthy(uid):  # s10.1
                return _ANONYMOUS
            records = [_event(event, kind, uid, uid_path, config, trace)]
        elif kind == "alias":
            records = [_alias(event, config, trace)]
        else:
            return MappingError("unsupported_type", f"event type {raw_type!r} is not supported "
                                "by CleverTap's destination; only identify, track, page, "
                                "screen and alias are")
        if config.compat:
            # The reference holds every number as a JS double: integers past 2**53 lose digits.
            records = js_numbers(records)
    except MappingError as exc:
        return exc
    except (RecursionError, orjson.JSONEncodeError):
        # Read at up to 1024 levels, but a nested property is written as JSON text, which
        # orjson does to 255 levels, and the interpreter's stack ends near 1000.
        return MappingError("nesting_too_deep", "the event nests objects or arrays over 255 "
                            "levels deep, more than its JSON can be written with; flatten it")
    return records


# ---------------------------------------------------------------------------- lookups (s3, s4)

def _first_usable(event: Any, paths: tuple[Path, ...]) -> tuple[Any, Path | None]:
    """The first usable value (spec s3: not missing, null, "" or NaN) along ``paths``."""
    for path in paths:
        value = get(event, path)
        if type(value) is str:  # the common case, tested without a call
            if value:
                return value, path
        elif usable(value):
            return value, path
    return None, None


def _accepted(value: Any) -> bool:
    """constructPayload keeps a value that is truthy, ``0`` or ``false``."""
    return truthy(value) or is_zero_or_false(value)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if type(value) is dict:
        return "an object"
    if type(value) is list:
        return "an array"
    if type(value) is str:
        return "a string"
    return "a number"


# ------------------------------------------------------------------- custom fields (s5, s6)

def _extract_custom(event: Any, payload: Record, roots: tuple[Path, ...],
                    excluded: frozenset[str], trace: Trace | None, prefix: str) -> None:
    """extractCustomFields: copy non-excluded keys of each root; later roots win (spec s5)."""
    keys: list[str] = []
    for root in roots:
        obj = get(event, root)
        if not truthy(obj):
            continue
        if type(obj) is dict:
            new = [k for k in obj if k not in excluded and k not in RESERVED_KEYS]
            # The reference walks every key kept so far again for each later root.
            walk = new if not keys else keys + new
            keys.extend(new)
            for k in walk:
                if k in obj:
                    value = obj[k]
                elif k in OBJECT_PROTOTYPE_MEMBERS:
                    value = _FUNCTION  # JS finds the inherited member
                else:
                    continue
                set_path(payload, k, value)
                if trace is not None:
                    trace.add("mapped", f"{prefix}{k}", f"{prefix}{k} <- {root.text}.{k} (custom)",
                              source=f"{root.text}.{k}")
        else:
            # A string or array root: keys are indices, lookups return the whole string.
            items = own_items(obj)
            new = [k for k, _ in items if k not in excluded and k not in RESERVED_KEYS]
            keys.extend(new)
            whole = obj if type(obj) is str else None
            for k, v in items:
                if k in new:
                    set_path(payload, k, whole if whole is not None else v)
                    if trace is not None:
                        trace.add("mapped", f"{prefix}{k}", f"{prefix}{k} <- {root.text}.{k} "
                                  "(custom, from a non-object)", source=root.text)
        if trace is not None:
            for k in (obj if type(obj) is dict else [k for k, _ in own_items(obj)]):
                if k in excluded and k not in ("ts", "overrideFields"):
                    trace.add("dropped", f"{root.text}.{k}", f"{root.text}.{k}: reserved for a "
                              "mapped CleverTap field, not copied as a custom field")
                elif k in RESERVED_KEYS:
                    trace.add("dropped", f"{root.text}.{k}", f"{root.text}.{k}: a reserved "
                              "JavaScript name, not copied")


def _stringify(payload: Any, evt_name: Any, trace: Trace | None, prefix: str,
               exact_ints: bool) -> Record:
    """convertObjectAndArrayToString: nested values become JSON text, except Items (spec s6).

    ``exact_ints`` (the default mode): an integer past 2**53 keeps its digits in the text, as
    it does outside one; the reference writes the double JS holds.
    """
    if not truthy(payload):
        return {}
    out: Record = dict(payload) if type(payload) is dict else dict(own_items(payload))
    charged = evt_name == "Charged"
    for k, v in out.items():  # only values are replaced: the dict keeps its size
        tv = type(v)
        if (tv is dict or tv is list) and k not in T.UNSTRINGIFIED_KEYS:
            if tv is list and k == "Items" and charged:
                continue  # stringified and parsed straight back (s6 step 3): the same list
            out[k] = json_stringify(v, exact_ints)
            if trace is not None and not (k == "Items" and charged):
                trace.add("changed", f"{prefix}{k}", f"{prefix}{k}: stringified, CleverTap "
                          "allows no nested values here", before=v, after=out[k])
    if charged and truthy(out.get("Items", MISSING)):
        out["Items"] = _charged_items(payload.get("Items") if type(payload) is dict else None,
                                      out["Items"])
    return out


def _charged_items(original: Any, encoded: Any) -> Any:
    """The reference parses Items back from JSON and wants an array whose first item is an
    object."""
    if type(original) is list:
        items: Any = original  # JSON.parse(JSON.stringify(list)) is the list itself
    else:
        try:
            items = orjson.loads(to_string(encoded))
        except orjson.JSONDecodeError:
            raise MappingError("invalid_products", "`properties.products` is a string that is "
                               "not JSON; send products as an array of objects") from None
    if type(items) is not list or not items or not (
            items[0] is None or type(items[0]) in (dict, list)):
        raise MappingError("invalid_products", "Products property value must be an array of "
                           "objects: send `properties.products` as [{...}, ...]")
    return items


# ---------------------------------------------------------------------------- identities

def _identity(value: Any, config: MapperConfig, where: str, trace: Trace | None) -> Any:
    """Fix D5: identities are strings of at most 1024 characters (numbers become decimal text)."""
    if config.compat:
        return value
    t = type(value)
    if t is str:
        if len(value) > MAX_IDENTITY_LENGTH:
            if trace is not None:
                trace.add("rejected", where, f"{where}: longer than {MAX_IDENTITY_LENGTH} "
                          "characters, rejected (the reference would send it)", fix="D5")
            raise MappingError("invalid_identity", f"{where} is {len(value)} characters long; "
                               f"CleverTap takes identities of at most {MAX_IDENTITY_LENGTH}")
        return value
    if t is int or t is float:
        # An integer exactly: as a JS double, ids past 2**53 would name another user.
        text = str(value) if t is int else number_to_string(value)
        if trace is not None:
            trace.add("fix", where, f"{where}: number sent as a string", fix="D5", before=value,
                      after=text)
        return text
    if trace is not None:
        trace.add("rejected", where, f"{where}: not a string or number, rejected (the reference "
                  "would send it)", fix="D5", before=value)
    raise MappingError("invalid_identity", f"{where} is {_describe(value)}; CleverTap identities "
                       "are strings: send the user id as text")


def _set_root_identity(record: Record, user_id: Any, user_path: Path | None,
                       config: MapperConfig, trace: Trace | None, what: str) -> None:
    """objectId mapping off (s8.2, s10.5): ``identity`` is the generic userId lookup.

    The reference sends a record without any identity when there is none; CleverTap refuses
    it (523), so ctmap rejects the event in both modes (fix D3 in the default mode).
    """
    if user_id is None:
        if trace is not None and not config.compat:
            sent = "identity null" if what == "identify" else "the event without identity"
            trace.add("fix", "identity", f"no id anywhere: rejected (the reference sends {sent}, "
                      "which CleverTap refuses with 523)", fix="D3")
        raise _no_identity(what)
    record["identity"] = _identity(user_id, config, "identity", trace)
    if trace is not None and user_path:
        trace.add("mapped", "identity", f"identity <- {user_path.text}", source=user_path.text)


def _no_identity(what: str) -> MappingError:
    return MappingError("missing_identity", f"the {what} has no userId or anonymousId, so "
                        "CleverTap cannot tell whose it is; add an id (or drop the event)")


# ---------------------------------------------------------------------------- timestamps (s7)

def _event_time(event: dict[str, Any]) -> tuple[int | None, str]:
    """Fix D1: the event's own time, as RudderStack's processor computes ``timestamp``."""
    ts = event.get("timestamp")
    if type(ts) is str and (secs := iso_seconds(ts)) is not None:
        return secs, "timestamp"
    received_text = event.get("receivedAt")
    if type(received_text) is str and (received := iso_micros(received_text)) is not None:
        # In whole microseconds: float seconds would floor an exact second, give or take the
        # rounding of the three terms, to the one before.
        # The processor counts a missing or unreadable sentAt or originalTimestamp as
        # receivedAt (an HTTP API call without them, a gateway backup stamped with the job's
        # receivedAt, a client that sent ""): receivedAt is never passed over for no ts.
        sent_text, original_text = event.get("sentAt"), event.get("originalTimestamp")
        sent = iso_micros(sent_text) if type(sent_text) is str else None
        original = iso_micros(original_text) if type(original_text) is str else None
        if sent is None:  # received - (received - original): the client's time
            how = "receivedAt" if original is None else "originalTimestamp"
        elif original is None:
            how = "receivedAt - (sentAt - receivedAt)"
        else:
            how = "receivedAt - (sentAt - originalTimestamp)"
        sent = received if sent is None else sent
        original = received if original is None else original
        return (received - (sent - original)) // MICROS, how
    original_text = event.get("originalTimestamp")
    if type(original_text) is str and (secs := iso_seconds(original_text)) is not None:
        return secs, "originalTimestamp"
    return None, ""


def _set_ts(record: Record, raw: Any, source: str, event: dict[str, Any], config: MapperConfig,
            trace: Trace | None) -> None:
    """Put ``ts`` on a record: the reference's rule in compat mode, D1 + D2 by default."""
    if config.compat:
        if raw is MISSING:
            return
        value = reference_ts(raw)
        record["ts"] = value
        if trace is not None:
            trace.add("mapped", "ts", f"ts <- {source}", source=source)
            if type(value) is float and math.isnan(value):
                trace.add("changed", "ts", "ts: not a date, sent as null", source=source,
                          before=raw, after=value)  # NaN, which JSON writes as null
            elif value is not raw:
                trace.add("changed", "ts", "ts: date read as epoch seconds", source=source,
                          before=raw, after=value)
        return
    if usable(raw):
        secs = epoch_seconds(raw)
        if secs is None:
            early = epoch_seconds(raw, allow_negative=True) is not None  # a time, too early
            if trace is not None:
                why = "not after 1970-01-01" if early else "not a time"
                trace.add("rejected", "ts", f"ts: {why}, rejected (the reference would send "
                          "it)", source=source, fix="D2", before=raw)
            if early:
                raise MappingError("invalid_timestamp", f"{source} is {raw!r}, which is not "
                                   "after 1970-01-01; CleverTap takes only later times: send "
                                   "the event's real time")
            raise MappingError("invalid_timestamp", f"{source} is {raw!r}, which is not a time; "
                               "use epoch seconds or an ISO-8601 date-time")
        record["ts"] = secs
        if trace is not None:
            trace.add("mapped", "ts", f"ts <- {source}", source=source)
            compat = reference_ts(raw)
            if not (compat == secs and type(compat) is int):
                trace.add("fix", "ts", "ts: sent as integer epoch seconds", source=source,
                          fix="D2", before=raw, after=secs)
            elif not (raw == secs and type(raw) is int):
                trace.add("changed", "ts", "ts: date read as epoch seconds", source=source,
                          before=raw, after=secs)
        return
    secs, how = _event_time(event)
    if secs is not None and secs > 0:
        record["ts"] = secs
        if trace is not None:
            single = how in ("timestamp", "originalTimestamp", "receivedAt")
            used = "receivedAt, sentAt" + (", originalTimestamp" if "original" in how else "")
            trace.add("fix", "ts", f"ts <- {how} (the reference sends no usable ts, so CleverTap "
                      "would stamp the upload time)",
                      source=how if single else used, fix="D1",
                      before=event[how] if single else None, after=secs)
    elif trace is not None and raw is not MISSING:
        trace.add("fix", "ts", "ts: not a usable time, not sent (the reference would send it)",
                  source=source, fix="D2", before=raw)
    elif trace is not None:
        unusable = [k for k in T.EVENT_TIME_FIELDS if k in event]
        if unusable:  # D1 found none it can read: CleverTap will stamp the upload time
            trace.add("warning", "ts", f"ts: no event time in {', '.join(unusable)} (read: "
                      "timestamp, receivedAt or originalTimestamp, as an ISO-8601 time after "
                      "1970), so none is sent (CleverTap will use the upload time)",
                      source=unusable[0], before=event[unusable[0]])


# ---------------------------------------------------------------------------- identify (s8)

class _TraitRoots:
    """``traits``, ``context.traits`` and ``properties`` of one event, looked up once.

    Identify reads some 35 paths under these three objects. When the event (or its
    ``context``, where ``traits`` is absent there) has none of the literal dotted keys that
    get-value's fallbacks could find for them (``"traits.email"``, ``"context.traits"``: the
    dotted keys the fast read reads, reads.TOP_DOTTED), each path is one dict lookup on its
    root; otherwise every path takes the general ``_first_usable``.
    """

    __slots__ = ("event", "roots")

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        # In the order of T.TRAIT_ROOT_NAMES, or None when a dotted key rules the fast path
        # out. (A tuple[Any, Any, Any] would be stored unboxed when compiled, and boxed again
        # for every lookup by index.)
        self.roots: tuple[Any, ...] | None = self._roots(event)

    @staticmethod
    def _roots(event: dict[str, Any]) -> tuple[Any, ...] | None:
        if not TOP_DOTTED.isdisjoint(event):
            return None
        context = event.get("context", MISSING)
        context_traits: Any = MISSING
        if type(context) is dict:
            context_traits = context.get("traits", MISSING)
            if context_traits is MISSING and not CONTEXT_DOTTED.isdisjoint(context):
                return None
        return (event.get("traits", MISSING), context_traits, event.get("properties", MISSING))

    def first_usable(self, paths: tuple[Path, ...]) -> tuple[Any, Path | None]:
        """``_first_usable`` for paths of the form ``<root>.<name>`` (see T.ROOT_AND_NAME)."""
        roots = self.roots
        if roots is None:
            return _first_usable(self.event, paths)
        where = T.ROOT_AND_NAME
        for path in paths:
            index, name = where[path.text]
            root = roots[index]
            if type(root) is dict:
                value = root.get(name, MISSING)
            elif type(root) is list:
                value = get(root, Path(name))
            else:
                continue
            if type(value) is str:
                if value:
                    return value, path
            elif usable(value):
                return value, path
        return None, None


def _identify(event: dict[str, Any], config: MapperConfig, trace: Trace | None) -> list[Record]:
    profile: Record = {}
    # (A method called on the object: a bound method held in a variable would be called
    # through the generic calling convention, a fifth of identify's time when compiled.)
    traits = _TraitRoots(event)
    for row in T.IDENTIFY_ROWS:
        value, path = traits.first_usable(row.sources)
        original = value
        if row.value_map is not None and defined(value):
            mapped = row.value_map.get(value, MISSING) if type(value) is str else MISSING
            if trace is not None and path is not None and mapped is MISSING:
                trace.add("dropped", path.text, f"{path.text}: not a CleverTap gender (M or F), "
                          f"so {row.key} is not sent", before=value)
            value = mapped
        if _accepted(value):
            profile[row.key] = value
            if trace is not None and path is not None:
                trace.add("mapped", row.key, f"{row.key} <- {path.text}", source=path.text)
                if value is not original and value != original:
                    trace.add("changed", row.key, f"{row.key}: written as CleverTap's M or F",
                              source=path.text, before=original, after=value)

    if not truthy(profile.get("Name", MISSING)):  # s8.1 step 2: first + last name
        first, first_path = traits.first_usable(T.FIRST_NAME)
        last, last_path = traits.first_usable(T.LAST_NAME)
        if truthy(first) and truthy(last):
            profile["Name"] = to_string(first) + " " + to_string(last)
            if trace is not None and first_path and last_path:
                trace.add("mapped", "Name", f"Name <- {first_path.text} + {last_path.text}",
                          source=f"{first_path.text}, {last_path.text}")

    _extract_custom(event, profile, T.TRAIT_ROOTS, T.IDENTIFY_EXCLUDED, trace, "")
    profile = _stringify(profile, None, trace, "", not config.compat)

    overrides = get(event, T.TRAITS_OVERRIDES)
    where = "traits.overrideFields"
    if not truthy(overrides):
        overrides = get(event, T.CONTEXT_TRAITS_OVERRIDES)
        where = "context.traits.overrideFields"
    if truthy(overrides):
        for k, v in own_items(overrides):
            profile[k] = v
            if trace is not None:
                trace.add("mapped", k, f"{k} <- {where}.{k} (override, sent as given)",
                          source=f"{where}.{k}")

    if not config.compat and "DOB" in profile:
        _dob(profile, trace)
    for k in [k for k, v in profile.items() if v is None or v is _FUNCTION]:
        del profile[k]
        if trace is not None:
            trace.add("dropped", k, f"{k}: null, not sent")

    record: Record = {"type": "profile", "profileData": profile}
    raw_ts, ts_source = _trait_ts(event)
    _set_ts(record, raw_ts, ts_source, event, config, trace)

    anonymous_id = event.get("anonymousId", MISSING)
    token: Record | None = None
    if config.object_id_mapping:  # s8.3
        user_id, user_path = _first_usable(event, T.USER_ID_ONLY)
        if truthy(anonymous_id):
            record["objectId"] = _identity(anonymous_id, config, "objectId", trace)
            if trace is not None:
                trace.add("mapped", "objectId", "objectId <- anonymousId (objectId mapping)",
                          source="anonymousId")
            if truthy(user_id):
                profile["identity"] = _identity(user_id, config, "profileData.identity", trace)
                if trace is not None and user_path:
                    trace.add("mapped", "identity", f"profileData.identity <- {user_path.text}",
                              source=user_path.text)
            token = _device_token(event, anonymous_id, config, trace)
        elif truthy(user_id):
            record["identity"] = _identity(user_id, config, "identity", trace)
            if trace is not None and user_path:
                trace.add("mapped", "identity", f"identity <- {user_path.text}",
                          source=user_path.text)
        else:
            raise _no_identity("identify")
    else:  # s8.2
        user_id, user_path = _first_usable(event, T.USER_ID)
        _set_root_identity(record, user_id, user_path, config, trace, "identify")
    return [record] if token is None else [record, token]


def _trait_ts(event: dict[str, Any]) -> tuple[Any, str]:
    """Identify and alias read ``traits.ts`` if truthy, else ``context.traits.ts`` raw (s7)."""
    value = get(event, T.TRAITS_TS)
    if truthy(value):
        return value, "traits.ts"
    return get(event, T.CONTEXT_TRAITS_TS), "context.traits.ts"


def _dob(profile: Record, trace: Trace | None) -> None:
    """Fix D6: CleverTap reads dates only as ``$D_<epoch seconds>``."""
    value = profile["DOB"]
    if type(value) is str and value.startswith("$D_"):
        return
    when = value
    if type(value) is str and len(year := value.strip()) == 4 and year.isascii() \
            and year.isdigit():
        # A year alone ("1990", ISO 8601's reduced precision) is 1 January of it, as JS reads
        # it: as a numeric string it would be 1990 seconds, a birthday in 1970.
        when = f"{year}-01-01"
    secs = None if type(value) is bool else epoch_seconds(
        when, allow_negative=True, max_seconds=BIRTHDAY_MAX_SECONDS)
    if secs is None:
        del profile["DOB"]
        if trace is not None:
            trace.add("warning", "DOB", "DOB: not a date, dropped (the reference would send it "
                      "as given)", fix="D6", before=value)
        return
    profile["DOB"] = f"$D_{secs}"
    if trace is not None:
        trace.add("fix", "DOB", "DOB: sent as a CleverTap date ($D_<epoch seconds>)", fix="D6",
                  before=value, after=profile["DOB"])


def _device_token(event: dict[str, Any], anonymous_id: Any, config: MapperConfig,
                  trace: Trace | None) -> Record | None:
    """The device-token record that goes with an identify (s8.4)."""
    token = get(event, T.DEVICE_TOKEN)
    os_name = get(event, T.OS_NAME)
    if not truthy(token) or not truthy(os_name):
        return None
    if type(os_name) is not str:
        raise MappingError("invalid_device", f"context.os.name is {_describe(os_name)}; it must "
                           "be a string such as \"iOS\" or \"Android\"")
    os_lower = os_name.lower()
    if os_lower != T.TOKEN_OS_ANDROID and os_lower not in T.TOKEN_OS_APPLE:
        if trace is not None:
            trace.add("dropped", "context.device.token", "context.device.token: not sent, "
                      "context.os.name is neither Android nor an Apple OS",
                      source="context.os.name", before=os_name)
        return None
    integration: Any = MISSING
    integrations = event.get("integrations")
    if type(integrations) is dict:
        for key in T.INTEGRATION_KEYS:
            if truthy(integrations.get(key, MISSING)):
                integration = integrations[key]
                break
    settings = integration if type(integration) is dict else {}
    token_type = settings.get("deviceTokenType", MISSING)
    chosen = truthy(token_type) and type(token_type) is str and token_type in T.TOKEN_TYPES
    if not chosen:
        token_type = "fcm" if os_lower == T.TOKEN_OS_ANDROID else "apns"
    keys = settings.get("chromeKeys", None)
    record = _deep_clean({"type": "token",
                          "tokenData": {"id": token, "type": token_type, "keys": keys},
                          "objectId": _identity(anonymous_id, config, "objectId", None)})
    if trace is not None:
        trace.add("mapped", "tokenData.id", "tokenData.id <- context.device.token",
                  source="context.device.token")
        if chosen:
            trace.add("mapped", "tokenData.type", "tokenData.type <- "
                      "integrations.clevertap.deviceTokenType",
                      source=f"integrations.{_integration_key(integrations)}.deviceTokenType")
        else:
            trace.add("mapped", "tokenData.type", "tokenData.type: the default for the OS "
                      "(fcm for Android, apns for Apple)", source="context.os.name")
        if "keys" in record["tokenData"]:
            trace.add("mapped", "tokenData.keys", "tokenData.keys <- "
                      "integrations.clevertap.chromeKeys",
                      source=f"integrations.{_integration_key(integrations)}.chromeKeys")
    return record  # type: ignore[no-any-return]


def _integration_key(integrations: Any) -> str:
    """Which spelling of the CleverTap integration key the event used (for traces)."""
    for key in T.INTEGRATION_KEYS:
        if type(integrations) is dict and truthy(integrations.get(key, MISSING)):
            return key
    return "clevertap"


def _deep_clean(value: Any) -> Any:
    """Drop nulls, empty objects and empty arrays, recursively (the reference's deep clean)."""
    if type(value) is dict:
        out = {}
        for k, item in value.items():
            v = _deep_clean(item)
            if v is None or v is MISSING or (type(v) in (dict, list) and not v):
                continue
            out[k] = v
        return out
    if type(value) is list:
        cleaned = [_deep_clean(v) for v in value]
        return [v for v in cleaned
                if not (v is None or v is MISSING or (type(v) in (dict, list) and not v))]
    return value


# ---------------------------------------------------------------------------- alias (s9)

def _alias(event: dict[str, Any], config: MapperConfig, trace: Trace | None) -> Record:
    profile: Record = {}
    user_id = event.get("userId", MISSING)
    if user_id is not MISSING:
        if config.compat or user_id is None:
            profile["identity"] = user_id
        else:
            profile["identity"] = _identity(user_id, config, "profileData.identity", trace)
    record: Record = {"type": "profile", "profileData": profile}
    raw_ts, ts_source = _trait_ts(event)
    _set_ts(record, raw_ts, ts_source, event, config, trace)
    previous = event.get("previousId", MISSING)
    if previous is None or previous is MISSING:
        raise MappingError("missing_identity", "the alias has no previousId, so CleverTap "
                           "cannot find the profile to rename; set previousId")
    if not config.compat and not defined(user_id):
        if trace is not None:
            trace.add("rejected", "profileData.identity", "profileData.identity: the alias has "
                      "no userId, rejected (the reference sends it without a new identity)",
                      fix="D3")
        raise MappingError("missing_identity", "the alias has no userId, so there is no new "
                           "identity to give the profile; set userId")
    record["identity"] = _identity(previous, config, "identity", trace)
    if trace is not None:
        trace.add("mapped", "identity", "identity <- previousId", source="previousId")
        if user_id is not MISSING:
            trace.add("mapped", "profileData.identity", "profileData.identity <- userId",
                      source="userId")
    return record


# -------------------------------------------------------------------- track, page, screen (s10)

def _event(event: dict[str, Any], kind: str, uid: Any, uid_path: Path | None,
           config: MapperConfig, trace: Trace | None) -> Record:
    """``uid``: the generic userId lookup (userIdOnly's paths), which map_or_reject made."""
    name = event.get("event", MISSING)
    record: Record
    if _is_charged(name):  # s10.2
        record = _charged(event, config, trace)
        raw_ts = get(event, T.PROPERTIES_TS)
    else:
        record = {"evtName": _event_name(event, kind, name, config, trace)}
        props = get(event, T.PROPERTIES)
        if not defined(props):
            props = {}
        elif not _accepted(props):
            raise MappingError("invalid_properties", 'Missing required value from "properties": '
                               "`properties` is an empty string; send an object or leave it out")
        if trace is not None:
            if type(props) is dict and not props:
                trace.add("mapped", "evtData", "evtData: empty, the event has no properties")
            else:
                trace.add("mapped", "evtData", "evtData <- properties (every property, as sent)",
                          source="properties")
        record["evtData"] = props
        raw_ts = get(event, T.PROPERTIES_TS)
        if not _accepted(raw_ts):
            raw_ts = MISSING

    record["type"] = "event"  # s10.3
    data = record["evtData"]
    if truthy(data):
        record["evtData"] = _stringify(data, record["evtName"], trace, "evtData.",
                                       not config.compat)
    if raw_ts is None:
        raw_ts = MISSING
    _set_ts(record, raw_ts, "properties.ts", event, config, trace)

    anonymous_id = event.get("anonymousId", MISSING)
    if config.object_id_mapping:  # s10.5
        if truthy(anonymous_id):
            record["objectId"] = _identity(anonymous_id, config, "objectId", trace)
            if trace is not None:
                trace.add("mapped", "objectId", "objectId <- anonymousId (objectId mapping; "
                          "a userId is not sent)", source="anonymousId")
        else:
            if not truthy(uid):
                raise MappingError("missing_identity", "Unable to process without anonymousId "
                                   "or userId: add one of them to the event")
            record["identity"] = _identity(uid, config, "identity", trace)
            if trace is not None and uid_path:
                trace.add("mapped", "identity", f"identity <- {uid_path.text}",
                          source=uid_path.text)
    else:
        # The generic userId lookup is userIdOnly's paths, then anonymousId (spec s3).
        # (Assigned apart: a conditional of tuples would build each tuple.)
        user_id: Any = uid
        user_path: Path | None = uid_path
        if uid is None:
            user_id, user_path = None, None
            if usable(anonymous_id):
                user_id, user_path = anonymous_id, T.ANONYMOUS_ID
        _set_root_identity(record, user_id, user_path, config, trace, "event")
    return record


def _is_charged(name: Any) -> bool:
    """Whether the event is Order Completed, in any case (an array of it too, as JS reads it)."""
    if type(name) is str:  # lower() only a name of the length: it makes a new string
        return len(name) == len(T.CHARGED_EVENT) and name.lower() == T.CHARGED_EVENT
    return truthy(name) and to_string(name).lower() == T.CHARGED_EVENT


def _event_name(event: dict[str, Any], kind: str, name: Any, config: MapperConfig,
                trace: Trace | None) -> Any:
    if kind == "track":
        if not _accepted(name):
            raise MappingError("missing_event_name", 'Missing required value from "event": '
                               "a track event needs a non-empty `event` name")
        if trace is not None:
            trace.add("mapped", "evtName", "evtName <- event", source="event")
        return name
    prefix = T.PAGE_PREFIX[kind]
    value, path = _first_usable(event, T.PAGE_NAME_SOURCES)
    if value is None:
        if trace is not None:
            trace.add("mapped", "evtName", f"evtName <- {prefix!r} (no name in the event)")
        return prefix
    text = to_string(value)
    # The reference's escaping: sent in compat mode, shown as fix D4 in a trace.
    escaped = html_escape(text) if config.compat or trace is not None else text
    result = trim(f"{prefix}: {escaped if config.compat else text}")
    if trace is not None and path is not None:
        trace.add("mapped", "evtName", f"evtName <- \"{prefix}: \" + {path.text}",
                  source=path.text)
        if not config.compat and escaped != text:
            trace.add("fix", "evtName", "evtName: name not HTML-escaped", source=path.text,
                      fix="D4", before=trim(f"{prefix}: {escaped}"), after=result)
    return result


def _charged(event: dict[str, Any], config: MapperConfig, trace: Trace | None) -> Record:
    """Order Completed -> Charged with the ecommerce fields (s10.2)."""
    data: Record = {}
    for key, path in T.CHARGED_ROWS:
        value = get(event, path)
        if _accepted(value):
            data[key] = value
            if trace is not None:
                trace.add("mapped", f"evtData.{key}", f"{key} <- {path.text}", source=path.text)
    _extract_custom(event, data, (T.PROPERTIES,), T.CHARGED_EXCLUDED, trace, "evtData.")
    if trace is not None:
        trace.add("mapped", "evtName", 'evtName <- "Charged" (event "Order Completed")',
                  source="event")
    return {"evtName": "Charged", "evtData": data}
