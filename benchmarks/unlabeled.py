"""Few labels, many photos: distillation on unlabeled photos (`--unlabeled`).

    python -m benchmarks.unlabeled [--work /var/tmp/edgekd-unlabeled] [--sets sign_digits cifar10]

Each set is split into a labeled folder (a few labeled training photos, and
the test photos) and an unlabeled folder (every other training photo, in
one flat folder, labels dropped):
- Sign Language Digits (../shared), 64 px: 186 labeled photos (10 %), the 206
  held-out photos that docs/results/sign_digits.md tests on (the same seeded
  split), 1,670 unlabeled. Teacher: ImageNet MobileNet fine-tuned on the 186.
- CIFAR-10 (../shared's JPEG copy): 5,000 labeled (500 per class), the 10,000
  test images, 45,000 unlabeled. Teacher: the default preset's, trained on
  the 5,000.
Run 1 (labeled only, default preset, `--scratch`): the student distilled on
the labeled photos alone, and the student alone; it trains CIFAR-10's
teacher, and Sign Language Digits' comes from a teacher-only run before it
(shared with benchmarks.pretrained_students). Run 2 hands that teacher back
(`--teacher`) and adds `--unlabeled`. Float top-1 from train_report.json, on
the test photos.
Run 3: the teacher trained again on the labeled photos, then fine-tuned
on them and the unlabeled ones it is sure of (`--pseudo-label-threshold
0.95`; a teacher-only run), and run 2 again with that teacher; then the same
with more rounds (`--pseudo-label-rounds`, ROUNDS).
Run 4 (CIFAR-10): ImageNet MobileNet fine-tuned on the 5,000 labeled images
as the teacher (PRETRAINED), its student on all 50,000 and on the 5,000 alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

import numpy as np

from benchmarks.loss_variants import unpack
from benchmarks.saved import EARLIER_RECIPE, MOBILENET_WEIGHTS, SHARED, machine_line, publish
from benchmarks.stage import run_stage

# Flags of run 2 only: on CIFAR-10, 10 epochs over the 50,000 images (3,910 steps, 2.4x run 1's
# 1,600), not the preset's 40: what one session's 2 cores had left for it.
RUN2 = {"sign_digits": (), "cifar10": ("--epochs", "10")}
# this page's teachers: the recipe they were recorded with (at 32 and 64 px the backbone
# sees 128 px under either)
PRETRAINED_TEACHER = ("--teacher-arch", "mobilenet", "--teacher-weights", str(MOBILENET_WEIGHTS))
MOBILENET = (*PRETRAINED_TEACHER, *EARLIER_RECIPE)
SETS = {  # name -> (labeled training photos, flags of both runs)
    "sign_digits": (186, ("--image-size", "64", *MOBILENET)),
    "cifar10": (5000, ()),
}
ALL_LABELS = {  # the same recipe with every label, from earlier pages (same test photos)
    "sign_digits": ("99.51 %", "sign_digits.md"),
    "cifar10": ("85.6 % int8", "default.md"),
}


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        dest.symlink_to(src.resolve())


def split(source: Path, out: Path, n_labeled: int, has_test: bool, seed: int = 42) -> None:
    """out/labeled/{train,test}/<class>/ and out/unlabeled/ (flat) as symlinks.
    Without a test/ folder the held-out photos are distill.data's own split of
    the class folders (val_split 0.1, this seed), so they match other pages'."""
    from distill import photos
    if (out / "unlabeled").is_dir():
        return
    files = photos.class_files(source / "train" if has_test else source)
    labels = list(files)
    train = [(p, c) for c in labels for p in files[c]]
    if has_test:
        test = [(p, c) for c, ps in photos.class_files(source / "test").items() for p in ps]
    else:
        order = np.random.default_rng(seed).permutation(len(train))
        n_val = max(1, int(round(len(train) * 0.1)))
        test, train = [train[i] for i in order[:n_val]], [train[i] for i in order[n_val:]]
    rng = np.random.default_rng(seed)
    per_class = {c: [p for p, k in train if k == c] for c in labels}
    labeled = set()
    for c in labels:  # the same share of every class
        k = max(1, round(n_labeled * len(per_class[c]) / len(train)))
        labeled.update(per_class[c][i] for i in rng.choice(len(per_class[c]), k, replace=False))
    for p, c in test:
        _link(p, out / "labeled" / "test" / c / p.name)
    for i, (p, c) in enumerate(train):
        if p in labeled:
            _link(p, out / "labeled" / "train" / c / p.name)
        else:
            _link(p, out / "unlabeled" / f"{i:06d}{p.suffix}")


