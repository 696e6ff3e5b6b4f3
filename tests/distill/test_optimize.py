"""Quantization-aware distillation and pruning on tiny models: the requested
sparsity is reached and survives export; QAT students export to int8 TFLite and
QDQ ONNX that match the QAT Keras model."""

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgekd import manifest as mf
from edgekd.errors import EdgekdError
from edgekd.preprocess import Preprocessing
from edgekd.runtime import open_runner
from tests.conftest import FASHION_SMALL

SPARSITY = 0.5


@pytest.fixture(scope="module")
def optimized(tmp_path_factory):
    from distill.config import resolve
    from distill.run import run as distill
    from edgekd.formats import FORMATS
    from export.run import run as export
    out = tmp_path_factory.mktemp("opt") / "artifacts"
    distill(resolve("quick", data=FASHION_SMALL, teacher_arch="tiny_teacher",
                    student_arch="tiny_student", teacher_epochs=2, epochs=2, qat_epochs=1,
                    prune_sparsity=SPARSITY, train_subset=2500, learning_rate=3e-3,
                    calib_size=200, batch_size=64, scratch=False), out, verbose=0)
    export(out, list(FORMATS), log=lambda *_: None)
    return out


def test_roles_and_files(optimized):
    names = {p.name for p in optimized.iterdir()}
    assert {"student.keras", "student_pruned.keras", "student_qat.h5",
            "student_pruned_qat.h5"} <= names
    manifest = mf.load(optimized)
    by_role = {}
    for a in manifest["artifacts"]:
        by_role.setdefault(a["role"], set()).add(a["format"])
    assert by_role["student_qat"] == by_role["student_pruned_qat"] == {"tflite_qat", "onnx_qat"}
    assert "tflite_qat" not in by_role["student"] and "tflite_int8" in by_role["student_pruned"]
    assert all(a["options"].get("qat") for a in manifest["artifacts"] if a["format"].endswith("qat"))


def test_pruned_student_reaches_requested_sparsity(optimized):
    from distill import optimize
    report = json.loads((optimized / "train_report.json").read_text())
    model = optimize.load(optimized / "student_pruned.keras", "student")
    measured = optimize.sparsity(model)
    assert len(measured) == 3  # two convs and the dense layer
    for layer, frac in measured.items():
        assert frac == pytest.approx(SPARSITY, abs=0.01), layer
    assert report["models"]["student_pruned"]["sparsity"] == pytest.approx(measured)
    assert max(report["models"]["student"]["sparsity"].values()) < 0.01  # the float one is dense


def _zero_fraction_tflite(path):
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    fracs = []
    for t in interp.get_tensor_details():
        if len(t["shape"]) in (2, 4) and t["shape"][0] > 1 and np.prod(t["shape"]) >= 16:
            try:
                fracs.append(float(np.mean(interp.get_tensor(t["index"]) == 0)))
            except ValueError:  # activations have no data before invoke
                pass
    return fracs


@pytest.mark.parametrize("artifact", ["student_pruned_fp32.tflite", "student_pruned_int8.tflite",
                                      "student_pruned_qat_int8.tflite"])
def test_sparsity_survives_tflite_export(optimized, artifact):
    fracs = _zero_fraction_tflite(optimized / artifact)
    assert len(fracs) >= 3 and min(fracs) >= SPARSITY - 0.02, fracs


def test_sparsity_survives_onnx_export(optimized):
    model = onnx.load(str(optimized / "student_pruned_fp32.onnx"))
    kernels = [numpy_helper.to_array(i) for i in model.graph.initializer if i.dims and
               len(i.dims) in (2, 4) and np.prod(i.dims) >= 16]
    assert len(kernels) == 3
    assert all(np.mean(k == 0) >= SPARSITY - 0.01 for k in kernels)


def test_pruning_shrinks_compressed_size(optimized):
    arts = {a["name"]: a for a in mf.load(optimized)["artifacts"]}
    dense, pruned = arts["student_tflite_fp32"], arts["student_pruned_tflite_fp32"]
    assert pruned["bytes"] == pytest.approx(dense["bytes"], rel=0.02)  # raw size: the same
    assert pruned["gzip_bytes"] < 0.8 * dense["gzip_bytes"]


