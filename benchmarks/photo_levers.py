"""The photo command's student under one teacher: the batch, the soft loss,
the schedule, the teacher cache and a pretrained start, on a few thousand
unbalanced photos.

    python -m benchmarks.photo_levers [--work /var/tmp/edgekd-unlabeled]

The photos are benchmarks.photo_schedule's (2,945 CIFAR-10 training images in
10 unbalanced classes, 1,000 test images, at 96 px). One teacher, trained
once by the README's photo command's own recipe (a teacher-only run), is
given to every row with `--teacher`, so the rows differ only in the
student's flags, each on top of the default as it was when the rows began
(3,200 steps in batches of 128): the distillation loss (`--loss`: kl, or kl
on logits standardized per example, Sun et al. 2024; `--temperature`,
`--alpha`), the student schedule (`--min-steps`), the batch at the same
images seen (`--batch-size B --min-steps 409600/B`), the cached copies of
each image (`--teacher-cache-views`, and `--teacher-cache-mix`: copies
blended with another image, the teacher's logits on the blend), and last
the pretrained MobileNet v1 student under the default as it stands. The
first and last rows also train their student alone (`--scratch`), the
reference for what distillation adds. Int8 TFLite top-1 from a student-only
export and bench (unlabeled.int8_accuracy); minutes of the teacher cache
and of the student's training, from train_report.json. Some rows on 186
labeled Sign Language Digits photos at 64 px (10 % of the set,
benchmarks.unlabeled's split: hands, unlike ImageNet's photos), from a
teacher trained there by the same default recipe. Then the README's photo
command, whole, on the same machine: under the earlier default and as it
stands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.photo_schedule import (
    EARLIER_DEFAULT,
    README_FLAGS,
    command,
    command_row,
    distill_once,
    setup,
    teacher_minutes,
    teacher_only,
)
from benchmarks.pretrained_students import MOBILENET
from benchmarks.saved import machine_line, publish
from benchmarks.unlabeled import PRETRAINED_TEACHER, _source, int8_accuracy, split
from distill.config import PRESETS

# name -> student flags; the first is the default preset as it stands
ROWS = {
    "kl": ("--scratch",),
    "kl_std": ("--loss", "kl-std"),
    "kl_6400": ("--min-steps", "6400"),
    "views_20": ("--teacher-cache-views", "20"),
    "mix_10": ("--teacher-cache-mix", "10"),
    "t1_a0": ("--temperature", "1", "--alpha", "0"),
    "t2": ("--temperature", "2"),
    "batch_64": ("--batch-size", "64", "--min-steps", "6400"),
    "batch_32": ("--batch-size", "32", "--min-steps", "12800"),
    "batch_16": ("--batch-size", "16", "--min-steps", "25600"),
}
SD_ROWS = ("kl", "kl_std", "batch_64", "batch_32")  # those run on Sign Language Digits too
PRETRAINED = ("--scratch", *MOBILENET)  # last: it trains two students of the slower family

SD_SIZE = ("--image-size", "64")  # Sign Language Digits' photos are 100 px


def row(out: Path, data: Path, teacher: Path, flags: tuple[str, ...],
        base: tuple[str, ...]) -> str:
    distill_once(data, out, *base, "--teacher", str(teacher), *flags)
    report = json.loads((out / "train_report.json").read_text())
    m = report["models"]
    student = m["student"]
    epochs = len(student["epochs"])
    alone = m.get("student_scratch")
    alone_text = f"{100 * alone['accuracy']:.2f} %" if alone else "-"
    gain = f"{100 * (student['accuracy'] - alone['accuracy']):+.2f}" if alone else "-"
    # kept when it fails parity, so the row shows how far it fell (marked)
    int8 = 100 * int8_accuracy(out, "--allow-parity-failures")
    mark = "" if _parity(out)["passed"] else " ‡"
    teacher_acc = 100 * m["teacher"]["accuracy"]
    shown = " ".join(Path(f).name for f in flags if f != "--scratch") or "the earlier default"
    cfg = report["config"]
    batch = cfg.get("student_batch_size") or cfg["batch_size"]
    return (f"| {shown} | {student['name']}, {student['macs'] / 1e6:.2f}M MACs | "
            f"{cfg['min_steps']:,} | {batch} | "
            f"{epochs:,} | {report['teacher_cache_copies']} | "
            f"{teacher_acc:.2f} % | {int8:.2f} %{mark} | {100 * student['accuracy']:.2f} % | "
            f"{alone_text} | {teacher_acc - int8:.2f} | {gain} | "
            f"{report['teacher_cache_seconds'] / 60:.1f} | "
            f"{student['seconds_per_epoch'] * epochs / 60:.1f} |")


def main(argv=None) -> int:
    work, data = setup(argv, __doc__)
    trained = work / "photo_levers_teacher"
    teacher_only(data, trained)
    readme = tuple(f for f in README_FLAGS if f != "--scratch")  # rows add it where they train alone
    # every row but the pretrained one starts from the default when the rows
    # began (EARLIER_DEFAULT), its own flags after: the last of a flag given twice wins
    rows = [row(work / f"photo_levers_{name}", data, trained / "teacher.keras", flags,
                (*readme, *EARLIER_DEFAULT)) for name, flags in ROWS.items()]
    out = work / "photo_levers_command"  # the README's photo command, whole, on this machine
    whole = [command_row("3,200 of 128 (the earlier default)", out,
                         command(data, out, *EARLIER_DEFAULT), 0.0)]
    out, cfg = work / "photo_levers_command_small", PRESETS["default"]
    whole.append(command_row(f"{cfg.min_steps:,} of {cfg.small_data_batch_size} (default)", out,
                             command(data, out), 0.0))
    source, has_test = _source(work, "sign_digits")
    split(source, work / "sign_digits_split", 186, has_test)
    hands = work / "sign_digits_split" / "labeled"
    hands_teacher = work / "photo_levers_sd_teacher"
    teacher_only(hands, hands_teacher, *SD_SIZE)
    hands_base = (*SD_SIZE, *PRETRAINED_TEACHER, "--student-macs", "10e6", *EARLIER_DEFAULT)
    sd = [row(work / f"photo_levers_sd_{name}", hands, hands_teacher / "teacher.keras", flags,
              hands_base) for name, flags in ROWS.items() if name in SD_ROWS]
    rows.append(row(work / "photo_levers_mobilenet", data, trained / "teacher.keras", PRETRAINED,
                    readme))
    return publish("photo_levers", document(data, trained, rows, hands_teacher, sd, whole,
                                            work / "photo_levers_mobilenet"))


def _parity(out: Path) -> dict:
    """The student's int8 TFLite parity record (manifest.json)."""
    manifest = json.loads((out / "manifest.json").read_text())
    return next(a["parity"] for a in manifest["artifacts"] if a["name"] == "student_tflite_int8")


