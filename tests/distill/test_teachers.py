"""Any teacher: Keras 3 files and exports, ONNX built without TensorFlow,
TFLite, ensembles, other input sizes. Each test distills a real student from
it and checks train_report.json's teacher accuracy against the teacher's own
outputs, computed here with the teacher's own runtime."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.conftest import run_cli, small_npz

SHAPE = (12, 12, 3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = small_npz(tmp_path_factory.mktemp("teachers") / "d.npz", shape=SHAPE)
    with np.load(path) as z:
        return path, {k: z[k] for k in z.files}


def _resize(x, hw):
    from distill.tfenv import tf
    return tf.image.resize(x.astype(np.float32), hw, antialias=True).numpy()


def _least_squares(x, y, classes=3):
    """A linear classifier on flattened float inputs, fitted in numpy."""
    a = np.c_[x.reshape(len(x), -1), np.ones(len(x))]
    w, *_ = np.linalg.lstsq(a, np.eye(classes)[y], rcond=None)
    return w[:-1].astype(np.float32), w[-1].astype(np.float32)


def _onnx_linear(path, w, b, in_shape):
    """Flatten + MatMul + Add, with onnx.helper only (no TensorFlow)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1),
         helper.make_node("MatMul", ["f", "w"], ["m"]),
         helper.make_node("Add", ["m", "b"], ["logits"])], "linear_teacher",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", *in_shape])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", w.shape[1]])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def onnx_nchw(data, tmp_path_factory):
    """A PyTorch-style teacher: NCHW input, pixels / 255."""
    _, z = data
    x = np.transpose(z["x_train"] / 255.0, (0, 3, 1, 2))
    w, b = _least_squares(x, z["y_train"])
    path = _onnx_linear(tmp_path_factory.mktemp("onnx") / "t.onnx", w, b, (3, *SHAPE[:2]))
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path))
    xt = np.transpose(z["x_test"] / np.float32(255), (0, 3, 1, 2)).astype(np.float32)
    return path, float(np.mean(sess.run(None, {"x": xt})[0].argmax(-1) == z["y_test"]))


@pytest.fixture(scope="module")
def keras3_teacher(data, tmp_path_factory):
    """A Keras 3 model that scales pixels itself, saved as .keras and exported."""
    import keras as keras3
    _, z = data
    keras3.utils.set_random_seed(0)
    model = keras3.Sequential([keras3.Input(SHAPE), keras3.layers.Rescaling(1 / 255),
                               keras3.layers.Flatten(), keras3.layers.Dense(3)])
    model.compile("adam", keras3.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(z["x_train"].astype(np.float32), z["y_train"], epochs=8, verbose=0)
    root = tmp_path_factory.mktemp("keras3")
    model.save(root / "t.keras")
    model.export(str(root / "exported"), verbose=False)
    logits = np.asarray(model(z["x_test"].astype(np.float32), training=False))
    return root, float(np.mean(logits.argmax(-1) == z["y_test"]))


def _distill(tmp_path, data_path, *teacher_args):
    out = tmp_path / "art"
    proc = run_cli("distill", "--data", str(data_path), "--out", str(out), "--preset", "quick",
                   "--student-arch", "tiny_student", "--epochs", "1", "--no-scratch",
                   "--batch-size", "64", "--quiet", *teacher_args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "train_report.json").read_text())
    return out, report, proc.stdout


def _export_student(out):
    proc = run_cli("export", str(out), "--formats", "tflite_fp32")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    return {a["name"] for a in manifest["artifacts"]}


def test_keras3_keras_file(tmp_path, data, keras3_teacher):
    root, acc = keras3_teacher
    out, report, log = _distill(tmp_path, data[0], "--teacher", str(root / "t.keras"))
    t = report["models"]["teacher"]
    assert (t["kind"], t["trained"]) == ("keras3", False)
    assert t["accuracy"] == pytest.approx(acc, abs=1e-6) and acc > 0.9
    # its Rescaling layer: it takes raw pixels, whatever the data's scaling
    assert t["input"] == {"height": 12, "width": 12, "channels": 3, "scale": 1.0, "offset": 0.0}
    assert "its logits are cached, 1 view per image" in log
    assert not (out / "teacher.keras").exists()  # not a tf_keras model: not re-saved
    assert _export_student(out) == {"student_tflite_fp32"}


