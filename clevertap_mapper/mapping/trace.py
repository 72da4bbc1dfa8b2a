"""Decision traces: what the mapping did to each field, and why, as data.

The core records decisions only when handed a ``Trace``; on the normal path it gets ``None``
and every hook is one ``is not None`` test.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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


@dataclass(frozen=True, slots=True)
class Decision:
    """One thing the mapping decided about one output (or dropped input) field."""

    kind: Kind
    field: str
    rule: str
    source: str | None = None
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(slots=True)
class Trace:
    """Collects the decisions made while mapping one event."""

    decisions: list[Decision] = field(default_factory=list)

    def add(self, kind: Kind, field_name: str, rule: str, *, source: str | None = None,
            fix: str | None = None) -> None:
        self.decisions.append(Decision(kind, field_name, rule, source, fix))

    @property
    def fixes(self) -> list[str]:
        """The default-mode fixes (D1-D6) that changed this event's output, in order, once each."""
        seen: list[str] = []
        for d in self.decisions:
            if d.fix and d.fix not in seen:
                seen.append(d.fix)
        return seen
