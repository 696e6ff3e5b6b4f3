"""A pretrained teacher when the user brings none: a Keras Applications
backbone with ImageNet weights, fine-tuned on the user's data, then distilled
from like any teacher. On a few thousand photos a teacher trained from scratch
is weak; fine-tuning a pretrained one is what practitioners do instead.

The teacher takes the data's own input (`x * scale + offset`, in [0, 1]) and
converts it inside the model to what the backbone was trained on (its own
range, three channels, small images upsampled: `backbone_size`), with plain
layers (no Lambda), so it saves, loads in safe mode and exports like any
edgekd model.

Why upsample: ImageNet features are learnt on objects a hundred pixels or
more across, and fine-tuned on small images they transfer poorly; BiT
(Kolesnikov et al., 2020) upsamples images under 96 px to 160 before
fine-tuning. Images from 96 px on keep their size: upsampling them to 128
costs the teacher 1.8x the MACs in its training and in every cached view
(MobileNet: 104M MACs at 96 px, 186M at 128), minutes that the student's
schedule uses better, for a gain that was not there on Sign Language Digits
and was 3.2 points on CIFAR-10 photos (32 px, enlarged) at the same rate
(docs/results/photo_schedule.md); `teacher_size` sets it.

Fine-tuning (distill.teaching): the new head first with the backbone frozen
(Adam at 1e-3, constant), then the head and the backbone's top layers (`thaw`;
Adam, one-cycle to a peak of config.teacher_fine_tune_lr, 1e-4),
batch-norm statistics kept from ImageNet (the backbone runs in inference
mode), and the preset's augmentation. Thawing every layer cost 1.7x the
minutes and scored lower on a few thousand photos: at the peak rate the whole
net forgot more of ImageNet than it learnt back, and so did the top layers at
3e-4. Keras' transfer-learning guide thaws at a constant 1e-5, made for photos
much like ImageNet's; photos unlike them (hands, documents, parts) need the
backbone to move: on Sign Language Digits the guide's rate left the teacher
at 96.6 % held-out after 12 epochs, below a student trained alone, and 1e-4
reached 99.5 % (as 3e-4 did; docs/results/fine_tune.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distill.tfenv import keras
from edgekd.errors import EdgekdError


@dataclass(frozen=True)
class Backbone:
    build: str  # keras.applications constructor
    scale: float  # [0, 1] inputs -> the backbone's range: x * scale + offset
    offset: float
    weights_file: str  # the name Keras Applications downloads (for the error message)


BACKBONES = {
    "mobilenet": Backbone("MobileNet", 2.0, -1.0, "mobilenet_1_0_224_tf_no_top.h5"),
    "mobilenet_v2": Backbone("MobileNetV2", 2.0, -1.0,
                             "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
    # EfficientNet scales raw 0..255 pixels itself (its own Rescaling and Normalization)
    "efficientnet_b0": Backbone("EfficientNetB0", 255.0, 0.0, "efficientnetb0_notop.h5"),
}
FINE_TUNE_SIDE = 128  # the backbone's shorter side at least, for images under UPSAMPLE_BELOW
UPSAMPLE_BELOW = 96  # (see the module docstring)
HEAD_LR = 1e-3  # Adam, constant: the new head (the thawed layers': config.teacher_fine_tune_lr)
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


def head_epochs(teacher_epochs: int) -> int:
    """The head's share of the teacher epochs (the rest fine-tune the whole net)."""
    return max(1, teacher_epochs // 3)


def check_weights(arch: str, weights: str | None) -> None:
    """Before TensorFlow starts: the weights exist, or can be downloaded now."""
    if arch not in BACKBONES:
        return
    if weights and weights != "imagenet":
        if not Path(weights).is_file():
            raise EdgekdError(f"teacher weights {weights} not found")
        return
    from distill.data import _online
    if not _online(IMAGENET_URL):
        raise EdgekdError(
            f"the ImageNet weights of {arch} cannot be downloaded (offline?): pass "
            f"--teacher-weights PATH to a Keras Applications file ({BACKBONES[arch].weights_file})")


def build(arch: str, input_shape, num_classes: int, weights: str | None,
          side: int = 0) -> keras.Model:
    """The backbone (frozen: `thaw` thaws it) with a new classification head;
    its input side `side` (0: backbone_size's)."""
    spec = BACKBONES[arch]
    h, w, c = input_shape
    size = backbone_size(h, w, side)
    inp = keras.Input(input_shape)
    x = keras.layers.Rescaling(spec.scale, spec.offset, name="to_backbone_range")(inp)
    if c == 1:
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if size != (h, w):
        x = keras.layers.Resizing(*size, name="to_backbone_size")(x)
    base = getattr(keras.applications, spec.build)(
        input_shape=(*size, 3), include_top=False, pooling="avg",
        weights="imagenet" if weights in (None, "imagenet") else None)
    if weights not in (None, "imagenet"):
        try:
            base.load_weights(weights)
        except (ValueError, OSError) as exc:
            raise EdgekdError(f"teacher weights {weights} do not fit {arch} ({str(exc)[:150]}): "
                              f"pass Keras Applications' {spec.weights_file}") from None
    base.trainable = False
    x = base(x, training=False)  # batch-norm statistics stay ImageNet's, also when fine-tuned
    x = keras.layers.Dropout(0.2)(x)
    out = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inp, out, name=f"{arch}_teacher")


def backbone_size(h: int, w: int, side: int = 0) -> tuple[int, int]:
    """The size the backbone sees images of h x w at (aspect kept): a shorter
    side of `side`, or (0) under UPSAMPLE_BELOW scaled up to FINE_TUNE_SIDE,
    else their own."""
    if not side and min(h, w) >= UPSAMPLE_BELOW:
        return h, w
    scale = (side or FINE_TUNE_SIDE) / min(h, w)
    return round(h * scale), round(w * scale)


TOP_STRIDE = 16  # "top": the stages at 1/16 and 1/32 of the input side


def thaw(model: keras.Model, which: str) -> None:
    """Make the teacher's backbone trainable for its second phase: every
    layer ("all"), or ("top") those from the first at 1/TOP_STRIDE of its input
    side on. The early, fine-resolution layers hold generic edges and textures
    and cost the most to train per MAC (depthwise convolutions on large maps);
    kept frozen, they also run in inference mode like the rest."""
    base = backbone(model)
    base.trainable = True
    if which == "all":
        return
    side = min(base.input_shape[1:3])
    for layer in base.layers:
        shape = layer.output_shape
        if isinstance(shape, tuple) and len(shape) == 4 and shape[1] * TOP_STRIDE <= side:
            break
        layer.trainable = False


def backbone(model: keras.Model) -> keras.Model:
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))