def _teacher(trained: Path) -> tuple[float, float]:
    """(top-1 in %, minutes) of a teacher-only run's teacher."""
    m = json.loads((trained / "train_report.json").read_text())["models"]["teacher"]
    return 100 * m["accuracy"], teacher_minutes(trained)


HEADER = ("| student flags | student | --min-steps | batch | epochs | cached copies per image | teacher | "
          "distilled int8 | distilled float | alone float | int8 behind teacher, pts | "
          "distillation (float), pts | cache min | student min |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def document(data: Path, trained: Path, rows: list[str], hands_teacher: Path,
             sd: list[str], whole: list[str], pretrained: Path) -> str:
    n = sum(1 for _ in (data / "train").rglob("*.jpg"))
    acc, minutes = _teacher(trained)
    sd_acc, sd_minutes = _teacher(hands_teacher)
    return "\n".join([
        "# The photo command's student: the batch, the soft loss, the schedule, the cache", "",
        "`python -m benchmarks.photo_levers`: the README's photo command's student "
        f"(`--student-macs 10e6` at 96 px) on {n:,} CIFAR-10 training images in 10 unbalanced "
        "classes and 1,000 test images (benchmarks.photo_schedule's photos), every row "
        f"distilled from one teacher trained by the command's own recipe ({acc:.2f} %, "
        f"{minutes:.1f} minutes, not counted below). Each row's flags come on top of the "
        "default when these rows began, 3,200 steps in batches of 128 (`--batch-size 128 "
        "--min-steps 3200`), but the last row's, under the default as it stands: 12,800 steps "
        "in batches of 32 on a data set this small, the batch 32 row's student. "
        "`--loss kl-std`: the KL on logits "
        "standardized per example (Sun et al. 2024), the same temperature and weights; "
        "`--temperature 1 --alpha 0`: the teacher's outputs alone, unsoftened (function "
        "matching, Beyer et al. 2022); `--batch-size B` with `--min-steps` at 409,600 / B: "
        "as many images seen in smaller, more steps; "
        "`--teacher-cache-views V`: V augmented views and their mirrors per image (default "
        "10); `--teacher-cache-mix M`: M more copies, each blended with another image "
        "(lambda uniform in [0, 1]) and its teacher logits on the blend; `--student-arch "
        "mobilenet_v1`: ImageNet's MobileNet v1 as the start (alpha 0.25, 7.5M MACs). Top-1: "
        "the student's int8 TFLite and float, and the same student alone (`--scratch`, float); "
        "‡: the int8 file failed the export's parity gate (top-1 agreement with its Keras "
        f"model {_parity(pretrained)['top1_agreement'] * 100:.1f} %, under 90 %), kept with "
        "`--allow-parity-failures` to measure it: the photo command stops there. "
        "Minutes: the teacher cache and the student's training, on this page's machine: "
        "its students trained about 1.5x as fast as photo_schedule.md's (4.2 against 6.3 "
        "minutes for 3,200 steps of the same student), so compare minutes within a page. "
        "One seed per row. " + machine_line(), "", *HEADER, *rows, "",
        "The same students on 186 labeled Sign Language Digits photos (10 % of the set, "
        "benchmarks.unlabeled's split; hands, unlike ImageNet's photos) at 64 px, 206 held out "
        "(one photo is 0.49 points), from a teacher trained there by the default recipe "
        f"({sd_acc:.2f} %, {sd_minutes:.1f} minutes):", "", *HEADER, *sd, "",
        "The README's photo command, whole (distill with its own teacher and "
        f"`--scratch`, export, bench), on the {n:,} photos and this page's machine, under the "
        "earlier default and as it stands; the columns are photo_schedule.md's:", "",
        "| --min-steps, batch | epochs | teacher | distilled int8 | distilled float | "
        "alone float | int8 behind teacher, pts | distillation (float), pts | cache min | "
        "student min | alone min | distill min | export + bench min | command min |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *whole, ""])


if __name__ == "__main__":
    sys.exit(main())
