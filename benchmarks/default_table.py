"""The `default` preset beside the `seed` preset, from saved runs:

    python -m benchmarks.default_table        # reads benchmarks/results/{seed,default}/

renders the table of docs/results/default.md (make report): params, MACs, float (Keras) and int8
(TFLite) accuracy of teacher / distilled student / scratch student, the wall
time of each stage, the distill-epoch / plain-epoch ratio, and p50 latencies.
The results folders are filled by `make report SEED=... DEFAULT=...`
(benchmarks/report.py).
"""

from __future__ import annotations

import sys

from benchmarks.saved import RESULTS, load
from edgekd.environment import int8_text

ROLES = (("teacher", "teacher"), ("student", "distilled student"),
         ("student_scratch", "student from scratch"))
# The other default-preset runs kept beside the reference one (label, results folder),
# oldest first: v1 had a weaker teacher; d2 is x1's recipe without XLA; x1 trained
# 16 + 30 epochs (before one tf.data iterator per phase), x2 18 + 34, x4 18 + 44
# (not kept: no gain over 40), x3 18 + 40 without the mirrored cache, f1 with the
# mirrored cache of 5 views (and the scratch baseline), g1 with 10 views (and the
# baseline, trained after the timed pipeline), h1 a second run of g1's recipe (its
# teacher retrained); "default" (p2) is the current preset: g1's recipe with the
# edge_pool teacher instead of edge_res_wide; p3 is p2 again with seed 1. v1 to x4
# ran on an AMD EPYC host, f1 and later runs on an Intel Xeon one (the machines line
# of the table says so).
OTHER_RUNS = (("default v1", "default_v1"), ("default d2, no XLA", "default_d2"),
              ("default x1, 16+30 epochs", "default_x1"), ("default x2, 18+34 epochs", "default_x2"),
              ("default x3, 18+40 epochs, no mirror", "default_x3"),
              ("default x4, 18+44 epochs", "default_x4"),
              ("default f1, 5 views", "default_f1"), ("default g1, 10 views", "default_g1"),
              ("default h1, g1 again", "default_h1"),
              ("default p3, seed 1", "default_p3"), ("default p4, seed 2", "default_p4"),
              ("default p6, p2 on 340db37", "default_p6"))
# The seed preset rerun on the Xeon host (run s2): the reference seed run is the
# EPYC one the README quotes, but a latency ratio needs both models timed on one
# machine, and the current default runs are the Xeon's.
OTHER_SEEDS = (("seed, Xeon", "seed_xeon"),)


def _artifact(run: dict, role: str, fmt: str) -> dict | None:
    return next((r for r in run["bench"]["artifacts"]
                 if r["role"] == role and r["format"] == fmt), None)


