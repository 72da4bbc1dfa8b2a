"""Why each event looks the way it does in CleverTap: decision traces for the dry-run view.

Two things, both plain data (no rendering here; ``cli/dryrun.py`` draws them):

- ``explain_item`` explains one read item: it maps the event with a Trace in the configured
  mode, and also in the other mode (default <-> ``--compat rudderstack``), so the view can
  say which default-mode fixes (D1-D6, shared/DESIGN.md section 2) changed the output and what
  RudderStack would have sent instead. The result, an ``Explanation``, lists the input's
  relevant fields, the records, every decision, the input fields that were not sent (and
  why), the fixes, the rejection and the pre-flight check findings.
- ``Overview`` counts the whole input for the closing table: events by type, records by kind,
  rejections by code, how often each rule fired, how many events the default mode maps
  differently from ``--compat rudderstack`` (by fix), and advice where the data calls for it.
  It traces every event once, so it has to be cheap: see ``Overview.add``.

The pure mapping core knows nothing of this module; this module only calls ``map_or_reject``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, TypedDict

from clevertap_mapper.checks import Checker, Finding
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import MappingError
from clevertap_mapper.io.model import Position, Rejection, SourceEvent, SourceRecords
from clevertap_mapper.io.readers import Item
from clevertap_mapper.mapping import tables as T
from clevertap_mapper.mapping.core import Record, map_or_reject
from clevertap_mapper.mapping.js import MISSING, truthy, usable
from clevertap_mapper.mapping.paths import Path, get
from clevertap_mapper.mapping.trace import FIXES, Decision, Trace
from clevertap_mapper.pipeline import UNREADABLE, event_type
from clevertap_mapper.text import plural

Mode = Literal["default", "rudderstack"]

# Fixes that, when traced on an event the default mode sends, always make its records differ
# from --compat rudderstack (each is traced only when it changes a value). D3 is not one: an
# event without any identity is rejected in both modes.
OUTPUT_FIXES: Final = frozenset({"D1", "D2", "D4", "D5", "D6"})

_EVENT_KINDS: Final = frozenset({"track", "page", "screen"})
_BOOKKEEPING: Final = frozenset({
    "messageId", "rudderId", "channel", "request_ip", "session_id", "sessionId", "event_id",
    "originalTimestamp", "sentAt", "receivedAt", "timestamp", "version", "writeKey",
})
RECORDS: Final = "(records)"


def mode_of(config: MapperConfig) -> Mode:
    """``"rudderstack"`` for ``--compat rudderstack``, else ``"default"``."""
    return "rudderstack" if config.compat else "default"


def other_config(config: MapperConfig) -> MapperConfig:
    """The same settings in the other mode: default <-> ``--compat rudderstack``."""
    return replace(config, compat=None if config.compat else "rudderstack")


def other_checker(checker: Checker | None, other: MapperConfig) -> Checker | None:
    """The checks the other mode runs with when not told otherwise: warn for compat (its
    records must be the reference's, record for record), strict for the default mode."""
    if checker is None:
        return None
    return Checker("warn" if other.compat else "strict", checker.max_event_properties,
                   checker.allow)


def type_label(item: Item) -> str:
    """The type an item is counted and selected under: the event's lower-cased ``type``,
    ``(none)`` when it has no usable one, ``(records)`` for CleverTap records read back, and
    ``(unreadable)`` for a line that could not be read."""
    if type(item) is SourceEvent:
        return event_type(item.event)
    if type(item) is SourceRecords:
        return RECORDS
    return UNREADABLE


# ---------------------------------------------------------------------------- plain data


@dataclass(frozen=True, slots=True)
class Dropped:
    """Input fields that were not sent, and why (``paths`` share one reason)."""

    paths: tuple[str, ...]
    why: str
    value: Any = MISSING  # the value, when one field was dropped for its value (a gender)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"paths": list(self.paths), "why": self.why}
        if self.value is not MISSING:
            out["value"] = self.value
        return out


@dataclass(frozen=True, slots=True)
class FixNote:
    """One default-mode fix that applied to the event, with the decisions it made."""

    fix: str
    title: str
    decisions: tuple[Decision, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"fix": self.fix, "title": self.title,
                "decisions": [d.as_dict() for d in self.decisions]}


@dataclass(frozen=True, slots=True)
class Outcome:
    """Why an event (or one of its records) is not sent: stage, stable code, what to do.

    ``record``: for a check rejection, the 0-based index of the record refused (the
    event's other records, if any, are sent unless refused too)."""

    stage: str
    code: str
    message: str
    record: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.stage, "code": self.code, "message": self.message}
        if self.record is not None:
            out["record"] = self.record
        return out


@dataclass(frozen=True, slots=True)
class Difference:
    """One record field where the default mode and ``--compat rudderstack`` differ."""

    record: int
    field: str  # flattened: "ts", "profileData.DOB", "evtData.price"
    default: Any  # MISSING: the default mode does not send it
    compat: Any  # MISSING: --compat rudderstack does not send it

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"record": self.record, "field": self.field}
        if self.default is not MISSING:
            out["default"] = self.default
        if self.compat is not MISSING:
            out["compat"] = self.compat
        return out


