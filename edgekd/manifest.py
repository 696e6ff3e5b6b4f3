"""manifest.json: the contract between export (writer) and bench (reader).

The schema below is the single definition; README.md documents it in prose.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from edgekd.errors import EdgekdError
from edgekd.files import check_schema, inside, read_json
from edgekd.formats import FORMATS
from edgekd.roles import ROLES

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "dtype"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": ["integer", "null"]}},
        "dtype": {"type": "string"},
        "quantization": {"type": ["object", "null"], "properties": {
            "scale": {"type": "number"}, "zero_point": {"type": "integer"}}},
    },
}
_FILE_FIELDS: dict = {
    "path": {"type": "string"}, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "bytes": {"type": "integer", "minimum": 1}}
_FILE = {"type": "object", "required": ["path", "sha256", "bytes"], "properties": _FILE_FIELDS}

_ARTIFACT = {
    "type": "object",
    "required": ["name", "role", "format", "runtime", "precision", "path", "bytes",
                 "sha256", "inputs", "outputs", "params", "macs", "parity", "source"],
    "properties": {
        "name": {"type": "string"},
        "role": {"enum": list(ROLES)},
        "gzip_bytes": {"type": "integer", "minimum": 1},
        "format": {"enum": sorted(FORMATS)},
        "runtime": {"enum": ["tflite", "onnx"]},
        "precision": {"type": "string"},
        "path": {"type": "string"},
        "bytes": {"type": "integer", "minimum": 1},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "source": {"type": "string"},
        "params": {"type": "integer", "minimum": 0},
        "macs": {"type": "integer", "minimum": 0},
        "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
        "outputs": {"type": "array", "minItems": 1, "items": _TENSOR},
        "options": {"type": "object"},  # the converter's settings (int8_io, opset, ...)
        "export_seconds": {"type": "number"},
        "parity": {"type": "object", "required": ["passed", "n", "top1_agreement"],
                   "additionalProperties": False, "properties": {
                       "passed": {"type": "boolean"}, "n": {"type": "integer"},
                       "top1_agreement": {"type": "number"}, "max_abs_diff": {"type": "number"},
                       "logit_range": {"type": "number"}, "rel_diff": {"type": "number"},
                       "accuracy_keras": {"type": "number"},
                       "accuracy_artifact": {"type": "number"},
                       "accuracy_change": {"type": "number"},
                       "gate": {"type": "object"},
                       "failures": {"type": "array", "items": {"type": "string"}}}},
    },
    "additionalProperties": False,
}
_MODEL = {"type": "object", "required": ["path", "sha256", "bytes", "params", "macs", "accuracy"],
          "properties": {**_FILE_FIELDS, "params": {"type": "integer", "minimum": 0},
                         "macs": {"type": "integer", "minimum": 0},
                         "accuracy": {"type": "number"}}}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "edgekd manifest",
    "type": "object",
    "required": ["schema_version", "edgekd_version", "versions", "dataset",
                 "preprocessing", "eval", "references", "artifacts"],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "edgekd_version": {"type": "string"},
        "created": {"type": "string"},
        "versions": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        "dataset": {"type": "object", "required": ["name", "labels"], "properties": {
            "name": {"type": "string"},
            "labels": {"type": "array", "minItems": 2, "items": {"type": "string"}},
            "n_eval": {"type": "integer", "minimum": 1},
            # role -> {"labeled": n, "unlabeled": m}: the images its training saw
            "images_seen": {"type": "object"}}},
        "preprocessing": {"type": "object", "required": ["height", "width", "channels",
                                                         "scale", "offset", "layout"]},
        "eval": _FILE,
        "calib": _FILE,
        "references": _FILE,
        # the Keras sources of the artifacts, by role (bench --keras measures them)
        "models": {"type": "object", "propertyNames": {"enum": list(ROLES)},
                   "additionalProperties": _MODEL},
        "export_seconds": {"type": "number"},
        "machine": {"type": "object"},  # where export ran (edgekd.environment.machine)
        "artifacts": {"type": "array", "items": _ARTIFACT},
    },
    "additionalProperties": False,
}


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def validate(manifest: dict) -> None:
    """Raise EdgekdError naming the first schema violation."""
    check_schema(manifest, SCHEMA, "manifest")


def load(folder: str | Path) -> dict:
    """Read and validate <folder>/manifest.json."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgekdError(f"artifacts folder {folder} does not exist (run `python -m export` first)")
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise EdgekdError(f"{path} not found: run `python -m export {folder}` to create it")
    manifest = read_json(inside(folder, MANIFEST_NAME, "manifest"), "manifest")
    validate(manifest)
    return manifest


def verify_file(folder: Path, record: dict, what: str) -> Path:
    """Check that a listed file exists and matches its sha256 and size."""
    path = inside(Path(folder), record["path"], what)
    if not path.is_file():
        raise EdgekdError(f"{what}: {path} is listed in the manifest but missing")
    size, digest = path.stat().st_size, sha256_file(path)
    if size != record["bytes"] or digest != record["sha256"]:
        raise EdgekdError(
            f"{what}: {path} does not match the manifest (sha256 {digest[:12]}..., "
            f"{size} bytes; expected {record['sha256'][:12]}..., {record['bytes']} bytes): "
            "refusing to use a modified or truncated file; re-run export")
    return path
