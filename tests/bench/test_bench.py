"""bench end to end on a tiny exported folder: numbers, report, integrity."""

import json
import subprocess
import sys

import numpy as np
import pytest

from bench.run import BenchConfig, run
from edgekd.environment import int8_features
from edgekd.errors import EdgekdError
from edgekd.preprocess import Preprocessing
from edgekd.runtime import open_runner
from tests.conftest import ROOT, error_lines, run_cli

FAST = BenchConfig(threads=(1, 2), runs=20, seconds=0.05, warmup_runs=2, warmup_seconds=0.0)


def test_bench_is_tensorflow_free():
    code = ("import sys, bench.cli, bench.run, bench.worker, bench.report, edgekd.stats, bench.predict, "
            "edgekd.manifest, edgekd.runtime, edgekd.formats; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'tf_keras', 'keras', 'distill', 'export')); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def benched(tmp_path_factory, exported):
    import shutil
    folder = tmp_path_factory.mktemp("bench") / "artifacts"
    shutil.copytree(exported, folder)
    return folder, run(folder, FAST, progress=False)


def test_accuracy_and_agreement_are_recomputable(benched):
    folder, result = benched
    manifest = json.loads((folder / "manifest.json").read_text())
    pre = Preprocessing.from_dict(manifest["preprocessing"])
    with np.load(folder / "eval.npz") as z:
        x, y = pre.apply(z["x"]), z["y"]
    with np.load(folder / "reference.npz") as z:
        student_top1 = z["student_logits"].argmax(-1)
    row = next(r for r in result["artifacts"] if r["name"] == "student_tflite_int8")
    preds = open_runner(folder / "student_int8.tflite", "tflite").predict(x).argmax(-1)
    assert row["accuracy"] == pytest.approx(np.mean(preds == y))
    assert row["agreement_student"] == pytest.approx(np.mean(preds == student_top1))
    fp32 = next(r for r in result["artifacts"] if r["name"] == "student_tflite_fp32")
    assert fp32["agreement_student"] == 1.0
    assert fp32["accuracy"] == pytest.approx(manifest["models"]["student"]["accuracy"])
    # per class and confusion, recounted here image by image
    labels = manifest["dataset"]["labels"]
    for k in range(len(labels)):
        mine = preds[y == k]
        assert row["per_class_accuracy"][k] == (pytest.approx(np.mean(mine == k)) if len(mine)
                                                else None)
        for j in range(len(labels)):
            assert row["confusion"][k][j] == int(np.sum(mine == j))


def test_report_per_class_section(benched):
    folder, result = benched
    md = (folder / "report.md").read_text()
    section = md.split("## Per class", 1)[1]
    labels = result["dataset"]["labels"]
    rows = {r["name"]: r for r in result["artifacts"]}
    for name in ("teacher_tflite_fp32", "student_tflite_fp32", "student_tflite_int8"):
        assert name in section.splitlines()[4]  # the table's header
    int8 = rows["student_tflite_int8"]
    first = next(line for line in section.splitlines() if line.startswith(f"| {labels[0]} |"))
    support = sum(int8["confusion"][0])
    assert first.split(" | ")[1] == str(support)
    best = rows[result["summary"]["best_student"]]
    assert f"Confusion matrix of {best['name']}" in section
    last = [line for line in section.splitlines() if line.startswith(f"| {labels[-1]} |")][-1]
    assert last == f"| {labels[-1]} | " + " | ".join(map(str, best["confusion"][-1])) + " |"


def test_latency_records(benched):
    _, result = benched
    assert len(result["artifacts"]) == 12
    for row in result["artifacts"]:
        assert set(row["latency"]) == {"1", "2"}
        for lat in row["latency"].values():
            assert lat["n"] == len(lat["samples_ns"]) >= 20
            ms = np.asarray(lat["samples_ns"]) / 1e6
            assert lat["p50_ms"] == pytest.approx(np.percentile(ms, 50))
        assert row["cold_start_ms"] > 0 and row["rss_peak_mb"] >= row["rss_base_mb"] > 0
    m = result["machine"]
    assert m["cores"] >= 1 and m["arch"] and m["cpu"]


def test_summary_ratios_and_best(benched):
    _, result = benched
    rows = {r["name"]: r for r in result["artifacts"]}
    s = result["summary"]
    base = rows["teacher_tflite_fp32"]
    for name, d in s["per_artifact"].items():
        assert d["speedup"]["1"] == pytest.approx(base["latency"]["1"]["p50_ms"]
                                                  / rows[name]["latency"]["1"]["p50_ms"])
        assert d["size_ratio"] == pytest.approx(base["bytes"] / rows[name]["bytes"])
    best = rows[s["best_student"]]
    floor = result["keras_accuracy"]["student"] - 0.01
    eligible = [r for r in rows.values() if r["role"] == "student" and r["accuracy"] >= floor]
    assert best["latency"]["1"]["p50_ms"] == min(r["latency"]["1"]["p50_ms"] for r in eligible)


def test_report_files(benched):
    folder, result = benched
    md = (folder / "report.md").read_text()
    main = md.split("## Per class")[0]
    assert main.count("\n| ") == 13  # header + 12 artifacts (separator starts with |-)
    assert f"**{result['summary']['best_student']}**" in md
    isa = ", ".join(int8_features()) or "n/a"  # read here, independently of bench
    assert result["machine"]["int8_features"] == int8_features()
    assert f"int8 features {isa};" in md
    png = (folder / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    saved = json.loads((folder / "bench.json").read_text())
    assert saved["artifacts"][0]["latency"]["1"]["samples_ns"]


@pytest.mark.parametrize("tamper", ["flip", "truncate"])
def test_tampered_artifact_refused(exported_copy, tamper):
    path = exported_copy / "student_int8.tflite"
    data = bytearray(path.read_bytes())
    if tamper == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[:-100]
    path.write_bytes(bytes(data))
    proc = run_cli("bench", str(exported_copy), "--runs", "1", "--seconds", "0")
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1
    assert "student_tflite_int8" in lines[0] and "does not match the manifest" in lines[0]
    assert not (exported_copy / "bench.json").exists()


def _edit_manifest(folder, fn):
    path = folder / "manifest.json"
    m = json.loads(path.read_text())
    fn(m)
    path.write_text(json.dumps(m))


@pytest.mark.parametrize("setup,msg", [
    (lambda f: (f / "manifest.json").unlink(), "manifest.json not found: run `python -m export"),
    (lambda f: (f / "manifest.json").write_text("{not json"), "manifest.json is not valid JSON"),
    (lambda f: _edit_manifest(f, lambda m: m.pop("preprocessing")),
     "invalid manifest at (top level): 'preprocessing' is a required property"),
    (lambda f: _edit_manifest(f, lambda m: m["artifacts"][0].update(format="coreml")),
     "invalid manifest at artifacts/0/format"),
    (lambda f: (f / "eval.npz").unlink(), "eval set:"),
])
def test_bad_manifests(exported_copy, setup, msg):
    setup(exported_copy)
    proc = run_cli("bench", str(exported_copy), "--runs", "1", "--seconds", "0")
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1 and msg in lines[0], lines


def test_bad_paths_and_filters(tmp_path, exported):
    proc = run_cli("bench", str(tmp_path / "none"))
    assert proc.returncode == 2 and "does not exist" in error_lines(proc)[0]
    with pytest.raises(EdgekdError, match="no artifact in the manifest matches"):
        run(exported, BenchConfig(roles=("student_scratch",)), progress=False)


def test_keras_extra_row(exported):
    """With TensorFlow installed, --keras adds the Keras models as labelled rows."""
    import shutil
    cfg = BenchConfig(threads=(1,), runs=5, seconds=0.0, warmup_runs=1, warmup_seconds=0.0,
                      formats=("tflite_fp32",), roles=("student",), keras=True, eval_limit=2000)
    folder = exported.parent / "keras-row"
    shutil.copytree(exported, folder, dirs_exist_ok=True)
    result = run(folder, cfg, progress=False)
    rows = {r["name"]: r for r in result["artifacts"]}
    assert set(rows) == {"student_tflite_fp32", "student_keras"}
    assert rows["student_keras"]["runner"]["runtime"] == "keras"
    assert rows["student_keras"]["predictions"] == rows["student_tflite_fp32"]["predictions"]
    assert rows["student_keras"]["accuracy"] == pytest.approx(result["keras_accuracy"]["student"])
    assert "student_keras" in (folder / "report.md").read_text()
    assert "Keras/TensorFlow (extra row)" in (folder / "report.md").read_text()
