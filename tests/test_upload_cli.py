"""``ctmap upload`` through click's runner: options, credentials, refusals, dry run, summary,
exit codes, settings file, resume, and the passcode kept out of every output."""

from __future__ import annotations

import gzip
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import ctmap
from cli.upload import default_rejects_path
from tests.conftest import SAMPLES
from tests.support.fake_clevertap import FakeCleverTap
from tests.support.upload_data import ACCOUNT, PASSCODE, tally, track, write_ndjson

ENV = {"CLEVERTAP_ACCOUNT_ID": ACCOUNT, "CLEVERTAP_PASSCODE": PASSCODE}
NO_ENV: dict[str, str | None] = {"CLEVERTAP_ACCOUNT_ID": None, "CLEVERTAP_PASSCODE": None}


def run(*args: object, env: dict[str, str | None] | None = None, input: str | None = None
        ) -> Result:
    return CliRunner().invoke(ctmap, ["upload", *map(str, args)],
                              env={**NO_ENV, **(ENV if env is None else env)}, input=input,
                              catch_exceptions=False)


@pytest.fixture
def ct() -> Iterator[FakeCleverTap]:
    with FakeCleverTap(ACCOUNT, PASSCODE) as server:
        yield server


@pytest.fixture
def events(tmp_path: Path) -> Path:
    lines: list[Any] = [track(n) for n in range(1500)]
    lines.insert(3, b"{oops")
    return write_ndjson(tmp_path / "events.ndjson", lines)


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return write_ndjson(tmp_path / "clean.ndjson", [track(n) for n in range(1200)])


def flat(text: str) -> str:
    return " ".join(text.split())


def no_passcode_anywhere(result: Result, directory: Path) -> None:
    assert PASSCODE not in result.stdout and PASSCODE not in result.stderr
    for path in directory.rglob("*"):
        if path.is_file():
            assert PASSCODE.encode() not in path.read_bytes(), path


# ---- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--passcode", PASSCODE], [f"--passcode={PASSCODE}"]],
                         ids=["separate", "equals"])
def test_there_is_no_passcode_option(clean: Path, args: list[str]) -> None:
    result = run(clean, "--region", "in1", *args)
    assert result.exit_code == 2
    assert "No such option" in result.stderr and "--passcode" in result.stderr
    assert PASSCODE not in result.stdout + result.stderr


def test_unknown_region_is_a_usage_error(clean: Path) -> None:
    result = run(clean, "--region", "eu2")
    assert result.exit_code == 2 and "eu2" in result.stderr


def test_region_is_required(clean: Path) -> None:
    result = run(clean)
    assert result.exit_code == 2 and "--region" in result.stderr


def test_unknown_region_in_the_settings_file_is_refused(clean: Path, tmp_path: Path) -> None:
    config = tmp_path / "ctmap.toml"
    config.write_text('[upload]\nregion = "mars1"\n')
    result = run(clean, "--config", config)
    assert result.exit_code == 1 and "upload.region" in result.stderr


@pytest.mark.parametrize("concurrency", ["16", "0"])
def test_concurrency_above_cleverTaps_limit_is_refused(clean: Path, concurrency: str) -> None:
    result = run(clean, "--region", "in1", "--concurrency", concurrency)
    assert result.exit_code == 2 and "1<=x<=15" in result.stderr


def test_plain_http_off_loopback_is_refused_before_sending(clean: Path) -> None:
    result = run(clean, "--endpoint", "http://ct.example.com")
    assert result.exit_code == 1
    assert "plain http:// is allowed only to a loopback host" in result.stderr


def test_missing_account_id_says_how_to_give_it(clean: Path) -> None:
    result = run(clean, "--region", "in1", env={"CLEVERTAP_PASSCODE": PASSCODE})
    assert result.exit_code == 1
    assert "--account-id" in result.stderr and "CLEVERTAP_ACCOUNT_ID" in result.stderr


