"""benchmarks/: the default-vs-seed table from synthetic runs with known
numbers (ratios and speed-ups computed here by hand), and the generator that
publishes docs/results/ and README's presets table."""

import sys

import pytest

from benchmarks import default_table
from benchmarks import report as readme_tables
from tests.conftest import ROOT


def _run(acc: dict, epochs: dict, p50: dict, cache: float | None) -> dict:
    models = {role: {"params": 1000, "macs": 2_000_000, "accuracy": a,
                     "epochs": [{"epoch": i + 1, "seconds": s} for i, s in enumerate(epochs[role])]}
              for role, a in acc.items()}
    arts = [{"role": role, "format": fmt, "accuracy": acc[role] - 0.01,
             "latency": {"1": {"p50_ms": ms}}} for (role, fmt), ms in p50.items()]
    mach = {"cpu": "Test CPU", "cores": 2}
    cfg = {"teacher_arch": "t", "teacher_epochs": 2, "student_arch": "s", "epochs": 3,
           "batch_size": 128, "optimizer": "sgd", "learning_rate": 0.1, "schedule": "onecycle",
           "weight_decay": 0.005, "augment": True, "temperature": 4.0, "alpha": 0.1,
           "teacher_cache_views": 5}
    return {"train": {"models": models, "teacher_cache_seconds": cache, "total_seconds": 600.0,
                      "machine": mach, "versions": {}, "config": cfg},
            "bench": {"artifacts": arts, "seconds": 120.0}, "stages": {"export_seconds": 60.0}}


def test_document_ratios_and_speedup():
    acc = {"teacher": 0.9, "student": 0.85, "student_scratch": 0.8}
    seed = _run(acc, {"teacher": [10, 10], "student": [9, 5, 5], "student_scratch": [4, 4, 4]},
                {("teacher", "tflite_fp32"): 2.0, ("student", "tflite_int8"): 0.5}, None)
    default = _run(acc, {"teacher": [30, 30], "student": [7, 6, 6],
                         "student_scratch": [5, 5, 5]},
                   {("teacher", "tflite_fp32"): 1.0, ("student", "tflite_int8"): 0.1}, 90.0)
    text = default_table.document(seed, default)
    # distill/plain epoch: medians 6 / 5 = 1.20 (default); 5 / 4 = 1.25 (seed)
    assert "| default | 1.0 | 1.5 | 0.3 | 0.2 | 10.0 | 1.0 | 2.0 | 13.0 | 1.20 |" in text
    assert "| seed | 0.3 | 0.0 | 0.3 | 0.2 | 10.0 | 1.0 | 2.0 | 13.0 | 1.25 |" in text
    # the seed teacher's fp32 p50 (2.0 ms) over the default int8 student's (0.1 ms)
    assert "20.0x faster" in text
    assert "| default | distilled student | 1,000 | 2.00 M | 85.00 % | 84.00 % | 3 | 6 |" in text


def test_baseline_added_after_the_pipeline_is_not_in_its_total():
    """stages.json from benchmarks/add_scratch.py: the pipeline's own distill,
    export and bench seconds; the scratch phase is shown, marked, not summed."""
    acc = {"teacher": 0.9, "student": 0.85, "student_scratch": 0.8}
    run = _run(acc, {"teacher": [60, 60], "student": [6, 6, 6], "student_scratch": [5, 5, 5]},
               {("teacher", "tflite_fp32"): 1.0, ("student", "tflite_int8"): 0.1}, 30.0)
    run["stages"] = {"distill_seconds": 300.0, "export_seconds": 30.0, "bench_seconds": 90.0}
    row = default_table.stage_rows("default", run)
    # teacher 120 s = 2.0 min, cache 0.5, student 0.3, scratch 0.25 (after),
    # pipeline 300 + 30 + 90 = 420 s = 7.0 min (the report's 600 s and bench's 120 s unused)
    assert row == "| default | 2.0 | 0.5 | 0.3 | 0.2 (after) | 5.0 | 0.5 | 1.5 | 7.0 | 1.20 |"


