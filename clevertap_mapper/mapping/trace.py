"""Decision traces: what the mapping did to each field, and why, as data.

The core records decisions only when handed a ``Trace``; on the normal path it gets ``None``
and every hook is one ``is not None`` test. A Decision is a NamedTuple (not a frozen
dataclass) because building one is then about three times cheaper, which matters when the
dry run traces every event of a million-line dump.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Kind = Literal["mapped", "changed", "dropped", "fix", "warning", "rejected"]

# The default mode's deliberate differences from the reference (shared/DESIGN.md section 2).
FIXES: dict[str, str] = {
    "D1": "event time used as ts when the reference would send none",
    "D2": "ts sent as integer epoch seconds",
    "D3": "event without any identity rejected",
    "D4": "page/screen name not HTML-escaped",
    "D5": "identity sent as a string of at most 1024 characters",
    "D6": "DOB sent as a CleverTap date ($D_<epoch seconds>)",
}


class Decision(NamedTuple):
    """One thing the mapping decided about one output (or dropped input) field.

    - ``kind``: mapped (a field was set), changed (its value was transformed), dropped (an
      input value was not sent), fix (a default-mode fix D1-D6 changed the output), warning,
      rejected (the decision that made the event unsendable).
    - ``field``: the record field (``Email``, ``evtData.plan``, ``ts``; profile fields are
      named without the ``profileData.`` prefix) or, for ``dropped``, the input path.
    - ``rule``: the human-readable rule, free of values (``Email <- traits.email``), so equal
      rules can be counted across events.
    - ``source``: the input path(s) read, comma-separated.
    - ``fix``: the fix id (D1-D6) when a default-mode fix made this decision.
    - ``before`` / ``after``: the value going in and the value sent, when the rule changed it
      (``"female"`` -> ``"F"``); None when not recorded.
    """

    kind: Kind
    field: str
    rule: str
    source: str | None = None
    fix: str | None = None
    before: Any = None
    after: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready data, without the keys that are None."""
        return {k: v for k, v in zip(self._fields, self, strict=True) if v is not None}


@dataclass(slots=True)
class Trace:
    """Collects the decisions made while mapping one event.

    With ``fixes_only``, only the fix decisions are kept (without their values): all that a
    summary needs of the mode it does not show.
    """

    decisions: list[Decision] = field(default_factory=list)
    fixes_only: bool = False

    def add(self, kind: Kind, field_name: str, rule: str, *, source: str | None = None,
            fix: str | None = None, before: Any = None, after: Any = None) -> None:
        if not self.fixes_only:
            self.decisions.append(Decision(kind, field_name, rule, source, fix, before, after))
        elif fix is not None:
            self.decisions.append(Decision(kind, field_name, rule, source, fix))

    @property
    def fixes(self) -> list[str]:
        """The default-mode fixes (D1-D6) that changed this event's output, in order, once each."""
        seen: list[str] = []
        for d in self.decisions:
            if d.fix and d.fix not in seen:
                seen.append(d.fix)
        return seen
