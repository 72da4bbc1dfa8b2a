"""``ctmap validate`` (being built, issue 5)."""

from __future__ import annotations

import click


@click.command()
def validate() -> None:
    """Validate inputs against CleverTap's limits (being built)."""
    raise click.UsageError("ctmap validate is not available yet")