@pytest.mark.parametrize("name", ["student_qat_tflite_qat", "student_qat_onnx_qat",
                                  "student_pruned_qat_tflite_qat", "student_pruned_qat_onnx_qat"])
def test_qat_artifacts_match_the_qat_keras_model(optimized, name):
    from distill import optimize
    manifest = mf.load(optimized)
    art = next(a for a in manifest["artifacts"] if a["name"] == name)
    keras_model = optimize.load(optimized / art["source"], art["role"])
    pre = Preprocessing.from_dict(manifest["preprocessing"])
    with np.load(optimized / "eval.npz") as z:
        x = pre.apply(z["x"][:256])
    ref = keras_model.predict(x, verbose=0)
    got = open_runner(optimized / art["path"], art["runtime"]).predict(x)
    agree = np.mean(got.argmax(-1) == ref.argmax(-1))
    assert agree >= 0.97 and art["parity"]["passed"]
    if art["runtime"] == "onnx":
        graph = onnx.load(str(optimized / art["path"])).graph
        assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in graph.node}
        int8 = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8]
        assert len(int8) >= 3  # the weights themselves are int8, not float + fake-quant
    else:
        from ai_edge_litert.interpreter import Interpreter
        dtypes = {np.dtype(t["dtype"]).name
                  for t in Interpreter(model_path=str(optimized / art["path"])).get_tensor_details()}
        assert "int8" in dtypes


def test_unsupported_layer_is_named():
    from distill import optimize
    from distill.tfenv import keras
    class Double(keras.layers.Layer):  # a custom layer tfmot has no QuantizeConfig for
        def call(self, t):
            return t * 2.0
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                              Double(name="double"), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(EdgekdError, match="cannot quantize layer 'double' \\(Double\\)"):
        optimize.qat_model(model)


def test_invalid_sparsity():
    from distill.config import resolve
    with pytest.raises(EdgekdError, match="prune sparsity must be in \\(0, 1\\), got 1.5"):
        resolve("quick", prune_sparsity=1.5)


def test_macs_are_counted_through_qat_and_pruning_wrappers():
    # The wrappers used to hide every layer from count_macs: QAT students reported 0 MACs.
    from distill import models, optimize
    student = models.build("seed_student", (32, 32, 3), 10)
    by_hand = 16 * 16 * 27 * 64 + 8 * 8 * 9 * 64 * 256 + 8 * 8 * 256 * 10  # as in test_models
    assert models.count_macs(student) == by_hand
    assert models.count_macs(optimize.qat_model(student)) == by_hand
    assert models.count_macs(optimize.prunable(student, 0.5, total_steps=10)) == by_hand


def test_epochs_zero_keeps_the_supplied_student_and_starts_qat_from_it(optimized, tmp_path):
    """--epochs 0 --student S: the distilled student is S unchanged (same outputs,
    no epochs), and the QAT phase still runs (from it: run._students wraps that student)."""
    from distill.config import resolve
    from distill.run import run as distill
    from distill.tfenv import keras
    out = tmp_path / "qat_only"
    distill(resolve("quick", data=FASHION_SMALL, teacher_path=str(optimized / "teacher.keras"),
                    student_path=str(optimized / "student.keras"), epochs=0, qat_epochs=1,
                    train_subset=1000, calib_size=50, batch_size=64, scratch=False), out, verbose=0)
    x = np.load(optimized / "eval.npz")["x"][:64].astype(np.float32) / 255.0
    before = keras.models.load_model(optimized / "student.keras").predict(x, verbose=0)
    after = keras.models.load_model(out / "student.keras").predict(x, verbose=0)
    np.testing.assert_array_equal(after, before)
    report = json.loads((out / "train_report.json").read_text())
    assert report["models"]["student"]["epochs"] == []
    assert len(report["models"]["student_qat"]["epochs"]) == 1
    assert (out / "student_qat.h5").is_file()
