"""``ctmap upload``: map RudderStack events (or ctmap records) and deliver them to CleverTap."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Final

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from clevertap_mapper.errors import ConfigError
from clevertap_mapper.jsonutil import dumps, loads
from clevertap_mapper.pipeline import Summary
from clevertap_mapper.text import plural
from clevertap_mapper.upload.client import DEFAULT_TIMEOUT, REGIONS, Credentials, upload_url
from clevertap_mapper.upload.plan import plan_bodies
from clevertap_mapper.upload.retry import DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES, MAX_CONCURRENCY
from clevertap_mapper.upload.secret import Secret
from clevertap_mapper.upload.state import Checkpoint, describe_inputs
from clevertap_mapper.upload.uploader import UploadOptions, UploadReport, job_settings, run_upload
from cli.exit_codes import ExitCode
from cli.options import (
    MappingSettings,
    mapping_options,
    pick,
    refuse_overlaps,
    resolve_mapping,
)
from cli.render import counts, stderr_console

ACCOUNT_ENV: Final = "CLEVERTAP_ACCOUNT_ID"
PASSCODE_ENV: Final = "CLEVERTAP_PASSCODE"
SAMPLE_RECORDS: Final = 3  # records of the sample body a dry run prints


def default_rejects_path(state: str | None) -> str:
    """Next to the state file (``sync.state`` -> ``sync.rejects.ndjson``), so a resumed run
    appends to the same file; else ``ctmap-rejects.ndjson``."""
    if state is None:
        return "ctmap-rejects.ndjson"
    return f"{os.path.splitext(state)[0]}.rejects.ndjson"


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("--region", type=click.Choice(REGIONS), default=None,
              help="Your CleverTap region (the prefix of your dashboard URL); 'none' is "
                   "api.clevertap.com.")
@click.option("--account-id", metavar="ID",
              help=f"CleverTap account id [default: ${ACCOUNT_ENV}].")
@click.option("--passcode-file", type=click.Path(dir_okay=False), metavar="FILE",
              help=f"Read the passcode from FILE (else ${PASSCODE_ENV}, else a hidden prompt "
                   "on a terminal). There is no --passcode option: flags show in `ps`.")
@click.option("--endpoint", metavar="URL",
              help="Base URL instead of the region's (for a proxy or a test server); "
                   "/1/upload is appended. Plain http:// only to 127.0.0.1/::1/localhost.")
@click.option("--concurrency", type=click.IntRange(1, MAX_CONCURRENCY),
              default=DEFAULT_CONCURRENCY, show_default=True,
              help=f"Requests in flight, at most {MAX_CONCURRENCY} (CleverTap's per-account "
                   "limit); lowered for a while after a 429.")
@click.option("--state", metavar="FILE", help="Checkpoint file: progress is saved after every "
              "acknowledged body, and rerunning the same command resumes. Without it nothing "
              "is saved and a rerun sends everything again.")
@click.option("--restart", is_flag=True, help="Ignore what --state FILE holds and upload "
              "everything from the start.")
@click.option("--rejects", metavar="FILE", help="Where rejected events and records go, one JSON "
              "object a line [default: STATE.rejects.ndjson next to --state, else "
              "ctmap-rejects.ndjson]. Appended to when resuming; '-' is stdout; a name "
              "ending in .gz is compressed.")
@click.option("--dry-run", is_flag=True, help="Send nothing: show the bodies that would be "
              "sent (records per body) and a sample request, passcode redacted.")
@click.option("--profiles-first/--no-profiles-first", default=False, help="Send every profile "
              "(and device token) before any event: two passes over the inputs (CleverTap's "
              "advice for history) [default: off, or profiles_first in --config].")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, help="Seconds to wait for CleverTap's answer to a request.")
@click.option("--max-retries", type=click.IntRange(0, 100), default=DEFAULT_MAX_RETRIES,
              show_default=True, help="Retries of a failed request (429, 5xx, timeout, lost "
              "connection) before giving up, with exponential backoff (0.5 s doubling, capped "
              "at 30 s, jittered; Retry-After honoured).")
@click.option("--json", "as_json", is_flag=True, help="Print the closing summary (or, with "
              "--dry-run, the plan) as JSON on stdout: the fields of UploadReport "
              "(clevertap_mapper/upload/uploader.py), what was read under 'read'.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr.")
@mapping_options
@click.pass_context
def upload(ctx: click.Context, /, *, inputs: tuple[str, ...], region: str | None,
           account_id: str | None, passcode_file: str | None, endpoint: str | None,
           concurrency: int, state: str | None, restart: bool, rejects: str | None,
           dry_run: bool, profiles_first: bool, timeout: float, max_retries: int,
           as_json: bool, quiet: bool, **_: object) -> None:
    """Upload RudderStack events (or records from `ctmap convert`) to CleverTap.

    Events are mapped and checked exactly as `convert` does; records are sent in bodies of at
    most 1000 (device tokens: 100), several at once. Records CleverTap refuses go to the
    rejects file with its code and the input line; 429/5xx/timeouts are retried, a malformed
    body is split to find the bad record. With --state, a rerun after a crash, Ctrl-C or a
    give-up sends only what CleverTap has not acknowledged.

    Credentials: --account-id or $CLEVERTAP_ACCOUNT_ID; the passcode from
    $CLEVERTAP_PASSCODE, --passcode-file, or a hidden prompt. Settings may also come from the
    [upload] section of --config (region, account_id, endpoint, concurrency, state,
    profiles_first, timeout, max_retries).

    Exit status: 0 all accepted; 3 finished with rejections (for a --state job, counted over
    all its runs, so rerunning a finished job says the same); 4 gave up after retries (state
    saved: rerun to resume); 130 interrupted (state saved); 1 error (settings, credentials,
    CleverTap refused the account, an input that cannot be read to its end, a state or
    rejects file that cannot be written).

    \b
    Examples:
      ctmap upload events.ndjson --region in1 --dry-run
      CLEVERTAP_ACCOUNT_ID=W8R-... CLEVERTAP_PASSCODE=... \\
        ctmap upload archive/ --region in1 --state sync.state
      ctmap upload records.ndjson --region us1 --profiles-first --passcode-file ~/.ct-pass
    """
    settings = resolve_mapping(ctx)
    section: dict[str, Any] = settings.file.get("upload", {})
    region = pick(ctx, "region", section)
    endpoint = pick(ctx, "endpoint", section)
    state = pick(ctx, "state", section)
    if region is None and endpoint is None:
        raise click.UsageError(f"choose --region ({', '.join(REGIONS)}), or set region in "
                               "the [upload] section of --config")
    url = upload_url(region, endpoint)  # refuses a bad region or endpoint before anything else
    options = UploadOptions(
        concurrency=pick(ctx, "concurrency", section),
        timeout=float(pick(ctx, "timeout", section)),
        max_retries=pick(ctx, "max_retries", section),
        profiles_first=bool(pick(ctx, "profiles_first", section)),
    )
    account = account_id or os.environ.get(ACCOUNT_ENV) or section.get("account_id")
    console = stderr_console()
    if dry_run:
        ctx.exit(_dry_run(list(inputs), settings, url, account, options.profiles_first,
                          None if restart else state,
                          as_json=as_json, quiet=quiet, console=console))
    rejects_path = rejects or default_rejects_path(state)
    refuse_overlaps(inputs, [("--state", state), ("--rejects", rejects_path)])
    credentials = Credentials(_account_id(account), _passcode(passcode_file, inputs))
    stop = threading.Event()
    with _signals_stop(stop, console, options.grace), \
            _progress(console, not quiet and not as_json) as hook:
        report = run_upload(list(inputs), settings.mapper, credentials, region=region,
                            endpoint=endpoint, checker=settings.checker, options=options,
                            state_path=state, rejects_path=rejects_path, restart=restart,
                            stop=stop, progress=hook)
    if as_json:
        click.echo(dumps(report.as_dict() | {"url": url}).decode())
    if not quiet:
        render_upload_summary(console, report, url=url, account_id=credentials.account_id)
    if report.error:  # one line even with -q: cron mails stderr
        prefix = "error: " if report.outcome == "failed" else ""
        click.echo(f"ctmap: {prefix}{report.error}", err=True)
    ctx.exit(exit_code(report))


def exit_code(report: UploadReport) -> ExitCode:
    """DESIGN.md s4: 1 failed, 4 gave up, 130 interrupted; when done, 3 if anything of the job
    was rejected (over every run of a checkpointed job, so a rerun says the same), else 0."""
    if report.outcome == "failed":
        return ExitCode.ERROR
    if report.outcome == "gave_up":
        return ExitCode.GAVE_UP
    if report.outcome == "interrupted":
        return ExitCode.INTERRUPTED
    rejected = report.job_rejected_total if report.state_path else report.rejected_total
    return ExitCode.REJECTED if rejected else ExitCode.OK


# ---- credentials --------------------------------------------------------------------------------


def _account_id(account: str | None) -> str:
    if not account:
        raise ConfigError(f"no CleverTap account id: pass --account-id ID, set {ACCOUNT_ENV}, "
                          "or set account_id in the [upload] section of --config")
    return account


def _passcode(passcode_file: str | None, inputs: tuple[str, ...]) -> Secret:
    """The passcode from --passcode-file, else $CLEVERTAP_PASSCODE, else a hidden prompt."""
    if passcode_file is not None:
        try:
            with open(passcode_file, encoding="utf-8") as f:
                value = f.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--passcode-file {passcode_file}: cannot read it "
                              f"({getattr(exc, 'strerror', None) or type(exc).__name__})"
                              ) from None
        if not value:
            raise ConfigError(f"--passcode-file {passcode_file} is empty")
        return Secret(value)
    value = os.environ.get(PASSCODE_ENV, "")
    if value:
        return Secret(value)
    if sys.stdin.isatty() and "-" not in inputs:
        value = click.prompt("CleverTap passcode", hide_input=True, err=True).strip()
        if value:
            return Secret(value)
    raise ConfigError(f"no CleverTap passcode: set {PASSCODE_ENV}, pass --passcode-file FILE, "
                      "or run on a terminal to be asked for it (there is no --passcode option, "
                      "so it never shows in `ps` or shell history)")


# ---- stop on Ctrl-C / SIGTERM ---------------------------------------------------------------


@contextmanager
def _signals_stop(stop: threading.Event, console: Console, grace: float) -> Iterator[None]:
    """First SIGINT/SIGTERM: stop taking work, let requests in flight finish (up to ``grace``
    seconds), save. A second one: quit at once (the checkpoint is already on disk)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        console.print(f"ctmap: stopping: waiting up to {grace:g} s for requests in flight, "
                      "then saving (press Ctrl-C again to quit now)", style="yellow")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def _progress(console: Console, enabled: bool) -> Iterator[Callable[[UploadReport], None] | None]:
    """A live line on stderr when it is a terminal: records sent, rate, retries, rejections."""
    if not enabled or not console.is_terminal:
        yield None
        return
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("uploading")

        def update(report: UploadReport) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = report.accepted / elapsed if elapsed > 0 else 0.0
            bar.update(task, description=(
                f"{report.records_sent:,} sent, {report.accepted:,} accepted ({rate:,.0f}/s), "
                f"{report.retries:,} retries, {report.rejected_total:,} rejected"))

        yield update


