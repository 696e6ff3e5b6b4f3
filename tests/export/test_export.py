"""export: every format loads in its runtime and matches Keras; the manifest
is valid and honest; bad inputs fail cleanly without touching the folder."""

import json
from dataclasses import replace

import numpy as np
import onnx
import pytest

from edgekd import manifest as mf
from edgekd.errors import EdgekdError
from edgekd.formats import FORMATS, formats_for

FLOAT_MODEL_FORMATS = formats_for(list(FORMATS), qat_model=False)
from edgekd.preprocess import Preprocessing, spread_indices
from edgekd.runtime import open_runner
from tests.conftest import error_lines, run_cli


def _artifact(manifest, role, fmt):
    return next(a for a in manifest["artifacts"] if a["role"] == role and a["format"] == fmt)


@pytest.fixture(scope="module")
def keras_logits(exported):
    """Independent Keras outputs on the parity slice (not the manifest's numbers)."""
    from distill.models import load_model
    pre = Preprocessing.from_dict(json.loads((exported / "preprocessing.json").read_text()))
    with np.load(exported / "eval.npz") as z:
        idx = spread_indices(len(z["y"]), 256)  # export's parity slice
        x = pre.apply(z["x"][idx])
        y = z["y"][idx]
    out = {r: load_model(exported / f"{r}.keras", r).predict(x, verbose=0)
           for r in ("teacher", "student")}
    return x, y, out


@pytest.mark.parametrize("fmt", FLOAT_MODEL_FORMATS)
@pytest.mark.parametrize("role", ["teacher", "student"])
def test_artifact_runs_and_matches_keras(exported, keras_logits, role, fmt):
    manifest = mf.load(exported)
    art = _artifact(manifest, role, fmt)
    assert art["parity"]["passed"], art["parity"]
    x, y, ref = keras_logits
    got = open_runner(exported / art["path"], art["runtime"]).predict(x)
    gate = FORMATS[fmt].gate
    agree = np.mean(got.argmax(-1) == ref[role].argmax(-1))
    assert agree >= gate.min_top1_agreement
    if gate.max_rel_diff is not None:
        rel = np.abs(got - ref[role]).max() / (ref[role].max() - ref[role].min())
        assert rel <= gate.max_rel_diff
    if fmt.endswith("fp32"):
        np.testing.assert_allclose(got, ref[role], atol=1e-4 * np.ptp(ref[role]))
    else:  # the recorded parity numbers are the ones we recompute
        assert art["parity"]["top1_agreement"] == pytest.approx(agree)


def test_manifest_schema_and_hashes(exported):
    manifest = mf.load(exported)  # validates against the schema
    assert {a["name"] for a in manifest["artifacts"]} == {
        f"{r}_{f}" for r in ("teacher", "student") for f in FLOAT_MODEL_FORMATS}
    for rec in [*manifest["artifacts"], manifest["eval"], manifest["references"]]:
        path = exported / rec["path"]
        assert mf.sha256_file(path) == rec["sha256"] and path.stat().st_size == rec["bytes"]
    assert manifest["preprocessing"] == json.loads((exported / "preprocessing.json").read_text())
    assert manifest["dataset"]["labels"][0] == "t-shirt/top"
    assert manifest["versions"]["tensorflow"].startswith("2.21")
    student = manifest["models"]["student"]
    assert _artifact(manifest, "student", "tflite_fp32")["params"] == student["params"]


def test_tflite_int8_tensors_are_int8(exported):
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(exported / "student_int8.tflite"))
    dtypes = {np.dtype(t["dtype"]).name for t in interp.get_tensor_details()}
    assert "int8" in dtypes and "int32" in dtypes  # int8 weights/activations, int32 biases
    weights = [t for t in interp.get_tensor_details() if len(t["shape"]) == 4
               and t["shape"][0] > 1]
    assert weights and all(np.dtype(t["dtype"]) == np.int8 for t in weights)
    # float32 I/O by default
    assert interp.get_input_details()[0]["dtype"] == np.float32
    dyn = Interpreter(model_path=str(exported / "student_dynamic.tflite"))
    assert "int8" in {np.dtype(t["dtype"]).name for t in dyn.get_tensor_details()}


def test_onnx_int8_is_qdq(exported):
    model = onnx.load(str(exported / "student_int8.onnx"))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_inits = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert len(int8_inits) >= 3  # two conv kernels and the dense kernel
    fp32 = onnx.load(str(exported / "student_fp32.onnx"))
    assert fp32.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch


def test_fp16_has_float16_weights(exported):
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(exported / "teacher_fp16.tflite"))
    assert "float16" in {np.dtype(t["dtype"]).name for t in interp.get_tensor_details()}


def test_int8_io(exported_copy):
    proc = run_cli("export", str(exported_copy), "--formats", "tflite_int8", "--int8-io",
                   "--roles", "student")
    assert proc.returncode == 0, proc.stderr[-1500:]
    manifest = mf.load(exported_copy)
    (art,) = manifest["artifacts"]
    assert art["options"]["int8_io"] is True and art["parity"]["passed"]
    inp, out = art["inputs"][0], art["outputs"][0]
    assert inp["dtype"] == "int8" and out["dtype"] == "int8"
    assert inp["quantization"]["scale"] == pytest.approx(1 / 255, rel=1e-3)
    assert inp["quantization"]["zero_point"] == -128
    # the old export's files are gone: the folder holds only what the manifest lists
    assert sorted(p.name for p in exported_copy.glob("*.tflite")) == ["student_int8.tflite"]


