"""Pretrained students: MobileNet v1 at a width (alpha) and an input side,
with ImageNet weights, the start Edge Impulse and TAO users fine-tune from.

Names: `mobilenet_v1_x<alpha>_r<side>` (e.g. mobilenet_v1_x0.25_r96): the
backbone at `alpha` on images resized inside the model so that their shorter
side is `side`. Without `_r<side>` the model sees the data's own size; plain
`mobilenet_v1` is sized: `pick` takes the widest alpha that fits the MACs
budget at a side of at least MIN_SIDE, at the largest such side up to the
data's (or UPSAMPLE_TO, when the data is smaller). Why upsample small images:
ImageNet features are learnt on objects a hundred pixels across; at 32 px
MobileNet's last maps are 1x1 (distill.pretrained says the same of teachers).

The model is flat (one Keras graph, no nested model), so tfmot's QAT and
pruning wrap its layers like any zoo student's; its input is the data's
(`x * scale + offset` in [0, 1]), mapped to MobileNet's [-1, 1] by a Rescaling
layer, and gray images are repeated to three channels.

Weights: a Keras Applications file (`--student-weights FILE`; the width is
read from the file) or `imagenet`: the file of that width in the Keras cache
(~/.keras/models), else downloaded by Keras when online.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from edgekd.errors import EdgekdError

FAMILY = "mobilenet_v1"
NAME = re.compile(r"mobilenet_v1(?:_x(0\.25|0\.5|0\.75|1))?(?:_r(\d+))?")
ALPHAS = (0.5, 0.25)  # widest first; Keras also has 0.75 and 1.0 (above a 10M budget)
FILE_ALPHA = {8: 0.25, 16: 0.5, 24: 0.75, 32: 1.0}  # conv1's filters: 32 * alpha
MIN_SIDE, UPSAMPLE_TO, SIDE_STEP = 64, 96, 8
URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"


@dataclass(frozen=True)
class Spec:
    alpha: float | None  # None: sized by `pick`
    side: int | None  # None: the data's own size


def parse(name: str) -> Spec | None:
    """The family member a name spells, or None: not this family."""
    m = NAME.fullmatch(name)
    if not m:
        return None
    if m[2] is not None and not 32 <= int(m[2]) <= 1024:
        raise EdgekdError(f"{name}: the input side must be 32 to 1024 px, got {m[2]}")
    return Spec(float(m[1]) if m[1] else None, int(m[2]) if m[2] else None)


def name_of(alpha: float, side: int | None) -> str:
    return f"{FAMILY}_x{alpha:g}" + (f"_r{side}" if side else "")


def _files(alpha: float) -> list[str]:
    text = {0.25: "2_5", 0.5: "5_0", 0.75: "7_5", 1.0: "1_0"}[alpha]
    return [f"mobilenet_{text}_{rows}_tf_no_top.h5" for rows in (224, 192, 160, 128)]


def file_alpha(path: str | Path) -> float:
    """The width of a Keras Applications MobileNet v1 weights file (its first
    conv has 32 * alpha filters)."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            group = f["conv1"] if "conv1" in f else f["model_weights"]["conv1"]
            kernel = next(v for v in _datasets(group) if len(v.shape) == 4)
            return FILE_ALPHA[int(kernel.shape[-1])]
    except (OSError, KeyError, StopIteration) as exc:
        raise EdgekdError(f"student weights {path}: not a Keras Applications MobileNet v1 "
                          f"weights file ({type(exc).__name__}: {str(exc)[:100]}); pass e.g. "
                          f"{_files(0.25)[-1]}") from None


def _datasets(group):
    import h5py
    for item in group.values():
        if isinstance(item, h5py.Dataset):
            yield item
        else:
            yield from _datasets(item)


def _cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def cached(alpha: float) -> Path | None:
    """The ImageNet weights file of this width in the Keras cache, if any."""
    return next((_cache_dir() / f for f in _files(alpha) if (_cache_dir() / f).is_file()), None)


def alphas_for(weights: str | None) -> tuple[float, ...]:
    """The widths a sized student may take: the file's, or (imagenet) those
    cached or downloadable now; every width without weights."""
    if weights is None:
        return ALPHAS
    if weights != "imagenet":
        return (file_alpha(weights),)
    found = tuple(a for a in ALPHAS if cached(a))
    if found:
        return found
    from distill.data import _online
    if _online(URL):
        return ALPHAS
    raise EdgekdError(f"the ImageNet weights of {FAMILY} cannot be downloaded (offline?): pass "
                      f"--student-weights PATH to a Keras Applications file (e.g. {_files(0.25)[-1]})")


def check_weights(arch: str, weights: str | None) -> None:
    """Before TensorFlow starts: student weights only for this family, and usable."""
    if weights is None:
        return
    spec = parse(arch)
    if spec is None:
        raise EdgekdError(f"--student-weights needs a pretrained --student-arch ({FAMILY}, "
                          f"{FAMILY}_x0.25, ...), got {arch!r}")
    if weights != "imagenet" and not Path(weights).is_file():
        raise EdgekdError(f"student weights {weights} not found")
    allowed = alphas_for(weights)
    if spec.alpha is not None and spec.alpha not in allowed:
        raise EdgekdError(f"student weights {weights} are MobileNet v1 at alpha "
                          f"{allowed[0]:g}, not {spec.alpha:g}: name {name_of(allowed[0], spec.side)}")