class ExplanationJSON(TypedDict):
    """The ``--dry-run --json`` shape of one event (see ``Explanation.as_dict``)."""

    source: str
    line: int
    index: int | None
    type: str
    name: str | None
    mode: Mode
    input: dict[str, Any]
    records: list[Record]
    decisions: list[dict[str, Any]]
    dropped: list[dict[str, Any]]
    fixes: list[dict[str, Any]]
    compat_records: list[Record] | None
    compat_rejection: dict[str, str] | None
    differs_from_compat: bool
    differences: list[dict[str, Any]]
    rejection: dict[str, str] | None
    findings: list[dict[str, Any]]


@dataclass(slots=True)
class Explanation:
    """Everything the dry run shows about one event (or unreadable line, or record line)."""

    source: str
    line: int
    index: int | None
    type: str
    name: str | None
    mode: Mode
    input: list[tuple[str, Any]] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    fixes: list[FixNote] = field(default_factory=list)
    compat_records: list[Record] | None = None
    compat_rejection: Outcome | None = None
    differs_from_compat: bool = False
    differences: list[Difference] = field(default_factory=list)
    rejection: Outcome | None = None
    findings: list[tuple[int, Finding]] = field(default_factory=list)

    def as_dict(self) -> ExplanationJSON:
        """The event as JSON-ready data; the keys are stable (documented in cli/dryrun.py)."""
        return {
            "source": self.source,
            "line": self.line,
            "index": self.index,
            "type": self.type,
            "name": self.name,
            "mode": self.mode,
            "input": dict(self.input),
            "records": self.records,
            "decisions": [d.as_dict() for d in self.decisions],
            "dropped": [d.as_dict() for d in self.dropped],
            "fixes": [f.as_dict() for f in self.fixes],
            "compat_records": self.compat_records,
            "compat_rejection": None if self.compat_rejection is None
            else self.compat_rejection.as_dict(),
            "differs_from_compat": self.differs_from_compat,
            "differences": [d.as_dict() for d in self.differences],
            "rejection": None if self.rejection is None else self.rejection.as_dict(),
            "findings": [{"record": i, "code": f.code, "field": f.field, "message": f.message,
                          "severity": f.severity} for i, f in self.findings],
        }


# ---------------------------------------------------------------------------- one event


def _map(event: Any, config: MapperConfig,
         trace: Trace | None) -> tuple[list[Record], Outcome | None]:
    """``_outcome``, with the error as the Outcome the view shows."""
    records, error = _outcome(event, config, trace)
    if error is not None:
        return [], Outcome("map", error.code, error.message)
    return records or [], None


def check_records(records: list[Record],
                  checker: Checker | None) -> tuple[list[tuple[int, Finding]], list[Outcome]]:
    """Pre-flight findings of each record, and the check rejections ``strict`` makes of them.

    The same verdict as the convert pipeline (``Checker.verdict``): under ``strict`` a record
    with error findings is rejected; ``warn`` only reports; ``off`` skips.
    """
    if checker is None or checker.level == "off":
        return [], []
    findings: list[tuple[int, Finding]] = []
    rejections: list[Outcome] = []
    for i, record in enumerate(records):
        found = checker.check(record)
        findings.extend((i, f) for f in found)
        verdict = checker.verdict(found)
        if verdict is not None:
            rejections.append(Outcome("check", *verdict, record=i))
    return findings, rejections


def explain_item(item: Item, config: MapperConfig, checker: Checker | None = None) -> Explanation:
    """Explain one read item: an event (mapped in both modes), a record line, or a bad line."""
    pos = item.pos
    kind = type_label(item)
    base = Explanation(pos.source, pos.line, pos.index, kind, None, mode_of(config))
    if type(item) is SourceRecords:
        base.records = item.records
        base.findings, rejections = check_records(item.records, checker)
        base.rejection = rejections[0] if rejections else None
        return base
    if type(item) is not SourceEvent:
        assert isinstance(item, Rejection)
        base.rejection = Outcome(item.stage, item.code, item.message)
        if item.raw is not None:
            base.input = [("(line)", item.raw)]
        elif item.event is not None:
            base.input = [("(value)", item.event)]
        return base
    return explain_event(item.event, config, checker, source=pos.source, line=pos.line,
                         index=pos.index)