# ---- rendering ---------------------------------------------------------------------------------


def render_upload_summary(console: Console, report: UploadReport, *, url: str,
                          account_id: str) -> None:
    """The closing summary on stderr: read, mapped, sent, accepted, rejected, retried, pending,
    and what to do next."""
    headline = {"complete": "[green]complete[/]", "gave_up": "[red]gave up[/]",
                "interrupted": "[yellow]interrupted[/]", "failed": "[red]failed[/]"}
    console.print(f"[bold]ctmap upload[/]: {headline[report.outcome]} in "
                  f"{report.elapsed:.1f} s -> {escape(url)} (account {escape(account_id)})")
    if report.already_complete:
        console.print(f"  nothing to do: {escape(report.state_path or '')} says this upload "
                      f"finished ({report.job_accepted:,} accepted, {report.job_rejected_total:,} "
                      "rejected); add --restart to send everything again")
        return
    s = report.summary
    by_type = f" ({counts(dict(s.by_type))})" if s.by_type else ""
    console.print(f"  read:     {plural(s.events, 'event')}{by_type}")
    records = sum(s.records.values())
    console.print(f"  mapped:   {plural(records, 'record')}"
                  + (f" ({counts(dict(s.records))})" if s.records else ""))
    skipped = (f", {report.bodies_skipped:,} acknowledged by an earlier run and skipped"
               if report.bodies_skipped else "")
    console.print(f"  bodies:   {report.bodies:,}{skipped}")
    throttle = ""
    if report.throttled:
        throttle = (f", {report.throttled:,} throttled (429; concurrency lowered to "
                    f"{report.lowest_concurrency})")
    console.print(f"  sent:     {plural(report.records_sent, 'record')} in "
                  f"{plural(report.requests, 'request')} ({report.retries:,} retried{throttle})")
    console.print(f"  accepted: {report.accepted:,}")
    if report.rejected:
        console.print(f"  [yellow]rejected: {report.rejected_total:,}[/] "
                      f"({counts(dict(report.rejected))}) -> {escape(str(report.rejects_path))}")
    else:
        console.print("  rejected: 0")
    if report.possible_duplicates:
        console.print(f"  [yellow]unsure:[/]   the answer to {plural(report.ambiguous, 'request')} "
                      "was lost after sending and the records were sent again: up to "
                      f"{plural(report.possible_duplicates, 'record')} may be stored twice")
    if report.mismatches:
        console.print(f"  [yellow]note:[/]     {plural(report.mismatches, 'answer')} from "
                      "CleverTap did not add up to the records sent (see the rejects file)")
    pending = f"{report.pending_records:,}"
    if report.unread:
        pending += " + the rest of the input not yet read"
    console.print(f"  pending:  {pending}")
    if report.state_path:
        runs = " (resumed)" if report.resumed else ""
        console.print(f"  state:    {escape(report.state_path)}{runs}; this job so far: "
                      f"{report.job_accepted:,} accepted, {report.job_rejected_total:,} "
                      "rejected")
    else:
        console.print("  state:    none (no --state): a rerun sends everything again")
    if report.outcome in ("gave_up", "interrupted"):
        if report.state_path:
            console.print("  rerun the same command to send what is pending")
        else:
            console.print("  rerun with --state FILE next time to be able to resume")