def test_missing_passcode_says_how_to_give_it(clean: Path) -> None:
    result = run(clean, "--region", "in1", "--account-id", ACCOUNT, env={})
    assert result.exit_code == 1
    for hint in ("CLEVERTAP_PASSCODE", "--passcode-file", "terminal"):
        assert hint in result.stderr


def test_stdin_cannot_be_checkpointed(ct: FakeCleverTap, tmp_path: Path) -> None:
    result = run("-", "--endpoint", ct.url, "--state", tmp_path / "s", input="{}\n")
    assert result.exit_code == 1 and "stdin" in result.stderr
    assert ct.requests == []


# ---- dry run ------------------------------------------------------------------------------------


def test_dry_run_shows_bodies_and_a_redacted_request(events: Path, tmp_path: Path) -> None:
    result = run(events, "--region", "in1", "--dry-run", "--state", tmp_path / "s")
    assert result.exit_code == 3  # one line would be rejected
    out = result.stdout
    assert "POST https://in1.api.clevertap.com/1/upload" in out
    assert f"X-CleverTap-Account-Id: {ACCOUNT}" in out
    assert "X-CleverTap-Passcode: ***" in out
    assert "body 1: 1,000 records (event 1,000)" in out
    assert "body 2: 500 records (event 500)" in out
    assert "sample body (body 1, 3 of 1000 records shown)" in out
    assert "would reject: 1 (invalid_json 1)" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.ndjson"]  # nothing written
    no_passcode_anywhere(result, tmp_path)


def test_dry_run_needs_no_credentials_and_speaks_json(clean: Path) -> None:
    result = run(clean, "--region", "none", "--dry-run", "--json", env={})
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    assert plan["url"] == "https://api.clevertap.com/1/upload"
    assert plan["headers"]["X-CleverTap-Passcode"] == "***"
    assert [b["records"] for b in plan["bodies"]] == [1000, 200]
    assert plan["read"]["bodies"] == 2
    assert len(plan["sample"]["d"]) == 3


def test_dry_run_with_the_state_of_a_job_shows_only_what_is_left(ct: FakeCleverTap,
                                                                 clean: Path,
                                                                 tmp_path: Path) -> None:
    state = tmp_path / "sync.state"
    before = run(clean, "--endpoint", ct.url, "--dry-run", "--json", "--state", state)
    assert [b["records"] for b in json.loads(before.stdout)["bodies"]] == [1000, 200]
    assert run(clean, "--endpoint", ct.url, "--state", state).exit_code == 0
    after = run(clean, "--endpoint", ct.url, "--dry-run", "--state", state)
    assert after.exit_code == 0, after.stderr
    assert "0 records in 0 bodies would be sent" in flat(after.stderr)
    assert "2 bodies acknowledged by earlier runs" in flat(after.stderr)
    assert "the job is complete" in after.stderr
    again = run(clean, "--endpoint", ct.url, "--dry-run", "--state", state, "--restart")
    assert "1,200 records in 2 bodies would be sent" in flat(again.stderr)
    # Without an account the state cannot be matched to the job: it is not read.
    blind = run(clean, "--endpoint", ct.url, "--dry-run", "--state", state, env={})
    assert blind.exit_code == 0, blind.stderr
    assert "1,200 records in 2 bodies" in flat(blind.stderr)
    assert "not read: it belongs to an account" in flat(blind.stderr)


def test_dry_run_of_a_sample_file() -> None:
    result = run(SAMPLES / "events.ndjson", "--region", "in1", "--dry-run", env={})
    assert result.exit_code in (0, 3)
    assert "X-CleverTap-Passcode: ***" in result.stdout and "body 1:" in result.stdout


# ---- real runs against the stand-in --------------------------------------------------------------


