"""A user's photo folder at edge resolutions: Sign Language Digits (2,062
photos, 100 px, 10 classes) trained at 64 and 96 px with the command the
README recommends for photos: a pretrained MobileNet teacher fine-tuned on
them and a student sized by --student-macs.

    python -m benchmarks.photos [--sizes 64 96] [--tar ../shared/data/sign-digits.tar.gz]

Per size: teacher, student from scratch and distilled student, float (Keras)
and int8 (TFLite) top-1, MACs, p50 latency (1 thread, this machine), and the
wall time and peak RSS of each stage (distill, export, bench), each stage its
own process. Saves the runs under --work and the table in
benchmarks/results/photos/table.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from dataclasses import asdict
from pathlib import Path

from benchmarks.saved import publish
from benchmarks.sign_digits import data_arguments
from benchmarks.stage import Stage, run_stage
from edgekd.environment import machine, versions

ROLES = ("teacher", "student_scratch", "student")


def _stages(data: Path, out: Path, size: int, weights: Path) -> dict[str, Stage]:
    record = out.parent / f"{out.name}.stages.json"
    if record.is_file():  # finished: a rerun only re-renders
        return {k: Stage(**v) for k, v in json.loads(record.read_text()).items()}
    with open(out.parent / f"{out.name}.log", "w") as log:
        stages = {
            "distill": run_stage("-m", "distill", "--data", str(data), "--preset", "default",
                                 "--image-size", str(size), "--student-macs", "10e6",
                                 "--teacher-arch", "mobilenet", "--teacher-weights", str(weights),
                                 "--scratch", "--out", str(out), "--quiet", log=log),
            "export": run_stage("-m", "export", str(out), "--formats", "tflite_fp32,tflite_int8",
                                "--roles", ",".join(ROLES), log=log),
            "bench": run_stage("-m", "bench", str(out), "--threads", "1", "--runs", "50",
                               "--seconds", "2", "--no-progress", log=log)}
    record.write_text(json.dumps({k: asdict(v) for k, v in stages.items()}))
    return stages


def _row(bench: dict, role: str, fmt: str) -> dict | None:
    return next((r for r in bench["artifacts"] if r["role"] == role and r["format"] == fmt), None)


def document(results: dict, a) -> str:
    rows = ["| size | model | params | MACs | top-1 float (Keras) | top-1 int8 (TFLite) "
            "| int8 p50 ms | training minutes |", "|---:|---|---:|---:|---:|---:|---:|---:|"]
    stages = ["| size | stage | wall time min | peak RSS MiB |", "|---:|---|---:|---:|"]
    for size, r in results.items():
        models, bench = r["train"]["models"], r["bench"]
        for role in ROLES:
            m, int8 = models[role], _row(bench, role, "tflite_int8")
            minutes = sum(e["seconds"] for e in m["epochs"]) / 60
            rows.append(f"| {size} | {role} ({m['name']}) | {m['params']:,} | "
                        f"{m['macs'] / 1e6:.1f}M | {100 * m['accuracy']:.2f} % | "
                        f"{100 * int8['accuracy']:.2f} % | {int8['latency']['1']['p50_ms']:.3f} | "
                        f"{minutes:.1f} |")
        for name, st in r["stages"].items():
            stages.append(f"| {size} | {name} | {st.seconds / 60:.1f} | {st.peak_rss_mb:.0f} |")
    m, v = machine(), versions()
    first = next(iter(results.values()))["train"]
    return "\n".join([
        "# Photos at edge resolutions: Sign Language Digits at 64 and 96 px", "",
        f"`python -m benchmarks.photos`: {first['dataset']['n_train']} training and "
        f"{first['dataset']['n_test']} held-out photos; default preset with `--teacher-arch "
        f"mobilenet --teacher-weights {Path(a.weights).name} --student-macs 10e6 --scratch "
        "--image-size N`: MobileNet v1 (ImageNet weights) fine-tuned, head then whole net "
        "(Adam 1e-3, then one-cycle to 3e-4: docs/results/fine_tune.md); "
        "the student from scratch has the distilled student's architecture, init and recipe. "
        f"Machine: {m['cpu']}, {m['cores']} cores; tensorflow {v.get('tensorflow')}." +
        (f" {a.note}" if a.note else ""), "", *rows, "", *stages, ""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data_arguments(p)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 96])
    p.add_argument("--work", type=Path, default=Path("/tmp/edgekd-photos"))
    p.add_argument("--note", default="", help="a sentence for the table (e.g. the machine's load)")
    a = p.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    data = a.work / "sign-digits"
    if not data.is_dir():
        with tarfile.open(a.tar) as tar:
            tar.extractall(a.work, filter="data")
    results = {}
    for size in a.sizes:
        out = a.work / f"px{size}"
        stages = _stages(data, out, size, a.weights)
        results[size] = {"stages": stages,
                         "train": json.loads((out / "train_report.json").read_text()),
                         "bench": json.loads((out / "bench.json").read_text())}
    text = document(results, a)
    return publish("photos", text)


if __name__ == "__main__":
    sys.exit(main())
