"""The training recipe of the better presets: augmentation, the one-cycle
learning-rate schedule, the optimizer, and the teacher-logits cache.

The cache: with augmentation a teacher sees a new input every step, so its
logits cannot be reused and each distillation step pays a teacher forward
pass. Instead, `cache_views` draws V fixed augmented copies of each training
image once, runs the teacher once on each (V inference passes in all instead
of one per epoch), and every epoch shows each image as one of its V copies
with the stored logits. The inputs then repeat exactly, so the reuse is exact.
Cost: V teacher passes; price: V distinct augmentations per image instead of
a new one every epoch.

With `mixed` M, each image also gets M copies blended with another image
(mixup, lambda ~ U(0, 1) per copy) and the teacher's logits on the blend, with
no hard label: "function matching" (Beyer et al. 2022), the teacher answering
for inputs between the training images, which is what a few thousand photos
lack. Unlike --mixup, which mixes cached probabilities, these targets are
the teacher's own output on the mixed input.

With `mirror`, each view is also stored left-right mirrored (2V inputs, 2V
teacher passes), and both copies get the teacher's logits averaged over the
pair. The targets then come from g(x) = (f(x) + f(flip x)) / 2, the teacher
with flip test-time augmentation: a fixed function of the input (so the reuse
stays exact), mirror-symmetric, and usually a little more accurate than f.

Memory: the cache is one uint8 array of all copies (2V x 45,000 CIFAR-10
images: 138 MB per copy) plus their logits. Held in numpy up to
store.RAM_LIMIT (TF constants had cost two more copies of it), and in a file
in the run's store folder past it (45,000 photos at 128 px: 2.2 GB per copy), read
a batch at a time: the process then holds the logits and CHUNK images.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from distill import patches, store
from distill.tfenv import keras, tf
from edgekd import envvars
from edgekd.preprocess import Preprocessing


def crop_pad(h: int, w: int) -> int:
    """Crop padding: 4 px at 32 px, as in He et al. (2016) for CIFAR, scaled
    with the image (an eighth of the shorter side), so that a 128 px photo
    shifts by the same fraction of itself as a 32 px one, not by 1 %."""
    return max(1, round(min(h, w) / 8))


def augment_batch(images: tf.Tensor) -> tf.Tensor:
    """Random crop (zero padding of crop_pad pixels) and left-right flip, a
    different one per image, on a whole batch at once: two batched gathers
    (rows, then columns) pick each image's window, so the crop is exact."""
    n, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
    pad = crop_pad(h, w)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    oy = tf.random.uniform([n, 1], 0, 2 * pad + 1, dtype=tf.int32)
    ox = tf.random.uniform([n, 1], 0, 2 * pad + 1, dtype=tf.int32)
    rows = tf.gather(padded, oy + tf.range(h)[None, :], axis=1, batch_dims=1)
    crops = tf.gather(rows, ox + tf.range(w)[None, :], axis=2, batch_dims=1)
    return tf.image.random_flip_left_right(crops)