def test_keras3_export_savedmodel(tmp_path, data, keras3_teacher):
    root, acc = keras3_teacher
    out, report, _ = _distill(tmp_path, data[0], "--teacher", str(root / "exported"),
                              "--teacher-scale", "1")
    t = report["models"]["teacher"]
    assert t["kind"] == "savedmodel" and t["input"]["scale"] == 1.0
    assert t["accuracy"] == pytest.approx(acc, abs=1e-6)
    assert (out / "student.keras").is_file()


def test_onnx_teacher_built_without_tensorflow(tmp_path, data, onnx_nchw):
    path, acc = onnx_nchw
    out, report, _ = _distill(tmp_path, data[0], "--teacher", str(path))
    t = report["models"]["teacher"]
    assert t["kind"] == "onnx" and t["params"] == 12 * 12 * 3 * 3 + 3
    assert t["accuracy"] == pytest.approx(acc, abs=1e-6) and acc > 0.9  # NCHW transposed right
    assert report["config"]["teacher_path"] == str(path)
    assert _export_student(out) == {"student_tflite_fp32"}


def test_tflite_teacher(tmp_path, data):
    from distill.tfenv import keras, tf
    _, z = data
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(z["x_train"] / np.float32(255), z["y_train"], epochs=8, verbose=0)
    path = tmp_path / "t.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(str(path))
    it.resize_tensor_input(0, [len(z["x_test"]), *SHAPE])
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], (z["x_test"] / np.float32(255)))
    it.invoke()
    acc = float(np.mean(it.get_tensor(it.get_output_details()[0]["index"]).argmax(-1)
                        == z["y_test"]))
    _, report, _ = _distill(tmp_path, data[0], "--teacher", str(path))
    t = report["models"]["teacher"]
    assert t["kind"] == "tflite" and t["accuracy"] == pytest.approx(acc, abs=1e-6)


def test_ensemble_of_two(tmp_path, data, onnx_nchw, keras3_teacher):
    (onnx_path, onnx_acc), (root, k3_acc) = onnx_nchw, keras3_teacher
    _, report, _ = _distill(tmp_path, data[0], "--teacher", str(onnx_path),
                            "--teacher", str(root / "t.keras"))
    t = report["models"]["teacher"]
    assert t["kind"] == "ensemble" and t["combine"] == "mean of log-probabilities"
    assert [m["kind"] for m in t["members"]] == ["onnx", "keras3"]
    assert [m["accuracy"] for m in t["members"]] == pytest.approx([onnx_acc, k3_acc], abs=1e-6)
    # the ensemble's own accuracy, recomputed from the members' recorded rule
    from distill.teachers import load
    from edgekd.preprocess import Preprocessing
    pre = Preprocessing(*SHAPE)
    members = [load((str(p),), pre, ["0", "1", "2"]) for p in (onnx_path, root / "t.keras")]
    _, z = data
    logp = [m.logits(z["x_test"]) - np.log(np.exp(m.logits(z["x_test"])).sum(-1, keepdims=True))
            for m in members]
    assert t["accuracy"] == pytest.approx(
        float(np.mean(np.mean(logp, 0).argmax(-1) == z["y_test"])), abs=1e-6)
    assert report["config"]["teacher_path"] == [str(onnx_path), str(root / "t.keras")]


def test_teacher_at_another_input_size(tmp_path, data):
    """A 24x24 NHWC teacher teaches a 12x12 student: images are resized for it."""
    _, z = data
    w, b = _least_squares(_resize(z["x_train"], (24, 24)) / 255.0, z["y_train"])
    path = _onnx_linear(tmp_path / "big.onnx", w, b, (24, 24, 3))
    logits = _resize(z["x_test"], (24, 24)).reshape(len(z["x_test"]), -1) / 255.0 @ w + b
    acc = float(np.mean(logits.argmax(-1) == z["y_test"]))
    out, report, _ = _distill(tmp_path, data[0], "--teacher", str(path))
    t = report["models"]["teacher"]
    assert t["input"]["height"] == 24 and t["input_shape"] == [24, 24, 3]
    assert t["accuracy"] == pytest.approx(acc, abs=2e-3) and acc > 0.9
    assert report["models"]["student"]["input_shape"] == [12, 12, 3]


