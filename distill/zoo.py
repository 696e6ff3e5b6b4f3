"""The default preset's model zoo: batch-norm students with residual,
depthwise-separable or plain pooled blocks, and stronger teachers.

The student budget is the tutorial student's: at most 313,354 parameters and
at most its 10.04M multiply-accumulates per 32x32 image. Parameters are cheap
at low resolution and MACs are cheap at high resolution, so the residual
students take a stride-2 stem (32x32 -> 16x16) and spend their width at 8x8
and 4x4. Measured on the 2-core dev machine (batch 128, tf_keras CPU,
docs/results/zoo_throughput.md): residual blocks train faster per MAC than
depthwise-separable ones (TF's depthwise back-prop is slow on CPU), and XLA
(`jit_compile`) makes the depthwise model ~8x slower but the residual ones
1.1-1.5x faster (the wide teacher 1.5x). So the default preset trains under
XLA (DistillConfig.jit_compile) and edge_sep is not a default student.

The default teacher is edge_pool, airbench's plain shape: on a 10,000-image
subset it beat edge_res_wide by 7 points at 0.88x its epoch time, and on the
full set by about 0.7 (docs/history.md). edge_pool_wide (1.5x the widths)
gained under a point on the subset for 1.9x the time. The other teachers and
students here are the ones the benchmarks (ablation, throughput, latency)
compare against; the presets use edge_pool, edge_res and edge_res_mid.
"""

from __future__ import annotations

import re

from distill.tfenv import keras

L = keras.layers


def _bn_relu(x):
    return L.ReLU()(L.BatchNormalization()(x))


def _conv(x, filters: int, stride: int = 1):
    return _bn_relu(L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x))


def _residual(x, filters: int, stride: int = 1):
    """A basic (ResNet v1) block: conv-BN-ReLU-conv-BN + shortcut, then ReLU.
    The shortcut is a 1x1 conv-BN when the shape changes."""
    y = _conv(x, filters, stride)
    y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    if stride != 1 or x.shape[-1] != filters:
        x = L.BatchNormalization()(L.Conv2D(filters, 1, strides=stride, use_bias=False)(x))
    return L.ReLU()(L.Add()([x, y]))


def _separable(x, filters: int, stride: int = 1):
    """MobileNet v1 block: depthwise 3x3-BN-ReLU, pointwise 1x1-BN-ReLU."""
    x = _bn_relu(L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x))
    return _bn_relu(L.Conv2D(filters, 1, use_bias=False)(x))


def _head(x, num_classes: int, pool=L.GlobalAveragePooling2D):
    return L.Dense(num_classes)(pool()(x))


def resnet(name: str, widths: tuple[int, ...], input_shape, num_classes: int,
           stem_stride: int = 1, blocks: int = 1, patch: bool = False) -> keras.Model:
    """Stem conv, then one stage per width (each but the first halves the
    resolution), `blocks` residual blocks per stage, global pooling, dense.
    A stem stride above 2 (a power of 2) is a chain of stride-2 convs (a 3x3
    kernel at stride 4 would skip pixels instead of summarising them), or with
    `patch` one conv whose kernel is the stride (a patchify stem)."""
    inputs = keras.Input(shape=input_shape)
    if patch:
        x = _bn_relu(L.Conv2D(widths[0], stem_stride, strides=stem_stride, padding="same",
                              use_bias=False)(inputs))
    else:
        x = _conv(inputs, widths[0], min(2, stem_stride))
        for _ in range(max(0, stem_stride.bit_length() - 2)):
            x = _conv(x, widths[0], 2)
    for stage, width in enumerate(widths):
        for block in range(blocks):
            x = _residual(x, width, 2 if stage > 0 and block == 0 else 1)
    return keras.Model(inputs, _head(x, num_classes), name=name)


def separable(name: str, width: int, input_shape, num_classes: int) -> keras.Model:
    """Full-resolution stem, then separable stages at 16x16 (x2 width),
    8x8 (x4) and 4x4 (x8) with 3, 4 and 3 blocks."""
    inputs = keras.Input(shape=input_shape)
    x = _conv(inputs, width)
    for mult, n in ((2, 3), (4, 4), (8, 3)):
        for i in range(n):
            x = _separable(x, width * mult, 2 if i == 0 else 1)
    return keras.Model(inputs, _head(x, num_classes), name=name)


def pooled(name: str, widths: tuple[int, ...], stem: int, input_shape, num_classes: int) -> keras.Model:
    """A plain (no shortcut) net in airbench's shape (Jordan, 2024): a full-resolution
    stem conv, then per width a conv, 2x2 max-pool, BN-ReLU and a second conv at the
    pooled resolution; global max-pool, dense. Pooling right after each stage's first
    conv keeps most of the compute at the higher resolution, where it pays most."""
    inputs = keras.Input(shape=input_shape)
    x = _conv(inputs, stem)
    for width in widths:
        x = L.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = _bn_relu(L.MaxPooling2D(2)(x))
        x = _conv(x, width)
    return keras.Model(inputs, _head(x, num_classes, L.GlobalMaxPooling2D), name=name)


def edge_res(input_shape, num_classes: int) -> keras.Model:
    """The default student: residual, stride-2 stem, widths 24-64-128.
    ~0.30M params, ~9.9M MACs on 32x32x3 (tutorial student: 0.31M, 10.04M)."""
    return resnet("edge_res", (24, 64, 128), input_shape, num_classes, stem_stride=2)


