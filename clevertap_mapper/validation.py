"""Validation: read, map and check inputs, and account for what CleverTap would refuse and why.

Nothing is written or sent. The run goes through the same ``map_items`` stage as ``convert``
(with a checker that also remembers its findings, so warnings can be shown with the place they
came from) and counts every rejection and warning by code, keeping the first examples of each.
``ctmap validate`` renders the report.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from clevertap_mapper.checks import CLEVERTAP_CODES, Checker, Finding
from clevertap_mapper.config import MapperConfig
from clevertap_mapper.errors import InputError
from clevertap_mapper.io.model import Position, Rejection
from clevertap_mapper.io.readers import expand_inputs, read_items, source_name
from clevertap_mapper.io.writers import MAX_BATCH_RECORDS, MAX_TOKEN_BATCH_RECORDS
from clevertap_mapper.pipeline import Mapped, Summary, map_items

_STAGE_ORDER: Final = {"read": 0, "map": 1, "check": 2, "upload": 3}
_PROGRESS_EVERY: Final = 5000


@dataclass(slots=True)
class Example:
    """Where one rejection or warning happened, and what it says."""

    pos: Position
    message: str
    field: str | None = None
    severity: str | None = None

    def where(self) -> str:
        """``file:line`` or ``file:line:index`` (index: the event's place in a batch line)."""
        where = f"{self.pos.source}:{self.pos.line}"
        return where if self.pos.index is None else f"{where}:{self.pos.index}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.pos.source, "line": self.pos.line,
                               "index": self.pos.index}
        if self.field is not None:
            out["field"] = self.field
        if self.severity is not None:
            out["severity"] = self.severity
        out["message"] = self.message
        return out


@dataclass(slots=True)
class Group:
    """All rejections (or warnings) with one code: how many, and the first few."""

    stage: str | None
    code: str
    count: int = 0
    examples: list[Example] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.stage is None else {"stage": self.stage}
        out |= {"code": self.code, "clevertap": CLEVERTAP_CODES.get(self.code),
                "count": self.count, "examples": [e.as_dict() for e in self.examples]}
        return out


@dataclass
class ValidationReport:
    """What ``validate`` found: the run's summary, rejections and warnings by code, bad files."""

    config: MapperConfig
    checker: Checker
    inputs: list[str]
    files: int = 0
    summary: Summary = field(default_factory=Summary)
    rejections: dict[tuple[str, str], Group] = field(default_factory=dict)
    warnings: dict[str, Group] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def outcome(self) -> Literal["clean", "refused", "unreadable"]:
        """unreadable: an input could not be read; refused: something would be; else clean."""
        if self.unreadable:
            return "unreadable"
        return "refused" if self.summary.rejected_total else "clean"

    @property
    def upload_requests(self) -> int:
        """/1/upload calls the records would take (1000 a call; device tokens 100)."""
        kinds = self.summary.records
        tokens = kinds.get("token", 0)
        others = sum(kinds.values()) - tokens
        return (math.ceil(others / MAX_BATCH_RECORDS)
                + math.ceil(tokens / MAX_TOKEN_BATCH_RECORDS))

    def rejection_groups(self) -> list[Group]:
        return sorted(self.rejections.values(),
                      key=lambda g: (-g.count, _STAGE_ORDER.get(g.stage or "", 9), g.code))

    def warning_groups(self) -> list[Group]:
        return sorted(self.warnings.values(), key=lambda g: (-g.count, g.code))

    def as_dict(self) -> dict[str, Any]:
        """The machine summary ``--json`` prints."""
        s = self.summary
        by_stage: Counter[str] = Counter()
        for (stage, _), group in self.rejections.items():
            by_stage[stage] += group.count
        return {
            "ok": self.outcome == "clean",
            "checks": self.checker.level,
            "max_event_properties": self.checker.max_event_properties,
            "allow": sorted(self.checker.allow),
            "compat": self.config.compat,
            "inputs": self.inputs,
            "files": self.files,
            "events": s.events,
            "events_by_type": dict(s.by_type),
            "records": sum(s.records.values()),
            "records_by_kind": dict(s.records),
            "upload_requests": self.upload_requests,
            "rejected": s.rejected_total,
            "rejected_by_stage": dict(by_stage),
            "rejected_by_code": dict(s.rejected),
            "rejection_groups": [g.as_dict() for g in self.rejection_groups()],
            "warnings": sum(s.warnings.values()),
            "warnings_by_code": dict(s.warnings),
            "warning_groups": [g.as_dict() for g in self.warning_groups()],
            "unreadable": [{"source": src, "message": msg} for src, msg in self.unreadable],
        }


def run_validate(inputs: list[str], config: MapperConfig, checker: Checker, *,
                 examples: int = 3, progress: Callable[[Summary], None] | None = None,
                 ) -> ValidationReport:
    """Read, map and check ``inputs``; count every rejection and warning, keep ``examples``.

    An input that cannot be read (missing, corrupt gzip) is noted and the others still run.
    """
    report = ValidationReport(config, checker, list(inputs))
    summary = report.summary
    # map_items checks an item's records right before it yields that item's results, so what
    # was found since the last take() belongs to the position just yielded.
    recording = checker.recording()
    warn_all = recording.level == "warn"  # map_items then counts every finding as a warning
    js_numbers = config.compat is not None
    n = 0
    files = expand_inputs(inputs)
    report.files = len(files)
    for name in files:
        try:
            results = map_items(read_items([name], js_numbers=js_numbers), config, summary,
                                recording)
            for result in results:
                if type(result) is Mapped:
                    for record in result.records:
                        summary.records[str(record.get("type"))] += 1
                else:
                    assert isinstance(result, Rejection)
                    _add_rejection(report, result, examples)
                for finding in recording.take():
                    if warn_all or finding.severity == "warning":
                        _add_warning(report, result.pos, finding, examples)
                n += 1
                if progress is not None and n % _PROGRESS_EVERY == 0:
                    progress(summary)
        except InputError as exc:
            recording.take()
            report.unreadable.append((source_name(name), str(exc)))
    return report


def _add_rejection(report: ValidationReport, rejection: Rejection, limit: int) -> None:
    report.summary.rejected[rejection.code] += 1
    key = (rejection.stage, rejection.code)
    group = report.rejections.get(key)
    if group is None:
        group = report.rejections[key] = Group(rejection.stage, rejection.code)
    group.count += 1
    if len(group.examples) < limit:
        group.examples.append(Example(rejection.pos, rejection.message))


def _add_warning(report: ValidationReport, pos: Position, finding: Finding, limit: int) -> None:
    group = report.warnings.get(finding.code)
    if group is None:
        group = report.warnings[finding.code] = Group(None, finding.code)
    group.count += 1
    if len(group.examples) < limit:
        group.examples.append(Example(pos, finding.message, finding.field, finding.severity))