def median_epoch(model: dict) -> float | None:
    secs = sorted(e["seconds"] for e in model.get("epochs", []))
    return secs[len(secs) // 2] if secs else None  # median: the first epoch includes tracing


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def _ms(r: dict | None) -> str:
    return "-" if r is None else f"{r['latency']['1']['p50_ms']:.3f}"


def model_rows(preset: str, run: dict) -> list[str]:
    rows = []
    for role, label in ROLES:
        m = run["train"]["models"].get(role)
        if m is None:
            continue
        f32, i8 = _artifact(run, role, "tflite_fp32"), _artifact(run, role, "tflite_int8")
        spe = median_epoch(m)
        rows.append(f"| {preset} | {label} | {m['params']:,} | {m['macs'] / 1e6:.2f} M "
                    f"| {_pct(m['accuracy'])} | {_pct(i8 and i8['accuracy'])} "
                    f"| {len(m.get('epochs', []))} | {'-' if spe is None else f'{spe:.0f}'} "
                    f"| {_ms(f32)} | {_ms(i8)} |")
    return rows


def stage_rows(preset: str, run: dict) -> str:
    t = run["train"]
    models = t["models"]
    phase = {role: sum(e["seconds"] for e in models[role].get("epochs", []))
             for role, _ in ROLES if role in models}
    cache = t.get("teacher_cache_seconds") or 0.0
    d, s = median_epoch(models["student"]), median_epoch(models.get("student_scratch", {}))
    ratio = f"{d / s:.2f}" if d and s else "-"
    # A run whose baseline was added after the pipeline (benchmarks/add_scratch.py)
    # has the pipeline's own stage times in stages.json; the baseline is not in them.
    stages = run["stages"]
    distill = stages.get("distill_seconds", t["total_seconds"])
    export = stages.get("export_seconds")
    bench = stages.get("bench_seconds", run["bench"].get("seconds"))
    total = distill + (export or 0) + (bench or 0)
    after = "distill_seconds" in stages and "student_scratch" in phase
    scratch = (f"{phase['student_scratch'] / 60:.1f}{' (after)' if after else ''}"
               if "student_scratch" in phase else "-")
    return (f"| {preset} | {phase.get('teacher', 0) / 60:.1f} | {cache / 60:.1f} "
            f"| {phase.get('student', 0) / 60:.1f} | {scratch} "
            f"| {distill / 60:.1f} | {'-' if export is None else f'{export / 60:.1f}'} "
            f"| {'-' if bench is None else f'{bench / 60:.1f}'} | {total / 60:.1f} | {ratio} |")


def _config_line(label: str, cfg: dict) -> str:
    return (f"{label}: teacher {cfg['teacher_arch']} {cfg['teacher_epochs']} epochs, student "
            f"{cfg['student_arch']} {cfg['epochs']} epochs, batch {cfg['batch_size']}, "
            f"{cfg['optimizer']} lr {cfg['learning_rate']} {cfg['schedule']}, weight decay "
            f"{cfg['weight_decay']}, augment {cfg['augment']}, T {cfg['temperature']}, alpha "
            f"{cfg['alpha']}, teacher cache views {cfg['teacher_cache_views']}"
            f"{' (and mirrors)' if cfg.get('teacher_cache_mirror') else ''}, XLA "
            f"{cfg.get('jit_compile', False)}.")


def _machine(run: dict) -> str:
    m = run["train"]["machine"]
    isa = f" ({int8_text(m)})" if int8_text(m) else ""
    return f"{m['cpu']}{isa}, {m['cores']} cores"


def speedup_line(seeds: list[tuple[str, dict]], default: dict) -> str:
    """The seed teacher's fp32 p50 over the default int8 student's, from the first
    seed run timed on the same kind of CPU as the default run: int8 against
    float32 depends on the CPU's int8 instructions (8x on an AVX2 host, 36x on a
    VNNI/AMX one)."""
    head = "Default int8 student vs the tutorial teacher's fp32 TFLite (p50, batch 1, 1 thread"
    same = [(label, run) for label, run in seeds if _machine(run) == _machine(default)]
    if not same:
        return (head + "): not computed: the seed runs were timed on "
                f"{'; '.join(sorted({_machine(run) for _, run in seeds}))}, this run "
                f"on {_machine(default)}; benchmarks/latency_vs_seed*.md times both models "
                "in one process on one machine.")
    label, seed = same[0]
    teacher_f32 = _artifact(seed, "teacher", "tflite_fp32")
    best = _artifact(default, "student", "tflite_int8")
    if not (teacher_f32 and best):
        return head + "): -"
    return (head + f"; the teacher from the {label!r} run, same machine, separate processes): "
            f"{teacher_f32['latency']['1']['p50_ms'] / best['latency']['1']['p50_ms']:.1f}x faster.")


def document(seed: dict, default: dict, others: list[tuple[str, dict]] = (),
             other_seeds: list[tuple[str, dict]] = ()) -> str:
    """`others`: other default-preset runs as (label, run), e.g. from
    benchmarks/results/default_v1/, kept as rows under their labels so that
    their numbers stay comparable (times and latencies only on one machine:
    the machines line says which run ran where). `other_seeds`: seed-preset
    runs on other machines, rows after the reference seed run's."""
    v = default["train"]["versions"]
    seeds = [("seed", seed), *other_seeds]
    machines = "; ".join(f"{label}: {_machine(run)}" for label, run in
                         [*seeds, *others, ("default", default)])
    return "\n".join([
        "# The default preset beside the seed preset (CIFAR-10, JPEG copy)", "",
        f"Machines: {machines}. Versions: tensorflow "
        f"{v.get('tensorflow')}, tf-keras {v.get('tf-keras')}, ai-edge-litert "
        f"{v.get('ai-edge-litert')}. "
        + " ".join(_config_line(f"Config of {label}", run["train"]["config"])
                   for label, run in [("default", default), *others]), "",
        "| preset | model | params | MACs | float top-1 (Keras) | int8 top-1 (TFLite) | epochs "
        "| s/epoch (median) | TFLite fp32 p50 ms | TFLite int8 p50 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(r for label, run in [*seeds, *others] for r in model_rows(label, run)),
        *model_rows("default", default), "",
        "Wall time per stage, minutes (distill stage = teacher + cache + student + scratch "
        "+ data and evaluation; \"(after)\": the baseline was trained after the timed "
        "pipeline, by benchmarks/add_scratch.py, and is not in its stages or total):", "",
        "| preset | teacher | teacher cache | distill student | scratch student | distill stage "
        "| export | bench | edge-model total | distill/plain epoch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(stage_rows(label, run) for label, run in [*seeds, *others]),
        stage_rows("default", default), "",
        speedup_line(seeds, default), ""])


def load_other_runs(table=OTHER_RUNS) -> list[tuple[str, dict]]:
    return [(label, load(name)) for label, name in table if (RESULTS / name).is_dir()]


def write_saved() -> str:
    """The table from every saved run (docs/results/default.md: make report)."""
    return document(load("seed"), load("default"), load_other_runs(),
                    load_other_runs(OTHER_SEEDS))


def main() -> int:
    print(write_saved())
    return 0


if __name__ == "__main__":
    sys.exit(main())
