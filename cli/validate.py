"""``ctmap validate``: read, map and check inputs, and say what CleverTap would refuse and why.

The work is ``clevertap_mapper.validation.run_validate``; this module renders its report.
"""

from __future__ import annotations

import click
import orjson

from clevertap_mapper.checks import CLEVERTAP_CODES
from clevertap_mapper.text import plural
from clevertap_mapper.validation import Group, ValidationReport, run_validate
from cli.exit_codes import ExitCode
from cli.options import mapping_options, resolve_mapping
from cli.render import counts, progress_bar, stderr_console

_EXIT: dict[str, ExitCode] = {"clean": ExitCode.OK, "refused": ExitCode.REJECTED,
                              "unreadable": ExitCode.ERROR}


def exit_code(report: ValidationReport) -> ExitCode:
    """1 when an input could not be read, 3 when anything would be refused, else 0."""
    return _EXIT[report.outcome]


# ---- rendering (stdout: the report is what this command produces) ----------------------------

def _code_label(code: str) -> str:
    clevertap = CLEVERTAP_CODES.get(code)
    return code if clevertap is None else f"{code} (CleverTap {clevertap})"


def render_report(report: ValidationReport, *, examples: bool = True) -> list[str]:
    """The human report, as lines."""
    s = report.summary
    level: str = report.checker.level
    if report.checker.allow:
        level += f", allowing {', '.join(sorted(report.checker.allow))}"
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
    code = exit_code(report)
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
        report = run_validate(list(inputs), settings.mapper, settings.checker,
                              examples=examples, progress=hook)
    if as_json:
        machine = report.as_dict() | {"exit_code": int(exit_code(report))}
        click.echo(orjson.dumps(machine, option=orjson.OPT_INDENT_2).decode())
    elif quiet:
        click.echo(verdict(report))
    else:
        click.echo("\n".join(render_report(report, examples=examples > 0)))
    if not as_json:
        for _source, message in report.unreadable:
            click.echo(f"ctmap: error: {message}", err=True)
    ctx.exit(exit_code(report))
