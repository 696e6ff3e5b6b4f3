"""Data sources behind one interface: `load_dataset(source) -> DataSet`.

Sources: `cifar10` (Keras download/cache), `fashion_mnist` (Debian files, else
Keras), an image folder (DIR/train/<class>/*, DIR/test/<class>/*, or class
folders plus a validation split), or an `.npz` with x_train, y_train, x_test,
y_test. Images are held as uint8 NHWC at the model's input size; the float
scaling is the Preprocessing object's job (and happens in the tf.data pipeline).
"""

from __future__ import annotations

import gzip
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distill import photos
from edgekd.errors import EdgekdError
from edgekd.preprocess import Preprocessing

CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer",
                  "dog", "frog", "horse", "ship", "truck"]
FASHION_LABELS = ["t-shirt/top", "trouser", "pullover", "dress", "coat",
                  "sandal", "shirt", "sneaker", "bag", "ankle boot"]
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class DataSet:
    name: str
    x_train: np.ndarray  # uint8 (N, H, W, C)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    labels: list[str]
    resize: str = "crop"  # how photos of other shapes became x (edgekd.preprocess)
    # x_train may be a distill.store.ImageStore (a file in the run's store folder):
    # index it (x[idx]), never load it whole
    store_dir: Path | None = None  # the run's folder for arrays past store.RAM_LIMIT

    @property
    def preprocessing(self) -> Preprocessing:
        _, h, w, c = self.x_train.shape
        return Preprocessing(height=h, width=w, channels=c, resize=self.resize)


def preflight(source: str) -> None:
    """Cheap checks before TensorFlow is imported, so that a bad or unreachable
    source fails in a second or two, not after TF's start-up."""
    if source == "cifar10":
        _cifar10_available()
    elif source not in ("fashion_mnist",) and not Path(source).exists():
        raise EdgekdError(
            f"unknown data source {source!r}: use cifar10, fashion_mnist, an image folder "
            "(DIR/train/<class>/*.jpg) or an .npz with x_train, y_train, x_test, y_test")


@dataclass(frozen=True)
class FolderLimits:
    """How much of an image folder a run decodes: the default training size's
    cap (the median shorter side, at most `max_side`), and at most `max_train`
    training and `max_test` test photos, drawn at random before any decode (a
    smoke run of a 50,000-photo folder decodes what it trains on, no more)."""
    max_side: int = photos.MAX_DEFAULT_SIDE
    max_train: int | None = None
    max_test: int | None = None


def load_dataset(source: str, image_size: int | None = None, val_split: float = 0.1,
                 seed: int = 42, resize: str = "crop", store_dir: Path | None = None,
                 limits: FolderLimits = FolderLimits()) -> DataSet:
    """`store_dir`: where training images too large for memory go (distill.store)."""
    if source == "cifar10":
        ds = _cifar10()
    elif source == "fashion_mnist":
        ds = _fashion_mnist()
    elif source.endswith(".npz"):
        ds = _npz(Path(source))
    elif Path(source).is_dir():
        ds = _folder(Path(source), image_size, val_split, seed, resize, store_dir, limits)
    else:
        raise EdgekdError(
            f"unknown data source {source!r}: use cifar10, fashion_mnist, an image folder "
            "(DIR/train/<class>/*.jpg) or an .npz with x_train, y_train, x_test, y_test")
    if image_size and ds.x_train.shape[1:3] != (image_size, image_size):
        ds.x_train = photos.resize_array(ds.x_train, image_size, resize, store_dir)
        ds.x_test = photos.resize_array(ds.x_test, image_size, resize)
    ds.resize, ds.store_dir = resize, store_dir
    _check(ds)
    return ds


MIN_SIDE = 8  # smallest image side edgekd trains on (also --image-size's minimum)


