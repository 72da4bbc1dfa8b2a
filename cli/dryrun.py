"""``ctmap convert --dry-run``: show how each event maps, field by field, then sum up the input.

Nothing is written. The view is this command's output, so it goes to stdout (progress, on a
terminal, goes to stderr). For each selected event: a header (file:line, the place in a batch,
the type and name), the input's relevant fields beside the CleverTap record(s) (side by side
from 120 columns, stacked below), each record field annotated with the rule that made it and
any value it changed, the input fields that were not sent and why, the default-mode fixes
(D1-D6) with what ``--compat rudderstack`` would send instead, the rejection with how to fix
it, and the pre-flight check findings. Then a table for the whole input, selected or not.

Selection: ``--line N`` (repeatable), ``--type TYPE``, ``--event NAME`` (the ``event`` field,
or a page/screen name; case-insensitive); criteria of different kinds must all hold.
``--limit N`` (default 10) caps how many are shown; the summary says how many more matched.

Colour only on a terminal and when NO_COLOR is unset; FORCE_COLOR=1 forces it (rich honours
both); the width is the terminal's, or COLUMNS.

Exit status: 0, or 3 when any event of the input would be rejected (what ``convert`` would
exit with), so a dry run can gate a script.

``--json`` writes one JSON object per selected event, then one ``{"summary": {...}}``. Keys
of an event object (all always present):

- ``source``, ``line``, ``index`` (1-based place inside a batch line, or null);
- ``type`` (lower-cased event type, ``(none)``, ``(records)`` or ``(unreadable)``),
  ``name`` (event name, page name or whose profile; or null), ``mode`` (``default`` or
  ``rudderstack``, the mode the records are in);
- ``input``: {path: value} of the relevant input fields;
- ``records``: the CleverTap records; ``rejection``: null or {stage, code, message, and for a
  check, record: the index of the record refused};
- ``decisions``: [{kind, field, rule, source?, fix?, before?, after?}] in the order made;
  kind is mapped, changed, dropped, fix, warning or rejected;
- ``dropped``: [{paths, why, value?}] input fields not sent;
- ``fixes``: [{fix, title, decisions}] the default-mode fixes D1-D6 that apply;
- ``compat_records`` (null when its mapping rejects the event) and ``compat_rejection``: what
  ``--compat rudderstack`` sends; ``differs_from_compat``: whether the default mode's
  outcome differs; ``differences``: [{record, field, default?, compat?}] (a missing key means
  that mode does not send the field);
- ``findings``: [{record, code, field, message, severity}] from the pre-flight checks.

Keys of ``summary``: events, events_by_type, records, records_by_kind, rejected,
rejected_by_code, rejection_examples {code: {where, message}}, warnings_by_code, rules
{rule: times fired}, mode, fixes_applied {fix: events}, differs_from_compat (events),
differs_by_fix {fix: events}, records_without_ts, matched, shown, advice [{code, message}],
unreadable [the error of each input that could not be read to its end; exit 1 then].
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from typing import IO, Any, Final, cast

import click
from rich import box
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.padding import Padding
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from clevertap_mapper.errors import InputError
from clevertap_mapper.explain import (
    Difference,
    Explanation,
    Overview,
    Selection,
    explain_input,
    record_fields,
)
from clevertap_mapper.io.readers import Item, expand_inputs, read_items
from clevertap_mapper.jsonutil import dumps
from clevertap_mapper.mapping.js import MISSING
from clevertap_mapper.mapping.trace import FIXES, Decision
from clevertap_mapper.text import plural
from cli.exit_codes import ExitCode
from cli.options import MappingSettings
from cli.render import counts

DEFAULT_LIMIT: Final = 10
WIDE: Final = 120  # from this many columns, input and records sit side by side
VALUE_LIMIT: Final = 160  # characters of a value shown in the view (--json has them all)
TOP_RULES: Final = 20
PROGRESS_EVERY: Final = 20_000

LEGEND: Final = (
    "How to read this: `A <- b` means the CleverTap field A is taken from the input field b; "
    "`x -> y` is a value that was changed on the way; [D1]..[D6] mark ctmap's fixes of "
    "RudderStack's bugs, which --compat rudderstack does not apply."
)


_TRAILING_BLANKS: Final = re.compile(r" +((?:\x1b\[[0-9;]*m)*)(?=\n|$)")


class _StdoutWithoutTrailingBlanks:
    """stdout minus the blanks rich pads table lines with (they clutter pipes and diffs)."""

    def __init__(self) -> None:
        self.stream: IO[str] = sys.stdout

    def write(self, text: str) -> int:
        self.stream.write(_TRAILING_BLANKS.sub(r"\1", text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


def stdout_console() -> Console:
    """The console the view is drawn on: stdout, colour only on a terminal without NO_COLOR."""
    return Console(file=cast("IO[str]", _StdoutWithoutTrailingBlanks()), highlight=False,
                   emoji=False,
                   soft_wrap=False, no_color=bool(os.environ.get("NO_COLOR")))


def dry_run(inputs: list[str], settings: MappingSettings, *, lines: tuple[int, ...],
            types: tuple[str, ...], event_names: tuple[str, ...], limit: int | None,
            as_json: bool, console: Console) -> int:
    """Explain the selected events of ``inputs`` and summarise all of them; return the exit code.

    ``console`` is the stderr console (progress); the view goes to stdout.
    """
    selection = Selection.of(lines, types, event_names)
    shown_limit = DEFAULT_LIMIT if limit is None else limit
    config = settings.mapper
    overview = Overview(config, settings.checker)
    out = stdout_console()
    progress = _Progress(console, overview)
    unreadable: list[str] = []  # inputs that could not be read to their end, with why
    items = progress.wrap(_readable_items(inputs, config.compat is not None, unreadable))
    shown_lines: set[int] = set()
    try:
        for n, explanation in enumerate(explain_input(items, config, overview,
                                                      selection=selection,
                                                      limit=shown_limit,
                                                      checker=settings.checker)):
            progress.pause()
            shown_lines.add(explanation.line)
            if as_json:
                click.echo(dumps(explanation.as_dict()).decode("utf-8"))
            else:
                if n == 0:
                    out.print(Text(LEGEND, style="dim"))
                render_explanation(out, explanation)
    finally:
        progress.stop()
    if as_json:
        click.echo(dumps({"summary": overview.as_dict() | {"unreadable": unreadable}}
                         ).decode("utf-8"))
    else:
        # Only when every matching event was shown: else a line may be past the limit.
        missing = sorted(set(lines) - shown_lines) if overview.shown == overview.matched else []
        render_summary(out, overview, inputs=inputs, limit=shown_limit, missing_lines=missing,
                       selected=bool(lines or types or event_names))
    for message in unreadable:
        console.print(f"ctmap: error: {message}", style="red", markup=False, highlight=False)
    if unreadable:
        return int(ExitCode.ERROR)
    return int(ExitCode.REJECTED if overview.rejected_total else ExitCode.OK)


def _readable_items(inputs: list[str], js_numbers: bool,
                    unreadable: list[str]) -> Iterator[Item]:
    """The items of each input in turn; one that cannot be read to its end (missing, a
    damaged gzip) adds its error to ``unreadable`` after the items read before it, and the
    other inputs go on: the summary still covers everything that could be read."""
    for name in expand_inputs(inputs):
        try:
            yield from read_items([name], js_numbers=js_numbers)
        except InputError as exc:
            unreadable.append(str(exc))


class _Progress:
    """A transient counter on stderr for long inputs, paused while an event is drawn."""

    def __init__(self, console: Console, overview: Overview) -> None:
        self._console = console
        self._overview = overview
        self._bar: Progress | None = None
        self._task: Any = None

    def wrap(self, items: Iterable[Item]) -> Iterator[Item]:
        enabled = self._console.is_terminal
        for n, item in enumerate(items, 1):
            if enabled and n % PROGRESS_EVERY == 0:
                self._update()
            yield item

    def _update(self) -> None:
        ov = self._overview
        text = (f"dry run: {ov.events:,} events, {sum(ov.records.values()):,} records, "
                f"{ov.rejected_total:,} rejected")
        if self._bar is None:
            self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                 TimeElapsedColumn(), console=self._console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(text)
        else:
            self._bar.update(self._task, description=text)

    def pause(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


# ---------------------------------------------------------------------------- one event


def fmt(value: Any, limit: int = VALUE_LIMIT) -> str:
    """A value as compact JSON (strings quoted, so "1" and 1 differ), cut at ``limit``."""
    if value is MISSING:
        return "(not sent)"
    text = dumps(value).decode("utf-8")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(d: Decision, *, tag: bool = True) -> Text:
    """One decision as an annotation line: the rule, or `field: before -> after (why)`."""
    label = f"[{d.fix}] " if tag and d.fix else ""
    style = {"fix": "yellow", "warning": "yellow", "rejected": "red",
             "changed": "green"}.get(d.kind, "dim")
    if (d.before is not None or d.after is not None) and "stringified" not in d.rule:
        after = fmt(d.after, 60) if d.after is not None else "(not sent)"
        change = f"{fmt(d.before, 60)} -> {after}"
        if d.rule.startswith(f"{d.field}: "):  # "DOB: sent as a CleverTap date"
            text = f"{d.field}: {change} ({d.rule.removeprefix(f'{d.field}: ')})"
        else:  # "ts <- timestamp (why)"; the why is the last parenthesis: a D1 rule's
            # source may hold one ("receivedAt - (sentAt - originalTimestamp)")
            head, paren, why = d.rule.rpartition(" (")
            if not paren:
                head = d.rule
            # No before: the value was computed from several fields, which the rule names.
            text = (f"{head}: {change if d.before is not None else after}"
                    + (f" ({why}" if paren else ""))
        return Text(label + text, style=style)
    return Text(label + d.rule, style=style)


def _header(e: Explanation) -> Text:
    where = f"{e.source}:{e.line}"
    if e.index is not None:
        where += f" (event {e.index} of the batch)"
    text = Text(where, style="bold")
    text.append(f"  {e.type}", style="bold cyan")
    if e.name:
        text.append(f"  {fmt(e.name, 60) if e.type in ('track', 'page', 'screen') else e.name}")
    return text


def _titled(title: str, body: RenderableType) -> Group:
    return Group(Text(title, style="bold"), Padding(body, (0, 0, 0, 2)))


def _key_width(keys: Iterable[str], limit: int) -> int:
    return min(max((len(k) for k in keys), default=1), limit)


def _grid(keys: Iterable[str], limit: int) -> Table:
    """A key/value grid whose key column is as wide as its longest key (up to ``limit``)."""
    width = _key_width(keys, limit)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="cyan", min_width=width, max_width=width, overflow="fold")
    grid.add_column(overflow="fold")
    return grid


def _input_view(e: Explanation, *, width: int | None = None) -> RenderableType:
    """The input's fields; given the panel ``width`` (beside the records), long values are
    cut to one line, as the records show them whole."""
    limit = VALUE_LIMIT
    if width is not None:
        limit = max(width - 3 - _key_width((p for p, _ in e.input), 30), 12)
    grid = _grid((path for path, _ in e.input), 30)
    for path, value in e.input:
        grid.add_row(path, fmt(value, limit) if path != "(line)" else str(value))
    return _titled("RudderStack input", grid)


def _records_view(e: Explanation) -> tuple[RenderableType, set[int]]:
    """The records with their annotations, and the ids of the decisions shown with them."""
    shown: set[int] = set()
    parts: list[RenderableType] = []
    n = len(e.records)
    for i, record in enumerate(e.records):
        kind = record.get("type", "?")
        title = f"CleverTap {kind} record" + (f" ({i + 1} of {n})" if n > 1 else "")
        notes = record_fields(e, i)
        grid = _grid(("  " * n.depth + n.key for n in notes), 24)
        for note in notes:
            cell = Text()
            if note.value is not MISSING:
                cell.append(fmt(note.value))
            # what made the field first, then what changed it
            ordered = sorted(note.decisions, key=lambda d: d.kind != "mapped")
            lines = [describe(d) for d in ordered]
            shown.update(id(d) for d in note.decisions)
            if note.note:
                lines.append(Text(note.note, style="dim"))
            for line in lines:
                if cell:
                    cell.append("\n")
                cell.append_text(line)
            grid.add_row("  " * note.depth + note.key, cell)
        parts.append(_titled(title, grid))
    if not parts:
        reason = e.rejection.code if e.rejection else "no records"
        parts.append(_titled("CleverTap record", Text(f"none: rejected ({reason}), see below",
                                                     style="red")))
    return Group(*parts), shown


def _not_sent(e: Explanation) -> RenderableType | None:
    if not e.dropped:
        return None
    lines: list[RenderableType] = []
    for d in e.dropped:
        text = Text(", ".join(d.paths), style="cyan")
        if d.value is not MISSING:
            text.append(f" {fmt(d.value, 60)}")
        text.append(": " + d.why.removeprefix("not sent: "), style="dim")
        lines.append(text)
    return _titled("Input fields not sent", Group(*lines))


def _compat_view(e: Explanation, shown: set[int]) -> RenderableType | None:
    default_mode = e.mode == "default"
    lines: list[RenderableType] = []
    for note in e.fixes:
        lines.append(Text(f"[{note.fix}] {note.title}", style="yellow"))
        lines.extend(Padding(describe(d, tag=False), (0, 0, 0, 5)) for d in note.decisions
                     if id(d) not in shown)
    if e.differences:
        def where(diff: Difference) -> str:
            return (f"record {diff.record + 1}: " if len(e.records) > 1 else "") + diff.field

        grid = _grid(map(where, e.differences), 30)
        for diff in e.differences:
            grid.add_row(where(diff), fmt(diff.compat if default_mode else diff.default))
        lines.append(Text("--compat rudderstack (what RudderStack sends) would send instead:"
                          if default_mode else "ctmap's default mode would send instead:"))
        lines.append(Padding(grid, (0, 0, 0, 2)))
    if e.rejection is None and e.compat_rejection is not None:
        r = e.compat_rejection
        lines.append(Text(f"--compat rudderstack: rejected [{r.code}] {r.message}", style="dim"))
    elif e.rejection is None and not e.differs_from_compat and not e.fixes:
        lines.append(Text("Same as --compat rudderstack: RudderStack would send exactly this."
                          if default_mode else "ctmap's default mode would send the same.",
                          style="dim"))
    if not lines:
        return None
    title = ("ctmap's fixes (where the default mode differs from RudderStack)" if e.fixes
             else "Compared with RudderStack")
    if not default_mode:
        title = "What ctmap's default mode would change (you run --compat rudderstack)"
    return _titled(title, Group(*lines))


def _rejection_view(e: Explanation) -> RenderableType | None:
    if e.rejection is None:
        return None
    r = e.rejection
    lines: list[RenderableType] = [Text(r.message)]
    if r.stage != "map":
        lines.append(Text(f"(at the {r.stage} stage)", style="dim"))
    if r.record is not None and len(e.records) > 1:
        refused = sorted({i for i, f in e.findings if f.severity == "error"} | {r.record})
        sent = [str(i + 1) for i in range(len(e.records)) if i not in refused]
        lines.append(Text(f"(record {', '.join(str(i + 1) for i in refused)} of "
                          f"{len(e.records)}; " + (f"record {', '.join(sent)} is still sent)"
                                                   if sent else "none is sent)"),
                          style="dim"))
    if e.mode == "default" and r.stage != "read":
        if e.compat_rejection is not None:
            same = e.compat_rejection.code == r.code
            lines.append(Text("--compat rudderstack rejects it too" + (
                "" if same else f" [{e.compat_rejection.code}]") + ".", style="dim"))
        elif e.compat_records is not None:
            lines.append(Text("--compat rudderstack (what RudderStack sends) would send:"))
            lines.extend(Padding(Text(fmt(rec, 10_000), style="dim"), (0, 0, 0, 2))
                         for rec in e.compat_records)
    title = Text(f"Rejected [{r.code}]", style="bold red")
    return Group(title, Padding(Group(*lines), (0, 0, 0, 2)))


def _findings_view(e: Explanation) -> RenderableType | None:
    if not e.findings:
        return None
    lines = []
    for i, f in e.findings:
        style = "red" if f.severity == "error" else "yellow"
        where = f"record {i + 1} " if len(e.records) > 1 else ""
        lines.append(Text(f"{f.severity} [{f.code}] {where}{f.field}: {f.message}", style=style))
    return _titled("Pre-flight checks (CleverTap's limits)", Group(*lines))


def _other_view(e: Explanation, shown: set[int]) -> RenderableType | None:
    fixed = {id(d) for note in e.fixes for d in note.decisions}
    rest = [d for d in e.decisions if id(d) not in shown and id(d) not in fixed
            and d.kind != "dropped" and not (d.kind == "warning" and "dropped" in d.rule)]
    if not rest:
        return None
    title = "Decided before the rejection" if e.rejection and not e.records else "Other decisions"
    return _titled(title, Group(*(describe(d) for d in rest)))


def render_explanation(console: Console, e: Explanation) -> None:
    """Draw one explained event: header, input beside records, then the notes."""
    console.print()
    console.rule(_header(e), align="left", style="dim")
    beside = console.width >= WIDE
    left = _input_view(e, width=console.width // 2 if beside else None)
    right, shown = _records_view(e)
    if beside:
        # The input gets what it needs, up to half the width; the records get the rest.
        natural = Measurement.get(console, console.options, left).maximum
        layout = Table.grid(padding=(0, 3))
        layout.add_column(width=min(natural, console.width // 2))
        layout.add_column()
        layout.add_row(left, right)
        console.print(layout)
    else:
        console.print(left)
        console.print(right)
    for section in (_not_sent(e), _compat_view(e, shown), _rejection_view(e), _findings_view(e),
                    _other_view(e, shown)):
        if section is not None:
            console.print(section)


# ---------------------------------------------------------------------------- the summary


def render_summary(console: Console, ov: Overview, *, inputs: list[str], limit: int,
                   missing_lines: list[int], selected: bool) -> None:
    """The closing table: counts over the whole input, rules, fixes, advice."""
    console.print()
    where = inputs[0] if len(inputs) == 1 else plural(len(inputs), "input")
    console.rule(Text(f"Dry run of {where}: the whole input", style="bold"), align="left",
                 style="dim")
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    facts.add_row("events", f"{ov.events:,}" + (f" ({counts(dict(ov.by_type))})"
                                                 if ov.by_type else ""))
    total = sum(ov.records.values())
    facts.add_row("records", f"{total:,}" + (f" ({counts(dict(ov.records))})" if total else "")
                  + ", nothing written")
    if ov.rejected_total:
        lines = Text(f"{ov.rejected_total:,}", style="red")
        for code, n in ov.rejected.most_common():
            example, _ = ov.rejection_examples[code]
            lines.append(f"\n{code} {n:,} (first: {example})")
        facts.add_row("rejected", lines)
    else:
        facts.add_row("rejected", "0")
    if ov.warnings:
        facts.add_row("warnings", f"{sum(ov.warnings.values()):,} ({counts(dict(ov.warnings))})")
    mode = "--compat rudderstack" if ov.config.compat else "default (fixes D1-D6)"
    facts.add_row("mode", mode)
    console.print(facts)

    if ov.rules:
        rules = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
        rules.add_column("rule (how a field was made)", overflow="fold")
        rules.add_column("times", justify="right", no_wrap=True)
        ranked = ov.rule_counts()
        for rule, n in ranked[:TOP_RULES]:
            rules.add_row(rule, f"{n:,}")
        console.print()
        console.print(rules)
        if len(ranked) > TOP_RULES:
            console.print(Text(f"  and {len(ranked) - TOP_RULES} more rules (--json lists all)",
                               style="dim"))

    if ov.fixes_applied or ov.differs:
        console.print()
        what = ("events the default mode sends differently from --compat rudderstack: "
                f"{ov.differs:,}")
        console.print(Text(what, style="bold"))
        fixes = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        fixes.add_column("fix")
        fixes.add_column("what it does", overflow="fold")
        fixes.add_column("applied", justify="right", no_wrap=True)
        fixes.add_column("differs", justify="right", no_wrap=True)
        for fix in sorted(set(ov.fixes_applied) | set(ov.differs_by_fix)):
            fixes.add_row(fix, FIXES.get(fix, "other differences"),
                          f"{ov.fixes_applied.get(fix, 0):,}",
                          f"{ov.differs_by_fix.get(fix, 0):,}")
        console.print(fixes)

    advice = ov.advice()
    if advice:
        console.print()
        console.print(Text("Advice", style="bold"))
        for a in advice:
            console.print(Padding(Text(f"- {a['message']}"), (0, 0, 0, 2)))

    console.print()
    if not selected and ov.matched == 0:
        console.print(Text("The input holds no events.", style="dim"))
    elif ov.matched == 0:
        console.print(Text("No event matched the selection (--line/--type/--event).",
                           style="yellow"))
    else:
        more = ov.matched - ov.shown
        text = f"Shown: {ov.shown:,} of {plural(ov.matched, 'matching event')}"
        if more:
            text += f"; {more:,} more not shown (--limit {limit}; raise it to see them)"
        console.print(Text(text + ".", style="dim"))
    if missing_lines:
        shown = ", ".join(str(n) for n in missing_lines)
        console.print(Text(f"No event on line {shown} (blank, filtered out, or past the end).",
                           style="yellow"))
