"""`make edge-model PRESET=quick` on photo folders, stage by stage: wall time
and peak RSS of distill, export and bench, each its own process as make runs
them. Two generated folders (benchmarks.photo_memory's smooth JPEG photos):
3,000 photos of 200-500 px, and 50,000 of 150-400 px.

    python -m benchmarks.quick_photos [--work /var/tmp/edgekd-quick]

The goal (issue: runs as promised): under 5 minutes in all and under 2 GB
peak RSS per stage on any folder the README accepts. Accuracy on generated
photos means nothing; the table records it only to show the run trained.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from benchmarks.photo_memory import generate
from benchmarks.saved import publish
from benchmarks.stage import Stage, run_stage
from edgekd.environment import machine, versions

FOLDERS = (("3,000 photos, 200-500 px", "photos_3000", 3000, (200, 500)),
           ("50,000 photos, 150-400 px", "photos_50000", 50000, (150, 400)))
STAGES = ("distill", "export", "bench")


def _stages(photos: Path, out: Path) -> dict[str, Stage]:
    """The three stages as `make edge-model PRESET=quick` runs them, or their
    records when they finished before (a rerun only re-renders)."""
    record = out.parent / f"{out.name}.stages.json"
    if record.is_file():
        return {k: Stage(**v) for k, v in json.loads(record.read_text()).items()}
    args = {"distill": ["-m", "distill", "--data", str(photos), "--preset", "quick",
                        "--out", str(out), "--quiet"],
            "export": ["-m", "export", str(out)],
            # the Makefile's QUICK_BENCH_ARGS, which edge-model adds for PRESET=quick
            "bench": ["-m", "bench", str(out), "--threads", "1,all", "--seconds", "1",
                      "--runs", "20", "--no-progress"]}
    stages = {}
    with open(out.parent / f"{out.name}.log", "w") as log:
        for name in STAGES:
            stages[name] = run_stage(*args[name], log=log)
    record.write_text(json.dumps({k: asdict(v) for k, v in stages.items()}))
    return stages


def _row(label: str, out: Path, stages: dict[str, Stage]) -> str:
    report = json.loads((out / "train_report.json").read_text())
    size = f"{report['preprocessing']['height']}x{report['preprocessing']['width']}"
    total = sum(s.seconds for s in stages.values())
    cells = " | ".join(f"{stages[k].seconds / 60:.1f} min, {stages[k].peak_rss_mb / 1024:.2f} GiB"
                       for k in STAGES)
    student = report["models"]["student"]
    return (f"| {label} | {report['dataset']['n_train']:,} at {size} | {cells} | "
            f"**{total / 60:.1f} min** | {max(s.peak_rss_mb for s in stages.values()) / 1024:.2f} GiB "
            f"| {100 * student['accuracy']:.1f} % |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/var/tmp/edgekd-quick"))
    a = p.parse_args(argv)
    rows = []
    for label, name, n, sides in FOLDERS:
        photos, out = a.work / name, a.work / f"artifacts_{name}"
        generate(photos, n, sides)
        rows.append(_row(label, out, _stages(photos, out)))
    m, v = machine(), versions()
    text = "\n".join([
        "# The quick preset on photo folders", "",
        "`python -m benchmarks.quick_photos`: `make edge-model PRESET=quick DATA=<folder>`, "
        "each stage its own process as make runs it (wall time and that process's peak RSS). "
        "Generated JPEG photos (benchmarks.photo_memory), 10 classes, mixed sizes and aspect "
        "ratios. Quick trains at the median shorter side capped at 32 px and decodes at most "
        "10,000 training and 2,000 test photos, drawn at random. "
        f"Machine: {m['cpu']}, {m['cores']} cores; tensorflow {v.get('tensorflow')}.", "",
        "| folder | trained on | distill | export | bench | total | peak RSS | student top-1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows, ""])
    return publish("quick_photos", text)


if __name__ == "__main__":
    sys.exit(main())