def _check_names(name: str, labels: list[str]) -> None:
    """Class names become the lines of labels.txt: one line each, none empty,
    no two alike, or the deployed model names the wrong classes."""
    for i, label in enumerate(labels):
        control = [c for c in label if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
        if control or not label.strip():
            why = f"holds control character {control[0]!r}" if control else "is empty"
            raise EdgekdError(f"{name}: class name {i} ({label!r}) {why}; labels.txt lists one "
                              "class per line, so rename that class (npz `labels` or folder)")
    dup = next((label for i, label in enumerate(labels) if label in labels[:i]), None)
    if dup is not None:
        raise EdgekdError(f"{name}: class name {dup!r} appears twice; class names must differ")


def _check(ds: DataSet) -> None:
    """Everything that would make training meaningless, before TensorFlow trains."""
    splits = (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test))
    for split, x, y in splits:
        if len(x) == 0 or len(y) == 0:
            raise EdgekdError(f"{ds.name}: the {split} split is empty ({len(x)} images, "
                              f"{len(y)} labels)")
        if len(x) != len(y):
            raise EdgekdError(f"{ds.name}: {split} has {len(x)} images but {len(y)} labels")
        if y.min() < 0 or y.max() >= len(ds.labels):
            raise EdgekdError(f"{ds.name}: {split} labels must be in [0, {len(ds.labels) - 1}]")
    if len(ds.labels) < 2:
        raise EdgekdError(f"{ds.name}: need at least 2 classes, got {len(ds.labels)}")
    _check_names(ds.name, ds.labels)
    for split, _, y in splits:
        if len(np.unique(y)) < 2:
            raise EdgekdError(f"{ds.name}: the {split} split holds only one class ({int(y[0])}); "
                              "distillation needs at least 2 classes in train and test")
    if ds.x_train.shape[1:] != ds.x_test.shape[1:]:
        raise EdgekdError(f"{ds.name}: train images {ds.x_train.shape[1:]} and test images "
                          f"{ds.x_test.shape[1:]} differ in shape")
    if min(ds.x_train.shape[1:3]) < MIN_SIDE:
        raise EdgekdError(f"{ds.name}: images are {ds.x_train.shape[1]}x{ds.x_train.shape[2]} "
                          f"px; edgekd needs at least {MIN_SIDE}x{MIN_SIDE} (or pass "
                          f"--image-size {MIN_SIDE} or more)")


def _as_nhwc_uint8(x: np.ndarray, what: str) -> np.ndarray:
    """uint8 NHWC images; other integer types in 0..255 are cast, float images
    refused (their scale is a guess: [0, 1] would silently become zeros)."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise EdgekdError(f"{what}: expected images (N, H, W) or (N, H, W, 1|3), got {x.shape}")
    if x.dtype == np.uint8:
        return x
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise EdgekdError(f"{what}: pixel values must be numbers, got dtype {x.dtype}")
    if x.size and np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)):
            raise EdgekdError(f"{what}: images contain NaN or infinite values")
        if x.max() <= 1.0 or not np.all(x == np.round(x)):
            raise EdgekdError(
                f"{what}: float images in [{x.min():g}, {x.max():g}]; edgekd expects uint8 "
                "0..255: store np.round(x * 255).astype(np.uint8) for [0, 1] data")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise EdgekdError(f"{what}: pixel values must be uint8 0..255, got {x.dtype} "
                          f"in [{x.min()}, {x.max()}]")
    return x.astype(np.uint8)


def _labels(y: np.ndarray, what: str = "labels") -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)) or (
            y.size and not np.all(y == np.round(y))):
        raise EdgekdError(f"{what}: labels must be integer class indices, got dtype {y.dtype}")
    return y.astype(np.int64)


def _keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _online(url: str, timeout: float = 4.0) -> bool:
    """A quick probe, so that an offline machine fails in seconds instead of
    sitting in Keras' download retries."""
    import urllib.request
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - any failure means: cannot download now
        return False


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def _cifar10_available() -> None:
    if not (_keras_home() / "cifar-10-batches-py").is_dir() and not _online(CIFAR10_URL):
        raise EdgekdError(
            f"CIFAR-10 is not cached under {_keras_home()} and cannot be downloaded (offline?): "
            "unpack an image-folder copy and pass it instead, e.g. "
            "`make edge-model DATA=/path/to/cifar10-jpeg` or `--data /path/to/cifar10-jpeg`")


def _cifar10() -> DataSet:
    _cifar10_available()
    from distill.tfenv import keras
    (xtr, ytr), (xte, yte) = keras.datasets.cifar10.load_data()
    return DataSet("cifar10", xtr, _labels(ytr), xte, _labels(yte), list(CIFAR10_LABELS))


def _read_idx(path: Path, is_images: bool) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    arr = np.frombuffer(raw, dtype=np.uint8, offset=16 if is_images else 8)
    return arr.reshape(-1, 28, 28) if is_images else arr


