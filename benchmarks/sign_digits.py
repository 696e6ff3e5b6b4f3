"""A user's own small photo set (Sign Language Digits: 2,062 photos, 100 px,
10 classes): a teacher trained from scratch against a pretrained MobileNet
teacher fine-tuned on it, and the same student from scratch, distilled from
each. Float and int8 top-1, and the wall time of each phase.

    python -m benchmarks.sign_digits [--tar ../shared/data/sign-digits.tar.gz] \
        [--image-size 64] [--weights ../shared/.../mobilenet_1_0_224_tf_no_top.h5]

Both runs use the default preset at --image-size, with the same split, seed
and student init; the scratch baseline is trained in the first run. Saves the
runs under benchmarks/results/sign_digits_*/ and the table in
benchmarks/results/sign_digits/table.md (make report publishes it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from benchmarks.saved import EARLIER_RECIPE, MOBILENET_WEIGHTS, ROOT, SHARED, publish
from edgekd.environment import machine, versions

RUNS = (("scratch_teacher", ["--scratch"]),
        # XLA makes depthwise convolutions ~8x slower on CPU (docs/results/zoo_throughput.md)
        ("pretrained_teacher", ["--no-scratch", "--teacher-arch", "mobilenet", "--no-jit-compile",
                                *EARLIER_RECIPE]))


def _python(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT)
    return time.perf_counter() - t0


def run(a) -> dict:
    a.work.mkdir(parents=True, exist_ok=True)
    data = a.work / "sign-digits"
    if not data.is_dir():
        with tarfile.open(a.tar) as tar:
            tar.extractall(a.work, filter="data")
    for name, flags in RUNS:
        out = a.work / name
        if (out / "seconds.json").is_file():  # finished: a rerun only re-renders
            continue
        if "--teacher-arch" in flags:
            flags = [*flags, "--teacher-weights", str(a.weights)]
        seconds = {"distill": _python("-m", "distill", "--data", str(data), "--preset", "default",
                                      "--image-size", str(a.image_size), "--out", str(out),
                                      "--quiet", *flags)}
        seconds["export"] = _python("-m", "export", str(out), "--formats",
                                    "tflite_fp32,tflite_int8", "--roles",
                                    "teacher,student,student_scratch")
        seconds["bench"] = _python("-m", "bench", str(out), "--threads", "1", "--runs", "50",
                                   "--seconds", "2", "--no-progress")
        (out / "seconds.json").write_text(json.dumps(seconds))
    return {name: {"train": json.loads((a.work / name / "train_report.json").read_text()),
                   "bench": json.loads((a.work / name / "bench.json").read_text()),
                   "seconds": json.loads((a.work / name / "seconds.json").read_text())}
            for name, _ in RUNS}


def _int8(bench: dict, role: str) -> str:
    row = next((r for r in bench["artifacts"] if r["name"] == f"{role}_tflite_int8"), None)
    return "-" if row is None else f"{100 * row['accuracy']:.2f} %"


def document(results: dict, a) -> str:
    from distill import pretrained  # TensorFlow: only once the runs are done
    rows = ["| run | model | params | top-1 float | top-1 int8 (TFLite) | epochs | phase minutes |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        models = r["train"]["models"]
        for role in ("teacher", "student", "student_scratch"):
            if role in models:
                m = models[role]
                minutes = sum(e["seconds"] for e in m["epochs"]) / 60
                rows.append(f"| {name} | {role} | {m['params']:,} | {100 * m['accuracy']:.2f} % "
                            f"| {_int8(r['bench'], role)} | {len(m['epochs'])} | {minutes:.1f} |")
    stages = ["| run | distill min | teacher cache s | export min | bench min |",
              "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        s = r["seconds"]
        stages.append(f"| {name} | {s['distill'] / 60:.1f} | "
                      f"{r['train'].get('teacher_cache_seconds') or 0:.0f} | "
                      f"{s['export'] / 60:.1f} | {s['bench'] / 60:.1f} |")
    m, v = machine(), versions()
    first = next(iter(results.values()))["train"]["dataset"]
    return "\n".join([
        "# Sign Language Digits: a teacher from scratch against a pretrained one", "",
        f"`python -m benchmarks.sign_digits --image-size {a.image_size}`: {first['n_train']} "
        f"training and {first['n_test']} held-out photos (10 % of the class folders), "
        f"{a.image_size} px, default preset; pretrained teacher: MobileNet v1 with ImageNet "
        f"weights ({Path(a.weights).name}) on the photos upsampled to "
        f"{pretrained.FINE_TUNE_SIDE} px, fine-tuned: its head for a third of the teacher "
        f"epochs (Adam {pretrained.HEAD_LR:g}), then the whole net (Adam, one-cycle to "
        "0.0003); that run trains without XLA, "
        "which slows depthwise convolutions on CPU. The scratch student is the first run's "
        f"(same split, seed and init). Machine: {m['cpu']}, {m['cores']} cores; tensorflow "
        f"{v.get('tensorflow')}.", "", *rows, "", *stages, ""])


def data_arguments(p: argparse.ArgumentParser) -> None:
    """--tar and --weights: the photo set and the pretrained teacher's weights."""
    p.add_argument("--tar", type=Path, default=SHARED / "sign-digits.tar.gz")
    p.add_argument("--weights", type=Path,
                   default=MOBILENET_WEIGHTS)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data_arguments(p)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--work", type=Path, default=Path("/tmp/edgekd-sign-digits"))
    a = p.parse_args(argv)
    text = document(run(a), a)
    return publish("sign_digits", text)


if __name__ == "__main__":
    sys.exit(main())
