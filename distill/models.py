"""Model builders by name, loading user models, and params/MACs counting."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from distill import safe_load, students
from distill.tfenv import keras
from distill.zoo import ZOO, edge_res_scaled
from edgekd.errors import EdgekdError


def _tutorial(name: str, widths: tuple[int, int], input_shape, num_classes: int) -> keras.Model:
    """The Keras distillation tutorial's architecture: Conv(s2)-LeakyReLU(0.2)-
    MaxPool(2, s1)-Conv(s2)-Flatten-Dense, with no activation after the 2nd conv."""
    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(widths[0], (3, 3), strides=(2, 2), padding="same"),
        keras.layers.LeakyReLU(alpha=0.2),
        keras.layers.MaxPooling2D(pool_size=(2, 2), strides=(1, 1), padding="same"),
        keras.layers.Conv2D(widths[1], (3, 3), strides=(2, 2), padding="same"),
        keras.layers.Flatten(),
        keras.layers.Dense(num_classes),
    ], name=name)


def seed_teacher(input_shape, num_classes: int) -> keras.Model:
    """The tutorial's teacher: 1,515,018 parameters on 32x32x3, 10 classes."""
    return _tutorial("seed_teacher", (256, 512), input_shape, num_classes)


def seed_student(input_shape, num_classes: int) -> keras.Model:
    """The tutorial's student: 313,354 parameters on 32x32x3, 10 classes."""
    return _tutorial("seed_student", (64, 256), input_shape, num_classes)


def _small(name: str, widths: tuple[int, int], input_shape, num_classes: int) -> keras.Model:
    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(widths[0], 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(widths[1], 3, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(num_classes),
    ], name=name)


def tiny_teacher(input_shape, num_classes: int) -> keras.Model:
    """Small but real: for tests and smoke runs (~25K params on 28x28x1)."""
    return _small("tiny_teacher", (16, 32), input_shape, num_classes)


def tiny_student(input_shape, num_classes: int) -> keras.Model:
    """A few thousand parameters: for tests and smoke runs."""
    return _small("tiny_student", (4, 8), input_shape, num_classes)


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "seed_teacher": seed_teacher,
    "seed_student": seed_student,
    "tiny_teacher": tiny_teacher,
    "tiny_student": tiny_student,
    **ZOO,
}


def known(name: str) -> bool:
    return name in BUILDERS or edge_res_scaled(name) is not None or (
        students.parse(name) is not None)


def build(name: str, input_shape, num_classes: int, weights: str | None = None) -> keras.Model:
    """A zoo model by name (random init), or a pretrained student family's
    member (distill.students) with `weights`."""
    if students.parse(name) is not None:
        return students.build(name, input_shape, num_classes, weights)
    builder = BUILDERS.get(name) or edge_res_scaled(name)
    if builder is None:
        raise EdgekdError(f"unknown model {name!r}; valid models: {', '.join(BUILDERS)}, "
                          "edge_res_x<width>_s<stem stride> / _p<patch stem stride> "
                          "(e.g. edge_res_x0.5_s4, edge_res_x0.875_p8), or "
                          "mobilenet_v1_x<alpha>[_r<side>]")
    return builder(tuple(input_shape), num_classes)


def load_model(path: str | Path, what: str, trust_code: bool = False,
               custom_objects=None) -> keras.Model:
    """Every stage's Keras loader: refuses files that would run Python code on
    load unless `trust_code` (distill.safe_load)."""
    return safe_load.load(path, what, trust_code, custom_objects)


def check_io(model: keras.Model, input_shape, num_classes: int, what: str) -> None:
    got_in = tuple(model.input_shape[1:])
    if got_in != tuple(input_shape):
        raise EdgekdError(f"{what} model expects inputs {got_in}, but the data is "
                          f"{tuple(input_shape)}: pass --image-size or a matching model")
    got_out = model.output_shape[-1]
    if got_out != num_classes:
        raise EdgekdError(f"{what} model has {got_out} outputs, the data has {num_classes} classes")


def _flat_layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


def _layer_macs(layer) -> int:
    """Multiply-accumulates per image of conv and dense layers (the bulk of the
    compute; BN, pooling and activations are not counted)."""
    def prod(xs):
        out = 1
        for v in xs:
            out *= int(v)
        return out
    L = keras.layers
    # tfmot's QuantizeWrapper and PruneLowMagnitude wrap one layer: the wrapped
    # layer says what it is, the wrapper holds the graph's shapes.
    kind = layer.layer if isinstance(layer, L.Wrapper) else layer
    if isinstance(kind, L.SeparableConv2D):
        h, w = layer.output_shape[1:3]
        kh, kw = kind.kernel_size
        cin = layer.input_shape[-1]
        return h * w * (kh * kw * cin * kind.depth_multiplier
                        + cin * kind.depth_multiplier * kind.filters)
    if isinstance(kind, L.DepthwiseConv2D):
        h, w = layer.output_shape[1:3]
        kh, kw = kind.kernel_size
        return h * w * kh * kw * layer.input_shape[-1] * kind.depth_multiplier
    if isinstance(kind, L.Conv2D):
        h, w, cout = layer.output_shape[1:4]
        kh, kw = kind.kernel_size
        return h * w * cout * kh * kw * layer.input_shape[-1] // kind.groups
    if isinstance(kind, L.Dense):
        return prod(layer.input_shape[1:]) * kind.units
    return 0


def count_macs(model: keras.Model) -> int:
    return int(sum(_layer_macs(layer) for layer in _flat_layers(model)))


def summary(model: keras.Model) -> dict:
    return {"name": model.name, "params": int(model.count_params()), "macs": count_macs(model),
            "input_shape": list(model.input_shape[1:])}


__all__ = ["build", "load_model", "check_io", "count_macs", "summary", "BUILDERS"]
