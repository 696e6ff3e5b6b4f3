"""Issue 6's table from a benched `distill --qat --prune-sparsity` run:
float student, post-training int8, QAT int8, pruned, pruned+QAT: accuracy,
size, gzip size, p50 latency (1 thread), recorded in benchmarks/results/optimize_table/table.md
(published by make report).

    python -m benchmarks.optimize_table artifacts-opt"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.saved import table_path

ROOT = Path(__file__).resolve().parent.parent
ROWS = [("float distilled student", "student_tflite_fp32"),
        ("post-training int8", "student_tflite_int8"),
        ("post-training int8 (ONNX)", "student_onnx_int8"),
        ("QAT int8", "student_qat_tflite_qat"),
        ("QAT int8 (ONNX)", "student_qat_onnx_qat"),
        ("50 %-pruned, float", "student_pruned_tflite_fp32"),
        ("50 %-pruned, post-training int8", "student_pruned_tflite_int8"),
        ("pruned + QAT int8", "student_pruned_qat_tflite_qat")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("folder", type=Path)
    p.add_argument("--out", type=Path, default=table_path("optimize_table"))
    a = p.parse_args()
    train = json.loads((a.folder / "train_report.json").read_text())
    bench = json.loads((a.folder / "bench.json").read_text())
    rows = {r["name"]: r for r in bench["artifacts"]}
    float_acc = rows["student_tflite_fp32"]["accuracy"]
    t = bench["summary"]["threads"][0]
    cfg, m = train["config"], bench["machine"]
    lines = ["# Quantization-aware distillation and pruning: seed student, CIFAR-10 (JPEG copy)", "",
             f"Teacher: the seed run's (5 epochs, {100 * train['models']['teacher']['accuracy']:.2f} %). "
             f"Students: {cfg['train_subset'] or 'all'} training images, {cfg['epochs']} distillation "
             f"epochs, then {cfg['qat_epochs']} QAT epoch(s) at lr "
             f"{cfg['qat_learning_rate'] or cfg['learning_rate'] / 10:g}; "
             f"pruning to {cfg['prune_sparsity']} (polynomial decay). Accuracy on all "
             f"{bench['dataset'].get('n_eval')} test images; p50 at batch 1, {t} thread(s), on "
             f"{m['cpu']} ({m['cores']} cores). Command: `python -m distill --data DIR --preset seed "
             f"--teacher seed/teacher.keras --train-subset {cfg['train_subset']} --epochs {cfg['epochs']} "
             f"--qat-epochs {cfg['qat_epochs']} --prune-sparsity {cfg['prune_sparsity']} --no-scratch`, "
             "then export and bench.", "",
             "| variant | artifact | top-1 % | Δ vs float | size KB | gzip KB | p50 ms | kernel sparsity |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for label, name in ROWS:
        if name not in rows:
            continue
        r = rows[name]
        sp = train["models"][r["role"]]["sparsity"]
        lines.append(f"| {label} | {name} | {100 * r['accuracy']:.2f} | "
                     f"{100 * (r['accuracy'] - float_acc):+.2f} | {r['bytes'] / 1024:.0f} | "
                     f"{r['gzip_bytes'] / 1024:.0f} | {r['latency'][t]['p50_ms']:.3f} | "
                     f"{', '.join(f'{v:.2f}' for v in sp.values())} |")
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
