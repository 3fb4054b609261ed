"""Benchmark how fast one Ctrl-C (SIGINT) or SIGTERM stops each phase of ``dvsync run``.

Target (issue 10): within about a second of the signal, at the next safe point, in every phase
(sync, compute, plan, write, provision). Each measurement runs ``dvsync`` in a subprocess against
a fresh small sandbox, waits for the phase's log line, sends the signal and prints the seconds
until the process exited, with its exit code (130 SIGINT, 143 SIGTERM).

Run: ``.venv/bin/python bench/bench_stop.py``
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.sandbox import Sandbox
from jobs.cli.walkthrough import demo_settings

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-not-a-secret"
# (label, dvsync arguments, log line that says the phase began, pause after it, signal)
CASES = [
    ("provision", ["provision"], "created column", 0.0, signal.SIGINT),
    ("sync", ["run", "--no-dry-run", "--jobs", "rfm"], "run 1: sync", 0.5, signal.SIGINT),
    ("compute", ["run", "--no-dry-run", "--jobs", "duplicates"], "run 2: compute", 0.5, signal.SIGTERM),
    ("plan", ["run", "--no-dry-run", "--jobs", "scoring,rfm"], "run 3: plan", 0.0, signal.SIGINT),
    ("write", ["run", "--no-dry-run", "--jobs", "rfm"], "record(s) written back", 0.0, signal.SIGTERM),
]


def measure(config: Path, args: list[str], marker: str, pause: float, signum: int) -> tuple[float, int]:
    env = {**os.environ, "DVSYNC__AUTH__TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli.main", "-v", "--config", str(config), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:  # type: ignore[union-attr]
        if marker in line:
            break
    time.sleep(pause)
    os.kill(proc.pid, signum)
    sent = time.perf_counter()
    proc.communicate(timeout=120)
    return time.perf_counter() - sent, proc.returncode


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dvsync-bench-stop-") as tmp:
        directory = Path(tmp)
        sandbox = Sandbox(directory / "sandbox", size="small", seed=0, token=TOKEN).start()
        try:
            demo_settings(directory, sandbox.url, TOKEN)  # writes config.toml for this sandbox
            config = directory / "config.toml"
            chunks = "[writeback]\nbatch_size = 200\nmax_parallel = 1"
            config.write_text(config.read_text().replace("[writeback]", chunks))
            print(f"{'phase':<10} {'signal':<8} {'stopped after':>14} {'exit':>5}")
            for label, args, marker, pause, signum in CASES:
                seconds, code = measure(config, args, marker, pause, signum)
                name = signal.Signals(signum).name
                print(f"{label:<10} {name:<8} {seconds:>12.2f} s {code:>5}", flush=True)
        finally:
            sandbox.stop()


if __name__ == "__main__":
    main()
