"""Parity: run an exported file in its own runtime and compare it with the
Keras model on a fixed slice of eval.npz, against the gate of its format."""

from __future__ import annotations

import numpy as np

from edgekd.formats import Format


def compare(ref: np.ndarray, got: np.ndarray, labels: np.ndarray, fmt: Format) -> dict:
    """Numbers and verdict for one artifact. ref/got: logits (N, classes)."""
    if got.shape != ref.shape:
        return {"passed": False, "n": int(len(ref)), "top1_agreement": 0.0,
                "failures": [f"output shape {got.shape} != Keras {ref.shape}"]}
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(got))):
        where = "the Keras model" if not np.all(np.isfinite(ref)) else "the artifact"
        return {"passed": False, "n": int(len(ref)), "top1_agreement": 0.0,
                "failures": [f"{where} outputs NaN or infinite logits (a diverged model?)"]}
    diff = float(np.max(np.abs(got - ref)))
    logit_range = float(np.max(ref) - np.min(ref)) or 1.0
    agree = float(np.mean(np.argmax(got, -1) == np.argmax(ref, -1)))
    acc_ref = float(np.mean(np.argmax(ref, -1) == labels))
    acc_got = float(np.mean(np.argmax(got, -1) == labels))
    gate = fmt.gate
    failures = []
    if gate.max_rel_diff is not None and diff / logit_range > gate.max_rel_diff:
        failures.append(f"max |logit diff| {diff:.3g} is {diff / logit_range:.3g} of the logit "
                        f"range (limit {gate.max_rel_diff:g})")
    if agree < gate.min_top1_agreement:
        failures.append(f"top-1 agreement {100 * agree:.2f} % (limit "
                        f"{100 * gate.min_top1_agreement:g} %)")
    if gate.max_accuracy_drop is not None and acc_ref - acc_got > gate.max_accuracy_drop:
        failures.append(f"accuracy drop {100 * (acc_ref - acc_got):.2f} points (limit "
                        f"{100 * gate.max_accuracy_drop:g})")
    return {"passed": not failures, "n": int(len(ref)), "max_abs_diff": diff,
            "logit_range": logit_range, "rel_diff": diff / logit_range,
            "top1_agreement": agree, "accuracy_keras": acc_ref, "accuracy_artifact": acc_got,
            "accuracy_change": acc_got - acc_ref,
            "gate": {"max_rel_diff": gate.max_rel_diff,
                     "min_top1_agreement": gate.min_top1_agreement,
                     "max_accuracy_drop": gate.max_accuracy_drop},
            "failures": failures}