def edge_res_lite(input_shape, num_classes: int) -> keras.Model:
    """The latency student: widths 16-48-128, ~0.25M params and 6.45M MACs, so its
    int8 TFLite is >= 10x faster than the tutorial teacher's fp32 on a 1-thread x86
    (docs/results/latency_vs_seed_epyc.md). It keeps edge_res's 128-wide last stage, where
    the parameters are, and thins the two higher-resolution stages, where the MACs are.
    From an edge_pool teacher it stays below a reliable 85 % int8, even in 55 epochs."""
    return resnet("edge_res_lite", (16, 48, 128), input_shape, num_classes, stem_stride=2)


def edge_res_mid(input_shape, num_classes: int) -> keras.Model:
    """edge_res with a 16-wide first stage: widths 16-64-128, ~0.29M params and
    7.98M MACs, between edge_res and edge_res_lite: the latency preset's student. In
    the default recipe's 40 epochs it lands ~0.6 points below edge_res, for ~20 % fewer
    MACs; 55 epochs make up most of it. Worth it on x86 hosts without int8 dot
    products, where latency follows MACs."""
    return resnet("edge_res_mid", (16, 64, 128), input_shape, num_classes, stem_stride=2)


def edge_res_small(input_shape, num_classes: int) -> keras.Model:
    """Half the default student's width at the two low-resolution stages."""
    return resnet("edge_res_small", (24, 32, 64), input_shape, num_classes, stem_stride=2)


def edge_sep(input_shape, num_classes: int) -> keras.Model:
    """Depthwise-separable student: ~0.15M params, ~6.2M MACs on 32x32x3."""
    return separable("edge_sep", 24, input_shape, num_classes)


def edge_teacher(input_shape, num_classes: int) -> keras.Model:
    """The first default teacher: a full-resolution residual net, widths 32-64-128
    (~0.31M params but ~49M MACs: 5x the student's compute, all of it at
    higher resolution), ~4 minutes per CIFAR-10 epoch on 2 cores."""
    return resnet("edge_teacher", (32, 64, 128), input_shape, num_classes)


def edge_res_wide(input_shape, num_classes: int) -> keras.Model:
    """The second default teacher, until edge_pool: the student's shape (stride-2
    stem, same depth) at widths 64-128-256, 4x its params (~1.23M) and ~49M MACs.
    It trains as fast as edge_teacher (same MACs) but is clearly stronger than the
    student."""
    return resnet("edge_res_wide", (64, 128, 256), input_shape, num_classes, stem_stride=2)


def edge_pool(input_shape, num_classes: int) -> keras.Model:
    """The default teacher: stem 16, widths 32-128-128, ~0.50M params, 38.2M MACs."""
    return pooled("edge_pool", (32, 128, 128), 16, input_shape, num_classes)


def edge_pool_wide(input_shape, num_classes: int) -> keras.Model:
    """edge_pool at 1.5x the widths (stem 24, 48-192-192): ~1.12M params, 85.6M MACs."""
    return pooled("edge_pool_wide", (48, 192, 192), 24, input_shape, num_classes)


def edge_pool_student(input_shape, num_classes: int) -> keras.Model:
    """edge_pool's shape within the student budget: stem 8, widths 12-48-128,
    ~0.23M params and 9.99M MACs (most of them at 32x32 and 16x16). 3.85 points
    ahead of edge_res on the ablation's subset, but behind it on the full set, with
    2.6x its int8 latency: not the default student."""
    return pooled("edge_pool_student", (12, 48, 128), 8, input_shape, num_classes)


def edge_pool_student_160(input_shape, num_classes: int) -> keras.Model:
    """Thinner at high resolution, wider at 4x4: stem 8, widths 8-32-160,
    ~0.29M params and 8.78M MACs."""
    return pooled("edge_pool_student_160", (8, 32, 160), 8, input_shape, num_classes)


SCALED = re.compile(r"edge_res_x(\d+(?:\.\d+)?)_([sp])(1|2|4|8|16|32|64)")
BASE_WIDTHS = (24, 64, 128)  # edge_res's


def scaled_name(width: float, stem_stride: int, patch: bool = False) -> str:
    return f"edge_res_x{width:g}_{'p' if patch else 's'}{stem_stride}"


def edge_res_scaled(name: str):
    """The student family for any image size: edge_res's shape with its widths
    times x (rounded to multiples of 8, at least 8) and a stem of stride s:
    `_s<s>` a chain of 3x3 stride-2 convs (edge_res is edge_res_x1_s2), `_p<s>`
    one s x s conv at stride s (e.g. edge_res_x0.75_p8).

    At high resolution the patch stem is what keeps training cheap per MAC: the
    chain runs thin convolutions (3 to 24 channels) over large feature maps,
    which CPUs execute at a fraction of their speed on the residual stages
    (docs/results/stems.md: 4x the time per image per MAC at 128 px), while the
    patch stem is one dense matrix product with s*s*3 inputs per output (and
    distill trains it as one, distill.patches).
    None: not such a name."""
    match = SCALED.fullmatch(name)
    if not match:
        return None
    width, patch, stride = float(match[1]), match[2] == "p", int(match[3])
    widths = tuple(max(8, int(round(w * width / 8)) * 8) for w in BASE_WIDTHS)
    return lambda input_shape, num_classes: resnet(name, widths, input_shape, num_classes,
                                                   stem_stride=stride, patch=patch)


ZOO = {f.__name__: f for f in (
    edge_res, edge_res_lite, edge_res_mid, edge_res_small, edge_sep,  # students
    edge_pool_student, edge_pool_student_160,
    edge_teacher, edge_res_wide, edge_pool, edge_pool_wide)}  # teachers
