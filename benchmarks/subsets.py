"""The seed's claim that a student can learn "on much smaller data than the
original cumbersome model", measured: a teacher trained on all of CIFAR-10,
then the same student distilled from it on 10 % and on 1 % of the training
set, against the student from scratch on the same subsets.

    python -m benchmarks.subsets --data /path/to/cifar10-jpeg [--fractions 0.1 0.01]

The teacher: the default preset's (edge_pool, 18 epochs) on all 50,000
training images; that run distils a one-epoch student only to produce the
teacher file. Each subset run is the default preset with `--teacher` that
file, `--train-subset N` (the first N of the run's seeded shuffle, so the 1 %
subset is inside the 10 % one) and `--scratch`: same split, init and recipe,
the preset's 40 epochs either way, raised to its 1,600 steps on the 1 % subset.
Evaluation on the 10,000 test images. Saves the runs under --work and the
table in benchmarks/results/subsets/table.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.saved import ROOT, publish
from distill.config import PRESETS
from edgekd.environment import machine, versions

N_TRAIN = 50_000  # CIFAR-10's training set: the teacher's, and what the fractions are of
TEACHER_FLAGS = ["--no-scratch", "--epochs", "1", "--teacher-cache-views", "0",
                 "--no-teacher-cache-mirror"]


def _distill(data: Path, out: Path, flags: list[str]) -> None:
    if (out / "train_report.json").is_file():  # finished: a rerun only re-renders
        return
    subprocess.run([sys.executable, "-m", "distill", "--data", str(data), "--preset", "default",
                    "--out", str(out), "--quiet", *flags], check=True, cwd=ROOT)


def run(a) -> dict:
    teacher = a.teacher
    if teacher is None:
        teacher_dir = a.work / "teacher"
        _distill(a.data, teacher_dir, TEACHER_FLAGS)
        teacher = teacher_dir / "teacher.keras"
    runs = {}
    for fraction in a.fractions:
        n = int(round(fraction * N_TRAIN))
        out = a.work / f"subset_{n}"
        _distill(a.data, out, ["--teacher", str(teacher), "--train-subset", str(n), "--scratch"])
        runs[fraction] = {"n": n, "train": json.loads((out / "train_report.json").read_text())}
    return {"runs": runs}


def _minutes(model: dict) -> float:
    return sum(e["seconds"] for e in model["epochs"]) / 60


def document(results: dict, a) -> str:
    first = next(iter(results["runs"].values()))["train"]
    t = first["models"]["teacher"]  # the supplied teacher, evaluated by each run alike
    cfg = first["config"]
    rows = ["| training images | teacher (all 50,000) | distilled student | student from scratch "
            "| distillation gain | epochs (steps) | student minutes (distilled / scratch) |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for fraction, r in results["runs"].items():
        m = r["train"]["models"]
        s, z = m["student"], m["student_scratch"]
        rows.append(f"| {r['n']:,} ({100 * fraction:g} %) | {100 * t['accuracy']:.2f} % | "
                    f"{100 * s['accuracy']:.2f} % | {100 * z['accuracy']:.2f} % | "
                    f"{100 * (s['accuracy'] - z['accuracy']):+.2f} | {len(s['epochs'])} "
                    f"({len(s['epochs']) * -(-r['n'] // cfg['batch_size']):,}) | "
                    f"{_minutes(s):.1f} / {_minutes(z):.1f} |")
    m, v = machine(), versions()
    return "\n".join([
        "# Distilling on a fraction of the data", "",
        "`python -m benchmarks.subsets`: the default preset's teacher (edge_pool, 18 epochs, "
        f"{t['params']:,} params) trained on all {N_TRAIN:,} CIFAR-10 training images (JPEG "
        f"copy); then the default student ({cfg['student_arch']}, at least 40 epochs and "
        f"{PRESETS['default'].min_steps:,} steps, batch "
        f"{cfg['batch_size']}, teacher cache {cfg['teacher_cache_views']} views and mirrors) "
        "distilled from it on the first N images of the seeded shuffle, and the same student "
        "from scratch on the same N images (same init and recipe). Top-1 of the Keras models "
        f"on the {first['dataset']['n_test']:,} test images. Machine: {m['cpu']}, {m['cores']} "
        f"cores; tensorflow {v.get('tensorflow')}.", "", *rows, ""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="CIFAR-10 as JPEG class folders "
                   "(train/, test/), e.g. ../shared/data/cifar10-jpeg.tar.gz unpacked")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.01])
    p.add_argument("--teacher", type=Path, help="a teacher.keras trained on all of the data "
                   "(default: train it first, with the default preset)")
    p.add_argument("--work", type=Path, default=Path("/tmp/edgekd-subsets"))
    a = p.parse_args(argv)
    text = document(run(a), a)
    return publish("subsets", text)


if __name__ == "__main__":
    sys.exit(main())
