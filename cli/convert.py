"""``ctmap convert``: RudderStack events in, CleverTap records or upload bodies out."""

from __future__ import annotations

import os

import click

from clevertap_mapper.errors import CtmapError
from clevertap_mapper.io.readers import require_inputs
from clevertap_mapper.io.writers import Output, RejectsWriter, written_in_place
from clevertap_mapper.pipeline import Format, run_convert
from cli.exit_codes import ExitCode
from cli.options import mapping_options, pick, refuse_overlaps, resolve_mapping
from cli.render import (
    print_lines,
    progress_bar,
    render_convert_summary,
    stderr_console,
    terminal_console,
)


def default_rejects_path(output: str) -> str:
    """``out.ndjson`` -> ``out.rejects.ndjson``; stdout, or a device such as /dev/null ->
    ``ctmap-rejects.ndjson`` (in the current directory)."""
    if output == "-" or written_in_place(output):
        return "ctmap-rejects.ndjson"
    base = output[:-3] if output.endswith(".gz") else output
    stem, ext = os.path.splitext(base)
    return f"{stem}.rejects{ext or '.ndjson'}"


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--output", default="-", show_default=True, metavar="OUT",
              help="Where records go; '-' is stdout.")
@click.option("--format", "fmt", type=click.Choice(["records", "batches"]), default="records",
              show_default=True, help="records: one CleverTap record per line. batches: one "
              'upload body {"d": [...]} per line (1000 records; device tokens 100).')
@click.option("--rejects", metavar="FILE", help="Where rejected events go, one JSON object a "
              "line with the reason [default: OUT.rejects.ndjson, or ctmap-rejects.ndjson].")
@click.option("--dry-run", is_flag=True, help="Write nothing; show how each event maps, "
              "field by field, and a summary of the whole input.")
@click.option("--line", "lines", type=int, multiple=True, metavar="N",
              help="Dry run: show the event on line N (repeatable).")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="Dry run: show only events of this type (repeatable).")
@click.option("--event", "event_names", multiple=True, metavar="NAME",
              help="Dry run: show only events with this name: a track's event, a page's or "
                   "screen's name; any case (repeatable).")
@click.option("--limit", type=click.IntRange(0), default=None,
              help="Dry run: show at most N events [default: 10].")
@click.option("--json", "as_json", is_flag=True,
              help="Dry run: one JSON object per event instead of the rendered view.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Convert in this many processes (output order is kept).")
@click.option("-q", "--quiet", is_flag=True, help="No summary or progress on stderr.")
@mapping_options
@click.pass_context
def convert(ctx: click.Context, /, inputs: tuple[str, ...], output: str, fmt: str,
            rejects: str | None, dry_run: bool, lines: tuple[int, ...], types: tuple[str, ...],
            event_names: tuple[str, ...], limit: int | None, as_json: bool, workers: int,
            quiet: bool,
            **_: object) -> None:
    """Convert RudderStack event dumps to CleverTap records.

    INPUT is NDJSON (plain events, {"batch": [...]} envelopes, event-archive or gateway-backup
    rows, detected per line), gzipped or not, a directory (read recursively in natural name
    order: 2 before 10), or '-' for stdin. Rejected events go to the rejects file with the
    reason; the run goes on.

    \b
    Examples:
      ctmap convert events.ndjson -o records.ndjson
      ctmap convert archive/ --format batches -o bodies.ndjson --rejects rejects.ndjson
      zcat dump.gz | ctmap convert - --compat rudderstack > records.ndjson
      ctmap convert events.ndjson --dry-run --line 3 --line 7
    """
    if not dry_run and (lines or types or event_names or limit is not None or as_json):
        raise click.UsageError("--line, --type, --event, --limit and --json choose and shape "
                               "what --dry-run shows; add --dry-run")
    settings = resolve_mapping(ctx)
    if dry_run:
        from cli.dryrun import dry_run as run_dry  # noqa: PLC0415 - rich views only when asked

        ctx.exit(run_dry(list(inputs), settings, lines=lines, types=types,
                         event_names=event_names, limit=limit, as_json=as_json,
                         console=stderr_console()))
    console = terminal_console()
    out_format: Format = pick(ctx, "fmt", settings.file, "format")
    rejects_name = rejects or default_rejects_path(output)
    refuse_overlaps(inputs, [("-o", output), ("--rejects", rejects_name)])
    files = require_inputs(inputs)  # (the directories walked once: run_convert takes these)
    out = Output(output)
    try:
        rejects_writer = RejectsWriter(rejects_name)
    except CtmapError:
        out.discard()  # nothing was written: leave no .partial behind
        raise
    try:
        with progress_bar(console, "converting", not quiet) as hook:
            summary = run_convert(files, settings.mapper, out, rejects_writer,
                                  fmt=out_format,
                                  checker=settings.checker, progress=hook, workers=workers)
    except (CtmapError, KeyboardInterrupt) as exc:
        # Keep what was done, under names that cannot be mistaken for finished outputs: the
        # rejects too, which hold only the rejections of the part converted.
        left = [name for name in (out.abort(), rejects_writer.abort()) if name]
        if left:
            why = "the interruption" if isinstance(exc, KeyboardInterrupt) else "the error"
            held, it = (("hold", "they were") if len(left) > 1 else ("holds", "it was"))
            print_lines(console, [[(f"ctmap: {' and '.join(left)} {held} what was written "
                                    f"before {why}; {it} not renamed to the output name",
                                    "yellow")]])
        raise
    out.commit()
    rejects_writer.commit()
    if not quiet:
        render_convert_summary(console, summary, inputs=len(inputs),
                               output=None if output == "-" else output,
                               rejects=rejects_name, fmt=out_format)
    ctx.exit(ExitCode.REJECTED if summary.rejected_total else ExitCode.OK)
