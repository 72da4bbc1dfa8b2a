"""Options shared by commands, and the one place they become settings objects.

Precedence: an option given on the command line, then ``--config ctmap.toml``, then defaults.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from clevertap_mapper.checks import Checker, CheckLevel
from clevertap_mapper.config import MapperConfig, load_settings_file
from clevertap_mapper.errors import ConfigError
from clevertap_mapper.io.readers import STDIN
from clevertap_mapper.io.writers import written_in_place

F = TypeVar("F", bound=Callable[..., Any])


def mapping_options(f: F) -> F:
    """The mapping options every command takes (convert, upload, validate)."""
    options = [
        click.option("--track-anonymous/--no-track-anonymous", default=False, show_default=True,
                     help="Send track/page/screen events that have no userId "
                          "(RudderStack's 'Track Anonymous Users')."),
        click.option("--object-id-mapping/--no-object-id-mapping", default=False,
                     show_default=True,
                     help="Identify users by objectId = anonymousId and send device tokens "
                          "(RudderStack's 'Use CleverTap ObjectId for Mapping')."),
        click.option("--compat", type=click.Choice(["rudderstack", "none"]), default=None,
                     help="rudderstack: reproduce RudderStack's output exactly, quirks "
                          "included. none: ctmap's fixes D1-D6, see README (the default; "
                          "overrides compat in --config)."),
        click.option("--checks", type=click.Choice(["strict", "warn", "off"]), default="strict",
                     help="Pre-flight checks against CleverTap's limits: strict rejects what "
                          "CleverTap would reject; warn only reports [default: strict; warn "
                          "with --compat]."),
        click.option("--max-event-properties", type=click.IntRange(1, 10000), default=256,
                     show_default=True, help="Properties allowed per event (CleverTap: 256, "
                     "or 100 on newer accounts)."),
        click.option("--allow", "allow", multiple=True, metavar="CODE",
                     help="Send records whose only errors have this check code, reporting "
                          "them as warnings (repeatable): e.g. value_too_long, if CleverTap "
                          "should have values over 512 characters, which it may cut. "
                          "`ctmap validate` names the codes."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False),
                     help="A ctmap.toml with the same settings (options given here win)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@dataclass(frozen=True, slots=True)
class MappingSettings:
    """The mapping and checking settings of one run, resolved from options and file."""

    mapper: MapperConfig
    checker: Checker
    file: dict[str, Any]


def pick(ctx: click.Context, name: str, file: dict[str, Any], key: str | None = None) -> Any:
    """An option's value, or the settings file's when the option was not given."""
    value = ctx.params.get(name)
    if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
        return file.get(key or name, value)
    return value


def resolve_mapping(ctx: click.Context) -> MappingSettings:
    """Build the settings objects from this command's parameters (and ``--config``)."""
    path = ctx.params.get("config_file")
    file = load_settings_file(path) if path else {}
    mapper = MapperConfig(
        track_anonymous=bool(pick(ctx, "track_anonymous", file)),
        object_id_mapping=bool(pick(ctx, "object_id_mapping", file)),
        compat=None if pick(ctx, "compat", file) == "none" else pick(ctx, "compat", file),
    )
    level: CheckLevel = pick(ctx, "checks", file)
    if mapper.compat and "checks" not in file and \
            ctx.get_parameter_source("checks") in (ParameterSource.DEFAULT, None):
        level = "warn"  # compat output must be the reference's, record for record
    allow = pick(ctx, "allow", file)
    try:
        checker = Checker(level, pick(ctx, "max_event_properties", file), allow)
    except ValueError as exc:  # an unknown code
        if ctx.get_parameter_source("allow") in (ParameterSource.DEFAULT, None):
            raise ConfigError(f"{path}: allow: {exc}") from None
        raise click.BadParameter(str(exc), ctx, param_hint="'--allow'") from None
    return MappingSettings(mapper, checker, file)



def refuse_overlaps(inputs: Iterable[str], outputs: Iterable[tuple[str, str | None]]) -> None:
    """Refuse a file a command writes (``(option, path)``; None: none, ``-``: stdout) that it
    also reads, that another of its options writes, or that is a directory: a UsageError.

    A file inside an input directory counts as read even before it exists: the next run
    (a nightly cron's) would read it as input.
    """
    read = [(name, os.path.realpath(name)) for name in inputs if name != STDIN]
    written: dict[Any, str] = {}
    for option, path in outputs:
        if path is None:
            continue
        real = path if path == STDIN else os.path.realpath(path)
        same = _identity(path)
        if same in written and same != os.devnull:  # /dev/null takes anything
            raise click.UsageError(f"{written[same]} and {option} are the same file ({path}); "
                                   "give each its own")
        written[same] = option
        if path == STDIN:
            continue
        if os.path.isdir(real):
            raise click.UsageError(f"{option} {path} is a directory; name a file")
        for name, source in read:
            if real == source:
                raise click.UsageError(f"{option} {path} is also an input; choose another file")
            if os.path.isdir(source) and os.path.commonpath([source, real]) == source:
                raise click.UsageError(f"{option} {path} is inside the input directory {name}, "
                                       "so the next run would read it as input; write it "
                                       "outside the directory")


def _identity(path: str) -> Any:
    """What writing to ``path`` writes to. A regular file written in place (stdout, or
    /dev/stdout, redirected to one) by device and inode, so that the two names are one; any
    other file by its resolved name, as each gets its own ``.partial`` and rename; a device
    or pipe by its name (``--rejects /dev/stderr`` with ``2>&1`` is the caller's choice)."""
    if path != STDIN and not written_in_place(path):
        return os.path.realpath(path)
    try:
        st = os.fstat(1) if path == STDIN else os.stat(path)
    except OSError:
        return path
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else path