def _unchanged(folder, before):
    return sorted(p.name for p in folder.iterdir()) == before


@pytest.mark.parametrize("damage,msg", [
    (lambda f: (f / "student.keras").write_bytes(b"garbage"), "cannot load student model"),
    (lambda f: (f / "calib.npz").unlink(), "calib.npz not found"),
    (lambda f: (f / "preprocessing.json").write_text(json.dumps(
        {**json.loads((f / "preprocessing.json").read_text()), "height": 32, "width": 32})),
     "eval.npz images have shape (500, 28, 28, 1), expected (N, 32, 32, 1)"),
])
def test_bad_inputs_fail_cleanly(exported_copy, damage, msg):
    damage(exported_copy)
    before = sorted(p.name for p in exported_copy.iterdir())
    proc = run_cli("export", str(exported_copy))
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1 and msg in lines[0], lines
    assert _unchanged(exported_copy, before)
    assert not list(exported_copy.parent.glob(".*export-tmp"))


def test_model_not_matching_preprocessing(exported_copy, tmp_path):
    from distill.models import build
    build("tiny_student", (32, 32, 3), 10).save(exported_copy / "student.keras")
    proc = run_cli("export", str(exported_copy), "--formats", "onnx_fp32")
    assert proc.returncode == 2
    assert "student model expects inputs (32, 32, 3), but the data is (28, 28, 1)" in error_lines(proc)[0]


def test_unknown_format_lists_valid_ones(exported_copy):
    proc = run_cli("export", str(exported_copy), "--formats", "tflite_fp32,coreml")
    assert proc.returncode == 2
    assert error_lines(proc) == [
        "python -m export: error: unknown format(s) coreml; valid formats: " + ", ".join(FORMATS)]


def test_parity_failure_names_the_artifact(exported_copy, monkeypatch):
    from export import run as export_run
    impossible = replace(FORMATS["tflite_int8"],
                         gate=replace(FORMATS["tflite_int8"].gate, min_top1_agreement=1.01))
    monkeypatch.setitem(export_run.FORMATS, "tflite_int8", impossible)
    before = sorted(p.name for p in exported_copy.iterdir())
    with pytest.raises(EdgekdError, match=r"parity failed for student_tflite_int8: top-1 "
                                          r"agreement .* \(limit 101 %\)"):
        export_run.run(exported_copy, ["tflite_int8"], ("student",), log=lambda *_: None)
    assert _unchanged(exported_copy, before)
    manifest = export_run.run(exported_copy, ["tflite_int8"], ("student",), allow_failures=True,
                              log=lambda *_: None)
    assert manifest["artifacts"][0]["parity"]["passed"] is False
    assert mf.load(exported_copy)["artifacts"][0]["parity"]["failures"]


def test_a_teachers_parity_failure_is_recorded_not_fatal(exported_copy, monkeypatch):
    """The teacher is a reference, never deployed: its artifact that fails the gate
    is kept and marked failed with a line that says so; the student's still stop
    the export (above)."""
    from export import run as export_run
    impossible = replace(FORMATS["tflite_int8"],
                         gate=replace(FORMATS["tflite_int8"].gate, min_top1_agreement=1.01))
    monkeypatch.setitem(export_run.FORMATS, "tflite_int8", impossible)
    lines = []
    manifest = export_run.run(exported_copy, ["tflite_int8"], ("teacher",), log=lines.append)
    (art,) = manifest["artifacts"]
    assert art["name"] == "teacher_tflite_int8" and art["parity"]["passed"] is False
    assert mf.load(exported_copy)["artifacts"][0]["parity"]["passed"] is False
    assert lines[-1].startswith("[export] teacher_tflite_int8 failed its gate (top-1 agreement ")
    assert lines[-1].endswith("(limit 101 %)): kept, marked failed in manifest.json; the teacher "
                              "is not deployed")


def test_missing_folder():
    proc = run_cli("export", "/nonexistent/artifacts")
    assert proc.returncode == 2
    assert "artifacts folder /nonexistent/artifacts not found" in error_lines(proc)[0]


def test_a_full_disk_in_a_converter_is_an_environment_failure(exported_copy, monkeypatch):
    """Converters wrap ENOSPC in their own error types: export still exits 1
    (environment), not 2 (bad input), and leaves the folder as it was."""
    from export import run as export_run

    def full(model, path, inp):
        raise RuntimeError("tflite conversion: write failed: No space left on device")
    monkeypatch.setitem(export_run.CONVERTERS, "tflite_fp32", full)
    before = sorted(p.name for p in exported_copy.iterdir())
    proc = run_cli("export", str(exported_copy), "--formats", "tflite_fp32")
    lines = error_lines(proc)
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "converting teacher to tflite_fp32 failed" in lines[0] and "No space left" in lines[0]
    assert _unchanged(exported_copy, before)


def test_the_exported_folder_keeps_the_users_umask(exported_copy):
    """Export builds in a temporary sibling and swaps it in: the folder must
    end with the mode a plain mkdir gives, not mkdtemp's 0700."""
    import os

    from export import run as export_run
    old = os.umask(0o022)
    try:
        export_run.run(exported_copy, ["tflite_fp32"], ("student",), log=lambda *_: None)
    finally:
        os.umask(old)
    assert exported_copy.stat().st_mode & 0o777 == 0o755