def augment_numpy(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same crop+flip on uint8 arrays (for the cached teacher views)."""
    n, h, w = x.shape[:3]
    pad = crop_pad(h, w)
    padded = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    oy = rng.integers(0, 2 * pad + 1, n)
    ox = rng.integers(0, 2 * pad + 1, n)
    rows = (oy[:, None] + np.arange(h))[:, :, None]
    cols = (ox[:, None] + np.arange(w))[:, None, :]
    out = padded[np.arange(n)[:, None, None], rows, cols]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    return out


def soft_targets(ds: tf.data.Dataset, num_classes: int, label_smoothing: float = 0.0,
                 mixup: float = 0.0, temperature: float = 1.0) -> tf.data.Dataset:
    """Batches of (x, y) or (x, y, teacher logits) -> the same with y one-hot,
    label-smoothed by `label_smoothing`, and with `mixup` > 0 mixed pairwise
    within each batch (Zhang et al. 2018): x' = lam x + (1 - lam) x[perm], the
    same for y, lam ~ Beta(mixup, mixup) once per batch. Cached teacher logits
    are mixed as probabilities at `temperature` (what mixup does to labels) and
    returned as logits with exactly that softmax: T log(p'). (The cache does not
    hold the teacher's output on the mixed image; a teacher run on every batch,
    without the cache, gets the mixed images themselves and needs no such mixing.)
    Unchanged (sparse labels) when both are off."""
    if not (label_smoothing or mixup):
        return ds
    eps, t = float(label_smoothing), float(temperature)

    def mix(x, y, *teacher):
        known = tf.cast(y >= 0, tf.float32)[:, None]  # unlabeled (-1): an all-zero row
        y = (tf.one_hot(tf.cast(y, tf.int32), num_classes) * (1.0 - eps) + eps / num_classes) * known
        if mixup:
            g = tf.random.gamma([2], mixup)
            lam = g[0] / (g[0] + g[1])
            perm = tf.random.shuffle(tf.range(tf.shape(x)[0]))
            blend = lambda a: lam * a + (1.0 - lam) * tf.gather(a, perm)  # noqa: E731
            x, y = blend(x), blend(y)
            if teacher:
                p = blend(tf.nn.softmax(teacher[0] / t, axis=-1))
                teacher = (t * tf.math.log(tf.maximum(p, 1e-30)),)
        return (x, y, *teacher)
    return ds.map(mix, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from peak/25 to `peak` over `warmup` steps, then cosine
    decay to 0 at `total` steps (Smith's one-cycle, cosine flavour)."""

    def __init__(self, peak: float, total: int, warmup: int):
        self.peak, self.total, self.warmup = float(peak), int(total), int(max(1, warmup))

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * (0.04 + 0.96 * step / self.warmup)
        progress = tf.clip_by_value((step - self.warmup) / max(1, self.total - self.warmup), 0., 1.)
        cosine = 0.5 * self.peak * (1.0 + tf.cos(np.pi * progress))
        return tf.where(step < self.warmup, warm, cosine)

    def get_config(self):
        return {"peak": self.peak, "total": self.total, "warmup": self.warmup}


def make_optimizer(kind: str, lr: float, schedule: str, weight_decay: float,
                   total_steps: int, warmup_steps: int):
    """adam (the tutorial) or sgd (Nesterov momentum 0.9); constant or one-cycle
    learning rate; decoupled weight decay (scaled by the learning rate)."""
    rate = OneCycle(lr, total_steps, warmup_steps) if schedule == "onecycle" else lr
    wd = weight_decay or None
    if kind == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, weight_decay=wd)
    return keras.optimizers.Adam(rate, weight_decay=wd)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return -(-n_train // batch_size)


def student_epochs(epochs: int, min_steps: int, n_train: int, batch_size: int) -> int:
    """The student phases' epochs: `epochs`, or more when they would take fewer
    than `min_steps` optimizer steps over `n_train` images (a small data set)."""
    return max(epochs, -(-min_steps // steps_per_epoch(n_train, batch_size)))


def student_schedule(epochs: int, min_steps: int, n_train: int, batch_size: int,
                     small_batch: int = 0) -> tuple[int, int]:
    """(epochs, batch size) of the student phases. With `small_batch`,
    `min_steps` counts its steps: on a small data set, where they take more
    than `epochs` epochs, the students train that long in batches of
    `small_batch` (at the same images seen, more and smaller steps paid most on
    a few thousand photos: docs/results/photo_levers.md); elsewhere `epochs` at
    `batch_size`. Without it, `epochs` at `batch_size` raised to `min_steps`."""
    if not small_batch:
        return student_epochs(epochs, min_steps, n_train, batch_size), batch_size
    small = student_epochs(epochs, min_steps, n_train, small_batch)
    return (small, small_batch) if small > epochs else (epochs, batch_size)


CHUNK = 4096  # images augmented and run through the teacher at a time
CACHE_LIMIT = 8 << 30  # bytes of cached views (EDGEKD_CACHE_LIMIT): see the module docstring


def cache_limit() -> int:
    return envvars.byte_limit(envvars.CACHE_LIMIT, CACHE_LIMIT)


@dataclass(frozen=True)
class CachePlan:
    views: int  # views to cache (each mirrored too when `mirror`)
    reason: str  # why fewer than asked ("" when as asked)
    mixed: int = 0  # blended copies per image (cache_views' `mixed`)


def plan_views(views: int, mirror: bool, epochs: int, n: int, image_bytes: int,
               mixed: int = 0) -> CachePlan:
    """The views worth caching for phases of at most `epochs` epochs over `n`
    images of `image_bytes` each: no more copies than epochs, and no more
    bytes than cache_limit(); at least 1 view. Blended copies take what the
    views leave of both."""
    per_view = 2 if mirror else 1
    by_epochs = max(1, math.ceil(epochs / per_view))
    limit = cache_limit()
    by_bytes = max(1, limit // max(1, per_view * n * image_bytes))
    if views <= min(by_epochs, by_bytes):
        plan = CachePlan(views, "")
    elif by_epochs <= by_bytes:
        plan = CachePlan(by_epochs, f"{epochs} epoch(s) draw at most {epochs} copies per image")
    else:
        plan = CachePlan(by_bytes, f"more than {by_bytes} would pass the cache limit of "
                                   f"{limit / 2**30:.1f} GiB (EDGEKD_CACHE_LIMIT)")
    room = min(epochs, limit // max(1, n * image_bytes)) - per_view * plan.views
    if mixed <= room:
        return CachePlan(plan.views, plan.reason, mixed)
    return CachePlan(plan.views, "; ".join(filter(None, [
        plan.reason, f"{max(0, room)} blended copies, not {mixed}: the views take the "
                     f"{epochs} epochs' draws or the cache limit"])), max(0, room))


@dataclass(frozen=True)
class Views:
    """The teacher cache: `copies` augmented copies of each training image
    (copy k of image i at k * n + i) and the teacher's logits on each."""
    images: object  # uint8 array or store.ImageStore
    labels: np.ndarray  # per copy: a blended copy's is -1 (no hard label)
    logits: np.ndarray
    copies: int
    pre: Preprocessing

    def dataset(self, batch_size: int, seed: int, patch: int = 0,
                weights: np.ndarray | None = None) -> tf.data.Dataset:
        """Shuffled batches (image, label, logits), scaled as `pre` says; with
        `patch` s, the images come as distill.patches.arrange(images, s); with
        `weights` (class_weights), images drawn in proportion to them."""
        return _cache_dataset(self, batch_size, seed, patch, weights)


def class_weights(y: np.ndarray, sampling: str) -> np.ndarray | None:
    """Per-image draw weights for `sampling`: None for uniform (each image once
    an epoch); else a labeled image of class c weighs count(c)^-p (p 1/2 for
    sqrt, 1 for balanced), so that class c's share of the draws goes as
    count(c)^(1-p): a photo folder's small classes are seen more often.
    Labeled images keep their share of all draws, unlabeled (-1) ones theirs."""
    if sampling == "uniform":
        return None
    y = np.asarray(y)
    known = y >= 0
    counts = np.bincount(y[known])
    w = np.ones(len(y))
    w[known] = counts[y[known]].astype(float) ** -{"sqrt": 0.5, "balanced": 1.0}[sampling]
    w[known] *= known.sum() / w[known].sum()
    return w


def cached_views(x, y: np.ndarray, teacher, pre: Preprocessing, views: int, batch_size: int,
                 seed: int, augment: bool = True, mirror: bool = False,
                 folder: Path | None = None, mixed: int = 0) -> tf.data.Dataset:
    """(augmented image, label, teacher logits) batches; see cache_views."""
    return cache_views(x, y, teacher, pre, views, seed, augment, mirror, folder, mixed).dataset(
        batch_size, seed)


def cache_views(x, y: np.ndarray, teacher, pre: Preprocessing, views: int, seed: int,
                augment: bool = True, mirror: bool = False, folder: Path | None = None,
                mixed: int = 0) -> Views:
    """The cache; see the module docstring. Without augmentation the one view
    is the image itself, not mirrored. `x`: a uint8 array or a
    distill.store.ImageStore; the copies go to a file in `folder` past
    store.RAM_LIMIT, and are made CHUNK images at a time. `mixed`: blended
    copies per image after the views, unlabeled (-1)."""
    mirror = mirror and augment
    rng = np.random.default_rng(seed)
    plain = (views if augment else 1) * (2 if mirror else 1)
    copies, n = plain + mixed, len(x)
    teacher_logits, classes = _logit_fn(teacher, pre)
    images = store.empty(copies * n, x.shape[1:], folder, "teacher_views.u8")
    logits = np.empty((copies * n, classes), np.float32)
    where = "on disk" if isinstance(images, store.ImageStore) else "in memory"
    blended = f" ({mixed} of them blended)" if mixed else ""
    print(f"[distill] teacher cache: {copies} copies{blended} of {n} images, "
          f"{copies * n * np.prod(x.shape[1:]) / 2**20:.0f} MiB {where}", flush=True)
    bar = tqdm(total=copies * n, unit="img", desc="teacher cache", file=sys.stderr,
               disable=None, mininterval=2.0, leave=False)
    for k in range(0, plain, 2 if mirror else 1):
        for a in range(0, n, CHUNK):
            xv = x[a:min(n, a + CHUNK)]
            xv = augment_numpy(xv, rng) if augment else xv
            store.put(images, k * n + a, xv)
            lv = teacher_logits(xv)
            if mirror:
                store.put(images, (k + 1) * n + a, xv[:, :, ::-1])
                lv = (lv + teacher_logits(np.ascontiguousarray(xv[:, :, ::-1]))) / 2
                logits[(k + 1) * n + a:(k + 1) * n + a + len(xv)] = lv
            logits[k * n + a:k * n + a + len(xv)] = lv
            bar.update(len(xv) * (2 if mirror else 1))
    for k in range(plain, copies):
        for a in range(0, n, CHUNK):
            xv = _blended(x, np.arange(a, min(n, a + CHUNK)), rng, augment)
            store.put(images, k * n + a, xv)
            logits[k * n + a:k * n + a + len(xv)] = teacher_logits(xv)
            bar.update(len(xv))
    bar.close()
    labels = np.tile(np.asarray(y), plain)
    if mixed:
        labels = np.concatenate([labels.astype(np.int64), np.full(mixed * n, -1, np.int64)])
    return Views(images, labels, logits, copies, pre)


def _blended(x, rows: np.ndarray, rng: np.random.Generator, augment: bool) -> np.ndarray:
    """Images `rows` of `x`, each mixed with a random image of `x` (both
    augmented when `augment`): lam a + (1 - lam) b, lam ~ U(0, 1) per image,
    uniform as in function matching rather than mixup's Beta(a, a) near 0 and 1."""
    partners = rng.integers(0, len(x), len(rows))
    order = np.argsort(partners, kind="stable")  # sorted reads: an on-disk store reads forward
    b = np.empty((len(rows), *x.shape[1:]), np.uint8)
    b[order] = store.take(x, partners[order])
    a = store.take(x, rows)
    if augment:
        a, b = augment_numpy(a, rng), augment_numpy(b, rng)
    lam = rng.random(len(rows)).astype(np.float32)[:, None, None, None]
    return np.rint(lam * a + (1.0 - lam) * b).astype(np.uint8)


def _logit_fn(teacher, pre: Preprocessing):
    """(uint8 images -> logits, number of classes) for a distill.teachers.Teacher,
    or for a Keras model that takes `pre`'s float input."""
    if hasattr(teacher, "logits"):
        return teacher.logits, teacher.classes
    scale, offset = np.float32(pre.scale), np.float32(pre.offset)

    @tf.function  # inference mode; jit_compile measured +5 % at most here, so not used
    def infer(a):
        return teacher(tf.cast(a, tf.float32) * scale + offset, training=False)

    def logits(a):
        return np.concatenate([infer(a[i:i + 512]).numpy() for i in range(0, len(a), 512)])
    return logits, int(teacher.output_shape[-1])


def _cache_dataset(views: Views, batch_size: int, seed: int, patch: int,
                   weights: np.ndarray | None) -> tf.data.Dataset:
    """Shuffled batches, each image as one of its copies, drawn anew every
    epoch (with `weights`: n images an epoch, drawn with replacement by
    weight). The arrays stay in numpy and are read through numpy_function: TF
    constants captured by a tf.data function are copied again when the
    pipeline is optimized (another full copy of the cache, measured). Patches
    are arranged there too, on uint8: numpy copies a batch in a few ms, TF's
    transpose of the scaled floats took several times that."""
    images, y, logits, copies = views.images, views.labels, views.logits, views.copies
    n = len(y) // copies  # labels are per copy
    scale, offset = np.float32(views.pre.scale), np.float32(views.pre.offset)
    shape = images.shape[1:]
    if patch:
        shape = (shape[0] // patch, shape[1] // patch, patch * patch * shape[2])

    def gather(flat, idx):
        batch = images[flat]
        return (patches.arrange(batch, patch) if patch else batch), y[flat], logits[flat]

    log_w = None if weights is None else tf.constant(np.log(weights)[None, :], tf.float32)

    def pick(idx):  # sequential map: the random draws stay in order, so a seed repeats
        if log_w is not None:
            idx = tf.random.categorical(log_w, tf.size(idx), dtype=tf.int64)[0]
        return tf.random.uniform(tf.shape(idx), 0, copies, dtype=tf.int64) * n + idx, idx

    def lookup(flat, idx):
        batch, labels, targets = tf.numpy_function(
            gather, [flat, idx], [tf.uint8, tf.as_dtype(y.dtype), tf.float32], stateful=False)
        batch.set_shape([None, *shape])
        labels.set_shape([None, *y.shape[1:]])
        targets.set_shape([None, logits.shape[1]])
        return tf.cast(batch, tf.float32) * scale + offset, labels, targets
    ds = tf.data.Dataset.range(n).shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(pick).map(lookup, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
