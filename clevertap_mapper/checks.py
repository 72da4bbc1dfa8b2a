"""Pre-flight checks: CleverTap's documented limits, applied to each record after mapping.

The limits are one table of data (``LIMITS``), each row with the limit, its severity and its
source in shared/spec/clevertap-api.md, so a limit CleverTap changes is a one-line change. The
code below only walks the table.

Severity rule (how the uncertain limits were decided):

- ``error``: /1/upload refuses the record with a documented record error code (spec section
  1.5: 509, 512-520, 522-526, 530-534); or the record exceeds a documented hard maximum (key
  120 and value 512 characters, 256 properties, Items or custom profile keys, identity 1024):
  CleverTap does not document what its server does past those (the SDKs cut), but a cut key
  becomes another property and a cut value or list silently loses data, which cannot be fixed
  once sent; or the identity is a placeholder such as ``"null"`` that would merge unrelated
  users into one profile.
- ``warning``: the sources conflict or the rule is known only from an SDK, another CleverTap
  product or a newer account default (512 bytes versus characters, prohibited characters, which
  RudderStack's own ``Web Page Viewed: ...`` names contain, objectId format, booleans for Y/N,
  100 properties on newer accounts, SDK-reserved event names, DOB and MSG-* forms); or CleverTap
  documents a harmless outcome (multi-values over 100: the oldest are dropped). The warning says
  what may change; should CleverTap refuse such a record after all, ``upload`` reports it with
  CleverTap's own code.

Levels: ``strict`` rejects a record with an error finding and counts the warnings; ``warn``
reports every finding as a warning and sends everything; ``off`` skips the stage.
:attr:`Finding.severity` always says how bad a finding is; the level decides what happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

from clevertap_mapper.mapping.tables import UNSTRINGIFIED_KEYS

Severity = Literal["error", "warning"]
CheckLevel = Literal["strict", "warn", "off"]

CHECK_LEVELS: Final[tuple[str, ...]] = ("strict", "warn", "off")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one record: a stable code, the field, and a sentence saying what to fix."""

    code: str
    field: str
    message: str
    severity: Severity = "error"


@dataclass(frozen=True, slots=True)
class Limit:
    """One row of the limits table.

    ``id`` names the row (unique); ``code`` is the finding code users see (rows may share one);
    ``applies_to`` says what is checked; ``limit`` is the number or the set of values;
    ``clevertap`` is CleverTap's record error code when it documents one; ``source`` points into
    shared/spec/clevertap-api.md; ``message`` is a ``str.format`` template over ``field``,
    ``value``, ``limit``, ``count`` and ``hint``. ``keys`` lists the profileData keys a
    profile-value rule applies to.
    """

    id: str
    code: str
    applies_to: str
    limit: Any
    severity: Severity
    source: str
    message: str
    clevertap: int | None = None
    keys: tuple[str, ...] = ()


# Characters CleverTap prohibits in event names and property keys (spec 2.1, CT-plat); profile
# keys add '#' (spec 2.3, CT-plat; the DW-import doc adds '#' for event names too).
_EVENT_KEY_CHARS: Final = "%><!|&.:;$'\"\\"
_PROFILE_KEY_CHARS: Final = _EVENT_KEY_CHARS + "#"

# Identity values CleverTap's data-warehouse import refuses (spec 2.4, SE map-data-for-import).
# Whether /1/upload refuses them too is not documented. They are errors either way: if CleverTap
# takes such a value, every user whose id is "null" (or "0", "-1", ...) lands on one profile, a
# merge that cannot be undone; if it refuses it, rejecting here only says so earlier.
_REFUSED_IDENTITIES: Final = frozenset({
    "undefined", "null", "na", "n/a", "0", "nil", "-1", "infinity", "-infinity", "inf",
    "-inf", "nan", "-nan", "empty", "xxxxxx",
})

# System events CleverTap refuses on upload with 513 (spec 2.1, CT-plat).
_RESTRICTED_EVENTS: Final = frozenset({
    "Notification Sent", "Notification Viewed", "Notification Clicked", "Notification Delivered",
    "Notification Replied", "UTM Visited", "App Launched", "App Uninstalled",
    "App Version Changed", "Stayed", "Reply Sent", "Experiment Rendered", "Reachable By",
    "Identity Reset", "Identity Set", "Identity Error",
})
# Names only the SDKs restrict (spec 2.1: Android ValidationConfig.kt; SE events doc). The
# Android list also has geofence and signed-call events, whose exact names the spec lacks.
_SDK_RESTRICTED_EVENTS: Final = frozenset({"Notification Bounced", "wzrk_d", "Push Unregistered"})

# Device token types: all that CleverTap's older doc and RudderStack accept (spec 1.3), and the
# ones the current Upload Device Tokens page names.
_TOKEN_TYPES: Final = frozenset({"apns", "fcm", "gcm", "wns", "mpns", "chrome"})
_TOKEN_TYPES_DOCUMENTED: Final = frozenset({"apns", "fcm", "gcm"})

# Custom CleverTap IDs set by the SDK: 1-64 of these characters (spec 2.4, set-clevertap-id).
_OBJECT_ID_CHARS: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789()!:@$_-")

_MSG_FLAGS: Final[tuple[str, ...]] = (
    "MSG-email", "MSG-push", "MSG-sms", "MSG-whatsapp", "MSG-push-all", "MSG-dndemail")

_S21: Final = "spec 2.1 (CT-plat)"
_S23: Final = "spec 2.3 (CT-plat, CT-upprof, SDK docs)"