def test_upload_reports_and_keeps_the_passcode_out(ct: FakeCleverTap, events: Path,
                                                   tmp_path: Path) -> None:
    state = tmp_path / "sync.state"
    result = run(events, "--endpoint", ct.url, "--state", state)
    assert result.exit_code == 3, result.stderr  # the unreadable line
    err = result.stderr
    assert "ctmap upload: complete" in err
    assert "read:     1,501 events" in err
    assert "accepted: 1,500" in err
    assert "rejected: 1 (invalid_json 1)" in err
    assert "pending:  0" in err
    assert len(ct.accepted) == 1500
    rejects = tmp_path / "sync.rejects.ndjson"
    assert json.loads(rejects.read_text())["line"] == 4
    assert json.loads(state.read_text())["complete"] is True
    no_passcode_anywhere(result, tmp_path)

    again = run(events, "--endpoint", ct.url, "--state", state)
    assert again.exit_code == 3  # the job had a rejection; a rerun says so again
    assert "nothing to do" in again.stderr
    assert len(ct.requests) == 2


def test_clean_upload_exits_0_and_json_summary(ct: FakeCleverTap, clean: Path,
                                               tmp_path: Path) -> None:
    result = run(clean, "--endpoint", ct.url, "--json", "--rejects", tmp_path / "r.ndjson")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "complete" and summary["accepted"] == 1200
    assert summary["read"]["events"] == 1200 and summary["state_path"] is None
    assert summary["bodies"] == 2 and "bodies" not in summary["read"]  # one count, not a 0
    assert "state:    none (no --state)" in result.stderr
    assert (tmp_path / "r.ndjson").read_bytes() == b""


def test_file_names_with_brackets_are_printed_as_they_are(ct: FakeCleverTap, clean: Path,
                                                         tmp_path: Path) -> None:
    # rich would read "[/x]" as markup: a closing tag with nothing to close, an error.
    state, rejects = tmp_path / "s[/x].json", tmp_path / "r[bold].ndjson"
    result = run(clean, "--endpoint", ct.url, "--state", state, "--rejects", rejects)
    assert result.exit_code == 0, result.stderr
    assert f"state:    {state}" in result.stderr
    again = run(clean, "--endpoint", ct.url, "--state", state, "--rejects", rejects)
    assert f"nothing to do: {state} says" in again.stderr


