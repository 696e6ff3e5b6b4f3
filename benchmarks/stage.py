"""One pipeline stage as a child process: its wall time and its own peak RSS
(os.wait4's rusage of that child, not the maximum over all children so far)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.saved import ROOT


@dataclass(frozen=True)
class Stage:
    seconds: float
    peak_rss_mb: float


def run_stage(*args: str, log=None) -> Stage:
    """`python -m ...args` in the repository root; raises on a non-zero exit."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log, stderr=log)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed with exit code {proc.returncode}")
    # ru_maxrss is in KiB on Linux
    return Stage(round(time.perf_counter() - t0, 1), round(usage.ru_maxrss / 1024, 1))


def run_once(name: Path, *args: str) -> Stage:
    """run_stage(*args), logged to `<name>.log`, its Stage kept in `<name>.stage.json`:
    a rerun of a benchmark reads the record and only re-renders its table."""
    import json
    from dataclasses import asdict
    record = name.parent / f"{name.name}.stage.json"
    if record.is_file():
        return Stage(**json.loads(record.read_text()))
    with open(name.parent / f"{name.name}.log", "w") as log:
        stage = run_stage(*args, log=log)
    record.write_text(json.dumps(asdict(stage)))
    return stage
