"""Hostile model files of every kind edgekd reads. Each payload writes a
marker file when it runs: untrusted, the file is refused (naming it, the
entry and --trust-model-code) and the marker stays absent; trusted, the same
file's payload runs (the control that lets each test fail)."""

from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgekd.errors import EdgekdError
from edgekd.preprocess import Preprocessing

PRE = Preprocessing(4, 4, 3)
LABELS = ["a", "b"]


def _refused(fn, path: Path, entry: str) -> str:
    with pytest.raises(EdgekdError) as info:
        fn()
    msg = str(info.value)
    assert str(path) in msg and entry in msg and "--trust-model-code" in msg, msg
    return msg


def _keras_load(path, trust):
    from distill.safe_load import load
    return load(path, "teacher", trust)


def _teacher_load(path, trust):
    from distill import teachers
    return teachers.load((str(path),), PRE, LABELS, trust_code=trust)


def _input():
    from distill.tfenv import keras
    return keras.Input((4, 4, 3))


def _lambda_h5(tmp: Path, marker: Path) -> Path:
    from distill.tfenv import keras
    x = _input()
    y = keras.layers.Lambda(
        lambda t, m=str(marker): (__import__("pathlib").Path(m).write_text("ran"), t)[1])(x)
    y = keras.layers.Dense(2)(keras.layers.Flatten()(y))
    keras.Model(x, y).save(tmp / "lambda.h5")
    return tmp / "lambda.h5"


def _residual_h5(tmp: Path, marker: Path) -> Path:
    """The lambda hides in an RNN cell wrapper's residual_fn (stored as
    residual_fn_type: "lambda"), where no Lambda layer names it."""
    from tf_keras.src.layers.rnn.cell_wrappers import ResidualWrapper

    from distill.tfenv import keras
    x = keras.Input((3, 2))
    cell = ResidualWrapper(keras.layers.SimpleRNNCell(2), residual_fn=lambda i, o, m=str(marker): (
        __import__("pathlib").Path(m).write_text("ran"), o)[1])
    y = keras.layers.Dense(2)(keras.layers.RNN(cell)(x))
    keras.Model(x, y).save(tmp / "residual.h5")
    return tmp / "residual.h5"


def _module_keras(tmp: Path, marker: Path, monkeypatch) -> Path:
    """A .keras whose config names a module: Keras imports it to find the class."""
    from distill.tfenv import keras
    (tmp / "edgekd_evil_module.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from tf_keras.src.engine.functional import Functional\n")
    monkeypatch.syspath_prepend(str(tmp))
    x = _input()
    keras.Model(x, keras.layers.Dense(2)(keras.layers.Flatten()(x))).save(tmp / "plain.keras")
    with zipfile.ZipFile(tmp / "plain.keras") as z:
        files = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(files["config.json"])
    cfg["module"] = "edgekd_evil_module"  # the model's own class, Functional, is looked up there
    files["config.json"] = json.dumps(cfg).encode()
    with zipfile.ZipFile(tmp / "module.keras", "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return tmp / "module.keras"


def _custom_keras(tmp: Path, marker: Path) -> Path:
    """A registered custom layer whose constructor is the payload (refused for
    its module, this test file, before its class name)."""
    from distill.tfenv import keras

    @keras.saving.register_keras_serializable("edgekd_test")
    class Marker(keras.layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            marker.write_text("ran")

        def call(self, x):
            return x
    x = _input()
    keras.Model(x, keras.layers.Dense(2)(keras.layers.Flatten()(Marker()(x)))).save(tmp / "c.keras")
    return tmp / "c.keras"


def _io_savedmodel(tmp: Path, marker: Path) -> Path:
    """A SavedModel teacher whose serving graph writes a file (a graph op, no Python)."""
    from distill.tfenv import tf

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 3], tf.float32)])
        def serve(self, x):
            tf.io.write_file(str(marker), "ran")
            return {"logits": tf.reduce_mean(x, axis=[1, 2])[:, :2]}
    module = Writer()
    tf.saved_model.save(module, str(tmp / "io_model"), signatures={"serving_default": module.serve})
    return tmp / "io_model"


@pytest.mark.parametrize("make, entry", [
    (_lambda_h5, "'Lambda'"),
    (_residual_h5, "'ResidualWrapper'"),
    (_custom_keras, "'tests.test_model_files'"),
])
def test_keras_code_is_refused_and_runs_only_when_trusted(tmp_path, make, entry):
    marker = tmp_path / "ran.txt"
    path = make(tmp_path, marker)
    marker.unlink(missing_ok=True)  # building the model here ran it once
    _refused(lambda: _keras_load(path, False), path, entry)
    _refused(lambda: _teacher_load(path, False), path, entry)
    assert not marker.exists()
    _keras_load(path, True)
    assert marker.read_text() == "ran"