def explain_event(event: Any, config: MapperConfig, checker: Checker | None = None, *,
                  source: str = "<event>", line: int = 1, index: int | None = None) -> Explanation:
    """Explain how one RudderStack event maps, decision by decision, in both modes.

    >>> from clevertap_mapper import MapperConfig
    >>> e = explain_event({"type": "track", "userId": "u1", "event": "Signed Up",
    ...                    "timestamp": "2024-01-02T03:04:05Z"}, MapperConfig())
    >>> [d.rule for d in e.decisions][:2]
    ['evtName <- event', 'evtData: empty, the event has no properties']
    >>> [f.fix for f in e.fixes], e.differs_from_compat
    (['D1'], True)
    """
    kind = event_type(event)
    trace = Trace()
    records, rejection = _map(event, config, trace)
    other_trace = Trace()
    other = other_config(config)
    other_records, other_rejection = _map(event, other, other_trace)
    findings, check_rejections = check_records(records, checker)
    if rejection is None and check_rejections:
        rejection = check_rejections[0]
    if other_rejection is None:
        other_checks = check_records(other_records, other_checker(checker, other))[1]
        other_rejection = other_checks[0] if other_checks else None
    if config.compat:
        compat_records, compat_rejection = records, rejection
        default_records, default_rejection = other_records, other_rejection
        default_trace = other_trace
    else:
        compat_records, compat_rejection = other_records, other_rejection
        default_records, default_rejection = records, rejection
        default_trace = trace
    fixes = [FixNote(fix, FIXES[fix], tuple(d for d in default_trace.decisions if d.fix == fix))
             for fix in default_trace.fixes]
    # Records that the checks reject are still compared: the view shows both.
    differences = (_differences(default_records, compat_records)
                   if default_records and compat_records else [])
    differs = bool(differences) or (
        (default_rejection.code if default_rejection else None)
        != (compat_rejection.code if compat_rejection else None))
    return Explanation(
        source, line, index, kind, _name(event, kind), mode_of(config),
        input=_input_summary(event, kind, trace.decisions),
        records=records,
        decisions=trace.decisions,
        # A rejected event sends nothing: listing its fields as "not sent" would say nothing.
        dropped=[] if rejection is not None and rejection.stage == "map"
        else _dropped(event, kind, trace.decisions, config, records),
        fixes=fixes,
        compat_records=compat_records or None,  # None: the mapping rejects it
        compat_rejection=compat_rejection,
        differs_from_compat=differs,
        differences=differences,
        rejection=rejection,
        findings=findings,
    )


def _name(event: Any, kind: str) -> str | None:
    """A short label for the header: the event name, page name, or whose profile it is."""
    if type(event) is not dict:
        return None
    if kind == "track":
        name = event.get("event")
        return str(name) if usable(name) else None
    if kind in ("page", "screen"):
        for path in T.PAGE_NAME_SOURCES:
            value = get(event, path)
            if usable(value):
                return str(value)
        return None
    if kind == "alias":
        return " -> ".join("(none)" if event.get(key) is None else str(event[key])
                           for key in ("previousId", "userId"))
    for key in ("userId", "anonymousId"):
        if usable(event.get(key)):
            return f"{key} {event[key]}"
    return None


def _sources(decisions: Iterable[Decision]) -> list[str]:
    """The input paths the decisions read, in order, once each."""
    seen: dict[str, None] = {}
    for d in decisions:
        if d.source:
            for s in d.source.split(", "):
                seen.setdefault(s, None)
    return list(seen)


def _input_summary(event: Any, kind: str, decisions: list[Decision]) -> list[tuple[str, Any]]:
    """The input fields worth showing beside the records: type, name, ids, what was read,
    and the event's own times (they decide ``ts`` in the default mode, fix D1)."""
    if type(event) is not dict:
        return [("(value)", event)]
    paths: dict[str, None] = {"type": None}
    if kind in _EVENT_KINDS:
        paths.update(dict.fromkeys(["event", *(p.text for p in T.PAGE_NAME_SOURCES)]
                                   if kind != "track" else ["event"]))
    paths.update(dict.fromkeys(("userId", "anonymousId", "previousId")))
    for source in _sources(decisions):
        value = get(event, Path(source))
        if source in ("properties", "traits", "context.traits") and type(value) is dict:
            paths.update(dict.fromkeys(f"{source}.{k}" for k in value))
        else:
            paths[source] = None
    paths.update(dict.fromkeys(p.text for p in (T.PROPERTIES_TS, T.TRAITS_TS,
                                                 T.CONTEXT_TRAITS_TS)))
    paths.update(dict.fromkeys(T.EVENT_TIME_FIELDS))
    out = []
    for p in paths:
        value = event.get(p, MISSING) if p in event else get(event, Path(p))
        if value is not MISSING:
            out.append((p, value))
    return out


_TS_SOURCES: Final = frozenset(p.text for p in (T.PROPERTIES_TS, T.TRAITS_TS,
                                                 T.CONTEXT_TRAITS_TS))
NOTHING: Final = "not sent: null or empty, nothing to send"


def _ts_source(decisions: list[Decision], records: list[Record]) -> str | None:
    """The input path(s) the records' ts came from, or None when no record has a ts."""
    ts_from = next((d.source for d in decisions if d.field == "ts" and d.source
                    and d.kind in ("mapped", "fix")), None)
    return ts_from if ts_from and any("ts" in r for r in records) else None


