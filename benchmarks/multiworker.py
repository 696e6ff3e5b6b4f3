"""Wall time of one distill process against N local workers
(MultiWorkerMirroredStrategy via python -m distill.launch), same config and
global batch:

    python -m benchmarks.multiworker --data DIR_OR_NPZ [--workers 2] [--subset 5000]

Records benchmarks/results/multiworker/table.md with the machine, versions and config. On one
machine the workers share its cores, so expect no speed-up: this measures the
cost of the collectives, not a cluster's scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.saved import write_table

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--subset", type=int, default=5000)
    p.add_argument("--work", type=Path, default=Path("/tmp/edgekd-multiworker"))
    a = p.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    args = ["--data", a.data, "--preset", "quick", "--train-subset", str(a.subset),
            "--teacher-epochs", "1", "--epochs", "1", "--no-scratch", "--quiet"]
    single = timed([sys.executable, "-m", "distill", *args, "--out", str(a.work / "single")])
    multi = timed([sys.executable, "-m", "distill.launch", "--workers", str(a.workers), "--",
                   *args, "--out", str(a.work / "multi")])
    reports = {k: json.loads((a.work / k / "train_report.json").read_text())
               for k in ("single", "multi")}
    rows = ["| run | replicas | wall s | teacher s/epoch | student s/epoch | student top-1 |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, wall in (("1 process", single), (f"{a.workers} workers", multi)):
        r = reports["single" if name == "1 process" else "multi"]
        m = r["models"]
        rows.append(f"| {name} | {r['distribution']['replicas']} | {wall:.0f} "
                    f"| {m['teacher']['seconds_per_epoch']} | {m['student']['seconds_per_epoch']} "
                    f"| {100 * m['student']['accuracy']:.2f} % |")
    mach, v = reports["single"]["machine"], reports["single"]["versions"]
    text = "\n".join([
        "# 1 process vs local workers (MultiWorkerMirroredStrategy)", "",
        f"`python -m benchmarks.multiworker --workers {a.workers} --subset {a.subset}`: quick "
        f"preset (tutorial models), {a.subset} training images, 1 teacher + 1 student epoch, "
        f"global batch 32, data {reports['single']['dataset']['name']}. Machine: {mach['cpu']}, "
        f"{mach['cores']} cores. tensorflow {v.get('tensorflow')}.", "", *rows, "",
        f"Wall time ratio ({a.workers} workers / 1 process): {multi / single:.2f}. The workers "
        "share the same cores and add a gradient all-reduce per step, so no speed-up is "
        "expected here; on a cluster each worker brings its own cores or GPUs.", ""])
    write_table("multiworker", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