#: The limits: one row each. Change a number here and every check and message follows.
LIMITS: Final[tuple[Limit, ...]] = (
    # ---- every record ------------------------------------------------------------------
    Limit("record_type", "invalid_record_type", "type", ("event", "profile", "token"),
          "error", "spec 1.3, 1.5", "{field} is {value}; CleverTap takes only {limit} "
          "records (524): fix the record or leave it out", 524),
    Limit("identity_missing", "missing_identity", "identity, FBID, GPID or objectId",
          ("identity", "FBID", "GPID", "objectId"), "error", "spec 1.3, 1.5",
          "{field} is missing: the record has none of {limit}, so CleverTap cannot tell whose "
          "it is (523): add the user's id", 523),
    Limit("identity_length", "invalid_identity", "identity, profileData.identity, objectId",
          1024, "error", "spec 2.4 (CSV upload doc)", "{field} is {count} characters long; "
          "CleverTap takes identities of at most {limit}: send a shorter user id", 523),
    # The reference sends numeric user ids as JSON numbers (compat mode keeps that); CleverTap
    # documents identities as strings, so a number is refused like any other non-string.
    Limit("identity_type", "invalid_identity", "identity, profileData.identity", "a string",
          "error", "spec 1.3 (CT-upev-copy: string), 2.4; DESIGN D5", "{field} is {value}; "
          "CleverTap identities must be {limit} (523): {hint}", 523),
    Limit("identity_refused", "invalid_identity", "identity, profileData.identity, objectId",
          _REFUSED_IDENTITIES, "error", "spec 2.4 (SE map-data-for-import; /1/upload: U)",
          "{field} is {value}, a placeholder CleverTap refuses as an identity (and which "
          "would merge every such user into one profile): fix the user id upstream", 523),
    Limit("object_id_value", "invalid_object_id", "objectId (events, profiles)",
          "a non-empty string", "error", "spec 1.5, 2.4", "{field} is {value}; it must be "
          "{limit} (CleverTap refuses it with 526): send the anonymousId as text", 526),
    Limit("object_id_format", "unusual_object_id", "objectId", 64, "warning",
          "spec 2.4 (set-clevertap-id; applies to /1/upload: U)", "{field} {value} {hint}; "
          "CleverTap IDs are 1-{limit} characters of A-Z a-z 0-9 ( ) ! : @ $ _ - and "
          "CleverTap may refuse others with 526/530", 526),
    Limit("ts", "invalid_timestamp", "ts", (1, 99_999_999_999), "error",
          "spec 2.5 (CT-upev-copy, CT-err)", "{field} is {value}: {hint}; CleverTap takes "
          "integer UNIX epoch seconds and refuses anything else with 525", 525),
    # ---- events ------------------------------------------------------------------------
    Limit("event_name", "missing_event_name", "evtName", "a non-empty string", "error",
          "spec 1.3, 1.5", "{field} is {value}; CleverTap needs {limit} (509): {hint}", 509),
    Limit("restricted_event", "restricted_event", "evtName", _RESTRICTED_EVENTS, "error",
          _S21 + "; names equal ignoring case and spaces", "{field} {value} is a CleverTap "
          "system event name, which uploads may not use (513): rename the event", 513),
    Limit("sdk_restricted_event", "reserved_event_name", "evtName", _SDK_RESTRICTED_EVENTS,
          "warning", "spec 2.1 (Android SDK, SE events doc; /1/upload: U)", "{field} {value} "
          "is reserved by CleverTap's SDKs and may be refused (513): rename the event"),
    Limit("event_name_chars", "invalid_name_characters", "evtName (after the 'Web Page "
          "Viewed: ' / 'Screen Viewed: ' prefix RudderStack adds)", _EVENT_KEY_CHARS,
          "warning", _S21, "{field} {value} contains {hint}, which CleverTap prohibits in "
          "event names ({limit}); CleverTap's SDKs strip them, so the event may arrive under "
          "another name: rename it"),
    Limit("event_name_length", "event_name_too_long", "evtName", 512, "warning",
          "spec 2.1 (no server figure; Android SDK truncates: U)", "{field} is {count} "
          "characters long; CleverTap's SDKs cut event names at {limit}: shorten it"),
    Limit("event_data", "invalid_event_data", "evtData", "an object", "error", "spec 1.3, 1.5",
          "{field} is {value}; it must be {limit} of event properties (512)", 512),
    Limit("properties", "too_many_properties", "evtData keys", 256, "error",
          "spec 2.1 (CT-plat, older CT-upev); configurable with --max-event-properties",
          "{field} has {count} properties; CleverTap takes at most {limit} per event (522): "
          "drop properties upstream", 522),
    Limit("properties_newer_accounts", "many_properties", "evtData keys", 100, "warning",
          "spec 2.1 (CT-upev 2026: 100 by default, configurable per account)",
          "{field} has {count} properties; newer CleverTap accounts take {limit} by default "
          "and refuse more with 522: check your account's limit and rerun with "
          "--max-event-properties {limit} if it applies", 522),
    Limit("nested_event_value", "nested_value", "evtData values", "Items of a Charged event",
          "error", "spec 1.4 (PR #3048 quote), 2.1", "{field} is {value}; CleverTap refuses "
          "nested objects and arrays in event properties except {limit} (512): send it as "
          "text or flatten it (nested objects need CleverTap to enable them for the account)",
          512),
    Limit("items_shape", "invalid_items", "evtData.Items of Charged", "an array of objects",
          "error", "spec 2.2 (CT-upev-copy)", "{field} is {value}; Charged Items must be "
          "{limit} (512): send one object per item", 512),
    Limit("items_count", "too_many_items", "evtData.Items of Charged", 256, "error",
          "spec 2.2 (CT-plat; web SDK refuses >50 with 522)", "{field} has {count} items; "
          "the Charged event supports at most {limit}: split the order into several events"),
    Limit("item_nested", "nested_value", "values inside Charged Items", "flat objects",
          "warning", "spec 2.2 (item limits presumably as events: U)", "{field} is {value}; "
          "Charged Items should be {limit}: send it as text"),
    # ---- keys and values (events, Items and profiles) ------------------------------------
    Limit("key_length", "key_too_long", "evtData, Items and profileData keys", 120, "error",
          "spec 2.1, 2.3 (CT-plat chars; CT-upprof bytes)", "{field}: the key is {count} "
          "characters long; CleverTap allows at most {limit}: rename the property upstream"),
    Limit("event_key_chars", "invalid_key_characters", "evtData and Items keys",
          _EVENT_KEY_CHARS, "warning", _S21, "{field}: the key contains {hint}, which "
          "CleverTap prohibits in property names ({limit}); it may be cleaned or dropped: "
          "rename the property"),
    Limit("profile_key_chars", "invalid_key_characters", "profileData keys",
          _PROFILE_KEY_CHARS, "warning", _S23, "{field}: the key contains {hint}, which "
          "CleverTap prohibits in profile property names ({limit}); it may be cleaned or "
          "dropped: rename the property"),
    Limit("value_length", "value_too_long", "string values of evtData, Items, profileData "
          "and multi-value items", 512, "error", "spec 2.1, 2.3 (CT-plat)",
          "{field} is {hint}; CleverTap allows values of at most {limit} characters: shorten "
          "it upstream, or split it over several properties (or send it as it is with "
          "--allow value_too_long: CleverTap may cut it)"),
    # orjson's range: what ctmap writes as a JSON number. Past 2**53 a double already rounds,
    # but those integers are sent as given (the default mode keeps them exact, as the reference
    # does not); past 64 bits a number is refused here rather than sent for CleverTap to round.
    Limit("integer_range", "number_out_of_range", "integers in evtData, Items and "
          "profileData (values, multi-values and operations)", (-(2**63), 2**64 - 1), "error",
          "spec 2.1, 2.3 (values are Integer or Float; past 64 bits: U)",
          "{field} is the integer {hint}, which has more than 64 bits and would lose digits "
          "(CleverTap reads numbers as doubles): send it as a string"),
    Limit("value_bytes", "value_too_many_bytes", "string values (as value_length)", 512,
          "warning", "spec 2.1 (CT-upev-copy says 512 bytes; CT-plat says characters)",
          "{field} is {hint}; one CleverTap page limits values to {limit} bytes, so it may be "
          "cut: shorten it if it must arrive whole"),
    # ---- profiles ------------------------------------------------------------------------
    Limit("profile_data", "invalid_profile_data", "profileData", "an object", "error",
          "spec 1.3, 1.5", "{field} is {value}; it must be {limit} of profile properties "
          "(524)", 524),
    Limit("custom_profile_keys", "too_many_profile_keys", "custom profileData keys", 256,
          "error", _S23, "{field} has {count} custom properties; a CleverTap profile holds at "
          "most {limit}: send fewer traits"),
    Limit("nested_profile_value", "nested_value", "profileData values",
          "scalars, arrays of strings or {$add|$remove|$set|$delete: ...}", "error",
          "spec 1.3, 2.3", "{field} is {value}; profile values must be {limit}: send it as "
          "text or flatten it", 512),
    Limit("multi_value_count", "too_many_values", "profileData multi-value arrays", 100,
          "warning", _S23, "{field} has {count} values; CleverTap keeps at most {limit} and "
          "drops the oldest: send fewer"),
    Limit("multi_value_type", "invalid_multi_value", "profileData multi-value items",
          "strings", "warning", _S23, "{field} holds {value}; multi-value items must be "
          "{limit}: send them as text"),
    Limit("phone_prefix", "invalid_phone", "profileData.Phone", "+", "error",
          "spec 2.3 (CT-upprof, DW import)", "{field} is {value}; CleverTap takes phone "
          "numbers only as '{limit}<country code><number>' and refuses others (516): add the "
          "country code", 516, ("Phone",)),
    Limit("phone_digits", "unusual_phone", "profileData.Phone", (5, 15), "warning",
          "spec 2.3 (DW import: + and >4 digits; E.164 in peers)", "{field} is {value}; "
          "expected '+' then {hint} digits only (E.164); CleverTap may refuse it (516)",
          516, ("Phone",)),
    Limit("gender", "invalid_gender", "profileData.Gender", ("M", "F"), "error",
          "spec 2.3 (Android SDK docs; other values: U)", "{field} is {value}; CleverTap "
          "takes only {limit} and refuses others (514): map it upstream", 514, ("Gender",)),
    Limit("email", "invalid_email", "profileData.Email", "name@domain", "error",
          "spec 2.3, 1.5", "{field} is {value}, not an email address ({limit}); CleverTap "
          "refuses it (515): fix or drop the email", 515, ("Email",)),
    Limit("employed", "invalid_employed", "profileData.Employed", ("Y", "N"), "error",
          "spec 2.3 (SDK docs: 'Can be either Y or N')", "{field} is {value}; CleverTap "
          "takes only {limit} and refuses others (517): map it to one of them upstream", 517,
          ("Employed",)),
    Limit("education", "invalid_education", "profileData.Education",
          ("Graduate", "College", "School"), "error", "spec 2.3 (SDK docs)", "{field} is "
          "{value}; CleverTap takes only {limit} and refuses others (518): map it to one of "
          "them upstream", 518, ("Education",)),
    Limit("married", "invalid_married", "profileData.Married", ("Y", "N"), "error",
          "spec 2.3 (SDK docs: 'Can be either Y or N')", "{field} is {value}; CleverTap "
          "takes only {limit} and refuses others (519): map it to one of them upstream", 519,
          ("Married",)),
    # RudderStack passes traits.employed/married through, so booleans are common. The docs
    # say only "Y or N"; whether the server takes true/false (or refuses with 517/519) is not
    # documented, so a boolean is a warning and any other value an error.
    Limit("yes_no_boolean", "yes_no_boolean", "profileData.Employed, profileData.Married",
          ("Y", "N"), "warning", "spec 2.3 (booleans: U)", "{field} is {value}; CleverTap "
          "documents only {limit} and may refuse a boolean (517/519): send \"Y\" or \"N\"",
          None, ("Employed", "Married")),
    Limit("age", "invalid_age", "profileData.Age", "a whole number", "error",
          "spec 2.3, 1.5", "{field} is {value}; CleverTap takes {limit} and refuses others "
          "(520): send the age as a JSON integer, or DOB instead", 520, ("Age",)),
    Limit("dob", "invalid_date", "profileData.DOB", "$D_<epoch seconds>", "warning",
          "spec 2.3, 2.6 (CT-faq)", "{field} is {value}; CleverTap reads dates only as "
          "'{limit}' and stores anything else as text (the default mode converts it)",
          None, ("DOB",)),
    Limit("msg_flag", "invalid_subscription_flag", "profileData.MSG-*", "true or false",
          "warning", "spec 2.3 (SDK docs, SE gdpr.md)", "{field} is {value}; subscription "
          "flags are booleans ({limit}): send a JSON boolean", None, _MSG_FLAGS),
    # ---- device tokens -------------------------------------------------------------------
    # Token rows have codes of their own: validate labels a code with one CleverTap code, and
    # CleverTap's token codes (530-534) differ from the event/profile ones (526).
    Limit("token_object_id", "invalid_token_object_id", "objectId of token records",
          "a non-empty string", "error", "spec 1.3 (CT-uptok), 1.5", "{field} is {value}; "
          "a device token needs objectId as {limit} (530)", 530),
    Limit("token_data", "invalid_token_data", "tokenData", "an object", "error",
          "spec 1.3, 1.5", "{field} is {value}; it must be {limit} with id and type (531)",
          531),
    Limit("token_id", "missing_token_id", "tokenData.id", "a non-empty string", "error",
          "spec 1.3, 1.5", "{field} is {value}; the token itself must be {limit} (532)", 532),
    Limit("token_type_missing", "missing_token_type", "tokenData.type", _TOKEN_TYPES,
          "error", "spec 1.3, 1.5", "{field} is missing; a device token needs its type, one "
          "of {limit} (533)", 533),
    Limit("token_type", "invalid_token_type", "tokenData.type", _TOKEN_TYPES, "error",
          "spec 1.3 (support doc, RS-tf), 1.5", "{field} is {value}; it must be one of "
          "{limit} (534)", 534),
    Limit("token_type_documented", "undocumented_token_type", "tokenData.type",
          _TOKEN_TYPES_DOCUMENTED, "warning", "spec 1.3 (CT-uptok current page)", "{field} is "
          "{value}; CleverTap's current page documents token upload for {limit} only"),
    Limit("chrome_keys", "missing_chrome_keys", "tokenData.keys", ("p256dh", "auth"),
          "warning", "spec 1.3 (support doc)", "{field} is {value}; web push (chrome) tokens "
          "need keys {limit}: set integrations.clevertap.chromeKeys"),
)