def _why_not_sent(path: str, kind: str, config: MapperConfig, decisions: list[Decision],
                  records: list[Record], event: dict[str, Any] | None = None) -> str:
    """The reason an input field that no rule read is not in the record(s)."""
    top = path.split(".", 1)[0]
    if path in _TS_SOURCES and (ts_from := _ts_source(decisions, records)):
        return f"not needed: ts came from {ts_from}"  # e.g. traits.ts won over context.traits.ts
    if (kind == "identify" and path.startswith(T.CONTEXT_TRAITS_OVERRIDES.text)
            and event is not None and truthy(get(event, T.TRAITS_OVERRIDES))):
        return "not sent: traits.overrideFields is used instead (the two are not merged)"
    if kind == "identify" and path in (T.TRAITS_OVERRIDES.text, T.CONTEXT_TRAITS_OVERRIDES.text):
        return "not sent: an overrideFields that is a number or boolean adds no fields"
    if path.startswith("context.device.token") and kind == "identify":
        if not config.object_id_mapping:
            return ("not sent: device tokens are sent only with --object-id-mapping "
                    "(the token record is keyed by objectId = anonymousId)")
        return "not sent: a device token needs an anonymousId and context.os.name"
    if path.startswith("context.traits.") and kind == "alias":
        return "not sent: an alias sends only previousId, userId and traits.ts"
    if path.startswith("context.traits.") and kind in _EVENT_KINDS:
        return ("not sent: track, page and screen events send only their properties "
                "(context.traits.userId and context.traits.id can supply the identity)")
    if top == "context":
        return "not sent: CleverTap records carry no device, library, page or campaign context"
    if top == "integrations":
        return "not sent: RudderStack's routing settings (read only for a device token's type)"
    if top in T.EVENT_TIME_FIELDS:
        if config.compat:
            return ("not sent: the reference takes ts only from properties.ts, traits.ts or "
                    "context.traits.ts (ctmap's default mode uses the event's own time, fix D1)")
        ts_from = _ts_source(decisions, records)
        if ts_from:
            return f"not needed: ts came from {ts_from}"
        return "not sent: no CleverTap field (ts was not set)"
    if top == "traits" and kind in _EVENT_KINDS:
        return ("not sent: track, page and screen events send only their properties "
                "(traits.userId and traits.id can supply the identity)")
    if top == "traits" and kind == "alias":
        return "not sent: an alias sends only previousId, userId and traits.ts"
    if top == "properties" and kind in ("identify", "alias"):
        return ("not sent: identify sends traits, not properties "
                "(only properties.email is read, as Email)")
    if top in ("userId", "anonymousId"):
        ids = [d for d in decisions if d.field in ("identity", "objectId", "profileData.identity")
               and d.source]
        if ids:
            return "not sent: the user is identified by " + ", ".join(
                f"{d.field} <- {d.source}" for d in ids)
        if records:
            return "not sent"
    if top in _BOOKKEEPING:
        return "not sent: RudderStack bookkeeping, with no CleverTap field"
    return "not sent: the CleverTap destination does not map this field"


def _dropped(event: Any, kind: str, decisions: list[Decision], config: MapperConfig,
             records: list[Record]) -> list[Dropped]:
    """Input fields that are not in the records, grouped by reason."""
    if type(event) is not dict:
        return []
    used = set(_sources(decisions)) | {"type"}
    if kind in _EVENT_KINDS:
        used.add("event")  # read for the name and for Order Completed -> Charged
    notes: list[Dropped] = []
    explained: set[str] = set()
    mapped_from = {d.field: d.source for d in decisions if d.kind == "mapped" and d.source}
    noted = {d.field for d in decisions if d.kind == "dropped" and "reserved for" not in d.rule}
    for d in decisions:
        if d.kind == "warning" and "dropped" in d.rule:  # DOB: not a date, dropped
            path = mapped_from.get(d.field) or d.field
            notes.append(Dropped((path,), d.rule.removeprefix(f"{d.field}: "),
                                 d.before if d.before is not None else MISSING))
            explained.add(path)
            continue
        if d.kind != "dropped":
            continue
        if not d.rule.endswith(": null, not sent"):  # an input path: gender, reserved, token
            path, why = d.field, d.rule.removeprefix(f"{d.field}: ")
            if "reserved for a mapped" in why:
                if path in used or path in noted:
                    continue  # read by its mapped field, or dropped for a reason of its own
                if usable(get(event, Path(path))):
                    why = why.replace("reserved for a mapped CleverTap field",
                                      "reserved for a mapped CleverTap field (another source "
                                      "won)")
                else:
                    why = "null or empty, which its mapped CleverTap field does not take"
        else:  # an output key removed: "Email: null, not sent"
            key, _, why = d.rule.partition(": ")
            path = mapped_from.get(key) or f"profileData.{key}"
        notes.append(Dropped((path,), why, d.before if d.before is not None else MISSING))
        explained.add(path)
    token = T.DEVICE_TOKEN.text
    if (kind == "identify" and token not in explained and usable(get(event, T.DEVICE_TOKEN))
            and not any(d.field == "tokenData.id" for d in decisions)):
        notes.append(Dropped((token,), _why_not_sent(token, kind, config, decisions, records)))
        explained.add(token)

    def covered(p: str) -> bool:
        return p in used or any(p.startswith(u + ".") for u in used)

    def partly(p: str) -> bool:
        return any(u.startswith(p + ".") for u in used) or any(
            e.startswith(p + ".") for e in explained)

    unsent: list[str] = []

    def walk(obj: dict[str, Any], prefix: str, depth: int) -> None:
        for k, v in obj.items():
            p = prefix + k
            if p in explained or covered(p):
                continue
            if type(v) is dict and v and depth < 3 and (partly(p) or p in opened):
                walk(v, p + ".", depth + 1)
            elif partly(p):
                continue  # a string or array read index by index (overrideFields "ab")
            elif not usable(v) or v in ({}, []):
                empty.append(p)
            else:
                unsent.append(p + ".*" if type(v) is dict and v else p)

    # context.traits is read (custom traits, ids, ts, overrides): its fields each get their
    # own reason, not "no device context".
    context = event.get("context")
    opened = ({"context", "context.traits"} if type(context) is dict
              and type(context.get("traits")) is dict else set())
    empty: list[str] = []
    walk(event, "", 0)
    groups: dict[str, list[str]] = {}
    for p in unsent:
        groups.setdefault(_why_not_sent(p, kind, config, decisions, records, event),
                          []).append(p)
    if empty:  # whatever reads them had nothing to take
        groups.setdefault(NOTHING, []).extend(empty)
    notes.extend(Dropped(tuple(paths), why) for why, paths in groups.items())
    return notes


