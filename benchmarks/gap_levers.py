"""Levers against the teacher-student gap, where it is widest: a strong
teacher and few photos to learn from it on.

    python -m benchmarks.gap_levers [--work /var/tmp/edgekd-unlabeled]

CIFAR-10 with 5,000 labels (benchmarks.unlabeled's split: 500 per class, the
10,000 test images), the teacher ImageNet MobileNet fine-tuned on them (83 %,
benchmarks.unlabeled's run 4, shared), the default preset's student on the
5,000 alone: the student ends 13 points under its teacher, like the README's
photo command on a real photo set (3,068 photos: 12 points), so what closes
this gap is what the photo command needs. Every row caches 5 views and their
mirrors per image, as run 4's labeled-only row does (its baseline here).

Levers: a longer schedule (Beyer et al. 2022: distillation is patient; the
same schedule with the teacher's term off tells whether the gain is the
teacher's or the schedule's), and
blended cached copies (`--teacher-cache-mix`: mixup of two images with the
teacher's logits on the blend: their function matching, on the cache). Float
top-1 on the test images, one seed per row.

Class sampling (`--class-sampling`) on an unbalanced folder: the 5,000 cut
to CIFAR-10-LT's shape (Cui et al. 2019: class k keeps 500 x 0.1^(k/9),
500 down to 50, 2,044 images), the same teacher (it saw every class alike,
as a pretrained teacher knows a photo folder's small classes better than
their counts), the balanced test set. Int8 TFLite top-1, per class too, so
that the table also gives the top-1 expected on a test set as unbalanced as
the training set (per-class top-1 weighted by the training counts).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.saved import machine_line, publish
from benchmarks.unlabeled import (
    MOBILENET,
    PRETRAINED,
    TEACHER_ONLY,
    _link,
    _run,
    int8_accuracy,
    pct,
    teacher_file,
)

NAME = "cifar10"
# (folder under --work, what it changes, its flags beyond the baseline's)
LEVERS = (
    ("cifar10_mobilenet_labeled", "baseline: the default preset, 40 epochs", ()),
    ("levers_e80", "2x the schedule: 80 epochs", ("--epochs", "80")),
    ("levers_e160", "4x the schedule: 160 epochs", ("--epochs", "160")),
    ("levers_e160_ce_only", "4x the schedule without the teacher's term (hard labels only)",
     ("--epochs", "160", "--alpha", "1.0")),
    ("levers_mix10", "10 blended copies per image, 40 epochs", ("--teacher-cache-mix", "10")),
)


IMBALANCE = 0.1  # the smallest class's count over the largest's
SAMPLING = ("uniform", "sqrt", "balanced")


def long_tail(labeled: Path, out: Path, imbalance: float = IMBALANCE,
              test: bool = True) -> dict[str, int]:
    """out/{train,test} as symlinks: the train classes cut to 500 x imbalance^(k/9)
    (their first files, in sorted class order), every test image (unless not
    `test`); -> counts."""
    from distill import photos
    files = photos.class_files(labeled / "train")
    counts = {}
    for k, (c, fs) in enumerate(files.items()):
        counts[c] = max(1, round(len(fs) * imbalance ** (k / (len(files) - 1))))
        for f in fs[:counts[c]]:
            _link(f, out / "train" / c / f.name)
    for c, fs in photos.class_files(labeled / "test").items() if test else ():
        for f in fs:
            _link(f, out / "test" / c / f.name)
    return counts


def _sampling_row(work: Path, given: tuple, counts: dict[str, int], sampling: str) -> str:
    out = work / f"levers_lt_{sampling}"
    r = _run(out, *given, "--class-sampling", sampling)
    int8 = int8_accuracy(out)
    bench = json.loads((out / "bench.json").read_text())
    per = next(a["per_class_accuracy"] for a in bench["artifacts"]
               if a["name"] == "student_tflite_int8")
    n = np.array(list(counts.values()), float)
    tail = 100 * float(np.mean(per[-3:]))  # the 3 smallest classes
    return (f"| {sampling} | {pct(r['models']['student'])} | {100 * int8:.2f} % | "
            f"{100 * float(np.dot(per, n) / n.sum()):.2f} % | {tail:.1f} % | "
            f"{r['seconds'] / 60:.1f} |")


def _row(base: dict, teacher: dict, what: str, flags: tuple, r: dict) -> str:
    s = r["models"]["student"]
    gain = 100 * (s["accuracy"] - base["models"]["student"]["accuracy"])
    behind = 100 * (teacher["accuracy"] - s["accuracy"])
    shown = " ".join(flags) or "-"
    return (f"| {what} | `{shown}` | {pct(s)} | {gain:+.2f} | {behind:.2f} | "
            f"{r['teacher_cache_copies']} | {r['teacher_cache_seconds'] / 60:.1f} | "
            f"{len(s['epochs'])} | {r['seconds'] / 60:.1f} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/var/tmp/edgekd-unlabeled"))
    a = p.parse_args(argv)
    teacher_file(a.work, NAME)  # the split
    data = ("--data", str(a.work / f"{NAME}_split" / "labeled"))
    tdir = a.work / f"{NAME}_teacher_mobilenet"
    trained = _run(tdir, *data, *MOBILENET, *PRETRAINED[NAME][0], *TEACHER_ONLY)
    given = (*data, "--teacher", str(tdir / "teacher.keras"), *PRETRAINED[NAME][2])
    lt = a.work / f"{NAME}_lt"
    counts = long_tail(a.work / f"{NAME}_split" / "labeled", lt)
    lt_given = ("--data", str(lt), *given[2:])
    sampled = [_sampling_row(a.work, lt_given, counts, s) for s in SAMPLING]
    runs = [(what, flags, _run(a.work / folder, *given, *flags)) for folder, what, flags in LEVERS]
    teacher = trained["models"]["teacher"]
    base = runs[0][2]
    text = "\n".join([
        "# Levers against the teacher-student gap", "",
        "`python -m benchmarks.gap_levers`: CIFAR-10, 5,000 labeled training images (500 per "
        f"class), the 10,000 test images; teacher ImageNet MobileNet fine-tuned on the 5,000 "
        f"({pct(teacher)}, {trained['seconds'] / 60:.0f} minutes, not counted below); the "
        "default preset's student (edge_res, 9.8M MACs) distilled on the 5,000 with 5 cached "
        "views and their mirrors per image (40 steps an epoch: `--epochs 160` trains as long as "
        "`--min-steps 6400`). Blended copies (`--teacher-cache-mix M`): M more "
        "cached copies of each image, each mixed with a random other image (lambda uniform in "
        "[0, 1]), with the teacher's logits on the mix and no hard label. Float top-1, one seed "
        "per row. " + machine_line(), "",
        "| lever | flags | student top-1 | vs baseline, pts | behind teacher, pts | cached "
        "copies per image | cache minutes | epochs | minutes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        *(_row(base, teacher, what, flags, r) for what, flags, r in runs), "",
        f"Class sampling on the 5,000 cut to CIFAR-10-LT's shape ({sum(counts.values()):,} "
        f"images, {max(counts.values())} down to {min(counts.values())} per class), the same "
        "teacher and recipe; top-1 on the balanced test set, float and int8 TFLite, then the "
        "int8 top-1 expected on a test set with the training counts, and the int8 top-1 of "
        "the 3 smallest classes:", "",
        "| --class-sampling | student top-1 (float) | int8 | int8, unbalanced test | int8, 3 "
        "smallest classes | minutes |", "|---|---:|---:|---:|---:|---:|", *sampled, ""])
    return publish("gap_levers", text)


if __name__ == "__main__":
    sys.exit(main())
