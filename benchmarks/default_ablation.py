"""What each element of the default recipe contributes, and a temperature x
alpha sweep, on a subset with a supplied (already trained) teacher:

    python -m benchmarks.default_ablation --data DIR_OR_NPZ --teacher T.keras \
        [--subset 10000] [--epochs 15] [--work /tmp/edgekd-ablation]
    python -m benchmarks.default_ablation --render   # tables from the saved results

Each variant is one `python -m distill --preset default` run with one change;
finished variants are skipped on a re-run. After each run the results go to
benchmarks/results/ablation/ablation.json (make report renders
docs/results/ablation.md): the student's top-1 on the full test set, its change
against the full recipe, and the median epoch time (which shows what the
teacher cache saves). A second seed of the full recipe gives the noise floor.
Last, smoothed and mixed targets for the teacher (TEACHERS): each trains a teacher
on the subset with the change and distills the student from it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ablation" / "ablation.json"
from benchmarks.default_table import median_epoch
from distill.config import PRESETS  # TF-free

# (name, what changes, extra distill flags), most telling first. The first is the
# reference; its run also trains the scratch baseline ("no teacher").
ABLATION = [
    ("full recipe", "default preset as is: 10 cached views and their mirrors, T 4, alpha 0.1", []),
    ("full recipe, seed 7", "the same with another seed (subset, init, views): the noise floor",
     ["--seed", "7"]),
    ("no teacher cache", "teacher run on every augmented batch (so no mirror-averaged targets)",
     ["--teacher-cache-views", "0", "--no-teacher-cache-mirror"]),
    ("no mirrored targets", "10 cached views, each with the teacher's logits of that view alone",
     ["--no-teacher-cache-mirror"]),
    ("5 cached views", "5 views and their mirrors instead of 10", ["--teacher-cache-views", "5"]),
    ("no augmentation", "no crops or flips (1 cached view, no mirror)", ["--no-augment"]),
    ("no lr schedule", "SGD at a constant lr 0.1 (no warm-up, no cosine decay)",
     ["--schedule", "constant"]),
    ("no weight decay", "weight decay 0", ["--weight-decay", "0"]),
    ("Adam, constant lr", "the tutorial's optimizer: Adam 1e-3, no schedule",
     ["--optimizer", "adam", "--learning-rate", "1e-3", "--schedule", "constant"]),
    ("tutorial student", "seed_student (no batch norm, 313K params) with the default recipe",
     ["--student-arch", "seed_student"]),
    ("edge_sep student", "depthwise-separable student (0.15M params, 6.2M MACs; no XLA, "
     "which slows depthwise 8x)", ["--student-arch", "edge_sep", "--no-jit-compile"]),
    ("edge_res_small student", "narrower residual student (0.09M params, 4.8M MACs)",
     ["--student-arch", "edge_res_small"]),
    ("edge_pool_student", "plain student in airbench's shape: conv, max-pool, conv per stage "
     "(0.23M params, 9.99M MACs)", ["--student-arch", "edge_pool_student"]),
    ("edge_pool_student_160", "the same, widths 8-32-160 (0.29M params, 8.78M MACs)",
     ["--student-arch", "edge_pool_student_160"]),
    ("label smoothing 0.1", "hard labels smoothed (eps 0.1) in the student's CE term",
     ["--label-smoothing", "0.1"]),
    ("mixup 0.2", "mixup, lambda ~ Beta(0.2, 0.2); labels and cached teacher probabilities "
     "mixed alike", ["--mixup", "0.2"]),
    ("mixup 1.0", "the same with lambda ~ Beta(1, 1)", ["--mixup", "1.0"]),
]
# Targets for the teacher: each trains its own teacher (the preset's architecture,
# the subset, the same epochs) with the change, then the full recipe distills
# the student from it, so the teacher's own training is all that differs.
TEACHERS = [
    ("subset teacher", "teacher trained on the subset with the default recipe", []),
    ("subset teacher, label smoothing 0.1", "the same, hard labels smoothed (eps 0.1)",
     ["--label-smoothing", "0.1"]),
    ("subset teacher, mixup 0.2", "the same with mixup, lambda ~ Beta(0.2, 0.2)",
     ["--mixup", "0.2"]),
    ("subset teacher, seed 7", "the first row with seed 7 (teacher init and subset)",
     ["--seed", "7"]),
    ("subset teacher, label smoothing 0.1, seed 7", "the second row with seed 7",
     ["--label-smoothing", "0.1", "--seed", "7"]),
]
TEMPERATURES, ALPHAS = (1.0, 2.0, 4.0, 10.0), (0.0, 0.1, 0.5)
# The grid cell the reference run already fills: the preset's own T and alpha.
REFERENCE = (PRESETS["default"].temperature, PRESETS["default"].alpha)


def sweep_name(t: float, alpha: float) -> str:
    return f"T{t:g} alpha{alpha:g}"


def run_variant(a, name: str, flags: list[str], scratch: bool = False,
                teacher: str | None = None, train_teacher: bool = False) -> dict:
    """One distill run on the subset, from `teacher` (default: --teacher); with
    `train_teacher` it trains its own (flags apply to it) and one student epoch."""
    out = a.work / name.replace(" ", "_").replace(",", "")
    report = out / "train_report.json"
    if not report.is_file():
        source = (["--teacher-epochs", str(a.epochs), "--teacher-cache-views", "1",
                   "--no-teacher-cache-mirror"] if train_teacher
                  else ["--teacher", teacher or a.teacher])
        epochs = 1 if train_teacher else a.epochs
        cmd = [sys.executable, "-m", "distill", "--preset", "default", "--data", a.data,
               *source, "--train-subset", str(a.subset), "--epochs",
               str(epochs), "--out", str(out), "--quiet",
               "--scratch" if scratch else "--no-scratch", *flags]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"{name} failed:\n{res.stderr[-3000:]}")
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return json.loads(report.read_text())


def summary(model: dict, report: dict) -> dict:
    return {"accuracy": model["accuracy"], "median_epoch_s": median_epoch(model),
            "params": model.get("params"), "macs": model.get("macs"),
            "teacher_cache_seconds": report.get("teacher_cache_seconds")}


def plan() -> list[tuple[str, list[str]]]:
    rows = [(name, flags) for name, _, flags in ABLATION]
    sweep = [(sweep_name(t, al), ["--temperature", str(t), "--alpha", str(al)])
             for t in TEMPERATURES for al in ALPHAS if (t, al) != REFERENCE]
    return rows[1:2] + sweep + rows[2:]  # the noise floor, then the sweep, then the rest


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data")
    p.add_argument("--teacher", help="a trained teacher (.keras), e.g. a default run's")
    p.add_argument("--subset", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--work", type=Path, default=Path("/tmp/edgekd-ablation"))
    p.add_argument("--render", action="store_true", help="only re-render the saved results")
    a = p.parse_args()
    if a.render:
        return publish(json.loads(RESULTS.read_text()))
    if not (a.data and a.teacher):
        p.error("--data and --teacher are required (or --render)")
    a.work.mkdir(parents=True, exist_ok=True)
    ref = run_variant(a, ABLATION[0][0], [], scratch=True)
    saved = {"command": f"python -m benchmarks.default_ablation --subset {a.subset} "
                        f"--epochs {a.epochs}",
             "subset": a.subset, "epochs": a.epochs, "dataset": ref["dataset"]["name"],
             "n_test": ref["dataset"]["n_test"], "machine": ref["machine"],
             "versions": ref.get("versions", {}),
             "teacher_accuracy": ref["models"]["teacher"]["accuracy"],
             "teacher_arch": ref["models"]["teacher"]["name"],
             "results": {"full recipe": summary(ref["models"]["student"], ref),
                         "no teacher": summary(ref["models"]["student_scratch"], ref)}}
    saved["results"][sweep_name(*REFERENCE)] = saved["results"]["full recipe"]
    for name, flags in plan():  # results saved and tables rewritten after each run
        report = run_variant(a, name, flags)
        saved["results"][name] = summary(report["models"]["student"], report)
        publish(saved)
    for name, _, flags in TEACHERS:
        trained = run_variant(a, f"{name} (training)", flags, train_teacher=True)
        report = run_variant(a, name, [], teacher=trained["artifacts"] + "/teacher.keras")
        saved.setdefault("teachers", {})[name] = {
            "teacher_accuracy": trained["models"]["teacher"]["accuracy"],
            "teacher_median_epoch_s": median_epoch(trained["models"]["teacher"]),
            **summary(report["models"]["student"], report)}
        publish(saved)
    return 0


def publish(saved: dict) -> int:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(saved, indent=1) + "\n")
    print(document(saved), flush=True)  # docs/results/ablation.md: make report
    return 0


def document(saved: dict) -> str:
    """Markdown: the ablation table, then the temperature x alpha grid."""
    res = saved["results"]
    ref = res["full recipe"]["accuracy"]
    what = {name: w for name, w, _ in ABLATION}
    what["no teacher"] = "same student from scratch (plain epochs, online augmentation)"
    rows = ["| variant | change | student top-1 | vs full recipe | s/epoch (median) |",
            "|---|---|---:|---:|---:|"]
    for name in [ABLATION[0][0], "no teacher", *(n for n, _, _ in ABLATION[1:])]:
        if name in res:
            r = res[name]
            epoch = "-" if r["median_epoch_s"] is None else f"{r['median_epoch_s']:.1f}"
            rows.append(f"| {name} | {what[name]} | {100 * r['accuracy']:.2f} % "
                        f"| {100 * (r['accuracy'] - ref):+.2f} | {epoch} |")
    grid = ["| T \\ alpha | " + " | ".join(f"{al:g}" for al in ALPHAS) + " |",
            "|---|" + "---:|" * len(ALPHAS)]
    for t in TEMPERATURES:
        cells = [f"{100 * res[k]['accuracy']:.2f} %" if (k := sweep_name(t, al)) in res
                 else "-" for al in ALPHAS]
        grid.append(f"| T = {t:g} | " + " | ".join(cells) + " |")
    m, v = saved["machine"], saved.get("versions", {})
    teachers = ["| teacher | change | teacher top-1 | teacher s/epoch | student top-1 |",
                "|---|---|---:|---:|---:|"]
    for name, change, _ in TEACHERS:
        if (r := saved.get("teachers", {}).get(name)):
            teachers.append(f"| {name} | {change} | {100 * r['teacher_accuracy']:.2f} % "
                            f"| {r['teacher_median_epoch_s']:.1f} | {100 * r['accuracy']:.2f} % |")
    versions = ", ".join(f"{k} {v[k]}" for k in ("tensorflow", "tf-keras") if k in v)
    return "\n".join([
        "# Default recipe: ablation and temperature/alpha sweep", "",
        f"`{saved['command']}`: {saved['dataset']}, the first {saved['subset']} shuffled "
        f"training images, {saved['epochs']} student epochs of the default recipe (one-cycle "
        f"over those epochs), a trained teacher supplied ({saved['teacher_arch']}, top-1 "
        f"{100 * saved['teacher_accuracy']:.2f} %), top-1 on all {saved['n_test']} test images. "
        f"Machine: {m['cpu']}, {m['cores']} cores; {versions}. A shorter schedule on a subset "
        "than the preset's: read differences against the two full-recipe seeds' spread.", "",
        *rows, "",
        "Temperature x alpha (alpha weights the hard-label loss; T "
        f"{REFERENCE[0]:g}, alpha {REFERENCE[1]:g} is the full recipe), student top-1:", "", *grid, "",
        *(["Smoothed and mixed targets for the teacher: each teacher trained on the subset for "
           "the same epochs (seed 7: another 10,000 images), then the student distilled from it "
           "with the full recipe (always seed 42's subset and init):", "",
           *teachers, ""] if len(teachers) > 2 else [])])


if __name__ == "__main__":
    sys.exit(main())