def _source(work: Path, name: str) -> tuple[Path, bool]:
    if name == "sign_digits":
        return unpack(work), False
    data = work / "cifar10-jpeg"
    if not data.is_dir():
        with tarfile.open(SHARED / "cifar10-jpeg.tar.gz") as tar:
            tar.extractall(work, filter="data")
    return data, True


def pct(model: dict) -> str:
    return f"{100 * model['accuracy']:.2f} %"


def _run(out: Path, *args: str) -> dict:
    """A distill run, or its report when it finished before; with its minutes."""
    seconds = out.parent / f"{out.name}.seconds"
    if not (out / "train_report.json").is_file():
        with open(out.parent / f"{out.name}.log", "w") as log:
            stage = run_stage("-m", "distill", "--out", str(out), "--quiet", *args, log=log)
        seconds.write_text(str(stage.seconds))
    report = json.loads((out / "train_report.json").read_text())
    report["seconds"] = float(seconds.read_text())
    return report


TEACHER_ONLY = ("--epochs", "1", "--min-steps", "0", "--no-scratch", "--teacher-cache-views", "0",
                "--no-teacher-cache-mirror")  # a run for its teacher: one cheap student epoch


def teacher_file(work: Path, name: str) -> Path:
    """The set's teacher: Sign Language Digits' from a teacher-only run (the
    pretrained_students benchmark shares it), CIFAR-10's from run 1."""
    n_labeled, flags = SETS[name]
    source, has_test = _source(work, name)
    split(source, work / f"{name}_split", n_labeled, has_test)
    if name != "sign_digits":
        return work / f"{name}_labeled" / "teacher.keras"
    _run(work / f"{name}_teacher", "--data", str(work / f"{name}_split" / "labeled"), *flags,
         *TEACHER_ONLY)
    return work / f"{name}_teacher" / "teacher.keras"


def labeled_run(work: Path, name: str) -> dict:
    """Run 1 of a set: the students on the labeled photos, distilled and alone
    (and CIFAR-10's teacher); its report's teacher record is the set's teacher's."""
    teacher, flags = teacher_file(work, name), SETS[name][1]
    data = str(work / f"{name}_split" / "labeled")
    if teacher.parent.name == f"{name}_labeled":
        return _run(work / f"{name}_labeled", "--data", data, "--scratch", *flags)
    report = _run(work / f"{name}_labeled", "--data", data, "--scratch", "--teacher",
                  str(teacher), *flags[:2])
    trained = json.loads((teacher.parent / "train_report.json").read_text())
    report["models"]["teacher"] = trained["models"]["teacher"]
    report["seconds"] += float((teacher.parent.parent / f"{teacher.parent.name}.seconds")
                               .read_text())
    return report


PSEUDO = 0.95  # FixMatch's confidence threshold (Sohn et al. 2020), not searched here
# --pseudo-label-rounds measured per set (each CIFAR-10 round costs about 20 minutes on 2 cores)
ROUNDS = {"sign_digits": (1, 2, 3), "cifar10": (1, 2)}


def pseudo_run(work: Path, name: str, rounds: int = 1) -> tuple[dict, dict]:
    """(the pseudo-labeled teacher's run, the student run that learns from it)."""
    flags, folders = SETS[name][1], work / f"{name}_split"
    unl = ("--unlabeled", str(folders / "unlabeled"))
    data = ("--data", str(folders / "labeled"))
    suffix, more_rounds = ("", ()) if rounds == 1 else (
        f"_r{rounds}", ("--pseudo-label-rounds", str(rounds)))
    teacher = work / f"{name}_teacher_pseudo{suffix}"
    trained = _run(teacher, *data, *flags, *TEACHER_ONLY, *unl,
                   "--pseudo-label-threshold", str(PSEUDO), *more_rounds)
    more = _run(work / f"{name}_pseudo{suffix}", *data, "--teacher", str(teacher / "teacher.keras"),
                *unl, *flags[:2], *RUN2[name])
    more["seconds"] += trained["seconds"]
    return trained, more


