"""Rendering for the terminal: summaries and progress on stderr (stdout carries data only).

rich is imported only where a terminal is drawn on: a run whose stderr is a file or a pipe
(cron, scripts, the benchmark) writes its summary as plain lines, and starts 20 ms sooner.
Summaries are built as segments of text and style, never as markup, so that a file name such
as ``out[x].ndjson`` is printed as it is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from clevertap_mapper.pipeline import Summary
from clevertap_mapper.text import plural

if TYPE_CHECKING:
    from rich.console import Console

Line = list[tuple[str, str | None]]  # a line of output: (text, rich style) segments


def stderr_console() -> Console:
    """A console on stderr; colour only on a terminal and when NO_COLOR is unset."""
    from rich.console import Console  # noqa: PLC0415 - see the module docstring

    return Console(stderr=True, highlight=False, soft_wrap=True,
                   no_color=bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty())


def terminal_console() -> Console | None:
    """``stderr_console()`` when stderr is a terminal, else None: print with ``print_lines``."""
    return stderr_console() if sys.stderr.isatty() else None


def print_lines(console: Console | None, lines: list[Line]) -> None:
    """Print lines of segments: styled on a console, plain on stderr when there is none."""
    if console is None:
        sys.stderr.write("".join("".join(text for text, _ in line) + "\n" for line in lines))
        sys.stderr.flush()
        return
    from rich.text import Text  # noqa: PLC0415

    for line in lines:
        console.print(Text.assemble(*((text, style or "") for text, style in line)))


def counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1]))


def render_convert_summary(console: Console | None, summary: Summary, *, inputs: int,
                           output: str | None, rejects: str | None, fmt: str) -> None:
    """The closing summary of ``convert``: what was read, written and rejected, and where."""
    lines: list[Line] = [[("ctmap convert", "bold"), (f": {plural(summary.events, 'event')} "
                                                      f"read from {plural(inputs, 'input')}",
                                                      None)]]
    if summary.by_type:
        lines.append([(f"  by type:  {counts(dict(summary.by_type))}", None)])
    total = sum(summary.records.values())
    where = f" -> {output}" if output else ""
    bodies = plural(summary.bodies, "upload body", "upload bodies")
    extra = f" in {bodies}" if fmt == "batches" else ""
    lines.append([(f"  records:  {total:,} ({counts(dict(summary.records)) or 'none'}){extra}"
                   f"{where}", None)])
    if summary.warnings:
        lines.append([(f"  warnings: {sum(summary.warnings.values()):,} "
                       f"({counts(dict(summary.warnings))})", None)])
    rejected = summary.rejected_total
    if rejected:
        lines.append([(f"  rejected: {rejected:,}", "yellow"),
                      (f" ({counts(dict(summary.rejected))})"
                       + (f" -> {rejects}" if rejects else ""), None)])
    else:
        lines.append([("  rejected: 0", None)])
    print_lines(console, lines)


@contextmanager
def progress_bar(console: Console | None, label: str, enabled: bool) -> Iterator[Any]:
    """A live counter on stderr when it is a terminal; a no-op hook otherwise."""
    if not enabled or console is None or not console.is_terminal:
        yield None
        return
    from rich.progress import (  # noqa: PLC0415
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label)

        def update(summary: Summary) -> None:
            bar.update(task, description=(
                f"{label}: {summary.events:,} events, "
                f"{sum(summary.records.values()):,} records, "
                f"{summary.rejected_total:,} rejected"))

        yield update