LIMITS_BY_ID: Final[dict[str, Limit]] = {row.id: row for row in LIMITS}
_L: Final = LIMITS_BY_ID

#: CleverTap's record error code for each finding code (first row wins), for reports.
CLEVERTAP_CODES: Final[dict[str, int]] = {}
for _row in LIMITS:
    if _row.clevertap is not None:
        CLEVERTAP_CODES.setdefault(_row.code, _row.clevertap)

#: The codes of the error rows: what ``strict`` rejects, and what ``allow`` may let through.
ERROR_CODES: Final[frozenset[str]] = frozenset(row.code for row in LIMITS
                                               if row.severity == "error")

_INT_MIN: Final[int] = _L["integer_range"].limit[0]
_INT_MAX: Final[int] = _L["integer_range"].limit[1]
_SHORT: Final = 2**62 - 1
# The limits checked on every record, as typed constants: compiled, a row's limit (an Any)
# would be compared by a generic call.
_IDENTITY_MAX: Final[int] = _L["identity_length"].limit
_TS_MIN: Final[int] = _L["ts"].limit[0]
_TS_MAX: Final[int] = _L["ts"].limit[1]
_MISSING: Final = object()
_SHOW: Final = 60  # characters of a value quoted in a message
_CACHE_MAX: Final = 50_000  # clean keys and names remembered per checker
_PAGE_PREFIXES: Final[tuple[str, ...]] = ("Web Page Viewed: ", "Screen Viewed: ")
_REFUSED_MAX_LEN: Final = 16  # longer identities cannot be a (padded) refused value
_REFUSED_LONGEST: Final = max(len(v) for v in _REFUSED_IDENTITIES)
_SYSTEM_PROFILE_KEYS: Final = frozenset({
    "Name", "Email", "Phone", "Gender", "Employed", "Education", "Married", "Age", "DOB",
    "Photo", "Customer Type", "Tz", "identity", "category-unsubscribe",
    "category-resubscribe", *_MSG_FLAGS,
})
_PROFILE_OPERATIONS: Final = frozenset({"$add", "$remove", "$set", "$delete"})


