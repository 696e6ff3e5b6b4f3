"""Pretrained students against edge_res on a user's small photo set: Sign
Language Digits (../shared) at 64 px with 186 labeled training photos (10 %,
where the full set is saturated), the labeled split and teacher of
benchmarks.unlabeled (ImageNet MobileNet fine-tuned on the 186), students
within 10M MACs, the default preset's recipe.

    python -m benchmarks.pretrained_students [--work /var/tmp/edgekd-unlabeled]

Each student is trained twice from the same start, with the teacher
(distilled) and alone (`--scratch`): what distillation adds over what a user
would do anyway. The edge_res row is benchmarks.unlabeled's labeled-only run.
One seed per row; float top-1 on the 206 held-out photos, from
train_report.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.saved import SHARED, machine_line, publish
from benchmarks.unlabeled import _run, labeled_run, teacher_file

WEIGHTS = SHARED / "pretrained"
MOBILENET = ("--student-arch", "mobilenet_v1", "--student-weights",
             str(WEIGHTS / "mobilenet_2_5_128_tf_no_top.h5"))
VARIANTS = {  # name -> (what the row says, the distill flags)
    "edge_res": ("edge_res, random init (the default bound: 10M MACs)", ()),
    "mobilenet": ("mobilenet_v1, ImageNet (Adam 3e-4, one-cycle: the fine-tune recipe)", MOBILENET),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/var/tmp/edgekd-unlabeled"))
    p.add_argument("--only", nargs="*", default=list(VARIANTS), help="variants to run")
    a = p.parse_args(argv)
    base = labeled_run(a.work, "sign_digits")  # teacher and edge_res, distilled and alone
    data = a.work / "sign_digits_split" / "labeled"
    teacher = teacher_file(a.work, "sign_digits")
    t = base["models"]["teacher"]
    teacher_seconds = float((teacher.parent.parent / f"{teacher.parent.name}.seconds").read_text())
    rows = []
    for name in a.only:
        what, flags = VARIANTS[name]
        r = base if name == "edge_res" else _run(
            a.work / f"pretrained_{name}", "--data", str(data), "--teacher", str(teacher),
            "--image-size", "64", "--scratch", *flags)
        s, alone = r["models"]["student"], r["models"]["student_scratch"]
        minutes = (r["seconds"] - (teacher_seconds if r is base else 0)) / 60
        rows.append(f"| {what} | {s['name']} | {s['macs'] / 1e6:.2f}M | "
                    f"{100 * s['accuracy']:.1f} % | {100 * alone['accuracy']:.1f} % | "
                    f"{100 * (t['accuracy'] - s['accuracy']):.1f} | {minutes:.1f} min |")
    text = "\n".join([
        "# Pretrained students on Sign Language Digits, 10 % of the labels", "",
        "`python -m benchmarks.pretrained_students`: 186 labeled training photos at 64 px, 206 "
        f"held out; teacher: ImageNet MobileNet fine-tuned on the 186 ({100 * t['accuracy']:.1f} "
        f"%, trained in {teacher_seconds / 60:.0f} min), shared by every student; default preset "
        "otherwise. Distilled and alone: the same "
        "student, start and recipe, with and without the teacher. One seed per row. "
        + machine_line(), "",
        "| student | picked | MACs | distilled (float) | alone (float) | behind teacher, pts "
        "| student minutes (both) |", "|---|---|---:|---:|---:|---:|---:|", *rows, ""])
    return publish("pretrained_students", text)


if __name__ == "__main__":
    sys.exit(main())
