"""Training a patch stem as one matrix product.

A patch stem (zoo.edge_res_scaled's `_p<s>`: an s x s convolution at stride s)
is, when s divides the image, a dense layer on non-overlapping s x s x C
patches. XLA on CPU computes that convolution's weight gradient far slower
than the same product written as a matrix multiplication: at 128 px the
student's stem took a fifth of a training step for a ninth of its MACs
(docs/history.md). So a phase whose model starts with such a stem trains a
twin instead: the same layers and variables behind a PatchProjection that
multiplies patches, which the teacher cache's reader lays out as channels
(`arrange`: a reshape and a transpose in numpy, on uint8, cheap on the CPU
threads that feed the step). The
saved model keeps its convolution; only training takes the other path, and
both compute the same function.
"""

from __future__ import annotations

import numpy as np

from distill.tfenv import keras, tf


def stem_stride(model: keras.Model) -> int:
    """s when the model's first layer is an s x s convolution at stride s
    (s > 1, no dilation or groups) applied to its only input, and s divides
    the input's height and width ('same' padding then pads nothing); else 0."""
    if len(model.inputs) != 1 or len(model.layers) < 2:
        return 0
    conv, (_, h, w, _) = model.layers[1], model.input_shape
    if type(conv) is not keras.layers.Conv2D or conv.input is not model.inputs[0]:
        return 0
    s = conv.kernel_size[0]
    if (conv.kernel_size != (s, s) or conv.strides != (s, s) or s < 2
            or conv.dilation_rate != (1, 1) or conv.groups != 1
            or conv.data_format != "channels_last" or not h or not w or h % s or w % s):
        return 0
    return s


def arrange(x: np.ndarray, s: int) -> np.ndarray:
    """(N, H, W, C) images -> (N, H/s, W/s, s*s*C) patches (a copy), each
    patch's values in the order of a (s, s, C, F) kernel reshaped to (s*s*C, F)."""
    n, h, w, c = x.shape
    patches = x.reshape(n, h // s, s, w // s, s, c).transpose(0, 1, 3, 2, 4, 5)
    return np.ascontiguousarray(patches).reshape(n, h // s, w // s, s * s * c)


class PatchProjection(keras.layers.Layer):
    """`conv` on patches laid out by `arrange`: one matrix product with the
    convolution's own kernel (and bias, and activation), so training it trains
    the convolution."""

    def __init__(self, conv: keras.layers.Conv2D, **kwargs):
        super().__init__(name=f"{conv.name}_as_product", **kwargs)
        self.conv = conv

    def call(self, x):
        kernel = self.conv.kernel
        filters = kernel.shape[-1]
        h, w, k = x.shape[1:]
        y = tf.matmul(tf.reshape(x, (-1, k)), tf.reshape(kernel, (k, filters)))
        if self.conv.use_bias:
            y = y + self.conv.bias
        return self.conv.activation(tf.reshape(y, (-1, h, w, filters)))


def twin(model: keras.Model) -> keras.Model:
    """`model` taking arranged patches: its stem as a PatchProjection, then
    every later layer of `model` itself (shared, not copied)."""
    s = stem_stride(model)
    if not s:
        raise ValueError(f"{model.name} does not start with a patch stem that divides its input")
    conv = model.layers[1]
    h, w, c = model.input_shape[1:]
    body = keras.Model(conv.output, model.outputs, name=f"{model.name}_body")
    patches = keras.Input((h // s, w // s, s * s * c), name="patches")
    return keras.Model(patches, body(PatchProjection(conv)(patches)), name=f"{model.name}_twin")

