"""Every data source, and the errors for bad data."""

import numpy as np
import pytest
from PIL import Image

from distill import data
from edgekd.errors import EdgekdError
from tests.conftest import FASHION_SMALL, small_npz


def _write_images(root, classes, n, size, mode, suffix, rng):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            shape = (size, size, 3) if mode == "RGB" else (size, size)
            arr = rng.integers(0, 256, shape).astype(np.uint8)
            Image.fromarray(arr, mode).save(root / c / f"{i:03d}{suffix}")


def test_image_folder_with_train_and_test(tmp_path):
    rng = np.random.default_rng(0)
    _write_images(tmp_path / "train", ["cat", "dog", "eel"], 5, 20, "RGB", ".png", rng)
    _write_images(tmp_path / "test", ["cat", "dog", "eel"], 2, 20, "RGB", ".png", rng)
    ds = data.load_dataset(str(tmp_path))
    assert ds.labels == ["cat", "dog", "eel"]
    assert ds.x_train.shape == (15, 20, 20, 3) and ds.x_test.shape == (6, 20, 20, 3)
    assert ds.x_train.dtype == np.uint8
    np.testing.assert_array_equal(ds.y_train, np.repeat([0, 1, 2], 5))
    # the test split is shuffled (deterministically), so any slice of it mixes classes
    assert sorted(ds.y_test.tolist()) == [0, 0, 1, 1, 2, 2] and ds.y_test.tolist() != sorted(ds.y_test)
    np.testing.assert_array_equal(ds.y_test, data.load_dataset(str(tmp_path)).y_test)
    # PNG is lossless: pixels are exactly the files' pixels
    first = np.asarray(Image.open(tmp_path / "train" / "cat" / "000.png"))
    np.testing.assert_array_equal(ds.x_train[0], first)


def test_grayscale_jpeg_folder_with_validation_split_and_resize(tmp_path):
    rng = np.random.default_rng(1)
    _write_images(tmp_path, ["a", "b"], 10, 40, "L", ".jpg", rng)
    ds = data.load_dataset(str(tmp_path), image_size=16, val_split=0.25)
    assert ds.x_train.shape == (15, 16, 16, 1) and ds.x_test.shape == (5, 16, 16, 1)
    assert ds.preprocessing.input_shape == (16, 16, 1)


