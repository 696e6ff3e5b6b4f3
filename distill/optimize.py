"""Quantization-aware training and magnitude pruning (tensorflow-model-
optimization, on tf_keras), as phases of distillation.

QAT Keras models do not round-trip through `.keras` in tf_keras 2.21 (the
quantize layer's variables do not match on load); `.h5` with quantize_scope
does, so QAT students are saved as .h5 (see `save` / `load`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill.tfenv import keras
from edgekd.errors import EdgekdError, first_line

# isort: split
# After distill.tfenv, which selects Keras 2: tfmot does not work under Keras 3.
import tensorflow_model_optimization as tfmot  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_configs import (  # noqa: E402,E501
    Default8BitOutputQuantizeConfig,
)


def _unsupported(exc: Exception, model: keras.Model) -> EdgekdError:
    text = str(exc)
    layer = next((l for l in model.layers if l.name in text or type(l).__name__ in text), None)
    where = f"layer {layer.name!r} ({type(layer).__name__})" if layer else "a layer"
    return EdgekdError(f"quantization-aware training cannot quantize {where}: "
                       f"{first_line(exc, 200)}; use a student built from Conv2D/"
                       "DepthwiseConv2D/Dense/BatchNormalization/ReLU layers, or drop --qat")


def _annotate(layer):
    """tfmot has no quantize config for input preprocessing layers (a pretrained
    student's Rescaling and Resizing, distill.students): their output gets an
    8-bit quantizer, as the int8 converter will give it one."""
    if isinstance(layer, (keras.layers.Rescaling, keras.layers.Resizing)):
        return tfmot.quantization.keras.quantize_annotate_layer(
            layer, Default8BitOutputQuantizeConfig())
    return layer


def qat_model(student: keras.Model, prune_preserving: bool = False) -> keras.Model:
    """The student wrapped for QAT, starting from its current weights."""
    base = keras.models.clone_model(student, clone_function=_annotate)
    base.set_weights(student.get_weights())
    q = tfmot.quantization.keras
    try:
        with q.quantize_scope():  # the annotated layers' config must be known to clone
            annotated = q.quantize_annotate_model(base)
            if prune_preserving:  # collaborative optimization: QAT that keeps the zeros
                scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
                return q.quantize_apply(annotated, scheme)
            return q.quantize_apply(annotated)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise _unsupported(exc, base) from None


def prunable(student: keras.Model, sparsity: float, total_steps: int) -> keras.Model:
    """prune_low_magnitude with a polynomial decay from 0 to `sparsity` over
    the first 80 % of the steps, updated ~50 times (a schedule whose steps
    never come leaves the model dense)."""
    end = max(1, int(0.8 * total_steps))
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=sparsity, begin_step=0, end_step=end,
        frequency=max(1, end // 50))
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import (
        PruneRegistry,
    )

    def wrap(layer):  # layers tfmot cannot prune (Rescaling, Resizing) stay as they are
        if PruneRegistry.supports(layer):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer
    base = keras.models.clone_model(student)
    base.set_weights(student.get_weights())
    return keras.models.clone_model(base, clone_function=wrap)  # wrappers keep the weights


def pruning_callbacks() -> list:
    return [tfmot.sparsity.keras.UpdatePruningStep()]


def strip(model: keras.Model) -> keras.Model:
    return tfmot.sparsity.keras.strip_pruning(model)


def sparsity(model: keras.Model) -> dict[str, float]:
    """Fraction of exactly-zero weights in each conv/dense kernel (read from the
    variables: inside QAT wrappers `layer.kernel` is a symbolic tensor)."""
    out = {}
    for layer in model.layers:
        for var in layer.weights:
            leaf = var.name.split("/")[-1].split(":")[0]
            if leaf in ("kernel", "depthwise_kernel"):
                name = getattr(getattr(layer, "layer", layer), "name", layer.name)
                out[name] = float(np.mean(var.numpy() == 0))
    return out


def save(model: keras.Model, path: Path) -> None:
    model.save(path)


def load(path: Path, what: str, trust_code: bool = False) -> keras.Model:
    """A model of the artifacts folder (QAT students: .h5 in tfmot's scope)."""
    from distill.models import load_model
    if path.suffix == ".h5":
        with tfmot.quantization.keras.quantize_scope():
            return load_model(path, what, trust_code)
    return load_model(path, what, trust_code)
