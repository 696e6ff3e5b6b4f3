"""The soft losses against each other on a user's small photo set: Sign
Language Digits (../shared) at 64 px with 186 labeled training photos (10 %,
where the full set is saturated), one fine-tuned MobileNet teacher shared by
every student, the default preset's recipe, a student by --student-macs 10e6.

    python -m benchmarks.loss_variants [--work /var/tmp/edgekd-losses]

One run per loss, one seed: a first look for the recipe search, not a verdict
(the spread between seeds is not measured here). Float top-1 of the student
on the 206 held-out photos, from train_report.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

from benchmarks.saved import MOBILENET_WEIGHTS, SHARED, publish
from benchmarks.stage import run_stage
from distill.config import LOSSES
from edgekd.environment import machine, versions

COMMON = ("--image-size", "64", "--student-macs", "10e6", "--train-subset", "186", "--quiet")


def _run(out: Path, *args: str) -> dict:
    """A distill run, or its report when it finished before."""
    if not (out / "train_report.json").is_file():
        with open(out.parent / f"{out.name}.log", "w") as log:
            stage = run_stage("-m", "distill", "--out", str(out), *COMMON, *args, log=log)
        (out.parent / f"{out.name}.seconds").write_text(str(stage.seconds))
    report = json.loads((out / "train_report.json").read_text())
    report["seconds"] = float((out.parent / f"{out.name}.seconds").read_text())
    return report


def unpack(work: Path) -> Path:
    """The photo set, unpacked into `work` once."""
    data = work / "sign-digits"
    if not data.is_dir():
        work.mkdir(parents=True, exist_ok=True)
        with tarfile.open(SHARED / "sign-digits.tar.gz") as tar:
            tar.extractall(work, filter="data")
    return data


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/var/tmp/edgekd-losses"))
    a = p.parse_args(argv)
    data = unpack(a.work)
    base = _run(a.work / "teacher", "--data", str(data), "--teacher-arch", "mobilenet",
                "--teacher-weights", str(MOBILENET_WEIGHTS))
    teacher = a.work / "teacher" / "teacher.keras"
    rows = []
    for loss in LOSSES:
        r = _run(a.work / f"student_{loss}", "--data", str(data), "--teacher", str(teacher),
                 "--loss", loss)
        s = r["models"]["student"]
        rows.append(f"| {loss} | {s['name']} | {100 * s['accuracy']:.1f} % | "
                    f"{r['seconds'] / 60:.1f} min |")
    t = base["models"]["teacher"]
    m, v = machine(), versions()
    text = "\n".join([
        "# Soft losses on Sign Language Digits, 10 % of the labels", "",
        "`python -m benchmarks.loss_variants`: 186 labeled training photos at 64 px, 206 held "
        f"out; teacher: ImageNet MobileNet fine-tuned on the 186 ({100 * t['accuracy']:.1f} %), "
        "shared by every student; default preset otherwise (`--student-macs 10e6`). One seed per "
        "loss: differences under about two points are within what a seed moves. "
        f"Machine: {m['cpu']}, {m['cores']} cores; tensorflow {v.get('tensorflow')}.", "",
        "| --loss | student | student top-1 (float) | distill time |", "|---|---|---:|---:|",
        *rows, ""])
    return publish("loss_variants", text)


if __name__ == "__main__":
    sys.exit(main())
