"""The one Keras model loader of every stage, and what it refuses.

Keras stores a Lambda layer's function as marshalled Python bytecode, which
runs when the model is rebuilt on load. tf_keras refuses it in `.keras` files
(safe mode) but runs it from `.h5` files and SavedModels. So before anything
is deserialized, the model's stored configuration is read as plain data (the
`.keras` zip's config.json, the `.h5` file's model_config attribute, a
SavedModel's keras_metadata.pb) and a file that holds such code is refused,
naming the layer, unless the user passes --trust-model-code.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Iterator

from edgekd.errors import EdgekdError, first_line

TRUST_FLAG = "--trust-model-code"


def _walk(node) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def code_layers(config) -> list[str]:
    """Names of the layers in a Keras config that carry Python code: Lambda
    layers, and any object serialized with a bytecode function."""
    found = []
    for node in _walk(config):
        cfg = node.get("config") if isinstance(node.get("config"), dict) else node
        if node.get("class_name") == "Lambda" or node.get("function_type") == "lambda":
            name = cfg.get("name") or node.get("name") or "?"
            if name not in found:
                found.append(str(name))
    return found


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


def check_code(path: Path, what: str, trust_code: bool) -> None:
    """Refuse a model file that would run Python code on load, unless trusted."""
    if trust_code:
        return
    layers = [name for cfg in stored_config(path) for name in code_layers(cfg)]
    if layers:
        raise EdgekdError(
            f"{what} model {path} holds Python code that would run on load (Lambda layer "
            f"{', '.join(repr(n) for n in sorted(set(layers)))}); refusing to load it. If you "
            f"trust its author, pass {TRUST_FLAG}")


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