# CIFAR-10 with the pretrained teacher the unlabeled goal allows: ImageNet MobileNet fine-tuned on
# the 5,000 labeled images (upsampled to 128 px, distill.pretrained). It infers at about 95 images/s
# on 2 cores, so its fine-tune is 12 epochs (4 head, 8 whole net), not the preset's 18, and the
# students cache fewer views: 1 and its mirror of the 50,000 (100,000 teacher passes, about 18
# minutes), 5 and their mirrors of the 5,000 (the labeled-only student's 40 epochs need more).
PRETRAINED = {"cifar10": (("--teacher-epochs", "12"), ("--teacher-cache-views", "1"),
                          ("--teacher-cache-views", "5"))}


def int8_accuracy(out: Path, *export_flags: str) -> float:
    """The student's int8 TFLite top-1 on the test photos (export, then bench: the goal's figure)."""
    if not (out / "bench.json").is_file():
        with open(out.parent / f"{out.name}.int8.log", "w") as log:
            run_stage("-m", "export", str(out), "--formats", "tflite_int8", "--roles", "student",
                      *export_flags, log=log)
            run_stage("-m", "bench", str(out), "--threads", "1", "--runs", "20", "--seconds", "1",
                      "--no-progress", log=log)
    bench = json.loads((out / "bench.json").read_text())
    return next(a["accuracy"] for a in bench["artifacts"] if a["name"] == "student_tflite_int8")


def _pretrained_rows(work: Path, name: str, n_unlabeled: int) -> list[str]:
    """The student on all the photos from the pretrained teacher, then on the labeled ones alone."""
    teacher_flags, unl_flags, labeled_flags = PRETRAINED[name]
    folders = work / f"{name}_split"
    data = ("--data", str(folders / "labeled"))
    tdir = work / f"{name}_teacher_mobilenet"
    trained = _run(tdir, *data, *MOBILENET, *teacher_flags, *TEACHER_ONLY)
    given = ("--teacher", str(tdir / "teacher.keras"))
    more = _run(work / f"{name}_mobilenet_unlabeled", *data, *given, "--unlabeled",
                str(folders / "unlabeled"), *RUN2[name], *unl_flags)
    alone = _run(work / f"{name}_mobilenet_labeled", *data, *given, *labeled_flags)
    t = trained["models"]["teacher"]
    minutes = lambda r: f"{(r['seconds'] + trained['seconds']) / 60:.1f}"  # noqa: E731
    what = "ImageNet MobileNet fine-tuned on the labeled images"
    return [
        f"| {name} | {alone['dataset']['n_train']:,} | 0 | {pct(t)} ({what}) | "
        f"{pct(alone['models']['student'])} | - | {len(alone['models']['student']['epochs'])} | "
        f"{minutes(alone)} |",
        f"| {name} | {more['dataset']['n_train']:,} | {more['dataset']['unlabeled']['used']:,} "
        f"of {n_unlabeled:,} | same | {pct(more['models']['student'])} (int8 "
        f"{100 * int8_accuracy(work / f'{name}_mobilenet_unlabeled'):.2f} %) | - | "
        f"{len(more['models']['student']['epochs'])} | {minutes(more)} |"]


