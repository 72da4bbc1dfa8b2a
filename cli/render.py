"""Rendering for the terminal: summaries and progress on stderr (stdout carries data only)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from clevertap_mapper.pipeline import Summary
from clevertap_mapper.text import plural


def stderr_console() -> Console:
    """A console on stderr; colour only on a terminal and when NO_COLOR is unset."""
    return Console(stderr=True, highlight=False, soft_wrap=True,
                   no_color=bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty())


def counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1]))


def render_convert_summary(console: Console, summary: Summary, *, inputs: int, output: str | None,
                           rejects: str | None, fmt: str) -> None:
    """The closing summary of ``convert``: what was read, written and rejected, and where."""
    console.print(f"[bold]ctmap convert[/]: {plural(summary.events, 'event')} read from "
                  f"{plural(inputs, 'input')}")
    if summary.by_type:
        console.print(f"  by type:  {counts(dict(summary.by_type))}")
    total = sum(summary.records.values())
    where = f" -> {output}" if output else ""
    bodies = plural(summary.bodies, "upload body", "upload bodies")
    extra = f" in {bodies}" if fmt == "batches" else ""
    console.print(f"  records:  {total:,} ({counts(dict(summary.records)) or 'none'}){extra}"
                  f"{where}")
    if summary.warnings:
        console.print(f"  warnings: {sum(summary.warnings.values()):,} "
                      f"({counts(dict(summary.warnings))})")
    rejected = summary.rejected_total
    if rejected:
        console.print(f"  [yellow]rejected: {rejected:,}[/] ({counts(dict(summary.rejected))})"
                      + (f" -> {rejects}" if rejects else ""))
    else:
        console.print("  rejected: 0")


@contextmanager
def progress_bar(console: Console, label: str, enabled: bool) -> Iterator[Any]:
    """A live counter on stderr when it is a terminal; a no-op hook otherwise."""
    if not enabled or not console.is_terminal:
        yield None
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label)

        def update(summary: Summary) -> None:
            bar.update(task, description=(
                f"{label}: {summary.events:,} events, "
                f"{sum(summary.records.values()):,} records, "
                f"{summary.rejected_total:,} rejected"))

        yield update
