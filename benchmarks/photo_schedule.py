"""The README's photo command, timed whole, under the preset's student
schedule and longer ones, on a few thousand unbalanced photos.

    python -m benchmarks.photo_schedule [--work /var/tmp/edgekd-unlabeled]

The photos: CIFAR-10's 5,000 labeled images (benchmarks.unlabeled's split)
cut to the size and shape of a user's photo folder: class k keeps
500 x 0.3^(k/9) of its images (500 down to 150, about 2,950 in all), and
1,000 test images (the first 100 of each class). The command: `make
edge-model IMAGE_SIZE=96` with the README's flags (an ImageNet MobileNet
teacher fine-tuned here, a student by --student-macs 10e6, --scratch), that
is distill, export and bench, each stage timed. A row per student
schedule (`--min-steps`: at 128 images a batch, 24 steps an epoch here) under
the teacher recipe before this one (every layer fine-tuned, at 128 px, peak
rate 3e-4; the second row takes the first's teacher.keras, so its teacher
minutes are the first's), then the command as it stands, its flags only.
Int8 TFLite top-1 from bench.json. The teacher alone under each recipe
(which layers fine-tune, the backbone's side, the peak rate).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.gap_levers import long_tail
from benchmarks.saved import MOBILENET_WEIGHTS, machine_line, publish
from benchmarks.stage import Stage, run_once
from benchmarks.unlabeled import (
    PRETRAINED_TEACHER,
    TEACHER_ONLY,
    _link,
    _run,
    int8_accuracy,
    teacher_file,
)
from distill.config import PRESETS

IMBALANCE = 0.3
TEST_PER_CLASS = 100
SCHEDULES = (6400, 1600)  # the first trains the teacher the other shares
# the teacher recipes (the table below): --teacher-fine-tune, --teacher-size, its peak rate
EARLIER = ("all", "128", "3e-4")  # the schedule rows' teacher
TEACHERS = {"top_128": ("top", "128", "3e-4"), "96": ("top", "96", "3e-4"),
            "all_96": ("all", "96", "1e-4")}
# records whose run shared the 2 cores with another job: their minutes are not comparable
BESIDE = {"photo_schedule_teacher_all_96", "photo_schedule_sd_teacher_all"}
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


def distill_once(data: Path, out: Path, *flags: str) -> Stage:
    """A default-preset distill run of `data` into `out` with `flags`, recorded once."""
    return run_once(out.parent / f"{out.name}_distill", "-m", "distill", "--data", str(data),
                    "--preset", "default", "--out", str(out), *flags, "--quiet")


def command(data: Path, out: Path, *flags: str) -> dict[str, Stage]:
    """The three stages of `make edge-model` with the README's flags and
    `flags` (each recorded once: a rerun reads them)."""
    return {
        "distill": distill_once(data, out, *README_FLAGS, *flags),
        "export": run_once(out.parent / f"{out.name}_export", "-m", "export", str(out)),
        "bench": run_once(out.parent / f"{out.name}_bench", "-m", "bench", str(out),
                          "--threads", "1,all"),
    }


def command_row(steps: str, out: Path, stages: dict[str, Stage], teacher_min: float) -> str:
    report = json.loads((out / "train_report.json").read_text())
    m = report["models"]
    teacher = 100 * m["teacher"]["accuracy"]
    student, alone = 100 * m["student"]["accuracy"], 100 * m["student_scratch"]["accuracy"]
    epochs = len(m["student"]["epochs"])
    minutes = {k: s.seconds / 60 for k, s in stages.items()}
    own = m["teacher"].get("trained", False)
    total = sum(minutes.values()) + (0 if own else teacher_min)
    int8 = 100 * int8_accuracy(out)  # bench.json of the command
    return (f"| {steps} | {epochs} | {teacher:.2f} % | {int8:.2f} % | {student:.2f} % | "
            f"{alone:.2f} % | {teacher - int8:.2f} | {student - alone:+.2f} | "
            f"{report['teacher_cache_seconds'] / 60:.1f} | "
            f"{m['student']['seconds_per_epoch'] * epochs / 60:.1f} | "
            f"{m['student_scratch']['seconds_per_epoch'] * epochs / 60:.1f} | "
            f"{minutes['distill']:.1f} | {minutes['export'] + minutes['bench']:.1f} | "
            f"{total:.1f}{'' if own else ' *'} |")


def teacher_minutes(out: Path) -> float:
    m = json.loads((out / "train_report.json").read_text())["models"]["teacher"]
    return sum(e.get("seconds", 0.0) for e in m["epochs"]) / 60


def _teacher_row(teacher: tuple[str, ...], out: Path, note: str = "") -> str:
    m = json.loads((out / "train_report.json").read_text())["models"]["teacher"]
    head = sum(e["seconds"] for e in m["epochs"][:HEAD_EPOCHS]) / 60
    whole = sum(e["seconds"] for e in m["epochs"][HEAD_EPOCHS:]) / 60
    which, side, rate = teacher
    mark = " †" if out.name in BESIDE else ""
    return (f"| {which}{note}{mark} | {side} px | {rate} | {100 * m['accuracy']:.2f} % | "
            f"{head:.1f} | {whole:.1f} | {head + whole:.1f} |")


def recipe(fine_tune: str, side: str, rate: str) -> tuple[str, ...]:
    return ("--teacher-fine-tune", fine_tune, "--teacher-size", side,
            "--teacher-fine-tune-lr", rate)


def teacher_only(data: Path, out: Path, *teacher: str) -> Stage:
    """A run for its teacher only (recipe flags `teacher`)."""
    flags = [f for f in README_FLAGS if f != "--scratch"]
    return distill_once(data, out, *flags, *TEACHER_ONLY, *teacher)


def sign_digits_rows(work: Path) -> list[str]:
    """The teacher on 186 labeled Sign Language Digits photos at 64 px (hands,
    unlike ImageNet): benchmarks.unlabeled's, under the earlier recipe, one
    under the default recipe and one with every layer at its rate (at 64 px
    all see 128)."""
    runs = {"earlier: all, 128 px, 3e-4": teacher_file(work, "sign_digits").parent}
    for label, name, flags in (("default: top, 128 px, 1e-4", "sd_teacher", ()),
                               ("all, 128 px, 1e-4", "sd_teacher_all", ("--teacher-fine-tune",
                                                                        "all"))):
        runs[label] = work / f"photo_schedule_{name}"
        _run(runs[label], "--data", str(work / "sign_digits_split" / "labeled"), "--image-size",
             "64", *PRETRAINED_TEACHER, *TEACHER_ONLY, *flags)
    rows = []
    for label, out in runs.items():
        m = json.loads((out / "train_report.json").read_text())["models"]["teacher"]
        seconds = float((out.parent / f"{out.name}.seconds").read_text())
        mark = " †" if out.name in BESIDE else ""
        rows.append(f"| {label}{mark} | {100 * m['accuracy']:.2f} % | {len(m['epochs'])} | "
                    f"{seconds / 60:.1f} |")
    return rows


def setup(argv, doc: str | None) -> tuple[Path, Path]:
    """(the work folder from the command line, the photos in it, made once)."""
    p = argparse.ArgumentParser(description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/var/tmp/edgekd-unlabeled"))
    work = p.parse_args(argv).work
    teacher_file(work, "cifar10")  # the split
    return work, photos(work)


# Every row's students in batches of 128, the default when this page was run
# (the default preset now trains them in batches of 32 on photo folders this
# small: photo_levers.md)
BATCH = ("--batch-size", "128")
EARLIER_STEPS = 3200  # the default's student steps then
EARLIER_DEFAULT = (*BATCH, "--min-steps", str(EARLIER_STEPS))  # the default then, as flags


def main(argv=None) -> int:
    work, data = setup(argv, __doc__)
    first = work / f"photo_schedule_{SCHEDULES[0]}"
    steps = ("--min-steps", str(SCHEDULES[0]), *BATCH)
    rows = [command_row(f"{SCHEDULES[0]:,}", first,
                        command(data, first, *steps, *recipe(*EARLIER)), 0.0)]
    teacher_min = teacher_minutes(first)
    for n in SCHEDULES[1:]:
        out = work / f"photo_schedule_{n}"
        stages = command(data, out, "--min-steps", str(n), *BATCH, "--teacher",
                         str(first / "teacher.keras"))
        rows.append(command_row(f"{n:,}", out, stages, teacher_min))
    default, cfg = work / "photo_schedule_default", PRESETS["default"]
    rows.append(command_row(f"{EARLIER_STEPS:,} (then the default)", default,
                            command(data, default, *EARLIER_DEFAULT),
                            0.0))
    teachers = [_teacher_row(EARLIER, first)]
    for name, teacher in TEACHERS.items():
        out = work / f"photo_schedule_teacher_{name}"
        teacher_only(data, out, *recipe(*teacher))
        teachers.append(_teacher_row(teacher, out))
    rate = f"{cfg.teacher_fine_tune_lr:.0e}".replace("e-0", "e-")  # 1e-04 -> 1e-4
    own = (cfg.teacher_fine_tune, README_FLAGS[1], rate)  # 96 px: its own side
    teachers.append(_teacher_row(own, default, " (the default)"))
    text = document(data, rows, teachers, teacher_min, sign_digits_rows(work))
    return publish("photo_schedule", text)


def document(data: Path, rows: list[str], teachers: list[str], teacher_min: float,
             hands: list[str]) -> str:
    n = sum(1 for _ in (data / "train").rglob("*.jpg"))
    return "\n".join([
        "# The photo command's student schedule, timed whole", "",
        "`python -m benchmarks.photo_schedule`: the README's photo command (`make edge-model "
        "IMAGE_SIZE=96` with `--teacher-arch mobilenet --teacher-weights "
        "mobilenet_1_0_224_tf_no_top.h5 --student-macs 10e6 --scratch`) "
        f"on {n:,} CIFAR-10 training images in 10 unbalanced classes ({int(500 * IMBALANCE)} to "
        f"500 each: a user's photo folder's size and shape) and {10 * TEST_PER_CLASS:,} test "
        "images, at 96 px: with `--min-steps N` and the earlier teacher recipe (every layer "
        "fine-tuned, upsampled to 128 px, peak rate 3e-4), then as it stands (its own teacher: "
        "top layers, 96 px, 1e-4; the students' 3,200 steps). Every student trained in "
        "batches of 128, the default then (now 32 on photo folders this small: "
        "photo_levers.md). Top-1: the teacher's float "
        "(Keras), the distilled student's int8 "
        "TFLite (bench) and float, and the float of the same student without the teacher "
        "(`--scratch`; not exported by the command). Minutes: the teacher cache, each "
        "student's training, the distill stage, export and bench, and the whole command (* "
        f"the teacher trained in the first row: {teacher_min:.1f} minutes, added). One seed "
        "per row. " + machine_line(), "",
        "| --min-steps | epochs | teacher | distilled int8 | distilled float | alone float | "
        "int8 behind teacher, pts | distillation (float), pts | cache min | student min | "
        "alone min | distill min | export + bench min | command min |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
        "The teacher's recipe: which layers its second phase fine-tunes (`--teacher-fine-tune`: "
        "every one, or the top ones, at 1/16 of its input side and coarser: MobileNet's blocks "
        "6 to 13), the backbone's side (`--teacher-size`) and that phase's peak rate "
        f"(`--teacher-fine-tune-lr`), the same {HEAD_EPOCHS} head and "
        f"{18 - HEAD_EPOCHS} fine-tuning epochs; float top-1 on the same test images:", "",
        "| --teacher-fine-tune | side | peak rate | teacher top-1 | head minutes | "
        "fine-tuning minutes | teacher minutes |", "|---|---:|---:|---:|---:|---:|---:|",
        *teachers, "", "† ran beside another job on the same 2 cores: its minutes are not "
        "comparable.", "",
        "The same recipes on photos unlike ImageNet's: 186 labeled Sign Language Digits photos "
        "(10 % of the set; benchmarks.unlabeled's split and, for the earlier recipe, its "
        "teacher) at 64 px, 206 held-out photos (one is 0.49 points), at least 300 steps "
        "(`--teacher-min-steps`; † as above):", "",
        "| recipe (fine-tuned layers, backbone side, peak rate) | teacher top-1 | epochs | "
        "run minutes |", "|---|---:|---:|---:|", *hands, ""])


if __name__ == "__main__":
    sys.exit(main())
