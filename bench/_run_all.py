"""Run every benchmark (``make bench``) and write their output to ``bench/results/latest.md``.

Each ``bench/*.py`` not starting with ``_`` runs in turn, its output shown as
it comes and kept.  The results file is written whatever happens, with the
commit measured, the machine, and each benchmark's output and exit status;
the run fails if any benchmark did.  The figures quoted in the docs come
from that file, which each run replaces.
"""

import os
import platform
import subprocess
import sys
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.md"


def commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{head} with uncommitted changes" if dirty else head


def machine() -> str:
    speed = min(timeit.repeat("sum(range(10**6))", number=20, repeat=5)) / 20 * 1000
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()};"
        f" sum(range(10**6)) in {speed:.1f} ms"
    )


def run(script: Path) -> tuple[int, str, float]:
    began = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        lines.append(line)
    return process.wait(), "".join(lines), time.monotonic() - began


def main() -> int:
    scripts = sorted(p for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))
    if not scripts:
        print("no benchmarks yet")
        return 0
    header = [
        "# Benchmark results",
        "",
        "Written by `make bench`; each run replaces this file.",
        "",
        f"- commit: {commit()}",
        f"- run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        "",
    ]
    sections, failed = [], []
    for script in scripts:
        name = script.relative_to(ROOT).as_posix()
        print(f"== {name}", flush=True)
        status, output, seconds = run(script)
        if status != 0:
            failed.append(name)
        verdict = "passed" if status == 0 else f"failed (exit status {status})"
        sections += [f"## {name}", "", f"{verdict}, {seconds:.0f} s", "", "```", output.rstrip()]
        sections += ["```", ""]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(header + sections))
    print(f"results: {RESULTS.relative_to(ROOT)}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