def test_a_module_named_in_a_config_is_not_imported(tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    path = _module_keras(tmp_path, marker, monkeypatch)
    _refused(lambda: _keras_load(path, False), path, "'edgekd_evil_module'")
    assert not marker.exists()
    with contextlib.suppress(EdgekdError):  # Dense is not in that module: Keras may fail after the import
        _keras_load(path, True)
    assert marker.read_text() == "ran"


def test_the_residual_lambda_is_named_by_its_type_key_too():
    from distill.model_files import keras_config_problem
    cfg = {"class_name": "Dense", "config": {"residual_fn": ["4wEAAAAAAAAA", None, None],
                                             "residual_fn_type": "lambda"}}
    assert "residual_fn_type" in keras_config_problem(cfg)
    assert keras_config_problem({"class_name": "Dense", "config": {"units": 2}}) is None


def test_a_savedmodel_that_writes_a_file_is_refused(tmp_path):
    marker = tmp_path / "ran.txt"
    path = _io_savedmodel(tmp_path, marker)
    _refused(lambda: _teacher_load(path, False), path, "WriteFile")
    assert not marker.exists()
    teacher = _teacher_load(path, True)
    teacher.logits(np.zeros((1, 4, 4, 3), np.uint8))
    assert marker.read_text() == "ran"


def test_a_savedmodel_may_not_call_the_checkpoint_functions(tmp_path):
    """SaveV2 is allowed in TensorFlow's own __traced_save function only, and
    only the saver may call that."""
    from tensorflow.core.protobuf import saved_model_pb2

    from distill.model_files import savedmodel_problem
    from distill.tfenv import tf

    class Plain(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
        def serve(self, x):
            return {"y": x * 2}
    module = Plain()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    assert savedmodel_problem(tmp_path / "sm") is None
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((tmp_path / "sm" / "saved_model.pb").read_bytes())
    library = proto.meta_graphs[0].graph_def.library.function
    save = next(f.signature.name for f in library if f.signature.name.startswith("__inference__traced_save"))
    serve = next(f for f in library if "serve" in f.signature.name and "wrapper" not in f.signature.name)
    serve.node_def[0].attr["f"].func.name = save
    (tmp_path / "sm" / "saved_model.pb").write_bytes(proto.SerializeToString())
    assert "checkpoint function" in savedmodel_problem(tmp_path / "sm")


def _onnx_custom(tmp: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
         helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("EvilOp", ["f"], ["logits"], domain="evil.ops")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 4, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("evil.ops", 1)])
    model.ir_version = 8
    onnx.save(model, tmp / "custom.onnx")
    return tmp / "custom.onnx"


def _tflite_custom(tmp: Path) -> Path:
    """A converted TFLite file whose one operator code is turned into a custom op."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    from distill.tfenv import keras, tf
    x = _input()
    raw = tf.lite.TFLiteConverter.from_keras_model(
        keras.Model(x, keras.layers.Dense(2)(keras.layers.Flatten()(x)))).convert()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(raw, 0))
    for code in model.operatorCodes:
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = "EvilOp"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    (tmp / "custom.tflite").write_bytes(bytes(builder.Output()))
    return tmp / "custom.tflite"


@pytest.mark.parametrize("make", [_onnx_custom, _tflite_custom])
def test_custom_ops_are_refused_by_name(tmp_path, make):
    path = make(tmp_path)
    _refused(lambda: _teacher_load(path, False), path, "EvilOp")
    with pytest.raises(EdgekdError) as info:  # trusted, the runtime itself fails on it
        _teacher_load(path, True)
    assert "--trust-model-code" not in str(info.value)


def test_edgekd_own_models_are_data(mini_artifacts):
    from distill.safe_load import problem
    files = sorted(p for p in mini_artifacts.iterdir() if p.suffix in (".keras", ".h5"))
    assert files and [problem(p) for p in files] == [None] * len(files)


def test_the_cli_refuses_in_one_line(tmp_path):
    from tests.conftest import run_cli, small_npz
    marker = tmp_path / "ran.txt"
    path = _lambda_h5(tmp_path, marker)
    marker.unlink()
    data = small_npz(tmp_path / "d.npz", shape=(4, 4, 3), classes=2)
    proc = run_cli("distill", "--data", data, "--teacher", path, "--out", tmp_path / "out")
    lines = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert proc.returncode == 2 and len(lines) == 1 and "'Lambda'" in lines[0], proc.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()