def _fashion_mnist() -> DataSet:
    d = FASHION_DEBIAN_DIR
    if (d / "train-images-idx3-ubyte.gz").is_file():
        xtr = _read_idx(d / "train-images-idx3-ubyte.gz", True)
        ytr = _read_idx(d / "train-labels-idx1-ubyte.gz", False)
        xte = _read_idx(d / "t10k-images-idx3-ubyte.gz", True)
        yte = _read_idx(d / "t10k-labels-idx1-ubyte.gz", False)
    else:
        if not (_keras_home() / "fashion-mnist").is_dir() and not _online(
                "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"):
            raise EdgekdError(
                f"Fashion-MNIST not found in {d} nor the Keras cache, and offline: "
                "`apt-get install dataset-fashion-mnist` or pass an image folder / .npz")
        from distill.tfenv import keras
        (xtr, ytr), (xte, yte) = keras.datasets.fashion_mnist.load_data()
    return DataSet("fashion_mnist", _as_nhwc_uint8(xtr, "fashion_mnist"), _labels(ytr),
                   _as_nhwc_uint8(xte, "fashion_mnist"), _labels(yte), list(FASHION_LABELS))


def _npz(path: Path) -> DataSet:
    if not path.is_file():
        raise EdgekdError(f"data file {path} not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile/pickle/ValueError: all mean "not a usable npz"
        raise EdgekdError(f"cannot read {path} as .npz: {exc}") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise EdgekdError(f"{path} lacks {', '.join(missing)} (needs x_train, y_train, "
                          "x_test, y_test; optional labels)")
    ytr = _labels(arrays["y_train"], f"{path} y_train")
    yte = _labels(arrays["y_test"], f"{path} y_test")
    n_classes = int(max(ytr.max(initial=0), yte.max(initial=0))) + 1
    labels = ([str(s) for s in arrays["labels"]] if "labels" in arrays
              else [str(i) for i in range(n_classes)])
    return DataSet(path.stem, _as_nhwc_uint8(arrays["x_train"], f"{path} x_train"), ytr,
                   _as_nhwc_uint8(arrays["x_test"], f"{path} x_test"), yte, labels)


def _drawn(items: list, n: int | None, seed: int) -> list:
    """At most n of `items`, drawn at random, in their order (by class)."""
    if n is None or len(items) <= n:
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), n, replace=False))
    return [items[i] for i in keep]


def _folder(root: Path, image_size: int | None, val_split: float, seed: int,
            resize: str, store_dir: Path | None, limits: FolderLimits) -> DataSet:
    has_split = (root / "train").is_dir()
    train_files = photos.class_files(root / "train" if has_split else root)
    labels = list(train_files)
    test_files = photos.class_files(root / "test") if has_split and (root / "test").is_dir() \
        else {}
    extra = set(test_files) - set(labels)
    if extra:
        raise EdgekdError(f"{root}/test has classes not in train: {sorted(extra)}")
    train = [(p, labels.index(c)) for c in labels for p in train_files[c]]
    test = [(p, labels.index(c)) for c in labels for p in test_files.get(c, [])]
    if test:
        order = np.random.default_rng(seed).permutation(len(test))  # not class by class
        test = [test[i] for i in order]
    else:  # class folders only: hold out a stratification-free random split of every photo
        order = np.random.default_rng(seed).permutation(len(train))
        n_val = max(1, int(round(len(train) * val_split)))
        test, train = [train[i] for i in order[:n_val]], [train[i] for i in order[n_val:]]
    seen = len(train)
    train, test = _drawn(train, limits.max_train, seed), _drawn(test, limits.max_test, seed)
    size, mode, chosen = photos.choose_size([p for p, _ in train + test], image_size,
                                            limits.max_side)
    print(f"[distill] {root.name}: {chosen}", flush=True)
    if len(train) < seen:
        print(f"[distill] {len(train)} of the {seen} training photos drawn at random "
              "(the preset's limit)", flush=True)
    x = photos.decode([p for p, _ in train], size, mode, resize, "training", store_dir)
    y = np.array([c for _, c in train], dtype=np.int64)
    xte = photos.decode([p for p, _ in test], size, mode, resize, "test")
    yte = np.array([c for _, c in test], dtype=np.int64)
    return DataSet(root.name, x, y, xte, yte, labels, resize)