def _pseudo_row(work: Path, name: str, n_unlabeled: int, rounds: int) -> list[str]:
    trained, more = pseudo_run(work, name, rounds)
    t, u = trained["models"]["teacher"], more["models"]["student"]
    labels = t["pseudo_labels"]
    how = "" if rounds == 1 else (
        f", round {rounds} of {rounds} (round 1: "
        f"{labels['rounds'][0]['used']:,}; teacher after it: "
        f"{100 * labels['rounds'][-1]['teacher_accuracy_before']:.2f} %)")
    return [
        f"| {name} | {more['dataset']['n_train']:,} | {more['dataset']['unlabeled']['used']:,} "
        f"of {n_unlabeled:,}; the teacher also on the {labels['used']:,} it gave p >= "
        f"{labels['threshold']}{how} | {100 * t['accuracy']:.2f} % (before: "
        f"{100 * labels['teacher_accuracy_before']:.2f} %) | {100 * u['accuracy']:.2f} % | - | "
        f"{len(u['epochs'])} | {more['seconds'] / 60:.1f} |"]


def measure(work: Path, name: str) -> str:
    flags, folders = SETS[name][1], work / f"{name}_split"
    alone = labeled_run(work, name)
    data = str(folders / "labeled")
    n_unlabeled = sum(1 for _ in (folders / "unlabeled").iterdir())
    teacher = teacher_file(work, name)
    more = _run(work / f"{name}_unlabeled", "--data", data, "--teacher", str(teacher),
                "--unlabeled", str(folders / "unlabeled"), *flags[:2], *RUN2[name])
    t, s, sc = (alone["models"][r] for r in ("teacher", "student", "student_scratch"))
    u = more["models"]["student"]
    seen = more["dataset"]["unlabeled"]
    full, page = ALL_LABELS[name]
    return "\n".join([
        f"| {name} | {alone['dataset']['n_train']:,} | 0 | {pct(t)} | {pct(s)} | {pct(sc)} | "
        f"{len(s['epochs'])} | {alone['seconds'] / 60:.1f} |",
        f"| {name} | {more['dataset']['n_train']:,} | {seen['used']:,} of {n_unlabeled:,} "
        f"(dropped {seen['dropped_test_copies']} test copies, {seen['dropped_duplicates']} "
        f"duplicates) | same | {pct(u)} | - | {len(u['epochs'])} | {more['seconds'] / 60:.1f} |",
        *(row for n in ROUNDS[name] for row in _pseudo_row(work, name, n_unlabeled, n)),
        *(_pretrained_rows(work, name, n_unlabeled) if name in PRETRAINED else []),
        f"| {name} | all | - | - | {full} ([{page}]({page})) | - | - | - |"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/var/tmp/edgekd-unlabeled"))
    p.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    a = p.parse_args(argv)
    rows = [measure(a.work, name) for name in a.sets]
    text = "\n".join([
        "# Few labels, many photos", "",
        "`python -m benchmarks.unlabeled`: a few labeled photos and the rest of the training "
        "set unlabeled (`--unlabeled`); default preset. Sign Language Digits at 64 px: 186 "
        "labeled, teacher ImageNet MobileNet fine-tuned on them; CIFAR-10: 5,000 labeled, the "
        "default teacher trained on them. The run with unlabeled photos reuses the first run's "
        "teacher; on CIFAR-10 it trains 10 epochs over the 50,000 images (3,910 steps), not "
        "the preset's 40, for want of time. With pseudo-labels (`--pseudo-label-threshold "
        f"{PSEUDO}`) the teacher is trained again: on the labeled photos, then on them and the "
        "unlabeled ones it gives at least that probability, its class as their label; its "
        "minutes include that teacher's run. With `--pseudo-label-rounds N` that teacher labels "
        "the unlabeled photos again, N times, and is fine-tuned again each time. CIFAR-10's "
        "last two rows: the teacher is ImageNet MobileNet fine-tuned on the 5,000 (at 128 px, "
        "12 epochs; no pseudo-labels), its students cache 1 view and its mirror of the 50,000 "
        "(5 of the 5,000), and the minutes include the teacher's. Float top-1 on "
        "the test photos; one seed per row. "
        + machine_line(), "",
        "| data | labeled | unlabeled | teacher | distilled student | student alone | "
        "student epochs | minutes |", "|---|---:|---|---:|---:|---:|---:|---:|", *rows, ""])
    return publish("unlabeled", text)


if __name__ == "__main__":
    sys.exit(main())
