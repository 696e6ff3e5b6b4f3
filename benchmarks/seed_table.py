"""The tutorial reproduction: `seed` preset -> export -> bench, then
benchmarks/seed_table.md with the machine and versions beside the numbers.

    python -m benchmarks.seed_table --data /tmp/cifar10-jpeg --out artifacts-seed
    python -m benchmarks.seed_table --data ... --quick   # CI: 1 epoch on a subset

--skip-distill reuses an existing distilled folder (e.g. one started earlier in
the background)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = {"teacher": {"params": 1_515_018, "accuracy": 0.688, "seconds_per_epoch": 12},
            "student": {"params": 313_354, "accuracy": 0.711, "seconds_per_epoch": 9}}


def _stage(*args: str) -> None:
    print("+ python -m", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", *args], cwd=ROOT, check=True)


def table(train: dict, bench: dict | None) -> str:
    """Markdown: tutorial vs measured, per model."""
    m = train["models"]
    lat = {}
    if bench:
        for r in bench["artifacts"]:
            lat[(r["role"], r["format"])] = r["latency"]["1"]["p50_ms"]
    rows = ["| model | params | MACs | tutorial top-1 | measured top-1 | tutorial s/epoch "
            "| measured s/epoch | TFLite fp32 p50 ms | TFLite int8 p50 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for role, label in (("teacher", "teacher"), ("student", "distilled student"),
                        ("student_scratch", "student from scratch")):
        if role not in m:
            continue
        t = TUTORIAL.get(role, {})
        f32, i8 = lat.get((role, "tflite_fp32")), lat.get((role, "tflite_int8"))
        rows.append(
            f"| {label} | {m[role]['params']:,} | {m[role]['macs'] / 1e6:.1f} M "
            f"| {'%.1f %%' % (100 * t['accuracy']) if t else '-'} "
            f"| {100 * m[role]['accuracy']:.1f} % "
            f"| {'%s (GPU)' % t['seconds_per_epoch'] if t else '-'} | {m[role]['seconds_per_epoch']} "
            f"| {'%.3f' % f32 if f32 else '-'} | {'%.3f' % i8 if i8 else '-'} |")
    return "\n".join(rows)


def document(train: dict, bench: dict | None, quick: bool) -> str:
    mach, v, cfg = train["machine"], train["versions"], train["config"]
    gain = train.get("distillation_gain")
    return "\n".join([
        "# Seed preset: the Keras knowledge-distillation tutorial, reproduced", "",
        f"Data: {train['dataset']['name']} ({train['dataset']['n_train']} training, "
        f"{train['dataset']['n_test']} test images){' - QUICK CI VERSION' if quick else ''}. "
        f"Config: {cfg['epochs']} distillation epochs, teacher {cfg['teacher_epochs']}, "
        f"alpha {cfg['alpha']}, T {cfg['temperature']}, Adam lr {cfg['learning_rate']}, "
        f"batch {cfg['batch_size']}, seed {cfg['seed']}.",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['os']}. Versions: "
        f"tensorflow {v.get('tensorflow')}, tf-keras {v.get('tf-keras')}, "
        f"ai-edge-litert {v.get('ai-edge-litert')}, python {v.get('python')}.", "",
        table(train, bench), "",
        f"Distillation gain over the same student trained from scratch: "
        f"{'%+.2f points' % (100 * gain) if gain is not None else 'n/a'}. "
        f"Total distill wall time {train['total_seconds'] / 60:.1f} min. "
        "Latency: batch 1, 1 thread, XNNPACK, p50.", ""])


def run_stages(a, out: str) -> None:
    """distill (unless skipped) -> export -> bench into `out`."""
    if not a.skip_distill:
        extra = ["--epochs", "1", "--teacher-epochs", "1", "--train-subset", "2000"] if a.quick else []
        _stage("distill", "--data", a.data, "--preset", "seed", "--out", out, "--quiet", *extra)
    # The seed preset trains the scratch baseline; export leaves it out unless asked,
    # and the table sets its int8 accuracy and latency beside the distilled student's.
    roles = ("--roles", "teacher,student,student_scratch")
    if a.quick:  # CI: the two formats the table quotes, short timings
        _stage("export", out, "--formats", "tflite_fp32,tflite_int8", *roles)
        _stage("bench", out, "--threads", "1", "--no-progress", "--runs", "20", "--seconds", "0.2")
    else:
        _stage("export", out, *roles)
        _stage("bench", out, "--no-progress")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", help="the data source (not needed with --table-only)")
    p.add_argument("--out", default="artifacts-seed")
    p.add_argument("--quick", action="store_true", help="1 epoch on 2,000 images (CI)")
    p.add_argument("--skip-distill", action="store_true")
    p.add_argument("--table-only", action="store_true",
                   help="only write the table from an already benched --out folder")
    p.add_argument("--table", help="also write the table to this file (default: print it; "
                   "make report publishes saved runs in docs/)")
    a = p.parse_args()
    out = str(Path(a.out).resolve())
    if not a.table_only:
        if not a.data:
            p.error("--data is required (unless --table-only)")
        run_stages(a, out)
    train = json.loads((Path(out) / "train_report.json").read_text())
    bench = json.loads((Path(out) / "bench.json").read_text())
    text = document(train, bench, a.quick)
    if a.table:
        Path(a.table).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
