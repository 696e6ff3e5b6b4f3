"""The README's photo command, timed whole, under the preset's student
schedule and longer ones, on a few thousand unbalanced photos.

    python -m benchmarks.photo_schedule [--work /var/tmp/edgekd-unlabeled]

The photos: CIFAR-10's 5,000 labeled images (benchmarks.unlabeled's split)
cut to the size and shape of a user's photo folder: class k keeps
500 x 0.3^(k/9) of its images (500 down to 150, about 2,950 in all), and
1,000 test images (the first 100 of each class). The command: `make
edge-model IMAGE_SIZE=96` with the README's flags (an ImageNet MobileNet
teacher fine-tuned here, a student by --student-macs 10e6, --scratch), that
is distill, export and bench, each stage timed. One row per student schedule
(`--min-steps`: at 128 images a batch, 24 steps an epoch here). The first
row trains the teacher, every layer fine-tuned (`--teacher-fine-tune all`);
the others take its teacher.keras, so their teacher minutes are the first
row's. Int8 TFLite top-1 from bench.json. The teacher once more with
`--teacher-fine-tune top` (its second phase trains only the layers at 1/16 of
its input side and coarser), alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.gap_levers import long_tail
from benchmarks.saved import MOBILENET_WEIGHTS, machine_line, publish
from benchmarks.stage import Stage, run_once
from benchmarks.unlabeled import TEACHER_ONLY, _link, int8_accuracy, teacher_file

IMBALANCE = 0.3
TEST_PER_CLASS = 100
SCHEDULES = (6400, 1600)  # the first trains the teacher the other shares
ALL_LAYERS = ("--teacher-fine-tune", "all")  # the schedule rows' teacher (the table below)
HEAD_EPOCHS = 6  # of the preset's 18 teacher epochs (distill.pretrained.head_epochs)
README_FLAGS = ("--image-size", "96", "--teacher-arch", "mobilenet", "--teacher-weights",
                str(MOBILENET_WEIGHTS), "--student-macs", "10e6", "--scratch")


def photos(work: Path) -> Path:
    """work/photo_schedule_data/{train,test} (symlinks), made once."""
    out = work / "photo_schedule_data"
    if not (out / "test").is_dir():
        from distill import photos as folders
        labeled = work / "cifar10_split" / "labeled"
        long_tail(labeled, out, IMBALANCE, test=False)
        for c, fs in folders.class_files(labeled / "test").items():
            for f in fs[:TEST_PER_CLASS]:
                _link(f, out / "test" / c / f.name)
    return out


def command(data: Path, out: Path, steps: int, teacher: Path | None) -> dict[str, Stage]:
    """The three stages of `make edge-model` (each recorded once: a rerun reads them)."""
    given = ("--teacher", str(teacher)) if teacher else ()
    return {
        "distill": run_once(out.parent / f"{out.name}_distill", "-m", "distill", "--data",
                            str(data), "--preset", "default", "--out", str(out), *README_FLAGS,
                            "--min-steps", str(steps), *(given or ALL_LAYERS), "--quiet"),
        "export": run_once(out.parent / f"{out.name}_export", "-m", "export", str(out)),
        "bench": run_once(out.parent / f"{out.name}_bench", "-m", "bench", str(out),
                          "--threads", "1,all"),
    }


def _row(steps: int, out: Path, stages: dict[str, Stage], teacher_min: float) -> str:
    report = json.loads((out / "train_report.json").read_text())
    m = report["models"]
    teacher = 100 * m["teacher"]["accuracy"]
    student, alone = 100 * m["student"]["accuracy"], 100 * m["student_scratch"]["accuracy"]
    epochs = len(m["student"]["epochs"])
    minutes = {k: s.seconds / 60 for k, s in stages.items()}
    own = m["teacher"].get("trained", False)
    total = sum(minutes.values()) + (0 if own else teacher_min)
    int8 = 100 * int8_accuracy(out)  # bench.json of the command
    return (f"| {steps:,} | {epochs} | {teacher:.2f} % | {int8:.2f} % | {student:.2f} % | "
            f"{alone:.2f} % | {teacher - int8:.2f} | {student - alone:+.2f} | "
            f"{report['teacher_cache_seconds'] / 60:.1f} | "
            f"{m['student']['seconds_per_epoch'] * epochs / 60:.1f} | "
            f"{m['student_scratch']['seconds_per_epoch'] * epochs / 60:.1f} | "
            f"{minutes['distill']:.1f} | {minutes['export'] + minutes['bench']:.1f} | "
            f"{total:.1f}{'' if own else ' *'} |")


def _teacher_minutes(out: Path) -> float:
    m = json.loads((out / "train_report.json").read_text())["models"]["teacher"]
    return sum(e.get("seconds", 0.0) for e in m["epochs"]) / 60


def _teacher_row(which: str, out: Path) -> str:
    m = json.loads((out / "train_report.json").read_text())["models"]["teacher"]
    head = sum(e["seconds"] for e in m["epochs"][:HEAD_EPOCHS]) / 60
    whole = sum(e["seconds"] for e in m["epochs"][HEAD_EPOCHS:]) / 60
    return (f"| {which} | {100 * m['accuracy']:.2f} % | {head:.1f} | {whole:.1f} | "
            f"{head + whole:.1f} |")


def teacher_top(data: Path, out: Path) -> Stage:
    """A run for its teacher only, fine-tuned "top"."""
    flags = [f for f in README_FLAGS if f != "--scratch"]
    return run_once(out.parent / f"{out.name}_distill", "-m", "distill", "--data", str(data),
                    "--preset", "default", "--out", str(out), *flags, *TEACHER_ONLY,
                    "--teacher-fine-tune", "top", "--quiet")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/var/tmp/edgekd-unlabeled"))
    a = p.parse_args(argv)
    teacher_file(a.work, "cifar10")  # the split
    data = photos(a.work)
    first = a.work / f"photo_schedule_{SCHEDULES[0]}"
    rows = [_row(SCHEDULES[0], first, command(data, first, SCHEDULES[0], None), 0.0)]
    teacher_min = _teacher_minutes(first)
    top = a.work / "photo_schedule_teacher_top"
    teacher_top(data, top)
    for steps in SCHEDULES[1:]:
        out = a.work / f"photo_schedule_{steps}"
        rows.append(_row(steps, out, command(data, out, steps, first / "teacher.keras"),
                         teacher_min))
    teachers = [_teacher_row("all", first), _teacher_row("top (the default)", top)]
    n = sum(1 for _ in (data / "train").rglob("*.jpg"))
    text = "\n".join([
        "# The photo command's student schedule, timed whole", "",
        "`python -m benchmarks.photo_schedule`: the README's photo command (`make edge-model "
        "IMAGE_SIZE=96` with `--teacher-arch mobilenet --teacher-weights "
        "mobilenet_1_0_224_tf_no_top.h5 --student-macs 10e6 --scratch`) with `--min-steps N` "
        "and a teacher fine-tuned on every layer (`--teacher-fine-tune all`), "
        f"on {n:,} CIFAR-10 training images in 10 unbalanced classes ({int(500 * IMBALANCE)} to "
        f"500 each: a user's photo folder's size and shape) and {10 * TEST_PER_CLASS:,} test "
        "images, at 96 px. Top-1: the teacher's float (Keras), the distilled student's int8 "
        "TFLite (bench) and float, and the float of the same student without the teacher "
        "(`--scratch`; not exported by the command). Minutes: the teacher cache, each "
        "student's training, the distill stage, export and bench, and the whole command (* "
        f"the teacher trained in the first row: {teacher_min:.1f} minutes, added). One seed "
        "per row. " + machine_line(), "",
        "| --min-steps | epochs | teacher | distilled int8 | distilled float | alone float | "
        "int8 behind teacher, pts | distillation (float), pts | cache min | student min | "
        "alone min | distill min | export + bench min | command min |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
        "The teacher's second phase (`--teacher-fine-tune`): every layer, or the top ones "
        "(at 1/16 of its 128 px input and coarser: MobileNet's blocks 6 to 13), the same "
        f"{HEAD_EPOCHS} head and {18 - HEAD_EPOCHS} fine-tuning epochs; float top-1 on the "
        "same test images:", "",
        "| --teacher-fine-tune | teacher top-1 | head minutes | fine-tuning minutes | teacher "
        "minutes |", "|---|---:|---:|---:|---:|", *teachers, ""])
    return publish("photo_schedule", text)


if __name__ == "__main__":
    sys.exit(main())
