"""The ``ctmap`` command: a thin click layer over the clevertap_mapper library."""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any, ClassVar

import click

from clevertap_mapper import compiled
from clevertap_mapper.errors import CtmapError
from cli.exit_codes import ExitCode


class CtmapGroup(click.Group):
    """Turns errors into one line on stderr and the documented exit code.

    Each subcommand's module is imported when the subcommand is used, so that ``ctmap convert``
    in a nightly loop does not pay for the HTTP client and the upload machinery at start-up.
    """

    COMMANDS: ClassVar[dict[str, str]] = {
        "convert": "cli.convert", "upload": "cli.upload", "validate": "cli.validate"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.COMMANDS.get(cmd_name)
        if module is None:
            return None
        command = getattr(importlib.import_module(module), cmd_name)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        show_traceback = "--traceback" in sys.argv
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("ctmap: interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except BrokenPipeError:
            # The reader of our stdout went away (`ctmap convert ... | head`): stop, after the
            # with-blocks on the way here stopped workers and removed temp files. Not with 0:
            # the run did not finish (a pipeline with pipefail must see it). stdout now
            # points at /dev/null so the interpreter's last flush cannot fail.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            click.echo("ctmap: stopped: the reader of the output went away (a broken pipe); "
                       "the run did not finish", err=True)
            ctx.exit(ExitCode.ERROR)
        except CtmapError as exc:
            _print_traceback(show_traceback)
            click.echo(f"ctmap: error: {exc}", err=True)
            ctx.exit(ExitCode.ERROR)
        except Exception as exc:
            _print_traceback(show_traceback)
            click.echo(f"ctmap: unexpected error: {type(exc).__name__}: {exc} "
                       "(rerun with --traceback to see where, and please report it)", err=True)
            ctx.exit(ExitCode.ERROR)


def _print_traceback(asked: bool) -> None:
    """The traceback of the exception being handled, with --traceback."""
    if asked:
        import traceback  # noqa: PLC0415 - only when asked

        traceback.print_exc()


@click.group(cls=CtmapGroup, context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100},
             epilog=ExitCode.help_text())
@click.option("--traceback", is_flag=True, help="Show a traceback on errors.")
@click.version_option(package_name="ctmap", message=(
    "%(prog)s %(version)s (mapping core " + ("compiled" if compiled() else "pure Python") + ")"))
def ctmap(traceback: bool) -> None:
    """Move RudderStack event dumps into CleverTap.

    Maps every event exactly as RudderStack's cloud-mode CleverTap destination does (or, by
    default, with its date and identity bugs fixed), writes CleverTap upload payloads, or
    uploads them with retries and a checkpoint.

    \b
    Examples:
      ctmap convert events.ndjson.gz -o records.ndjson
      ctmap convert events.ndjson --dry-run --line 3
      ctmap validate archive/
      ctmap upload events.ndjson --region in1 --state sync.state
    """


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (cron timeouts, kill) unwinds like Ctrl-C: exit 130


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    # Lines are read up to 1024 levels deep (orjson's limit); writing such an event back (to
    # the rejects file, or the dry run) recurses once a level, past the default of 1000.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4000))
    ctmap(prog_name="ctmap")
