"""Peak memory of the README's photo command: distill with a pretrained
MobileNet teacher (../shared's ImageNet weights, fine-tuned at 128 px) and a
student by --student-macs 10e6, at 96 and 128 px, on benchmarks.quick_photos'
3,000 generated photos of 200-500 px.

    python -m benchmarks.photo_command [--work /var/tmp/edgekd-quick]

Memory is what is measured, so the teacher trains 2 epochs (its head's and
one of the whole net: both phases at their full batch) and the student 1; the
peak of a longer run is the same phases repeated. Accuracy on generated
photos after so few epochs means nothing and is not shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.photo_memory import generate
from benchmarks.saved import MOBILENET_WEIGHTS, publish
from benchmarks.stage import Stage, run_once
from edgekd.environment import machine, versions

SIZES = (96, 128)
GOAL_GIB = 4.0


def _distill(photos: Path, out: Path, size: int) -> Stage:
    """The measured run, or its record when it finished before."""
    return run_once(out, "-m", "distill", "--data", str(photos), "--image-size", str(size),
                    "--teacher-arch", "mobilenet", "--teacher-weights", str(MOBILENET_WEIGHTS),
                    "--student-macs", "10e6", "--teacher-epochs", "2", "--epochs", "1",
                    "--out", str(out), "--quiet")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/var/tmp/edgekd-quick"))
    a = p.parse_args(argv)
    photos = a.work / "photos_3000"
    generate(photos, 3000, (200, 500))
    rows = []
    for size in SIZES:
        out = a.work / f"photo_cmd_{size}"
        stage = _distill(photos, out, size)
        report = json.loads((out / "train_report.json").read_text())
        student = report["models"]["student"]
        rows.append(f"| {size} px | {report['dataset']['n_train']:,} | {student['name']}, "
                    f"{student['macs'] / 1e6:.2f}M MACs | {stage.seconds / 60:.1f} min | "
                    f"{stage.peak_rss_mb / 1024:.2f} GiB | "
                    f"{'yes' if stage.peak_rss_mb / 1024 <= GOAL_GIB else 'no'} |")
    m, v = machine(), versions()
    text = "\n".join([
        "# Memory of the README's photo command", "",
        "`python -m benchmarks.photo_command`: `python -m distill --data <3,000 photos> "
        "--image-size N --teacher-arch mobilenet --teacher-weights "
        "mobilenet_1_0_224_tf_no_top.h5 --student-macs 10e6`, 2 teacher epochs (head, then the "
        "whole net, fine-tuned at 128 px) and 1 student epoch: the phases of a full run at their "
        "full batch, so the same peak. Peak RSS of the distill process. Generated JPEG photos, "
        f"200-500 px, 10 classes. Machine: {m['cpu']}, {m['cores']} cores; tensorflow "
        f"{v.get('tensorflow')}.", "",
        "| training size | training images | student | distill wall time | peak RSS "
        f"| within {GOAL_GIB:g} GiB |",
        "|---|---:|---|---:|---:|---|", *rows, ""])
    return publish("photo_command", text)


if __name__ == "__main__":
    sys.exit(main())
