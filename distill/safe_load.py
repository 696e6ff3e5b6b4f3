"""The one Keras model loader of every stage, and the door every model file
passes before a framework reads it (distill.model_files' allow-lists).

Keras stores a Lambda layer's function as marshalled Python bytecode, which
runs when the model is rebuilt on load, and its loaders import the modules a
config names. So before anything is deserialized, the model's stored
configuration is read as plain data (the `.keras` zip's config.json, the `.h5`
file's model_config attribute, a SavedModel's keras_metadata.pb) and checked;
a SavedModel's graphs, an ONNX or TFLite file's ops likewise.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from distill.model_files import keras_config_problem, onnx_problem, refuse, savedmodel_problem, tflite_problem
from edgekd.errors import EdgekdError, first_line


def _h5_config(path: Path) -> list:
    import h5py
    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        return []
    return [json.loads(raw.decode() if isinstance(raw, bytes) else raw)]


def _keras_zip_config(path: Path) -> list:
    with zipfile.ZipFile(path) as z:
        return [json.loads(z.read("config.json"))] if "config.json" in z.namelist() else []


def _savedmodel_config(path: Path) -> list:
    meta = path / "keras_metadata.pb"
    if not meta.is_file():
        return []  # a plain SavedModel: graph functions only, no Python code to rebuild
    from tf_keras.protobuf import saved_metadata_pb2
    proto = saved_metadata_pb2.SavedMetadata()
    proto.ParseFromString(meta.read_bytes())
    return [json.loads(node.metadata) for node in proto.nodes if node.metadata]


def stored_config(path: Path) -> list:
    """The model's stored configuration(s) as plain JSON, read without Keras."""
    try:
        if path.is_dir():
            return _savedmodel_config(path)
        if zipfile.is_zipfile(path):
            return _keras_zip_config(path)
        return _h5_config(path)
    except Exception:  # noqa: BLE001 - unreadable: Keras' own loader names the problem
        return []


def problem(path: Path) -> str | None:
    """Why a model file is not plain data, or None."""
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return onnx_problem(path)
    if suffix == ".tflite":
        return tflite_problem(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        found = savedmodel_problem(path)
        if found:
            return found
    for cfg in stored_config(path):
        found = keras_config_problem(cfg)
        if found:
            return f"its Keras config at {found}"
    return None


def check_code(path: Path, what: str, trust_code: bool) -> None:
    """Refuse a model file that is not plain data (code, imports, I/O ops,
    custom ops), naming the entry, unless trusted."""
    if trust_code:
        return
    try:
        found = problem(path)
    except EdgekdError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser's error on a damaged file
        raise EdgekdError(f"cannot read {what} model {path}: {first_line(exc, 200)}") from None
    if found:
        raise refuse(path, what, found)


def load(path: str | Path, what: str, trust_code: bool = False, custom_objects=None):
    """A .keras/.h5 file or SavedModel folder -> tf_keras model, or one clear error."""
    from distill.tfenv import keras
    path = Path(path)
    if not path.exists():
        raise EdgekdError(f"{what} model {path} not found")
    check_code(path, what, trust_code)
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=not trust_code,
                                        custom_objects=custom_objects)
    except Exception as exc:  # Keras raises many types for a bad file
        raise EdgekdError(f"cannot load {what} model {path}: not a valid .keras file or "
                          f"SavedModel ({first_line(exc, 200)})") from None
    if not isinstance(model, keras.Model):
        raise EdgekdError(f"{what} model {path} is not a Keras model")
    return model