def _flatten(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in record.items():
        if k in ("profileData", "evtData", "tokenData") and type(v) is dict:
            for k2, v2 in v.items():
                out[f"{k}.{k2}"] = v2
        else:
            out[k] = v
    return out


def _differences(default: list[Record], compat: list[Record]) -> list[Difference]:
    """Field by field, where the default mode's records differ from compat's."""
    out: list[Difference] = []
    for i in range(max(len(default), len(compat))):
        a = _flatten(default[i]) if i < len(default) else {}
        b = _flatten(compat[i]) if i < len(compat) else {}
        for key in dict.fromkeys([*a, *b]):
            va, vb = a.get(key, MISSING), b.get(key, MISSING)
            if va is MISSING or vb is MISSING or type(va) is not type(vb) or va != vb:
                out.append(Difference(i, key, va, vb))
    return out


# ---------------------------------------------------------------------------- field notes

_CONTAINERS: Final = ("profileData", "evtData", "tokenData")
_PER_KEY_MARKS: Final = ("(custom", "(override")


@dataclass(frozen=True, slots=True)
class FieldNote:
    """One line of a record as the view shows it: the field, its value, what made it.

    ``depth`` is 0 for a record's own keys and 1 inside profileData/evtData/tokenData; a
    container's own line has ``value`` MISSING. ``note`` is a rule the explanation states
    itself where the core records none (the record type; an evtData key copied from
    properties).
    """

    path: str
    key: str
    depth: int
    value: Any
    decisions: tuple[Decision, ...]
    note: str | None = None


def _record_note(kind: str, record: Record) -> str:
    rtype = record.get("type")
    if kind == RECORDS:
        return "already a CleverTap record: sent as it is"
    if rtype == "token":
        return "a device token record (identify, with objectId mapping)"
    if kind == "alias":
        return "an alias becomes a profile record that renames previousId to userId"
    return f"{kind} -> {rtype} record"


def record_fields(explanation: Explanation, index: int) -> list[FieldNote]:
    """The lines of record ``index`` with the decisions that made each field."""
    record = explanation.records[index]
    decisions = [d for d in explanation.decisions if d.kind not in ("dropped", "rejected")]
    is_token = record.get("type") == "token"
    by_field: dict[str, list[Decision]] = {}
    for d in decisions:
        per_key = any(mark in d.rule for mark in _PER_KEY_MARKS)
        target = d.field
        if record.get("type") == "profile" and (per_key or d.field not in record):
            # profile fields are named without their container in the trace
            target = d.field if d.field.startswith("profileData.") else f"profileData.{d.field}"
        by_field.setdefault(target, []).append(d)
    from_properties = any(d.field == "evtData" and d.source == "properties" for d in decisions)
    out: list[FieldNote] = []
    for key, value in record.items():
        if key in _CONTAINERS and type(value) is dict:
            out.append(FieldNote(key, key, 0, MISSING, tuple(by_field.get(key, ()))))
            for child, v in value.items():
                path = f"{key}.{child}"
                found = tuple(by_field.get(path, ()))
                note = None
                if not found and key == "evtData" and from_properties:
                    note = f"{child} <- properties.{child}"
                out.append(FieldNote(path, child, 1, v, found, note))
            continue
        if key == "type":
            out.append(FieldNote(key, key, 0, value, (), _record_note(explanation.type, record)))
        elif is_token and key == "objectId":
            out.append(FieldNote(key, key, 0, value, (), "objectId <- anonymousId"))
        else:
            out.append(FieldNote(key, key, 0, value, tuple(by_field.get(key, ()))))
    return out


# ---------------------------------------------------------------------------- rule ids

_RulePattern = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]
_RULE_PATTERNS: Final[tuple[_RulePattern, ...]] = (
    # "plan <- traits.plan (custom)" -> "* <- traits.* (custom)"
    (re.compile(r"^(evtData\.)?(.*) <- (.+)\.\2 \((custom.*)\)$", re.S),
     lambda m: f"{m[1] or ''}* <- {m[3]}.* ({m[4]})"),
    (re.compile(r"^(.*) <- (.*overrideFields)\.\1 (\(override.*\))$", re.S),
     lambda m: f"* <- {m[2]}.* {m[3]}"),
    (re.compile(r"^(evtData\.)?(.*): (stringified, .*)$", re.S),
     lambda m: f"{m[1] or ''}*: {m[3]}"),
    (re.compile(r"^(.*): (null, not sent)$", re.S), lambda m: f"*: {m[2]}"),
    (re.compile(r"^(.*)\.[^.]*: (reserved for a mapped .*)$", re.S),
     lambda m: f"{m[1]}.*: {m[2]}"),
)
_RULE_IDS: dict[str, str] = {}
_RULE_ID_CACHE_LIMIT: Final = 50_000


