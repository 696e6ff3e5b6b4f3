"""The one explicit preprocessing object.

distill decides it, writes it into config.json / the artifacts, export copies
it into manifest.json and bench applies it from there: nobody guesses scaling.
Images are stored as uint8 at the model's input size (resizing happens once,
when the data set is loaded), so preprocessing at inference time is only
`x * scale + offset` in float32. How a photo of another size or shape becomes
that input is the `resize` policy, applied by `fit_image` in training (distill),
in bench.predict and in the documented on-device code alike:

- `crop` (default): scale so the shorter side fits, then cut the centre; no
  distortion, loses the long side's margins (what ImageNet evaluation does);
- `pad`: scale so the longer side fits, centre on black; keeps everything;
- `stretch`: resize to the target, distorting the aspect ratio.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from edgekd import envvars
from edgekd.errors import EdgekdError, first_line

RESIZE_POLICIES = ("crop", "pad", "stretch")


@dataclass(frozen=True)
class Preprocessing:
    height: int
    width: int
    channels: int
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    layout: str = "NHWC"
    stored_dtype: str = "uint8"
    resize: str = "crop"

    def __post_init__(self) -> None:
        ints, nums = (self.height, self.width, self.channels), (self.scale, self.offset)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in ints) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                for v in nums):
            raise EdgekdError(f"invalid preprocessing: height, width and channels must be "
                              f"integers and scale, offset finite numbers, got {ints}, {nums}")
        if min(self.height, self.width) < 1 or self.channels not in (1, 3):
            raise EdgekdError(
                f"invalid preprocessing: {self.height}x{self.width}x{self.channels}"
                " (need positive size and 1 or 3 channels)")
        if self.layout != "NHWC":
            raise EdgekdError(f"unsupported layout {self.layout!r}: only NHWC")
        if self.resize not in RESIZE_POLICIES:
            raise EdgekdError(f"unknown resize policy {self.resize!r}: use "
                              f"{', '.join(RESIZE_POLICIES)}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def check(self, x: np.ndarray, what: str = "images") -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise EdgekdError(
                f"{what} have shape {tuple(x.shape)}, expected (N, "
                f"{self.height}, {self.width}, {self.channels}) as recorded in the preprocessing")

    def apply(self, x: np.ndarray) -> np.ndarray:
        """uint8 images (N, H, W, C) -> float32 model input."""
        self.check(x)
        out = x.astype(np.float32) * np.float32(self.scale)
        if self.offset:
            out += np.float32(self.offset)
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocessing":
        if not isinstance(d, dict):
            raise EdgekdError(f"invalid preprocessing record {d!r}: expected a JSON object")
        try:
            return cls(**d)
        except TypeError as exc:
            raise EdgekdError(f"invalid preprocessing record {d!r}: {exc}") from None


def fit_image(image, height: int, width: int, policy: str):
    """A PIL image -> `height` x `width` by `policy` (see the module docstring);
    bilinear, which PIL antialiases when shrinking. The one resize of edgekd."""
    from PIL import Image, ImageOps
    if image.size == (width, height):
        return image
    bilinear = Image.Resampling.BILINEAR
    if policy == "crop":
        return ImageOps.fit(image, (width, height), bilinear)
    if policy == "pad":
        return ImageOps.pad(image, (width, height), bilinear, color=0)
    if policy == "stretch":
        return image.resize((width, height), bilinear)
    raise EdgekdError(f"unknown resize policy {policy!r}: use {', '.join(RESIZE_POLICIES)}")


@contextmanager
def open_image(path):
    """A PIL image, its header read but no pixels decoded, under a
    decompression-bomb guard (EDGEKD_MAX_IMAGE_PIXELS); any failure is one
    error naming the file."""
    from PIL import Image, UnidentifiedImageError
    limit = envvars.pixel_limit()
    # Pillow's own guard stays on as a backstop (it raises at twice its
    # limit); below that its warning is replaced by the check here.
    Image.MAX_IMAGE_PIXELS = limit
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    too_big = (f"shrink it, or raise the limit with {envvars.MAX_IMAGE_PIXELS}=N "
               f"(pixels; now {limit})")
    try:
        opened = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise EdgekdError(f"image {path} is too large to decode safely "
                          f"({first_line(exc, 120)}): {too_big}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise EdgekdError(f"cannot decode image {path}: {exc}") from None
    with opened:
        if opened.width * opened.height > limit:
            raise EdgekdError(f"image {path} is {opened.width}x{opened.height} px, over the "
                              f"{limit} px edgekd decodes (a guard against decompression "
                              f"bombs): {too_big}")
        try:
            yield opened
        except EdgekdError:
            raise
        except (OSError, SyntaxError, ValueError) as exc:  # the pixels, decoded by the caller
            raise EdgekdError(f"cannot decode image {path}: {exc}") from None


def to_8bit(image, channels: int):
    """A PIL image as 8-bit L or RGB. 16- and 32-bit integer images keep their
    top 8 bits (Pillow's own convert clips them, turning a 16-bit photo white);
    float images have no range to scale by and are refused."""
    from PIL import Image
    if image.mode.startswith("I"):  # I;16, I;16B, I;16L, I (PNG 16-bit gray reads as these)
        wide = np.asarray(image).astype(np.int64)
        image = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8), "L")
    elif image.mode == "F":
        raise ValueError("float pixels (mode F): save it as 8- or 16-bit integers")
    return image.convert("L" if channels == 1 else "RGB")


def load_image(path, pre: Preprocessing) -> np.ndarray:
    """One image file as the model's uint8 input (H, W, C), by `pre`'s policy."""
    with open_image(path) as opened:
        im = to_8bit(opened, pre.channels)
        arr = np.asarray(fit_image(im, pre.height, pre.width, pre.resize), dtype=np.uint8)
    return arr.reshape(pre.height, pre.width, pre.channels)


def spread_indices(n: int, k: int | None) -> np.ndarray:
    """k indices spread evenly over range(n) (all when k is None or >= n): a
    subset that samples every part of a set, whatever order it is stored in."""
    if k is None or k >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))