def _fold(name: str) -> str:
    """CleverTap treats event names that differ only in case or spaces as one (spec 2.1)."""
    return name.replace(" ", "").casefold()


_RESTRICTED_FOLDED: Final = frozenset(_fold(n) for n in _RESTRICTED_EVENTS)
_SDK_RESTRICTED_FOLDED: Final = frozenset(_fold(n) for n in _SDK_RESTRICTED_EVENTS)


def _show(value: Any) -> str:
    """A value for a message: JSON-like, cut to a readable length."""
    if value is _MISSING:
        return "missing"
    if value is None or (type(value) is float and value != value):  # NaN: JSON's null
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is dict:
        return "an object"
    if type(value) is list:
        return f"an array of {len(value)}"
    text = repr(value)
    return text if len(text) <= _SHOW else text[:_SHOW - 4] + "...'"


def _path(prefix: str, key: str) -> str:
    """``prefix.key`` for a finding's field, with a very long key cut."""
    return f"{prefix}.{key}" if len(key) <= _SHOW else f"{prefix}.{key[:_SHOW - 3]}..."


def _limit_text(limit: Any) -> str:
    if isinstance(limit, frozenset | tuple) and limit and all(type(x) is str for x in limit):
        return ", ".join(sorted(limit) if isinstance(limit, frozenset) else limit)
    return str(limit)