def test_corrupt_image_is_named(tmp_path):
    rng = np.random.default_rng(2)
    _write_images(tmp_path / "train", ["a", "b"], 3, 8, "RGB", ".png", rng)
    (tmp_path / "train" / "b" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(EdgekdError, match="cannot decode image .*bad.jpg"):
        data.load_dataset(str(tmp_path))


def test_npz_source(tmp_path):
    path = small_npz(tmp_path / "set.npz", n_train=50, n_test=20, shape=(9, 9, 3))
    ds = data.load_dataset(str(path))
    with np.load(path) as z:
        np.testing.assert_array_equal(ds.x_train, z["x_train"])
        np.testing.assert_array_equal(ds.y_test, z["y_test"])
    assert ds.labels == ["0", "1", "2"] and ds.name == "set"


@pytest.mark.parametrize("arrays,msg", [
    ({"x_train": np.zeros((4, 8, 8), np.uint8), "y_train": np.zeros(4)}, "lacks x_test, y_test"),
    ({"x_train": np.full((4, 8, 8), 300.0), "y_train": np.zeros(4),
      "x_test": np.zeros((2, 8, 8)), "y_test": np.zeros(2)}, "pixel values must be uint8"),
    ({"x_train": np.zeros((4, 8), np.uint8), "y_train": np.zeros(4),
      "x_test": np.zeros((2, 8), np.uint8), "y_test": np.zeros(2)}, "expected images"),
    ({"x_train": np.zeros((4, 8, 8), np.uint8), "y_train": np.zeros(3),
      "x_test": np.zeros((2, 8, 8), np.uint8), "y_test": np.zeros(2)}, "4 images but 3 labels"),
])
def test_bad_npz(tmp_path, arrays, msg):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(EdgekdError, match=msg):
        data.load_dataset(str(path))


def test_not_an_npz_and_unknown_source(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(EdgekdError, match="cannot read .*x.npz as .npz"):
        data.load_dataset(str(tmp_path / "x.npz"))
    with pytest.raises(EdgekdError, match="unknown data source 'imagenet21k'"):
        data.load_dataset("imagenet21k")


def _write_idx(folder, name, array):
    """An idx file as Fashion-MNIST publishes it: magic, dims (big-endian), bytes."""
    import gzip
    dims = np.array(array.shape, ">i4").tobytes()
    magic = bytes([0, 0, 8, array.ndim])
    with gzip.open(folder / name, "wb") as f:
        f.write(magic + dims + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reader_on_idx_files(tmp_path, monkeypatch):
    """The Debian-layout reader on idx files written from the committed subset."""
    with np.load(FASHION_SMALL) as z:
        arrays = {k: z[k] for k in z.files}
    for prefix, split in (("train", "train"), ("t10k", "test")):
        _write_idx(tmp_path, f"{prefix}-images-idx3-ubyte.gz", arrays[f"x_{split}"])
        _write_idx(tmp_path, f"{prefix}-labels-idx1-ubyte.gz", arrays[f"y_{split}"])
    monkeypatch.setattr(data, "FASHION_DEBIAN_DIR", tmp_path)
    ds = data.load_dataset("fashion_mnist")
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"])
    assert ds.labels == [str(s) for s in arrays["labels"]] and ds.name == "fashion_mnist"


@pytest.mark.data
def test_fashion_mnist_debian_files():
    ds = data.load_dataset("fashion_mnist")
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    # the published files: every class has 6,000 training and 1,000 test images,
    # and the first training image is an ankle boot (9), the first test one too
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.y_train[0] == 9 and ds.y_test[0] == 9
    assert ds.labels[9] == "ankle boot"


def test_cifar10_offline_without_cache_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(data, "_online", lambda url, timeout=4.0: False)
    with pytest.raises(EdgekdError, match="CIFAR-10 is not cached .* DATA=/path/to/cifar10-jpeg"):
        data.load_dataset("cifar10")


def test_offline_cli_fails_before_importing_tensorflow(tmp_path):
    """`make edge-model` offline must fail in seconds: the check runs before TF loads."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    code = ("import sys, distill.data as d; d._online = lambda url, timeout=4.0: False\n"
            "from distill.cli import entry\n"
            "rc = entry()\n"
            "print('tf loaded' if 'tensorflow' in sys.modules else 'tf not loaded', rc)")
    proc = subprocess.run([sys.executable, "-c", code, "--out", str(tmp_path / "a")],
                          capture_output=True, text=True, cwd=ROOT,
                          env={"KERAS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.stdout.strip() == "tf not loaded 2"
    assert "CIFAR-10 is not cached" in proc.stderr and not (tmp_path / "a").exists()


def test_folder_limits_draw_before_decoding_and_cap_the_size(tmp_path, monkeypatch):
    """The quick preset's limits: at most max_train / max_test photos decoded
    (drawn at random, every class kept in order), trained at most max_side."""
    rng = np.random.default_rng(3)
    _write_images(tmp_path / "train", ["a", "b", "c"], 8, 40, "RGB", ".png", rng)
    _write_images(tmp_path / "test", ["a", "b", "c"], 4, 40, "RGB", ".png", rng)
    decoded = []
    real = data.photos.decode
    monkeypatch.setattr(data.photos, "decode", lambda paths, *a, **k: decoded.append(len(paths))
                        or real(paths, *a, **k))
    limits = data.FolderLimits(max_side=16, max_train=10, max_test=5)
    ds = data.load_dataset(str(tmp_path), limits=limits)
    assert decoded == [10, 5]
    assert ds.x_train.shape == (10, 16, 16, 3) and ds.x_test.shape == (5, 16, 16, 3)
    assert list(ds.y_train) == sorted(ds.y_train)  # drawn, then kept in class order
    again = data.load_dataset(str(tmp_path), limits=limits)
    np.testing.assert_array_equal(again.x_train, ds.x_train)  # the same draw every time
    assert data.load_dataset(str(tmp_path)).x_train.shape == (24, 40, 40, 3)  # no limits


def test_16_bit_png_keeps_its_top_8_bits(tmp_path):
    """Pillow's own convert clips 16-bit gray to 255 (all-white images)."""
    from edgekd.preprocess import Preprocessing, load_image
    wide = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode.startswith("I")
    x = load_image(tmp_path / "g.png", Preprocessing(64, 64, 1))
    np.testing.assert_array_equal(x[..., 0], (wide >> 8).astype(np.uint8))
    rgb = load_image(tmp_path / "g.png", Preprocessing(64, 64, 3))
    np.testing.assert_array_equal(rgb[..., 1], (wide >> 8).astype(np.uint8))


def test_a_train_limit_keeps_the_held_out_split_of_every_photo(tmp_path):
    """Without a test folder the held-out photos are val_split of all of them,
    as without limits: a training limit does not shrink the test set."""
    rng = np.random.default_rng(4)
    _write_images(tmp_path, ["a", "b", "c"], 10, 12, "RGB", ".png", rng)
    full = data.load_dataset(str(tmp_path), val_split=0.2)
    limited = data.load_dataset(str(tmp_path), val_split=0.2,
                                limits=data.FolderLimits(max_train=10))
    assert full.x_train.shape[0] == 24 and limited.x_train.shape[0] == 10
    np.testing.assert_array_equal(limited.x_test, full.x_test)  # the same 6 photos
    assert data.load_dataset(str(tmp_path), val_split=0.2,
                             limits=data.FolderLimits(max_test=4)).x_test.shape[0] == 4
