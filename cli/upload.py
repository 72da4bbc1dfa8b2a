"""``ctmap upload`` (being built, issue 3)."""

from __future__ import annotations

import click


@click.command()
def upload() -> None:
    """Upload to CleverTap (being built)."""
    raise click.UsageError("ctmap upload is not available yet")
