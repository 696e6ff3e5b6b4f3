"""train_report.json: what distill measured, read by export and the benchmarks.

The schema below is its single definition; distill validates the report before
it writes it, and every reader loads it through `load()`.
"""

from __future__ import annotations

from pathlib import Path

from edgekd.files import check_schema, inside, read_json
from edgekd.roles import ROLES

NAME = "train_report.json"
_NUM = {"type": "number"}
_SECONDS = {"type": ["number", "null"]}
_PSEUDO_ROUND = {"threshold": _NUM, "used": {"type": "integer"}, "of": {"type": "integer"},
                 "per_class": {"type": "array"}, "teacher_accuracy_before": _NUM}

_MODEL = {
    "type": "object",
    "required": ["name", "params", "macs", "input_shape", "trained", "epochs", "accuracy",
                 "seconds_per_epoch"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "params": {"type": "integer", "minimum": 0},
        "macs": {"type": ["integer", "null"], "minimum": 0},  # null: a teacher not in Keras
        "input_shape": {"type": "array", "items": {"type": ["integer", "null"]}},
        "trained": {"type": "boolean"},  # False: a supplied model, evaluated only
        "source": {"type": "string"},  # the supplied model's path(s)
        "kind": {"type": "string"},  # a supplied teacher's: tf_keras, keras3, onnx, ...
        "input": {"type": "object"},  # its input contract: size, channels, scale, offset
        "input_from": {"type": "string"},  # why that contract: flags, the file, measured
        "output": {"type": "string"},  # the output read as logits, of a file with several
        "combine": {"type": "string"},  # an ensemble's rule
        "members": {"type": "array", "items": {"type": "object"}},  # each member's record
        # a teacher fine-tuned on pseudo-labels too (distill.pseudo.PseudoLabels.record)
        # (distill.pseudo.record: the last round's photos, and each round's)
        "pseudo_labels": {"type": "object", "required": ["threshold", "used", "of"],
                          "properties": {**_PSEUDO_ROUND, "rounds": {
                              "type": "array", "items": {"type": "object",
                                                         "properties": _PSEUDO_ROUND}}}},
        "epochs": {"type": "array", "items": {
            "type": "object", "required": ["epoch", "seconds"],
            "properties": {"epoch": {"type": "integer"}, "seconds": _NUM}}},
        "sparsity": {"type": "object", "additionalProperties": _NUM},
        "accuracy": {"type": "number", "minimum": 0, "maximum": 1},
        "seconds_per_epoch": _SECONDS,
    },
}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "edgekd train report",
    "type": "object",
    "required": ["dataset", "preprocessing", "models", "config", "versions", "machine",
                 "total_seconds"],
    "additionalProperties": False,
    "properties": {
        "dataset": {"type": "object", "required": ["name", "labels", "n_train", "n_test"],
                    "additionalProperties": False, "properties": {
                        "name": {"type": "string"}, "source": {"type": "string"},
                        "labels": {"type": "array", "minItems": 2, "items": {"type": "string"}},
                        "n_train": {"type": "integer", "minimum": 1},
                        "n_test": {"type": "integer", "minimum": 1},
                        "n_unlabeled": {"type": "integer", "minimum": 0},
                        # distill.unlabeled.Unlabeled.record: found, drawn, used, dropped
                        "unlabeled": {"type": "object",
                                      "additionalProperties": {"type": "integer"}}}},
        # role -> the labeled and unlabeled images its training saw
        "images_seen": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["labeled", "unlabeled"],
            "properties": {"labeled": {"type": "integer"}, "unlabeled": {"type": "integer"},
                           # the teacher's unlabeled ones: those it labeled itself
                           "pseudo_labels": {"type": "boolean"}}}},
        "preprocessing": {"type": "object"},  # edgekd.preprocess.Preprocessing checks it
        "models": {"type": "object", "required": ["teacher", "student"],
                   "propertyNames": {"enum": list(ROLES)}, "additionalProperties": _MODEL},
        "distillation_gain": _NUM,  # student minus scratch accuracy, when both exist
        "teacher_cache_seconds": _SECONDS,
        "teacher_cache_copies": {"type": ["integer", "null"], "minimum": 1},  # per image
        "distribution": {"type": "object", "properties": {
            "strategy": {"type": "string"}, "workers": {"type": "integer"},
            "replicas": {"type": "integer"}}},
        "config": {"type": "object"},  # distill.config.DistillConfig, as config.json
        "versions": {"type": "object"},
        "machine": {"type": "object"},
        "total_seconds": _NUM,
        "scratch_seconds": _NUM,  # a baseline added after the run (benchmarks.add_scratch)
        "artifacts": {"type": "string"},  # the folder it was written to
    },
}


def validate(report: dict) -> None:
    """Raise EdgekdError naming the first schema violation."""
    check_schema(report, SCHEMA, NAME)


def load(folder: Path) -> dict:
    """<folder>/train_report.json, validated."""
    report = read_json(inside(Path(folder), NAME, "train report"), "train report")
    validate(report)
    return report