def test_add_scratch_needs_a_finished_pipeline(tmp_path):
    """benchmarks/add_scratch.py on a folder that was never exported: one line, exit 2."""
    import subprocess
    (tmp_path / "train_report.json").write_text('{"total_seconds": 1.0}')
    res = subprocess.run([sys.executable, "-m", "benchmarks.add_scratch", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"add_scratch: error: {tmp_path / 'manifest.json'} is missing: run make edge-model "
        "(distill, export, bench) on this folder first"]
    assert not (tmp_path / "edge_model_stages.json").exists()


def test_an_earlier_default_run_keeps_its_rows():
    acc = {"teacher": 0.9, "student": 0.85, "student_scratch": 0.8}
    epochs = {"teacher": [10, 10], "student": [9, 5, 5], "student_scratch": [4, 4, 4]}
    p50 = {("teacher", "tflite_fp32"): 2.0, ("student", "tflite_int8"): 0.5}
    seed, default = _run(acc, epochs, p50, None), _run(acc, epochs, p50, None)
    earlier = _run({"teacher": 0.7, "student": 0.75, "student_scratch": 0.8}, epochs, p50, None)
    text = default_table.document(seed, default, [("default v1", earlier)])
    lines = text.splitlines()
    v1 = [i for i, line in enumerate(lines) if line.startswith("| default v1 |")]
    now = [i for i, line in enumerate(lines) if line.startswith("| default |")]
    assert len(v1) == 4 and len(now) == 4  # 3 models + 1 stage row each
    assert v1[0] < now[0]  # the earlier run first, below the seed rows
    assert "| default v1 | teacher | 1,000 | 2.00 M | 70.00 % | - |" in text  # no int8 artifact
    assert "Config of default v1: teacher t 2 epochs" in text
    assert "teacher cache views 5, XLA" in text  # no mirror in these configs
    default["train"]["config"]["teacher_cache_mirror"] = True
    assert "teacher cache views 5 (and mirrors), XLA" in default_table.document(seed, default)
    assert "default v1" not in default_table.document(seed, default)


def test_speedup_only_between_runs_on_one_kind_of_cpu():
    """int8 against fp32 depends on the CPU's int8 instructions: a seed teacher
    timed on one host and a student on another give no ratio, and the machines
    line says which run ran where."""
    acc = {"teacher": 0.9, "student": 0.85}
    epochs = {"teacher": [10, 10], "student": [5, 5, 5]}
    seed = _run(acc, epochs, {("teacher", "tflite_fp32"): 2.4}, None)
    default = _run(acc, epochs, {("student", "tflite_int8"): 0.06}, None)
    assert default_table.speedup_line([("seed", seed)], default).endswith(": 40.0x faster.")
    default["train"]["machine"] = {"cpu": "Xeon", "cores": 2,
                                   "int8_features": ["avx2", "avx512_vnni"]}
    line = default_table.speedup_line([("seed", seed)], default)
    assert line.endswith("not computed: the seed runs were timed on Test CPU, 2 cores, this run "
                         "on Xeon (avx2, avx512_vnni), 2 cores; benchmarks/latency_vs_seed*.md "
                         "times both models in one process on one machine.")
    text = default_table.document(seed, default)
    assert "Machines: seed: Test CPU, 2 cores; default: Xeon (avx2, avx512_vnni), 2 cores." in text
    assert "40.0x" not in text


def test_ablation_document_deltas_and_grid():
    from benchmarks import default_ablation
    res = {"full recipe": {"accuracy": 0.80, "median_epoch_s": 6.0},
           "no teacher": {"accuracy": 0.7725, "median_epoch_s": 6.5},
           "no teacher cache": {"accuracy": 0.79, "median_epoch_s": 12.3},
           "T4 alpha0.1": {"accuracy": 0.80, "median_epoch_s": 6.0},
           "T1 alpha0.5": {"accuracy": 0.7512, "median_epoch_s": None}}
    saved = {"command": "python benchmarks/default_ablation.py --subset 100 --epochs 2",
             "subset": 100, "epochs": 2, "dataset": "d", "n_test": 50,
             "machine": {"cpu": "Test CPU", "cores": 2}, "versions": {"tensorflow": "9.9"},
             "teacher_accuracy": 0.9, "teacher_arch": "big_net", "results": res}
    text = default_ablation.document(saved)
    # 77.25 - 80.00 = -2.75 points; the scratch row comes right after the reference
    assert ("| no teacher | same student from scratch (plain epochs, online augmentation) "
            "| 77.25 % | -2.75 | 6.5 |") in text
    assert "| 79.00 % | -1.00 | 12.3 |" in text
    lines = text.splitlines()
    assert lines.index(next(l for l in lines if l.startswith("| no teacher |"))) == \
        lines.index(next(l for l in lines if l.startswith("| full recipe |"))) + 1
    # grid: rows are temperatures, columns alphas 0, 0.1 and 0.5; missing cells are "-"
    assert "| T = 1 | - | - | 75.12 % |" in text
    assert "| T = 4 | - | 80.00 % | - |" in text
    assert "(big_net, top-1 90.00 %)" in text and "tensorflow 9.9" in text
    # variants not run yet are left out, not printed empty
    assert "no mirrored targets" not in text


def test_ablation_plan_runs_each_variant_once_reference_excluded():
    from benchmarks import default_ablation
    names = [n for n, _ in default_ablation.plan()]
    assert len(names) == len(set(names))
    assert "full recipe" not in names and "T4 alpha0.1" not in names  # the reference run
    assert len(names) == len(default_ablation.ABLATION) - 1 + 4 * 3 - 1
    assert dict(default_ablation.plan())["T10 alpha0.5"] == ["--temperature", "10.0",
                                                            "--alpha", "0.5"]


def test_ablation_document_teacher_targets_table():
    from benchmarks import default_ablation
    base = {"command": "c", "subset": 100, "epochs": 2, "dataset": "d", "n_test": 50,
            "machine": {"cpu": "Test CPU", "cores": 2}, "teacher_accuracy": 0.9,
            "teacher_arch": "big_net", "results": {"full recipe": {"accuracy": 0.8,
                                                                   "median_epoch_s": 6.0}}}
    assert "Smoothed and mixed targets for the teacher" not in default_ablation.document(base)
    teachers = {"subset teacher, mixup 0.2": {"teacher_accuracy": 0.71234,
                                              "teacher_median_epoch_s": 18.44, "accuracy": 0.6543}}
    text = default_ablation.document({**base, "teachers": teachers})
    assert ("| subset teacher, mixup 0.2 | the same with mixup, lambda ~ Beta(0.2, 0.2) "
            "| 71.23 % | 18.4 | 65.43 % |") in text
    assert "| subset teacher | teacher trained" not in text  # not run: left out


def test_speedup_uses_the_seed_run_timed_on_the_default_runs_machine():
    """Two seed runs on two CPUs: the ratio comes from the one on the default
    run's CPU (3.0 / 0.1 = 30x), never from the other (2.0 / 0.1 = 20x); with
    no seed run on that CPU it is not computed, and the line says why."""
    acc = {"teacher": 0.9, "student": 0.85, "student_scratch": 0.8}
    epochs = {"teacher": [10, 10], "student": [9, 5, 5], "student_scratch": [4, 4, 4]}
    seed_a = _run(acc, epochs, {("teacher", "tflite_fp32"): 2.0}, None)
    seed_b = _run(acc, epochs, {("teacher", "tflite_fp32"): 3.0}, None)
    default = _run(acc, epochs, {("student", "tflite_int8"): 0.1}, 30.0)
    for run, cpu in ((seed_a, "CPU A"), (seed_b, "CPU B"), (default, "CPU B")):
        run["train"]["machine"] = {"cpu": cpu, "cores": 2}
    text = default_table.document(seed_a, default, other_seeds=[("seed, B", seed_b)])
    assert text.splitlines()[-1] == (
        "Default int8 student vs the tutorial teacher's fp32 TFLite (p50, batch 1, 1 thread; "
        "the teacher from the 'seed, B' run, same machine, separate processes): 30.0x faster.")
    assert "| seed, B | teacher | 1,000 |" in text and "| seed | teacher | 1,000 |" in text
    alone = default_table.document(seed_a, default)
    assert alone.splitlines()[-1].startswith(
        "Default int8 student vs the tutorial teacher's fp32 TFLite (p50, batch 1, 1 thread): "
        "not computed: the seed runs were timed on CPU A, 2 cores, this run on CPU B, 2 cores;")


def test_readme_splice_replaces_only_its_own_section():
    readme = ("a\n<!-- edgekd:seed:start -->\nold\n<!-- edgekd:seed:end -->\n"
              "<!-- edgekd:seed_xeon:start -->\nkeep\n<!-- edgekd:seed_xeon:end -->\n")
    out = readme_tables.splice(readme, "seed", "new")
    assert out == ("a\n<!-- edgekd:seed:start -->\nnew\n<!-- edgekd:seed:end -->\n"
                   "<!-- edgekd:seed_xeon:start -->\nkeep\n<!-- edgekd:seed_xeon:end -->\n")
    with pytest.raises(SystemExit, match="README.md has no <!-- edgekd:default:start -->"):
        readme_tables.splice(readme, "default", "x")


def test_every_published_table_regenerates_from_the_saved_runs():
    """docs/results/ and README's presets table are byte for byte what
    `make report` renders from benchmarks/results/ (none edited by hand)."""
    pages = readme_tables.pages()
    assert {p.name for p in pages} >= {"README.md", "default.md", "seed.md", "ablation.md"}
    for path, text in pages.items():
        assert path.read_text() == text, f"{path} is stale: run make report"
    assert readme_tables.main(["--check"]) == 0
