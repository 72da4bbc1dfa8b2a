"""``ctmap convert --dry-run``: show how each event maps (interim: JSON view only)."""

from __future__ import annotations

from rich.console import Console

from cli.options import MappingSettings


def dry_run(inputs: list[str], settings: MappingSettings, *, lines: tuple[int, ...],
            types: tuple[str, ...], event_names: tuple[str, ...], limit: int | None,
            as_json: bool, console: Console) -> int:
    raise NotImplementedError("the dry-run view is being built (issue 4)")
