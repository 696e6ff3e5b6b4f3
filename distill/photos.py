"""Image folders: the training size, and a streaming decode into one uint8 store.

A folder of photos comes in any size and aspect ratio. Without --image-size,
edgekd trains at the data's median shorter side capped at MAX_DEFAULT_SIDE
(folders whose images all share one size up to that cap keep it as is). The
cap: the default student's MACs and the decoded store grow with the pixel
count, and 128 px keeps both where a CPU run of a few thousand photos takes
about an hour and 50,000 photos decode into 2.5 GB; 64-224 px are the usual
edge inputs, so larger is one flag away. Each photo is brought to that size by
the resize policy (edgekd.preprocess.fit_image: crop by default).

The decode is parallel (PIL releases the GIL) and writes each photo straight
into its row of a preallocated array: no list of decoded photos, no copy.
"""

from __future__ import annotations

import os
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from distill import store
from edgekd.errors import EdgekdError
from edgekd.preprocess import Preprocessing, fit_image, load_image, open_image, spread_indices

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MAX_DEFAULT_SIDE = 128
SIZE_SAMPLE = 500  # headers read to choose the size (PIL reads no pixels for .size)


def class_files(root: Path) -> dict[str, list[Path]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    files = {c: sorted(f for f in (root / c).iterdir()
                       if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()) for c in classes}
    files = {c: fs for c, fs in files.items() if fs}
    if len(files) < 2:
        raise EdgekdError(f"{root}: expected at least 2 class folders with "
                          f"{'/'.join(sorted(IMAGE_SUFFIXES))} images, found {len(files)}")
    return files


def _header(path: Path) -> tuple[int, int, str]:
    """(height, width, mode) without decoding the pixels."""
    with open_image(path) as im:
        return im.height, im.width, im.mode


def choose_size(paths: list[Path], image_size: int | None,
                max_side: int = MAX_DEFAULT_SIDE) -> tuple[tuple[int, int], str, str]:
    """((height, width), PIL mode, a line saying what was chosen and why)."""
    sample = [_header(paths[i]) for i in spread_indices(len(paths), SIZE_SAMPLE)]
    mode = "L" if all(m in ("L", "1") or m.startswith("I") for _, _, m in sample) else "RGB"
    sizes = {(h, w) for h, w, _ in sample}
    short = statistics.median_low(min(h, w) for h, w, _ in sample)
    seen = f"{len(paths)} images, median shorter side {short} px"
    if image_size:
        return (image_size, image_size), mode, \
            f"{seen}; training at {image_size}x{image_size} (--image-size)"
    if len(sizes) == 1 and max(next(iter(sizes))) <= max_side:
        (h, w), = sizes
        return (h, w), mode, f"{seen}, all {h}x{w}: training at that size"
    side = min(max_side, short)
    return (side, side), mode, (f"{seen}: training at {side}x{side} (the median shorter side, "
                                f"at most {max_side}; --image-size N to change)")


def _decode_into(out, i: int, path: Path, pre: Preprocessing) -> None:
    store.put(out, i, load_image(path, pre)[None])


def decode(paths: list[Path], size: tuple[int, int], mode: str, policy: str,
           what: str, folder: Path | None = None):
    """All `paths` decoded in parallel into one (N, H, W, C) uint8 array (an
    ImageStore file in `folder` past store.RAM_LIMIT), with a progress bar on
    a terminal."""
    from tqdm import tqdm
    row = (*size, 1 if mode == "L" else 3)
    out = store.empty(len(paths), row, folder, f"{what}.u8")
    where = "on disk" if isinstance(out, store.ImageStore) else "in memory"
    print(f"[distill] decoding {len(paths)} {what} images, {size[0]}x{size[1]} "
          f"(resize: {policy}): {len(paths) * np.prod(row) / 2**20:.1f} MiB {where}", flush=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool, \
            tqdm(total=len(paths), unit="img", file=sys.stderr, disable=None,
                 mininterval=1.0) as bar:
        pre = Preprocessing(height=size[0], width=size[1], channels=row[2], resize=policy)
        jobs = [pool.submit(_decode_into, out, i, p, pre) for i, p in enumerate(paths)]
        for job in jobs:
            job.result()  # the first bad photo raises its own one-line error
            bar.update()
    return out


def resize_array(x: np.ndarray, size: int, policy: str, folder: Path | None = None):
    """uint8 (N, H, W, C) arrays (npz, built-in data sets) -> size x size by policy."""
    from PIL import Image
    out = store.empty(len(x), (size, size, x.shape[-1]), folder, "resized.u8")

    def one(i: int) -> None:
        im = Image.fromarray(x[i, ..., 0] if x.shape[-1] == 1 else x[i])
        store.put(out, i, np.asarray(fit_image(im, size, size, policy)).reshape(1, *out.shape[1:]))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(one, range(len(x))))
    return out