def _bad_chars(text: str, prohibited: str) -> str:
    return " ".join(sorted({c for c in text if c in prohibited}))


# ---- profile-value rules: row id -> "is this value bad?" (the row's limit is passed in) ----

def _bad_phone(v: Any, prefix: Any) -> bool:
    return type(v) is not str or not v.startswith(prefix)


def _bad_phone_digits(v: Any, bounds: Any) -> bool:
    if type(v) is not str or not v.startswith("+"):
        return False  # phone_prefix reports it
    digits = v[1:]
    return not (digits.isascii() and digits.isdigit() and bounds[0] <= len(digits) <= bounds[1])


def _bad_one_of(v: Any, allowed: Any) -> bool:
    return type(v) is not str or v not in allowed


def _bad_yes_no(v: Any, allowed: Any) -> bool:
    return type(v) is not bool and (type(v) is not str or v not in allowed)


def _is_bool(v: Any, _: Any) -> bool:
    return type(v) is bool


def _bad_email(v: Any, _: Any) -> bool:
    if type(v) is not str:
        return True
    local, at, domain = v.rpartition("@")
    # (split() cuts at exactly what isspace() finds: one C pass instead of one call a
    # character, which was most of a profile's checks.)
    return not (at and local and domain) or v.split() != [v]


def _bad_age(v: Any, _: Any) -> bool:
    return type(v) is not int or v < 0


def _bad_date(v: Any, _: Any) -> bool:
    if type(v) is not str or not v.startswith("$D_"):
        return True
    digits = v[3:].removeprefix("-")
    return not (digits.isascii() and digits.isdigit())


def _not_bool(v: Any, _: Any) -> bool:
    return type(v) is not bool


_PROFILE_TESTS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "phone_prefix": _bad_phone, "phone_digits": _bad_phone_digits, "gender": _bad_one_of,
    "email": _bad_email, "employed": _bad_yes_no, "education": _bad_one_of,
    "married": _bad_yes_no, "yes_no_boolean": _is_bool, "age": _bad_age, "dob": _bad_date,
    "msg_flag": _not_bool,
}

ProfileRule = tuple[str, Callable[[Any, Any], bool]]


def _profile_rules() -> dict[str, tuple[ProfileRule, ...]]:
    """profileData key -> (row id, test) of the rows that judge its value, in table order.

    The row itself is looked up when checking, so its limit is always the table's.
    """
    rules: dict[str, list[ProfileRule]] = {}
    for row in LIMITS:
        for key in row.keys:
            rules.setdefault(key, []).append((row.id, _PROFILE_TESTS[row.id]))
    return {key: tuple(found) for key, found in rules.items()}


_RULES: Final = _profile_rules()


def _finding(row: Limit, field: str, value: Any = _MISSING, *, count: int | None = None,
             hint: str = "", limit: Any = None) -> Finding:
    message = row.message.format(field=field, value=_show(value), count=count, hint=hint,
                                 limit=_limit_text(row.limit if limit is None else limit))
    return Finding(row.code, field, message, row.severity)


def _ts_hint(ts: Any) -> str:
    t = type(ts)
    if ts is None or (t is float and ts != ts):  # NaN: written as null
        return "null (compat mode sends an unparseable time so)"
    if t is bool:
        return "a boolean, not a time"
    if t is str:
        try:
            float(ts)
        except ValueError:
            return "text, not epoch seconds"
        return "a number in a string, send it as a JSON integer"
    if t is float:
        return "a decimal number, send a JSON integer"
    if t is int and ts > _L["ts"].limit[1]:
        return "too large for seconds (milliseconds? divide by 1000)"
    if t is int:
        return "not after 1970, send the real event time"
    return "not a number"


