"""``ctmap validate``: read, map and check inputs, and say what CleverTap would refuse and why.

Nothing is written or sent. The run goes through the same ``map_items`` stage as ``convert``
(with a checker that also remembers its findings, so warnings can be shown with the place they
came from) and ends with counts per code and the first examples of each.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import click
import orjson

from clevertap_mapper.checks import CLEVERTAP_CODES, Checker, Finding
from clevertap_mapper.errors import InputError
from clevertap_mapper.io.model import Position, Rejection
from clevertap_mapper.io.readers import STDIN, expand_inputs, read_items
from clevertap_mapper.io.writers import MAX_BATCH_RECORDS, MAX_TOKEN_BATCH_RECORDS
from clevertap_mapper.pipeline import Mapped, Summary, map_items
from cli.exit_codes import ExitCode
from cli.options import MappingSettings, mapping_options, resolve_mapping
from cli.render import counts, plural, progress_bar, stderr_console

_STAGE_ORDER: Final = {"read": 0, "map": 1, "check": 2, "upload": 3}
_PROGRESS_EVERY: Final = 5000


class RecordingChecker(Checker):
    """A Checker that also keeps what it found, until the caller takes it with ``take``.

    ``map_items`` checks the records of one input item right before it yields that item's
    results, so whatever was found since the last ``take`` belongs to the position just yielded.
    """

    __slots__ = ("_found",)

    def __init__(self, base: Checker) -> None:
        super().__init__(base.level, base.max_event_properties)
        self._found: list[Finding] = []

    def check(self, record: dict[str, Any]) -> list[Finding]:
        findings = super().check(record)
        if findings:
            self._found.extend(findings)
        return findings

    def take(self) -> list[Finding]:
        """The findings since the last call (and forget them)."""
        found, self._found = self._found, []
        return found


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

    settings: MappingSettings
    inputs: list[str]
    files: int = 0
    summary: Summary = field(default_factory=Summary)
    rejections: dict[tuple[str, str], Group] = field(default_factory=dict)
    warnings: dict[str, Group] = field(default_factory=dict)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        """1 when an input could not be read, 3 when anything would be refused, else 0."""
        if self.unreadable:
            return ExitCode.ERROR
        return ExitCode.REJECTED if self.summary.rejected_total else ExitCode.OK

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
            "ok": self.exit_code == ExitCode.OK,
            "exit_code": int(self.exit_code),
            "checks": self.settings.checker.level,
            "max_event_properties": self.settings.checker.max_event_properties,
            "compat": self.settings.mapper.compat,
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


def run_validate(inputs: list[str], settings: MappingSettings, *, examples: int = 3,
                 progress: Callable[[Summary], None] | None = None) -> ValidationReport:
    """Read, map and check ``inputs``; count every rejection and warning, keep ``examples``.

    An input that cannot be read (missing, corrupt gzip) is noted and the others still run.
    """
    report = ValidationReport(settings, list(inputs))
    summary = report.summary
    checker = RecordingChecker(settings.checker)
    warn_all = checker.level == "warn"  # map_items then counts every finding as a warning
    js_numbers = settings.mapper.compat is not None
    n = 0
    files = expand_inputs(inputs)
    report.files = len(files)
    for name in files:
        try:
            results = map_items(read_items([name], js_numbers=js_numbers), settings.mapper,
                                summary, checker)
            for result in results:
                if type(result) is Mapped:
                    for record in result.records:
                        summary.records[str(record.get("type"))] += 1
                else:
                    assert isinstance(result, Rejection)
                    _add_rejection(report, result, examples)
                for finding in checker.take():
                    if warn_all or finding.severity == "warning":
                        _add_warning(report, result.pos, finding, examples)
                n += 1
                if progress is not None and n % _PROGRESS_EVERY == 0:
                    progress(summary)
        except InputError as exc:
            checker.take()
            report.unreadable.append(("<stdin>" if name == STDIN else name, str(exc)))
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


# ---- rendering (stdout: the report is what this command produces) ----------------------------

def _code_label(code: str) -> str:
    clevertap = CLEVERTAP_CODES.get(code)
    return code if clevertap is None else f"{code} (CleverTap {clevertap})"


def render_report(report: ValidationReport, *, examples: bool = True) -> list[str]:
    """The human report, as lines."""
    s = report.summary
    level = report.settings.checker.level
    lines = [click.style("ctmap validate", bold=True)
             + f": {plural(s.events, 'event')} in {plural(report.files, 'file')} "
             f"(checks: {level})"]
    if s.by_type:
        lines.append(f"  by type:       {counts(dict(s.by_type))}")
    records = sum(s.records.values())
    lines.append(f"  would send:    {plural(records, 'record')}"
                 + (f" ({counts(dict(s.records))}) in "
                    f"{plural(report.upload_requests, 'upload request')}" if records else ""))
    refused = s.rejected_total
    lines.append(click.style(f"  would refuse:  {refused:,}", fg="red" if refused else None)
                 + (" (by stage and code below)" if refused else ""))
    for group in report.rejection_groups():
        lines.append(f"    {group.count:>8,}  {group.stage:<6} {_code_label(group.code)}")
    warned = sum(s.warnings.values())
    lines.append(click.style(f"  warnings:      {warned:,}", fg="yellow" if warned else None))
    for group in report.warning_groups():
        lines.append(f"    {group.count:>8,}  {_code_label(group.code)}")
    if level == "warn" and warned:
        lines.append("  (--checks warn: problems CleverTap would refuse are listed as warnings "
                     "and would be sent)")
    if level == "off":
        lines.append("  (--checks off: CleverTap's limits were not checked)")
    for _, message in report.unreadable:  # the message names the file
        lines.append(click.style(f"  unreadable:    {message}", fg="red"))
    if examples:
        for group in report.rejection_groups():
            if group.examples:
                lines.append("")
                lines.append(click.style(f"refused: {group.code} ({group.stage} stage), "
                                         f"{group.count:,}", bold=True))
                lines.extend(_example_lines(group))
        for group in report.warning_groups():
            if group.examples:
                lines.append("")
                lines.append(click.style(f"warning: {group.code}, {group.count:,}", bold=True))
                lines.extend(_example_lines(group))
    lines.append("")
    lines.append(verdict(report))
    return lines


def _example_lines(group: Group) -> list[str]:
    lines = [f"  {e.where()}: {e.message}" for e in group.examples]
    rest = group.count - len(group.examples)
    if rest > 0:
        lines.append(f"  ... and {rest:,} more")
    return lines


def verdict(report: ValidationReport) -> str:
    """The last line: what the exit code means for this run."""
    code = report.exit_code
    if code == ExitCode.ERROR:
        return click.style(f"result: {plural(len(report.unreadable), 'input')} could not be "
                           f"read (exit {int(code)})", fg="red", bold=True)
    refused = report.summary.rejected_total
    if refused:
        return click.style(f"result: {refused:,} would be refused; fix them or collect them "
                           f"with `ctmap convert --rejects FILE` (exit {int(code)})",
                           fg="red", bold=True)
    warned = sum(report.summary.warnings.values())
    note = f", with {plural(warned, 'warning')}" if warned else ""
    return click.style(f"result: clean, everything would be sent{note} (exit 0)", fg="green",
                       bold=True)


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON summary (counts, examples, exit code) on stdout instead of "
                   "the report.")
@click.option("--examples", type=click.IntRange(0), default=3, show_default=True, metavar="N",
              help="Examples shown for each rejection or warning code.")
@click.option("-q", "--quiet", is_flag=True,
              help="Only the result line (and no progress); the exit code tells the rest.")
@mapping_options
@click.pass_context
def validate(ctx: click.Context, /, *, inputs: tuple[str, ...], as_json: bool, examples: int,
             quiet: bool, **_: object) -> None:
    """Check inputs against CleverTap's limits without writing or sending anything.

    Reads INPUT like `convert` does (NDJSON events, batch envelopes, event-archive and
    gateway-backup rows, ctmap records; gzipped or not; directories recursively; '-' for stdin),
    maps every event and checks every record. Prints what would be sent, what would be refused
    (by stage and code) and the warnings, with the first examples of each as file:line, or
    file:line:N for the Nth event of a batch line.

    Exit status: 0 clean (warnings allowed); 3 something would be refused; 1 an input could
    not be read. Suitable as a CI step.

    \b
    Examples:
      ctmap validate archive/
      ctmap validate events.ndjson.gz --checks warn --examples 10
      ctmap validate dump/ --json > validation.json
      ctmap validate events.ndjson --max-event-properties 100 -q
    """
    settings = resolve_mapping(ctx)
    console = stderr_console()
    with progress_bar(console, "validating", not quiet and not as_json) as hook:
        report = run_validate(list(inputs), settings, examples=examples, progress=hook)
    if as_json:
        click.echo(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    elif quiet:
        click.echo(verdict(report))
    else:
        click.echo("\n".join(render_report(report, examples=examples > 0)))
    if not as_json:
        for _source, message in report.unreadable:
            click.echo(f"ctmap: error: {message}", err=True)
    ctx.exit(report.exit_code)