def weights_file(alpha: float, weights: str) -> str:
    """A local file for `weights` (imagenet: cached, else downloaded now)."""
    if weights != "imagenet":
        return weights
    found = cached(alpha)
    if found:
        return str(found)
    from distill.tfenv import keras
    name = _files(alpha)[0]
    try:
        return keras.utils.get_file(name, URL + name, cache_subdir="models")
    except Exception as exc:  # noqa: BLE001 - any download failure is the same advice
        raise EdgekdError(f"cannot download {name} ({str(exc)[:100]}): pass --student-weights "
                          "PATH to a Keras Applications MobileNet v1 file") from None


# A pretrained student trains like the pretrained teacher's fine-tune (Adam on a
# one-cycle schedule peaking at 3e-4, no weight decay): the default preset's
# SGD at 0.1 made it diverge (loss above 100 within the first epochs, Sign
# Language Digits at 64 px, docs/history.md).
FINE_TUNE = {"optimizer": "adam", "learning_rate": 3e-4, "weight_decay": 0.0}


def fine_tune(cfg, given: dict):
    """`cfg` with FINE_TUNE's settings for a pretrained student, each unless
    given on the command line."""
    from dataclasses import replace
    if not cfg.student_weights:
        return cfg
    return replace(cfg, **{k: v for k, v in FINE_TUNE.items() if given.get(k) is None})


def _size(input_shape, side: int | None) -> tuple[int, int]:
    h, w = input_shape[:2]
    if side is None:
        return h, w
    up = side / min(h, w)
    return max(1, round(h * up)), max(1, round(w * up))


def build(name: str, input_shape, num_classes: int, weights: str | None = None):
    """The student `name` (alpha and side given) on the data's input; with
    `weights`, its backbone loaded from them."""
    from distill.tfenv import keras
    spec = parse(name)
    if spec is None or spec.alpha is None:
        raise EdgekdError(f"{name}: give a width, e.g. {FAMILY}_x0.25 (or {FAMILY} with "
                          "--student-macs to size it)")
    L = keras.layers
    inp = keras.Input(tuple(input_shape))
    x = L.Rescaling(2.0, -1.0, name="to_mobilenet_range")(inp)
    if input_shape[-1] == 1:
        x = L.Concatenate(name="gray_to_rgb")([x, x, x])
    size = _size(input_shape, spec.side)
    if size != tuple(input_shape[:2]):
        x = L.Resizing(*size, name="to_student_size")(x)
    base = keras.applications.MobileNet(input_tensor=x, alpha=spec.alpha, include_top=False,
                                        pooling="avg", weights=None)
    if weights:
        path = weights_file(spec.alpha, weights)
        try:
            base.load_weights(path)  # by order: every backbone layer or an error
        except (ValueError, OSError) as exc:
            raise EdgekdError(f"student weights {path} do not fit {name} ({str(exc)[:150]})") from None
    y = L.Dense(num_classes, name="logits")(L.Dropout(0.2)(base.output))
    return keras.Model(inp, y, name=name_of(spec.alpha, spec.side))


def macs(alpha: float, side: int | None, input_shape, num_classes: int) -> int:
    from distill.models import count_macs
    return count_macs(build(name_of(alpha, side), input_shape, num_classes))


@dataclass(frozen=True)
class Picked:
    name: str
    macs: int
    why: str


def pick(budget: float, input_shape, num_classes: int, alphas: tuple[float, ...]) -> Picked:
    """The widest alpha that fits `budget` MACs at a shorter side of at least
    MIN_SIDE, at the largest side that fits (from the data's, or UPSAMPLE_TO
    for smaller data, down in SIDE_STEP px)."""
    data_side = min(input_shape[:2])
    top = max(data_side, UPSAMPLE_TO) // SIDE_STEP * SIDE_STEP
    for alpha in sorted(alphas, reverse=True):
        lo, hi, best = MIN_SIDE // SIDE_STEP, top // SIDE_STEP, None
        while lo <= hi:  # MACs grow with the side
            mid = (lo + hi) // 2
            side = mid * SIDE_STEP
            cost = macs(alpha, None if side == data_side else side, input_shape, num_classes)
            if cost <= budget:
                best, lo = (side, cost), mid + 1
            else:
                hi = mid - 1
        if best:
            side, cost = best
            name = name_of(alpha, None if side == data_side else side)
            wider = [a for a in alphas if a > alpha]
            why = (f"alpha {alpha:g} at {side} px" + (
                f" (alpha {', '.join(f'{a:g}' for a in wider)} needs more than "
                f"{budget / 1e6:g}M MACs at {MIN_SIDE} px)" if wider else ""))
            return Picked(name, cost, why)
    least = macs(min(alphas), MIN_SIDE, input_shape, num_classes)
    raise EdgekdError(f"no {FAMILY} student fits {budget / 1e6:g}M MACs: alpha {min(alphas):g} "
                      f"at {MIN_SIDE} px needs {least / 1e6:.2f}M; raise --student-macs or "
                      "choose an edge_res student")