def test_passcode_file(ct: FakeCleverTap, clean: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text(PASSCODE + "\n")
    result = run(clean, "--endpoint", ct.url, "--account-id", ACCOUNT, "--passcode-file", secret,
                 "-q", "--rejects", tmp_path / "r.ndjson", env={})
    assert result.exit_code == 0 and result.stderr == ""
    assert len(ct.accepted) == 1200
    (tmp_path / "empty").write_text("\n")
    empty = run(clean, "--endpoint", ct.url, "--account-id", ACCOUNT, "--passcode-file",
                tmp_path / "empty", env={})
    assert empty.exit_code == 1 and "is empty" in empty.stderr


def test_wrong_credentials_exit_1_naming_what_to_check(clean: Path, tmp_path: Path) -> None:
    with FakeCleverTap(ACCOUNT, "the-real-one") as ct:
        result = run(clean, "--endpoint", ct.url, "--region", "sg1", "--state",
                     tmp_path / "s", "--concurrency", "1")
    assert result.exit_code == 1
    assert len(ct.requests) == 1
    for word in ("account id", ACCOUNT, "passcode", "region (sg1)"):
        assert word in result.stderr
    no_passcode_anywhere(result, tmp_path)


def test_giving_up_exits_4_and_a_rerun_resumes(ct: FakeCleverTap, clean: Path,
                                               tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    ct.set(rate_5xx=1.0)
    result = run(clean, "--endpoint", ct.url, "--state", state, "--max-retries", "0",
                 "--concurrency", "1")
    assert result.exit_code == 4
    assert "gave up" in result.stderr and "rerun the same command" in result.stderr
    ct.set(rate_5xx=0.0)
    result = run(clean, "--endpoint", ct.url, "--state", state)
    assert result.exit_code == 0
    assert set(tally(ct.accepted).values()) == {1} and len(ct.accepted) == 1200


def test_a_gz_rejects_file_is_compressed_through_a_resume(ct: FakeCleverTap,
                                                          tmp_path: Path) -> None:
    """`--rejects r.ndjson.gz` is gzip, as convert's is, and stays readable by zcat when a
    resumed run appends to it."""
    lines: list[Any] = [track(n) for n in range(1500)]
    lines[3] = b"{oops"
    lines[1400] = b"{oops again"
    src = write_ndjson(tmp_path / "e.ndjson", lines)
    state, rejects = tmp_path / "s.json", tmp_path / "r.ndjson.gz"
    ct.script(["ok", "500"])
    args = (src, "--endpoint", ct.url, "--state", state, "--rejects", rejects,
            "--concurrency", "1")
    assert run(*args, "--max-retries", "0").exit_code == 4
    assert run(*args).exit_code == 3
    written = [json.loads(x) for x in gzip.decompress(rejects.read_bytes()).splitlines()]
    assert [(r["line"], r["code"]) for r in written] == [(4, "invalid_json"),
                                                        (1401, "invalid_json")]
    assert len(ct.accepted) == 1498


def test_changed_input_is_refused_until_restart(ct: FakeCleverTap, clean: Path,
                                                tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    assert run(clean, "--endpoint", ct.url, "--state", state).exit_code == 0
    with clean.open("ab") as f:
        f.write(b'{"type":"track","userId":"u","event":"E","properties":{"n":5000}}\n')
    result = run(clean, "--endpoint", ct.url, "--state", state)
    assert result.exit_code == 1 and "--restart" in result.stderr and "changed" in result.stderr
    result = run(clean, "--endpoint", ct.url, "--state", state, "--restart")
    assert result.exit_code == 0 and len(ct.accepted) == 1200 + 1201


def test_settings_file_upload_section(ct: FakeCleverTap, clean: Path, tmp_path: Path) -> None:
    config = tmp_path / "ctmap.toml"
    state = tmp_path / "from-config.state"
    config.write_text(f'[upload]\nregion = "in1"\nendpoint = "{ct.url}"\n'
                      f'account_id = "{ACCOUNT}"\nconcurrency = 2\nstate = "{state}"\n'
                      "max_retries = 3\ntimeout = 5\nprofiles_first = true\n")
    result = run(clean, "--config", config, env={"CLEVERTAP_PASSCODE": PASSCODE})
    assert result.exit_code == 0, result.stderr
    assert state.exists() and ct.max_in_flight <= 2
    assert json.loads(state.read_text())["settings"]["profiles_first"] is True
    # An option given on the command line wins over the file, off as well as on.
    other = tmp_path / "off.state"
    result = run(clean, "--config", config, "--no-profiles-first", "--state", other,
                 env={"CLEVERTAP_PASSCODE": PASSCODE})
    assert result.exit_code == 0, result.stderr
    assert json.loads(other.read_text())["settings"]["profiles_first"] is False


def test_default_rejects_path() -> None:
    assert default_rejects_path("jobs/sync.state") == "jobs/sync.rejects.ndjson"
    assert default_rejects_path("state.json") == "state.rejects.ndjson"
    assert default_rejects_path(None) == "ctmap-rejects.ndjson"


def test_help_documents_the_contract() -> None:
    result = CliRunner().invoke(ctmap, ["upload", "--help"])
    for text in ("--region", "--endpoint", "--concurrency", "--state", "--dry-run",
                 "--profiles-first", "--passcode-file", "CLEVERTAP_PASSCODE", "Example"):
        assert text in result.output


@pytest.mark.slow
def test_passcode_prompt_on_a_terminal_is_hidden(ct: FakeCleverTap, clean: Path,
                                                 tmp_path: Path) -> None:
    """With no passcode given and a terminal on stdin, ctmap asks without echoing it."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLEVERTAP_")}
    process = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "upload", str(clean),
         "--endpoint", ct.url, "--account-id", ACCOUNT, "--rejects", str(tmp_path / "r")],
        stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env, start_new_session=True,
        cwd=Path(__file__).resolve().parents[1])
    os.close(slave)
    seen = b""
    while b"passcode" not in seen.lower():
        seen += os.read(master, 1024)
    os.write(master, PASSCODE.encode() + b"\n")
    out, _ = process.communicate(timeout=30)
    while True:  # the rest of what went to the terminal
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert process.returncode == 0, seen.decode(errors="replace")
    assert len(ct.accepted) == 1200
    assert PASSCODE.encode() not in seen + out  # not echoed, not printed


def test_profiles_first_cannot_read_stdin_twice(ct: FakeCleverTap, tmp_path: Path) -> None:
    rejects = tmp_path / "r.ndjson"
    result = run("-", "--endpoint", ct.url, "--profiles-first", "--rejects", rejects,
                 input="{}\n")
    assert result.exit_code == 1 and "stdin" in result.stderr
    assert ct.requests == [] and not rejects.exists()  # refused before anything


def test_stdin_upload_without_state(ct: FakeCleverTap, tmp_path: Path) -> None:
    lines = "".join(json.dumps(track(n)) + "\n" for n in range(5))
    result = run("-", "--endpoint", ct.url, "--rejects", tmp_path / "r", input=lines)
    assert result.exit_code == 0, result.stderr
    assert len(ct.accepted) == 5


@pytest.mark.parametrize("option", ["--rejects", "--state"])
def test_an_input_is_never_overwritten(clean: Path, option: str) -> None:
    result = run(clean, "--region", "in1", option, clean)
    assert result.exit_code == 2 and "is also an input" in result.stderr


@pytest.mark.parametrize("option", ["--rejects", "--state"])
def test_no_file_of_the_job_goes_inside_an_input_directory(clean: Path, option: str) -> None:
    # The next run would read the state, its lock or the rejects back as input.
    result = run(clean.parent, "--region", "in1", option, clean.parent / "sync.state")
    assert result.exit_code == 2 and "inside the input directory" in result.stderr


def test_state_and_rejects_may_not_be_one_file(clean: Path, tmp_path: Path) -> None:
    both = tmp_path / "job"
    result = run(clean, "--region", "in1", "--state", both, "--rejects", both)
    assert result.exit_code == 2 and "--state and --rejects are the same file" in result.stderr


def test_quiet_still_says_why_it_failed(clean: Path, tmp_path: Path) -> None:
    with FakeCleverTap(ACCOUNT, "the-real-one") as ct:
        result = run(clean, "--endpoint", ct.url, "-q", "--rejects", tmp_path / "r")
    assert result.exit_code == 1
    assert result.stderr.startswith("ctmap: error: CleverTap refused the request with HTTP 401")
    assert len(result.stderr.splitlines()) == 1


def test_rejects_to_dev_null(ct: FakeCleverTap, events: Path) -> None:
    """A device takes the rejects as they come (fsync does not apply to it)."""
    result = run(events, "--region", "none", "--endpoint", ct.url, "--rejects", "/dev/null")
    assert result.exit_code == 3, result.output
    assert len(ct.accepted) == 1500


def test_rejects_to_stdout(ct: FakeCleverTap, events: Path, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``--rejects -`` is stdout, as for convert, not a file named '-'."""
    monkeypatch.chdir(tmp_path)
    result = run(events, "--region", "none", "--endpoint", ct.url, "--rejects", "-", "-q")
    assert result.exit_code == 3, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(x["line"], x["code"]) for x in lines] == [(4, "invalid_json")]
    assert not (tmp_path / "-").exists() and len(ct.accepted) == 1500


def test_a_state_file_that_cannot_be_saved_is_a_clear_error(ct: FakeCleverTap, clean: Path,
                                                            tmp_path: Path) -> None:
    """A full disk (here a file size limit) when saving the state: exit 1 naming the file,
    the state left as it was, and the rerun finishes the job."""
    state = tmp_path / "job.state"
    script = ("import resource, signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))\n"
              "from cli.main import main\n"
              "sys.argv[0] = 'ctmap'\n"
              "main()\n")
    args = ["upload", str(clean), "--endpoint", ct.url, "--state", str(state)]
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          env={**os.environ, **ENV}, cwd=Path(__file__).resolve().parents[1],
                          check=False)
    assert done.returncode == 1, done.stderr
    assert f"ctmap: error: cannot save the state file {state} (File too large)" in done.stderr
    assert "unexpected" not in done.stderr and not state.exists()
    assert not Path(f"{state}.tmp").exists()
    again = run(clean, "--endpoint", ct.url, "--state", state, "-q")
    assert again.exit_code == 0, again.output
    assert set(tally(ct.accepted)) == {("event", n) for n in range(1200)}


@pytest.mark.parametrize("dry_run", [False, True], ids=["upload", "dry-run"])
def test_a_state_naming_records_a_body_lacks_is_a_clear_error(ct: FakeCleverTap, clean: Path,
                                                              tmp_path: Path,
                                                              dry_run: bool) -> None:
    """A hand-edited state whose pending record numbers are past the end of the body: exit 1
    saying the state file is damaged and what to do, not an IndexError, and nothing sent."""
    state = tmp_path / "job.state"
    assert run(clean, "--endpoint", ct.url, "--state", state, "-q").exit_code == 0
    data = json.loads(state.read_text())
    data.update(complete=False, next_body=0, partial={"0": [5000]})
    state.write_text(json.dumps(data))
    ct.reset()
    result = run(clean, "--endpoint", ct.url, "--state", state, "-q",
                 *(["--dry-run"] if dry_run else []))
    assert result.exit_code == 1, result.output
    assert "unexpected" not in result.stderr
    assert (f"ctmap: error: {state}: the state file is damaged: it lists record 5001 of body 1 "
            "as still to send, but that body has 1000 records") in flat(result.stderr)
    assert "--restart" in result.stderr and ct.requests == []


def test_a_truncated_gzip_input_sends_what_precedes_it_and_says_so(ct: FakeCleverTap,
                                                                  clean: Path,
                                                                  tmp_path: Path) -> None:
    """good + truncated gzip + good: the lines before the damage all go (with their
    rejections), the summary is printed, the error says what went, what did not and what to
    do; the rerun sends nothing twice and says the same."""
    lines = [json.dumps(track(10000 + n)).encode() + b"\n" for n in range(600)]
    lines[300] = b"{oops\n"
    whole = gzip.compress(b"".join(lines), mtime=0)
    broken = tmp_path / "t.ndjson.gz"
    broken.write_bytes(whole[: len(whole) * 3 // 4])
    other = write_ndjson(tmp_path / "g2.ndjson", [track(20000 + n) for n in range(10)])
    state = tmp_path / "job.state"
    args = (clean, broken, other, "--endpoint", ct.url, "--state", state)
    result = run(*args)
    assert result.exit_code == 1, result.output
    text = flat(result.stderr)
    assert "ctmap upload: failed" in text and "pending: 0 + the rest of the input" in text
    line = int(text.split("truncated or corrupt after line ")[1].split()[0])
    assert 301 < line < 600
    assert ("Upload: every line before it was delivered (accepted, or in the rejects file); "
            f"nothing after it was read or sent (the rest of {broken} and {other})") in text
    assert "Rerunning this command sends nothing twice and stops here again" in text
    assert f"tail -n +{line + 1} > rest.ndjson) and {other}" in text
    sent = {("event", n) for n in [*range(1200), *range(10000, 10000 + line)]
            if n != 10300}
    assert set(tally(ct.accepted)) == sent and len(ct.accepted) == len(sent)
    rejected = [json.loads(x) for x in Path(default_rejects_path(str(state))).read_text()
                .splitlines()]
    assert [(r["source"], r["line"]) for r in rejected] == [(str(broken), 301)]
    again = run(*args)
    assert again.exit_code == 1 and "sends nothing twice" in flat(again.stderr)
    assert len(ct.accepted) == len(sent)