def rule_id(rule: str) -> str:
    """A rule's text with the per-field names taken out, so rules can be counted.

    ``"plan <- traits.plan (custom)"`` -> ``"* <- traits.* (custom)"``; rules that already name
    one fixed field (``"Email <- traits.email"``) are their own id.
    """
    found = _RULE_IDS.get(rule)
    if found is not None:
        return found
    found = rule
    for pattern, make in _RULE_PATTERNS:
        m = pattern.match(rule)
        if m is not None:
            found = make(m)
            break
    if len(_RULE_IDS) < _RULE_ID_CACHE_LIMIT:
        _RULE_IDS[rule] = found
    return found


# ---------------------------------------------------------------------------- selection


@dataclass(frozen=True, slots=True)
class Selection:
    """Which events the dry run explains in full; empty criteria select everything.

    An item is selected when it is on one of ``lines`` (if any), of one of ``types`` (if
    any) and named one of ``event_names`` (if any; the ``event`` field, or a page/screen name;
    case-insensitive).
    """

    lines: frozenset[int] = frozenset()
    types: frozenset[str] = frozenset()
    event_names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, lines: Iterable[int] = (), types: Iterable[str] = (),
           event_names: Iterable[str] = ()) -> Selection:
        return cls(frozenset(lines), frozenset(t.lower() for t in types),
                   frozenset(n.casefold() for n in event_names))

    def matches(self, item: Item) -> bool:
        if self.lines and item.pos.line not in self.lines:
            return False
        if self.types and type_label(item) not in self.types:
            return False
        if self.event_names:
            if type(item) is not SourceEvent or type(item.event) is not dict:
                return False
            names = [item.event.get("event")]
            if type_label(item) in ("page", "screen"):
                names.extend(get(item.event, p) for p in T.PAGE_NAME_SOURCES)
            return any(type(n) is str and n.casefold() in self.event_names for n in names)
        return True


# ---------------------------------------------------------------------------- the overview


class AdviceJSON(TypedDict):
    code: str
    message: str