class Checker:
    """Checks records against CleverTap's limits (see the module docstring and ``LIMITS``).

    >>> Checker().check({"type": "event", "evtName": "App Launched", "evtData": {},
    ...                  "identity": "u1"})[0].code
    'restricted_event'
    """

    __slots__ = ("_clean_event_keys", "_clean_names", "_clean_profile_keys", "_found",
                 "_max_props", "_props_first", "allow", "level", "max_event_properties")

    def __init__(self, level: CheckLevel = "strict", max_event_properties: int = 256,
                 allow: Iterable[str] = ()) -> None:
        """``allow``: error codes reported as warnings, so their records go (``--allow``):
        for a limit whose outcome CleverTap does not document, such as a value over 512
        characters, when the user would rather CleverTap had the record."""
        if level not in CHECK_LEVELS:
            raise ValueError(f"check level must be one of {', '.join(CHECK_LEVELS)}, "
                             f"not {level!r}")
        if max_event_properties < 1:
            raise ValueError("max_event_properties must be at least 1")
        allowed = frozenset(allow)
        unknown = sorted(allowed - ERROR_CODES)
        if unknown:
            raise ValueError(f"cannot allow {', '.join(unknown)}: not the code of a check "
                             f"that rejects; the codes are {', '.join(sorted(ERROR_CODES))}")
        self.level = level
        self.max_event_properties = max_event_properties
        self.allow = allowed
        self._max_props = max_event_properties
        # Above this many properties the slow path decides between the 100-warning and 522.
        self._props_first = min(max_event_properties, _L["properties_newer_accounts"].limit)
        self._clean_event_keys: set[str] = set()
        self._clean_profile_keys: set[str] = set()
        self._clean_names: set[str] = set()
        self._found: list[Finding] | None = None  # kept findings, on a recording() checker

    def recording(self) -> Checker:
        """A checker like this one that also keeps what it finds, until ``take`` is called."""
        twin = Checker(self.level, self.max_event_properties, self.allow)
        twin._found = []
        return twin

    def take(self) -> list[Finding]:
        """The findings since the last call, and forget them (on a ``recording()`` checker)."""
        found = self._found or []
        if self._found is not None:
            self._found = []
        return found

    def __repr__(self) -> str:
        allow = f", allow={sorted(self.allow)}" if self.allow else ""
        return (f"Checker({self.level!r}, max_event_properties={self.max_event_properties}"
                f"{allow})")

    def verdict(self, findings: list[Finding]) -> tuple[str, str] | None:
        """The (code, message) rejecting a record with these findings, or None if it goes.

        Only ``strict`` rejects, on the first error finding (the message counts the rest);
        every other finding is a warning.
        """
        if self.level != "strict":
            return None
        errors = [f for f in findings if f.severity == "error"]
        if not errors:
            return None
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return errors[0].code, errors[0].message + more

    def check(self, record: dict[str, Any]) -> list[Finding]:
        """Every finding for ``record`` (empty when clean, and always when the level is off)."""
        if self.level == "off":
            return []
        out: list[Finding] = []
        kind = record.get("type", _MISSING) if type(record) is dict else _MISSING
        if type(kind) is not str:
            out.append(_finding(_L["record_type"], "type", kind))
        elif kind == "event":
            self._event(record, out)
        elif kind == "profile":
            self._profile(record, out)
        elif kind == "token":
            self._token(record, out)
        else:
            out.append(_finding(_L["record_type"], "type", kind))
        if out and self.allow:
            out = [Finding(f.code, f.field, f.message, "warning") if f.code in self.allow
                   else f for f in out]
        if out and self._found is not None:
            self._found.extend(out)
        return out

    # ---- identity and ts (events and profiles) ---------------------------------------------

    def _common(self, r: dict[str, Any], out: list[Finding]) -> None:
        ident = r.get("identity")
        present = False
        if ident is not None:
            if type(ident) is str and _REFUSED_MAX_LEN < len(ident) <= _IDENTITY_MAX:
                present = True  # the common case: a real id
            else:
                present = _identity(ident, "identity", out)
        oid = r.get("objectId", _MISSING)
        if oid is not _MISSING:
            present = _object_id(oid, out) or present
        if (not present and not _nonempty(r.get("FBID")) and not _nonempty(r.get("GPID"))
                and not any(f.code in ("invalid_identity", "invalid_object_id") for f in out)):
            out.append(_finding(_L["identity_missing"], "identity"))
        ts = r.get("ts", _MISSING)
        if ts is not _MISSING and (type(ts) is not int or not _TS_MIN <= ts <= _TS_MAX):
            out.append(_finding(_L["ts"], "ts", ts, hint=_ts_hint(ts)))

    # ---- events ------------------------------------------------------------------------------

    def _event(self, r: dict[str, Any], out: list[Finding]) -> None:
        self._common(r, out)
        name = r.get("evtName", _MISSING)
        if type(name) is str and name in self._clean_names:
            pass  # checked before (and not blank)
        elif type(name) is not str or not name.strip():
            hint = ("give the event a name" if name is _MISSING or name is None
                    or type(name) is str else "send the event name as text")
            out.append(_finding(_L["event_name"], "evtName", name, hint=hint))
            name = ""
        else:
            self._event_name(name, out)
        data = r.get("evtData", _MISSING)
        if type(data) is not dict:
            out.append(_finding(_L["event_data"], "evtData", data))
            return
        if len(data) > self._props_first:
            self._property_count(len(data), out)
        clean = self._clean_event_keys
        for key, value in data.items():
            if key not in clean:
                self._key(key, _path("evtData", key), _L["event_key_chars"], clean, out)
            tv = type(value)
            if tv is str:
                if len(value) > 128:
                    _value_length(value, _path("evtData", key), out)
            elif tv is int:
                if _beyond_64_bits(value):
                    _long_integer(value, _path("evtData", key), out)
            elif tv is dict or tv is list:
                if key == "Items" and name == "Charged":
                    self._items(value, out)
                else:
                    out.append(_finding(_L["nested_event_value"], _path("evtData", key), value))

    def _event_name(self, name: str, out: list[Finding]) -> None:
        before = len(out)
        folded = _fold(name)
        if folded in _RESTRICTED_FOLDED:
            out.append(_finding(_L["restricted_event"], "evtName", name))
        elif folded in _SDK_RESTRICTED_FOLDED:
            out.append(_finding(_L["sdk_restricted_event"], "evtName", name))
        own = name
        for prefix in _PAGE_PREFIXES:  # RudderStack's own page/screen form is accepted
            if name.startswith(prefix):
                own = name[len(prefix):]
                break
        row = _L["event_name_chars"]
        if any(c in row.limit for c in own):
            out.append(_finding(row, "evtName", name, hint=_bad_chars(own, row.limit)))
        if len(name) > _L["event_name_length"].limit:
            out.append(_finding(_L["event_name_length"], "evtName", name, count=len(name)))
        if len(out) == before and len(self._clean_names) < _CACHE_MAX:
            self._clean_names.add(name)

    def _property_count(self, n: int, out: list[Finding]) -> None:
        if n > self._max_props:
            out.append(_finding(_L["properties"], "evtData", count=n, limit=self._max_props))
        elif n > _L["properties_newer_accounts"].limit:
            out.append(_finding(_L["properties_newer_accounts"], "evtData", count=n))

    def _items(self, items: Any, out: list[Finding]) -> None:
        if type(items) is not list or not all(type(item) is dict for item in items):
            out.append(_finding(_L["items_shape"], "evtData.Items", items))
            return
        if len(items) > _L["items_count"].limit:
            out.append(_finding(_L["items_count"], "evtData.Items", count=len(items)))
        # Each problem is reported once, at the first item that has it: an order of 200 items
        # with one bad key makes one finding, not 200.
        clean = self._clean_event_keys
        seen: set[tuple[str, str]] = set()
        for i, item in enumerate(items):
            for key, value in item.items():
                if key not in clean and (key, "key") not in seen:
                    seen.add((key, "key"))
                    self._key(key, _path(f"evtData.Items[{i}]", key), _L["event_key_chars"],
                              clean, out)
                tv = type(value)
                if tv is str:
                    if len(value) > 128 and (key, "value") not in seen:
                        before = len(out)
                        _value_length(value, _path(f"evtData.Items[{i}]", key), out)
                        if len(out) > before:
                            seen.add((key, "value"))
                elif tv is int:
                    if _beyond_64_bits(value):
                        _long_integer(value, _path(f"evtData.Items[{i}]", key), out)
                elif tv is dict or tv is list:
                    if (key, "nested") not in seen:
                        seen.add((key, "nested"))
                        out.append(_finding(_L["item_nested"],
                                            _path(f"evtData.Items[{i}]", key), value))
                    # A nested value goes as it is (a warning): its integers are judged too.
                    found = _first_long_integer(value)
                    if found is not None:
                        _long_integer(found, _path(f"evtData.Items[{i}]", key), out)

    # ---- keys --------------------------------------------------------------------------------

    @staticmethod
    def _key(key: str, field: str, chars_row: Limit, clean: set[str],
             out: list[Finding]) -> None:
        """Length and characters of one key; a clean key is remembered and not checked again."""
        ok = True
        length = _L["key_length"]
        if len(key) > length.limit:
            out.append(_finding(length, field, count=len(key)))
            ok = False
        prohibited: str = chars_row.limit
        if any(c in prohibited for c in key):
            out.append(_finding(chars_row, field, hint=_bad_chars(key, prohibited)))
            ok = False
        if ok and len(clean) < _CACHE_MAX:
            clean.add(key)

    # ---- profiles ----------------------------------------------------------------------------

    def _profile(self, r: dict[str, Any], out: list[Finding]) -> None:
        self._common(r, out)
        data = r.get("profileData", _MISSING)
        if type(data) is not dict:
            out.append(_finding(_L["profile_data"], "profileData", data))
            return
        custom = 0
        clean = self._clean_profile_keys
        chars_row = _L["profile_key_chars"]
        for key, value in data.items():
            if key not in clean:
                self._key(key, _path("profileData", key), chars_row, clean, out)
            rules = _RULES.get(key)
            if rules is not None:
                for row_id, bad in rules:
                    row = _L[row_id]
                    if bad(value, row.limit):
                        hint = "{}-{}".format(*row.limit) if row.id == "phone_digits" else ""
                        out.append(_finding(row, f"profileData.{key}", value, hint=hint))
            elif key == "identity":
                if not (type(value) is str and
                        _REFUSED_MAX_LEN < len(value) <= _IDENTITY_MAX):
                    _identity(value, "profileData.identity", out)
            elif key not in _SYSTEM_PROFILE_KEYS:
                custom += 1
            tv = type(value)
            if tv is str:
                # An identity is judged above, against its own limit (1024), not values' 512.
                if len(value) > 128 and key != "identity":
                    _value_length(value, _path("profileData", key), out)
            elif tv is int:
                if _beyond_64_bits(value):
                    _long_integer(value, _path("profileData", key), out)
            elif tv is list:
                _multi_value(value, _path("profileData", key), out)
            elif tv is dict:
                if key in UNSTRINGIFIED_KEYS:
                    _subscription(value, _path("profileData", key), out)
                else:
                    self._operation(value, _path("profileData", key), out)
        if custom > _L["custom_profile_keys"].limit:
            out.append(_finding(_L["custom_profile_keys"], "profileData", count=custom))

    @staticmethod
    def _operation(value: dict[str, Any], field: str, out: list[Finding]) -> None:
        """A multi-value operation ``{"$add": [...]}``; any other object is refused."""
        if not value or not value.keys() <= _PROFILE_OPERATIONS:
            out.append(_finding(_L["nested_profile_value"], field, value))
            return
        for op, operand in value.items():
            if type(operand) is list:
                _multi_value(operand, f"{field}.{op}", out)
            elif type(operand) is str and len(operand) > 128:
                _value_length(operand, f"{field}.{op}", out)
            elif type(operand) is int and _beyond_64_bits(operand):
                _long_integer(operand, f"{field}.{op}", out)

    # ---- device tokens -----------------------------------------------------------------------

    def _token(self, r: dict[str, Any], out: list[Finding]) -> None:
        oid = r.get("objectId", _MISSING)
        if not _nonempty(oid):
            out.append(_finding(_L["token_object_id"], "objectId", oid))
        elif _refused(oid, oid.strip()):
            out.append(_finding(_L["identity_refused"], "objectId", oid))
        data = r.get("tokenData", _MISSING)
        if type(data) is not dict:
            out.append(_finding(_L["token_data"], "tokenData", data))
            return
        token = data.get("id", _MISSING)
        if not _nonempty(token):
            out.append(_finding(_L["token_id"], "tokenData.id", token))
        kind = data.get("type", _MISSING)
        if kind is _MISSING:
            out.append(_finding(_L["token_type_missing"], "tokenData.type"))
            return
        if type(kind) is not str or kind not in _L["token_type"].limit:
            out.append(_finding(_L["token_type"], "tokenData.type", kind))
            return
        if kind not in _L["token_type_documented"].limit:
            out.append(_finding(_L["token_type_documented"], "tokenData.type", kind))
        if kind == "chrome":
            keys = data.get("keys", _MISSING)
            if type(keys) is not dict or not all(_nonempty(keys.get(k))
                                                  for k in _L["chrome_keys"].limit):
                out.append(_finding(_L["chrome_keys"], "tokenData.keys", keys))