@pytest.mark.parametrize("case,msg", [
    ("kind", "cannot tell what kind of teacher"),
    ("labels", "lists other classes or another order than the data"),
    ("classes", "has 2 outputs, the data has 3 classes"),
])
def test_teacher_errors(tmp_path, data, onnx_nchw, case, msg):
    teacher = tmp_path / "t" / ("t.pt" if case == "kind" else "t.onnx")
    teacher.parent.mkdir()
    if case == "kind":
        teacher.write_bytes(b"torch pickle")
    elif case == "labels":
        os.link(onnx_nchw[0], teacher)
        (teacher.parent / "labels.txt").write_text("0\n2\n1\n")
    else:
        _onnx_linear(teacher, np.zeros((432, 2), np.float32), np.zeros(2, np.float32),
                     (3, 12, 12))
    proc = run_cli("distill", "--data", str(data[0]), "--out", str(tmp_path / "a"),
                   "--preset", "quick", "--teacher", str(teacher))
    assert proc.returncode == 2 and msg in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()


def _onnx_variant(path, w, b, batch, extra_output=False, extra_input=False):
    """The NCHW linear teacher with a fixed batch, a second output
    (probabilities, listed first) or a second input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
             helper.make_node("MatMul", ["f", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["logits"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, w.shape[1]])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, *SHAPE[:2]])]
    if extra_output:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=-1))
        outputs.insert(0, helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, w.shape[1]]))
    if extra_input:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [batch, 1]))
    graph = helper.make_graph(nodes, "t", inputs, outputs,
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def linear_nchw(data):
    _, z = data
    w, b = _least_squares(np.transpose(z["x_train"] / 255.0, (0, 3, 1, 2)), z["y_train"])
    xt = np.transpose(z["x_test"] / np.float32(255), (0, 3, 1, 2)).reshape(len(z["x_test"]), -1)
    return w, b, xt @ w + b


def _loaded(path, output=None):
    from distill import teachers
    from edgekd.preprocess import Preprocessing
    return teachers.load((str(path),), Preprocessing(*SHAPE), ["0", "1", "2"], output=output)


def test_onnx_teacher_with_a_fixed_batch_of_one(tmp_path, data, linear_nchw):
    w, b, expected = linear_nchw
    teacher = _loaded(_onnx_variant(tmp_path / "b1.onnx", w, b, batch=1))
    got = teacher.logits(data[1]["x_test"][:37])  # fed one image at a time
    np.testing.assert_allclose(got, expected[:37], rtol=1e-4, atol=1e-4)


def test_onnx_teacher_with_two_outputs_needs_one_named(tmp_path, data, linear_nchw):
    from edgekd.errors import EdgekdError
    w, b, expected = linear_nchw
    path = _onnx_variant(tmp_path / "two.onnx", w, b, batch="n", extra_output=True)
    with pytest.raises(EdgekdError, match=r"has 2 outputs \(probs, logits\): name the one holding "
                                          "the logits with --teacher-output NAME"):
        _loaded(path)
    with pytest.raises(EdgekdError, match="has no output 'score'"):
        _loaded(path, "score")
    teacher = _loaded(path, "logits")
    np.testing.assert_allclose(teacher.logits(data[1]["x_test"]), expected, rtol=1e-4, atol=1e-4)
    assert teacher.record()["output"] == "logits"
    _, report, _ = _distill(tmp_path, data[0], "--teacher", str(path), "--teacher-output", "logits")
    assert report["models"]["teacher"]["output"] == "logits"


def test_onnx_teacher_with_two_inputs_is_refused(tmp_path, linear_nchw):
    from edgekd.errors import EdgekdError
    w, b, _ = linear_nchw
    path = _onnx_variant(tmp_path / "in2.onnx", w, b, batch="n", extra_input=True)
    with pytest.raises(EdgekdError, match=r"takes 2 inputs \(x, mask\); edgekd feeds it one"):
        _loaded(path)