@dataclass
class Overview:
    """Counts over the whole input for the closing table, and the advice they call for.

    ``add`` every read item (selected or not). Each event is mapped once, traced, in the
    configured mode; in the default mode the compat outcome is deduced from the fixes the
    trace names (``OUTPUT_FIXES``), so ``--compat rudderstack`` is mapped only for rejected
    events, where the outcomes must be compared. In compat mode the default mode is traced
    too, to name the fixes. ``exact=True`` maps the other mode for every event and compares
    (slower; the tests use it to prove the deduction). One difference the deduction does not
    see: integers beyond 2**53, which compat mode rounds as JavaScript does.
    """

    config: MapperConfig
    checker: Checker | None = None
    exact: bool = False
    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    rejection_examples: dict[str, tuple[str, str]] = field(default_factory=dict)
    warnings: Counter[str] = field(default_factory=Counter)
    rules: dict[str, int] = field(default_factory=dict)
    fixes_applied: Counter[str] = field(default_factory=Counter)
    differs: int = 0
    differs_by_fix: Counter[str] = field(default_factory=Counter)
    without_ts: int = 0
    anonymous_identity: Counter[str] = field(default_factory=Counter)
    tokens_unsent: int = 0
    matched: int = 0
    shown: int = 0

    def __post_init__(self) -> None:
        self._other = other_config(self.config)
        self._check = (self.checker.check if self.checker is not None
                       and self.checker.level != "off" else None)
        self._strict = self.checker is not None and self.checker.level == "strict"
        # The checks the other mode runs with (explain_event compares with the same).
        self._other_checker = other_checker(self.checker, self._other)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def add(self, item: Item) -> None:
        """Count one read item (an event, a line of records, or an unreadable line)."""
        self.events += 1
        if type(item) is SourceEvent:
            self._add_event(item)
        elif type(item) is SourceRecords:
            self.by_type[RECORDS] += 1
            self._add_records(item.records, item.pos)
        else:
            assert isinstance(item, Rejection)
            self.by_type[UNREADABLE] += 1
            self._reject(item.code, item.pos, item.message)

    def _reject(self, code: str, pos: Position, message: str) -> None:
        self.rejected[code] += 1
        if code not in self.rejection_examples:
            self.rejection_examples[code] = (str(pos), message)

    def _add_records(self, records: list[Record], pos: Position) -> bool:
        """Count records as the checks let them go; whether the checks refused any."""
        kinds = self.records
        check = self._check
        refused = False
        for record in records:
            if check is not None:
                findings = check(record)
                if findings:
                    errors = ([f for f in findings if f.severity == "error"] if self._strict
                              else [])
                    for f in findings:
                        if f not in errors:
                            self.warnings[f.code] += 1
                    if errors:
                        self._reject(errors[0].code, pos, errors[0].message)
                        refused = True
                        continue
            kind = record.get("type")
            kinds[kind if type(kind) is str else "(none)"] += 1
            if kind != "token" and record.get("ts") is None:
                self.without_ts += 1
        return refused

    def _add_event(self, item: SourceEvent) -> None:
        # The hot path of a dry run: every event of the input comes through here once.
        event = item.event
        kind = event_type(event)
        self.by_type[kind] += 1
        trace = Trace()
        records, error = _outcome(event, self.config, trace)
        rules = self.rules
        known = _RULE_IDS
        fixes: list[str] = []
        for d in trace.decisions:
            rule = d.rule
            if d.kind == "dropped" and "reserved for a mapped" in rule:
                continue  # a note on every excluded trait, read or not: noise in counts
            rid = known.get(rule)
            if rid is None:
                rid = rule_id(rule)
            rules[rid] = rules.get(rid, 0) + 1
            if d.fix is not None and d.fix not in fixes:
                fixes.append(d.fix)
            if d.source == "anonymousId" and d.field == "identity":
                self.anonymous_identity[kind] += 1
        refused = False  # this mode's checks refused a record
        if error is not None:
            self._reject(error.code, item.pos, error.message)
        else:
            assert records is not None
            if (kind == "identify" and not self.config.object_id_mapping
                    and usable(get(event, T.DEVICE_TOKEN))):
                self.tokens_unsent += 1
            refused = self._add_records(records, item.pos)
        if self.config.compat:
            default_trace = Trace(fixes_only=True)
            default, default_error = _outcome(event, self._other, default_trace)
            fixes = default_trace.fixes
            compat, compat_error = records, error
            default_refused = default is not None and bool(
                check_records(default, self._other_checker)[1])
            compat_refused = refused
        else:
            default, default_error = records, error
            if self.exact or error is not None or refused:
                compat, compat_error = _outcome(event, self._other, None)
            else:
                compat, compat_error = None, None
            default_refused = refused
            compat_refused = compat is not None and bool(
                check_records(compat, self._other_checker)[1])
        if fixes or compat is not None or compat_error is not None:
            self._count_fixes(fixes, default, default_error or default_refused, compat,
                              compat_error or compat_refused)

    def _count_fixes(self, fixes: list[str], default: list[Record] | None,
                     default_error: MappingError | bool, compat: list[Record] | None,
                     compat_error: MappingError | bool) -> None:
        """Count the fixes applied, and whether the default outcome differs from compat's.

        An error is the mode's MappingError, or True when its checks refused a record (as
        ``explain_event`` compares them, each mode with the checks it runs with)."""
        for fix in fixes:
            self.fixes_applied[fix] += 1
        if compat is None and not compat_error:  # deduced: no run of compat mode
            differs = any(f in OUTPUT_FIXES for f in fixes)
        elif default_error or compat_error:
            differs = (not default_error or not compat_error
                       or _code(default_error) != _code(compat_error))
        else:
            differs = default != compat
        if differs:
            self.differs += 1
            # D3 too: where compat also rejects the event, the outcomes do not differ, and
            # where they do (an alias without userId, which compat sends), D3 is why.
            for fix in fixes or ["(other)"]:
                self.differs_by_fix[fix] += 1

    # -- the closing table

    def rule_counts(self) -> list[tuple[str, int]]:
        """Rules by how often they fired, most first (ties by name)."""
        return sorted(self.rules.items(), key=lambda kv: (-kv[1], kv[0]))

    def advice(self) -> list[AdviceJSON]:
        """Advice the counts call for, most important first (empty when all is well)."""
        out: list[AdviceJSON] = []
        cfg = self.config
        anon = sum(self.anonymous_identity.values())
        if anon and not cfg.object_id_mapping:
            tracked = sum(n for k, n in self.anonymous_identity.items() if k != "identify")
            off = (" or leave anonymous tracking off (--no-track-anonymous) so anonymous "
                   "track/page/screen events are not sent" if cfg.track_anonymous and tracked
                   else "")
            out.append({"code": "anonymous_identity", "message": (
                f"{plural(anon, 'event')} sent with identity = anonymousId, because objectId "
                "mapping is off: CleverTap will make them profiles of their own, which it "
                "cannot merge with the user's profile once they log in. Rerun with "
                f"--object-id-mapping (objectId = anonymousId, which CleverTap merges){off}.")})
        not_allowed = self.rejected.get("anonymous_not_allowed", 0)
        if not_allowed:
            out.append({"code": "anonymous_not_allowed", "message": (
                f"{plural(not_allowed, 'event')} without a userId left out, because anonymous "
                "tracking is off. To send them, rerun with --track-anonymous "
                "--object-id-mapping, so CleverTap can merge them when the user logs in.")})
        if self.without_ts:
            d1 = self.fixes_applied.get("D1", 0)
            if cfg.compat and d1:
                tail = (" ctmap's default mode would send the event's own time for "
                        f"{plural(d1, 'event')} (fix D1): drop --compat rudderstack.")
            else:
                tail = (" Add a timestamp (or properties.ts / traits.ts) to the events if "
                        "their dates matter.")
            out.append({"code": "no_time", "message": (
                f"{plural(self.without_ts, 'record')} without a time (ts): CleverTap will "
                f"use the upload time instead.{tail}")})
        if cfg.compat and self.differs:
            fixes = ", ".join(f"{k} {v:,}" for k, v in sorted(self.differs_by_fix.items()))
            out.append({"code": "compat_differs", "message": (
                f"{plural(self.differs, 'event')} that ctmap's default mode would send "
                f"differently ({fixes}): use --compat rudderstack only to reproduce "
                "RudderStack exactly.")})
        if self.tokens_unsent:
            out.append({"code": "tokens_unsent", "message": (
                f"{plural(self.tokens_unsent, 'identify event')} with a device token "
                "(context.device.token): tokens are sent only with --object-id-mapping.")})
        genders = sum(n for r, n in self.rules.items() if "not a CleverTap gender" in r)
        if genders:
            out.append({"code": "gender_dropped", "message": (
                f"Gender not M or F in {plural(genders, 'profile')}: CleverTap knows only M and "
                "F, so Gender is not sent; keep it as a custom trait if you need it.")})
        dob = sum(n for r, n in self.rules.items() if r.startswith("DOB: not a date"))
        if dob:
            out.append({"code": "dob_dropped", "message": (
                f"Birthday not a date in {plural(dob, 'profile')}: DOB is not sent (fix D6); "
                "send traits.birthday as an ISO date such as 1990-01-31.")})
        return out

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (keys documented in cli/dryrun.py)."""
        return {
            "events": self.events,
            "events_by_type": dict(self.by_type.most_common()),
            "records": sum(self.records.values()),
            "records_by_kind": dict(self.records.most_common()),
            "rejected": self.rejected_total,
            "rejected_by_code": dict(self.rejected.most_common()),
            "rejection_examples": {code: {"where": where, "message": message}
                                   for code, (where, message) in self.rejection_examples.items()},
            "warnings_by_code": dict(self.warnings.most_common()),
            "rules": dict(self.rule_counts()),
            "mode": mode_of(self.config),
            "fixes_applied": dict(sorted(self.fixes_applied.items())),
            "differs_from_compat": self.differs,
            "differs_by_fix": dict(sorted(self.differs_by_fix.items())),
            "records_without_ts": self.without_ts,
            "matched": self.matched,
            "shown": self.shown,
            "advice": self.advice(),
        }


def _code(outcome: MappingError | bool) -> str:
    return outcome.code if isinstance(outcome, MappingError) else "(checks)"


def _outcome(event: Any, config: MapperConfig,
             trace: Trace | None) -> tuple[list[Record] | None, MappingError | None]:
    """The records, or the MappingError, of mapping ``event`` (``map_or_reject`` as a pair)."""
    outcome = map_or_reject(event, config, trace)
    if isinstance(outcome, MappingError):
        return None, outcome
    return outcome, None


# ---------------------------------------------------------------------------- the whole input


def explain_input(items: Iterable[Item], config: MapperConfig, overview: Overview, *,
                  selection: Selection = Selection(), limit: int | None = 10,
                  checker: Checker | None = None) -> Iterator[Explanation]:
    """Explain the selected items (at most ``limit``) while counting every item in ``overview``.

    A generator, so the caller can show each explanation as soon as it is found; the overview
    is complete once the generator is exhausted.
    """
    for item in items:
        overview.add(item)
        if selection.matches(item):
            overview.matched += 1
            if limit is None or overview.shown < limit:
                overview.shown += 1
                yield explain_item(item, config, checker)