# ---- helpers shared by the record kinds -------------------------------------------------------

def _nonempty(value: Any) -> bool:
    return type(value) is str and value != ""


def _subscription(value: dict[str, Any], field: str, out: list[Finding]) -> None:
    """CleverTap's subscription groups, which the reference sends as objects (spec s6):
    ``{"email": ["Newsletters"]}``, each channel a list of group names."""
    for channel, groups in value.items():
        if type(groups) is not list or not all(type(g) is str for g in groups):
            out.append(_finding(_L["nested_profile_value"], f"{field}.{channel}", groups))


_NOT_TEXT_IDENTITY: Final = "send the user id as text (the default mode does)"
_BLANK_IDENTITY: Final = ("the user id is empty or blank: fix it upstream (for an alias, "
                          "previousId and userId)")


def _refused(text: str, stripped: str) -> bool:
    """Whether an id (``stripped``: the same, stripped) is a placeholder CleverTap refuses."""
    # (lower() never shortens a text, so a stripped text longer than every placeholder is
    # none of them: most real ids are decided without lower-casing them.)
    return (len(text) <= _REFUSED_MAX_LEN and len(stripped) <= _REFUSED_LONGEST
            and stripped.lower() in _REFUSED_IDENTITIES)


def _identity(ident: Any, field: str, out: list[Finding]) -> bool:
    """Judge an identity value; True when it identifies the user (even with a warning)."""
    t = type(ident)
    if t is str:
        stripped = ident.strip()
        if not stripped:
            out.append(_finding(_L["identity_type"], field, ident, limit="a non-empty string",
                                hint=_BLANK_IDENTITY))
            return False
        if len(ident) > _IDENTITY_MAX:
            out.append(_finding(_L["identity_length"], field, count=len(ident)))
            return False
        if _refused(ident, stripped):
            out.append(_finding(_L["identity_refused"], field, ident))
            return False
        return True
    if ident is None:
        return False
    out.append(_finding(_L["identity_type"], field, ident, hint=_NOT_TEXT_IDENTITY))
    return False