class _Stdout:
    """stdout for the dry-run listing (data, so not the stderr console)."""

    @staticmethod
    def write(text: str) -> None:
        click.echo(text, nl=False)


def _dry_run(inputs: list[str], settings: MappingSettings, url: str, account: str | None,
             profiles_first: bool, state: str | None, *, as_json: bool, quiet: bool,
             console: Console) -> int:
    """Plan the bodies without sending: counts per body and one sample request on stdout.

    With the ``state`` of a job begun before, only what a real run would still send: bodies
    it acknowledged are skipped, and of a body answered in part only the records pending.
    """
    # The checkpoint names its account: without one, it cannot be matched to this job.
    checkpoint = None if state is None or account is None else Checkpoint.read(
        state, describe_inputs(inputs), job_settings(settings.mapper, settings.checker,
                                                     profiles_first=profiles_first,
                                                     account_id=account, url=url))
    done = 0
    sizes: list[int] = []  # the records of each body that would go
    summary = Summary()
    headers = {
        "X-CleverTap-Account-Id": account or "(not set)",
        "X-CleverTap-Passcode": "***",
        "Content-Type": "application/json; charset=utf-8",
    }
    plan: list[dict[str, Any]] = []
    sample: list[Any] | None = None
    sample_size = 0
    out = _Stdout()
    if not as_json:
        out.write("# dry run: nothing is sent\n"
                  f"POST {url}\n" + "".join(f"{k}: {v}\n" for k, v in headers.items()) + "\n")
    for body in plan_bodies(inputs, settings.mapper, summary, checker=settings.checker,
                            profiles_first=profiles_first):
        records = body.records
        if checkpoint is not None:
            if checkpoint.is_acked(body.seq):
                done += 1
                continue
            pending = checkpoint.pending_of(body.seq, len(records))
            if pending is not None:
                records = [records[i] for i in pending]
        if not records:
            continue
        sizes.append(len(records))
        size = len(b'{"d":[]}') + sum(len(r) for r in records) + len(records) - 1
        kinds = Counter(str(loads(r).get("type")) for r in records)
        entry = {"body": body.seq + 1, "records": len(records), "kinds": dict(kinds),
                 "bytes": size}
        if sample is None:
            sample = [loads(r) for r in records[:SAMPLE_RECORDS]]
            sample_size = len(records)
        if as_json:
            plan.append(entry)
        else:
            out.write(f"body {entry['body']}: {plural(len(records), 'record')} "
                      f"({counts(dict(kinds))}), {size:,} bytes\n")
    summary.bodies = len(sizes)
    if as_json:
        click.echo(dumps({"url": url, "headers": headers, "bodies": plan,
                          "sample": {"d": sample or []}, "read": summary.as_dict(),
                          "acknowledged_bodies": done}).decode())
    elif sample is not None:
        shown = f"{min(SAMPLE_RECORDS, sample_size)} of {sample_size} records shown"
        text = orjson.dumps({"d": sample}, option=orjson.OPT_INDENT_2).decode()
        out.write(f"\nsample body (body 1, {shown}):\n{text}\n")
    else:
        out.write("no records to send\n")
    if not quiet:
        console.print(f"[bold]ctmap upload --dry-run[/]: {plural(summary.events, 'event')} "
                      f"read, {plural(sum(sizes), 'record')} in "
                      f"{plural(len(sizes), 'body', 'bodies')} would be sent; nothing was sent "
                      "or written")
        if checkpoint is not None:
            console.print(f"  {escape(str(state))}: {plural(done, 'body', 'bodies')} "
                          "acknowledged by earlier runs, not sent again"
                          + ("; the job is complete" if checkpoint.complete else ""))
        elif state is not None and account is None and os.path.exists(state):
            console.print(f"  {escape(state)} not read: it belongs to an account; give "
                          "--account-id (or CLEVERTAP_ACCOUNT_ID) to see only what a rerun "
                          "would send")
        if summary.rejected:
            console.print(f"  [yellow]would reject: {summary.rejected_total:,}[/] "
                          f"({counts(dict(summary.rejected))}); the rejects file is written "
                          "only by a real run")
    return ExitCode.REJECTED if summary.rejected else ExitCode.OK

