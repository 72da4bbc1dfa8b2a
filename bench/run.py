"""``make bench``: how fast ctmap converts, next to a bare orjson floor, and how much memory.

Generates a realistic mixed file (bench/gen_events.py; 200,000 events of about 1.2 KB by
default), then runs each job as its own process, alternating the jobs round by round so that
machine noise hits them alike, and reports the best wall time of each (events/s), its ratio to
the floor, and its peak RSS. Results go to stdout as a table and to bench/results.json.

    python bench/run.py [--events N] [--rounds R] [--jobs floor,convert,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


CTMAP = [sys.executable, "-c", "from cli.main import main; main()"]
PASSCODE = "bench-passcode"


@dataclass
class Result:
    name: str
    seconds: list[float]
    rss_mb: list[float]

    @property
    def best(self) -> float:
        return min(self.seconds)


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process, from its own rusage."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"benchmark job failed ({code}): {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def jobs(data: Path, tmp: Path, server_url: str | None) -> dict[str, Callable[[], list[str]]]:
    out, rej = str(tmp / "out.ndjson"), str(tmp / "rejects.ndjson")
    convert = [*CTMAP, "convert", str(data), "-o", out, "--rejects", rej, "-q"]
    table: dict[str, Callable[[], list[str]]] = {
        "floor": lambda: [sys.executable, str(ROOT / "bench" / "floor.py"), str(data), out],
        "convert": lambda: convert,
        "convert --compat": lambda: [*convert, "--compat", "rudderstack"],
        "convert --checks off": lambda: [*convert, "--checks", "off"],
        "convert --workers 2": lambda: [*convert, "--workers", "2"],
        "convert --format batches": lambda: [*convert, "--format", "batches"],
        "dry-run summary": lambda: [*CTMAP, "convert", str(data), "--dry-run", "--limit", "0"],
    }
    if server_url:
        table["upload (stand-in, no latency)"] = lambda: [
            *CTMAP, "upload", str(data), "--region", "none", "--endpoint", server_url,
            "--account-id", "BENCH", "--rejects", rej, "-q", "--state",
            str(tmp / f"state-{time.monotonic_ns()}.json")]
    return table


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "BENCH_PASSCODE": PASSCODE}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_clevertap", "--port", "0", "--account-id",
         "BENCH", "--passcode-env", "BENCH_PASSCODE", "--count-only"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening "):
        proc.kill()
        raise SystemExit(f"the CleverTap stand-in did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", default="", help="comma-separated job names (default: all)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()

    data = ROOT / "bench" / "data" / f"events-{args.events}.ndjson"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {data} ...", file=sys.stderr)
        # In a process of its own: a job's peak RSS counts this one's too when it grew here
        # (Linux carries a process's high-water mark into what it forks and executes).
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_events.py"), str(data),
                        "--events", str(args.events), "--seed", "1"], check=True)
    size_mb = data.stat().st_size / 1e6

    with tempfile.TemporaryDirectory(prefix="ctmap-bench-") as tmpdir:
        tmp = Path(tmpdir)
        wanted = [j.strip() for j in args.jobs.split(",") if j.strip()]
        server = None
        if not wanted or any(j.startswith("upload") for j in wanted):
            server, url = start_server(tmp)
        try:
            table = jobs(data, tmp, url if server else None)
            # A name picks that job; a beginning of names ("upload") the jobs it begins.
            names = [n for n in table if not wanted or any(
                n == w or (w not in table and n.startswith(w)) for w in wanted)]
            results = {n: Result(n, [], []) for n in names}
            env = {**os.environ, "CLEVERTAP_PASSCODE": PASSCODE}
            for round_no in range(args.rounds):
                for name in names:
                    # Every job writes new files: freeing the last job's (700 MB of records at
                    # 1M events), which replacing or truncating them makes the kernel do, is
                    # not the job's work. (ext4 also starts writing back a file renamed over
                    # an existing one: a quarter of a second here, at the end of the run.)
                    for old in tmp.glob("*.ndjson"):
                        old.unlink()
                    seconds, rss = measure(table[name](), env)
                    results[name].seconds.append(seconds)
                    results[name].rss_mb.append(rss)
                    print(f"round {round_no + 1}: {name:32} {seconds:7.2f} s  {rss:6.1f} MB",
                          file=sys.stderr)
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)

    floor, convert = results.get("floor"), results.get("convert")
    rows = []
    print(f"\n{args.events:,} events, {size_mb:.0f} MB, best of {args.rounds} rounds, "
          f"{os.cpu_count()} cores\n")
    print(f"{'job':34} {'events/s':>10} {'x floor':>8} {'x convert':>10} {'peak RSS':>9}")
    for r in results.values():
        rate = args.events / r.best
        ratio = floor.best / r.best if floor else float("nan")
        # Against one-process convert: the speed-up of --workers, upload's share of it.
        versus = convert.best / r.best if convert else float("nan")
        rows.append({"job": r.name, "events_per_s": round(rate), "ratio_to_floor":
                     round(ratio, 3), "ratio_to_convert": round(versus, 3),
                     "best_s": round(r.best, 3), "all_s": [round(s, 3) for s in r.seconds],
                     "peak_rss_mb": round(max(r.rss_mb), 1)})
        print(f"{r.name:34} {rate:10,.0f} {ratio:8.2f} {versus:10.2f} {max(r.rss_mb):7.1f} MB")
    Path(args.out).write_text(json.dumps({"events": args.events, "file_mb": round(size_mb, 1),
                                          "rounds": args.rounds, "results": rows}, indent=2))
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