def _object_id(oid: Any, out: list[Finding]) -> bool:
    """Judge an event/profile objectId; True when it identifies the user."""
    if not _nonempty(oid) or not oid.strip():
        out.append(_finding(_L["object_id_value"], "objectId", oid))
        return False
    if _refused(oid, oid.strip()):
        out.append(_finding(_L["identity_refused"], "objectId", oid))
        return False
    if len(oid) > _IDENTITY_MAX:
        out.append(_finding(_L["identity_length"], "objectId", count=len(oid)))
        return False
    row = _L["object_id_format"]
    if len(oid) > row.limit:
        out.append(_finding(row, "objectId", oid, hint=f"is {len(oid)} characters long"))
    elif not _OBJECT_ID_CHARS.issuperset(oid):
        odd = " ".join(sorted(set(oid) - _OBJECT_ID_CHARS))
        out.append(_finding(row, "objectId", oid, hint=f"contains {odd}"))
    return True


def _value_length(value: str, field: str, out: list[Finding]) -> None:
    """Only called for strings over 128 characters (shorter ones fit in 512 UTF-8 bytes).

    Characters over the limit are an error; within it but over 512 bytes, a warning.
    """
    row = _L["value_length"]
    n = len(value)
    if n > row.limit:
        out.append(_finding(row, field, hint=f"{n} characters long"))
        return
    row = _L["value_bytes"]
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > row.limit:
        out.append(_finding(row, field, hint=f"{n} characters but {size} UTF-8 bytes long"))


def _beyond_64_bits(value: int) -> bool:
    # Compiled, an integer under 2**62 is held unboxed and compared inline; the limits
    # themselves are boxed, and compared by a generic call.
    if -_SHORT <= value <= _SHORT:
        return False
    return not _INT_MIN <= value <= _INT_MAX


def _long_integer(value: int, field: str, out: list[Finding]) -> None:
    text = str(value)
    out.append(_finding(_L["integer_range"], field,
                        hint=text if len(text) <= 30 else text[:30] + "..."))


def _first_long_integer(value: Any) -> int | None:
    """The first integer beyond 64 bits inside a nested value, if any."""
    stack = [value]  # (not recursive: a value may nest 1024 levels deep)
    while stack:
        item = stack.pop()
        t = type(item)
        if t is int:
            if _beyond_64_bits(item):
                return int(item)
        elif t is dict:
            stack.extend(reversed(list(item.values())))
        elif t is list:
            stack.extend(reversed(item))
    return None


def _multi_value(values: list[Any], field: str, out: list[Finding]) -> None:
    """A profile multi-value (or subscription group): strings, at most 100, each <= 512."""
    if len(values) > _L["multi_value_count"].limit:
        out.append(_finding(_L["multi_value_count"], field, count=len(values)))
    odd = [v for v in values if type(v) is not str]
    if any(type(v) is dict or type(v) is list for v in odd):
        out.append(_finding(_L["nested_profile_value"], field, values))
    elif odd:
        out.append(_finding(_L["multi_value_type"], field, odd[0]))
        for i, v in enumerate(values):
            if type(v) is int and _beyond_64_bits(v):
                _long_integer(v, f"{field}[{i}]", out)
                break  # the first says it
    before = len(out)
    for i, v in enumerate(values):
        if type(v) is str and len(v) > 128:
            _value_length(v, f"{field}[{i}]", out)
            if len(out) > before:
                break  # the first long value says it; the others would repeat it


def describe_limits() -> Iterator[dict[str, Any]]:
    """The table as plain dicts (for docs and ``--json`` consumers)."""
    for row in LIMITS:
        yield {"id": row.id, "code": row.code, "applies_to": row.applies_to,
               "limit": _limit_text(row.limit), "severity": row.severity,
               "clevertap": row.clevertap, "source": row.source}
