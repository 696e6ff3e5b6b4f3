"""Arrays past the memory limit live in a file (distill.store): the same rows,
the same training batches, the same teacher cache, and nothing left behind."""

import json

import numpy as np
import pytest
from PIL import Image

from distill import store
from distill.recipe import cached_views
from distill.tfenv import keras, tf
from distill.train import make_dataset
from edgekd.preprocess import Preprocessing


def _filled(tmp_path, x):
    s = store.ImageStore.create(tmp_path, "x.u8", len(x), x.shape[1:])
    s.write(0, x[:7])
    s.write(7, x[7:])
    return s


def test_rows_by_index_slice_and_view(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 5, 4, 3), dtype=np.uint8)
    s = _filled(tmp_path, x)
    assert s.shape == x.shape and len(s) == 20 and s.ndim == 4
    np.testing.assert_array_equal(s[[3, 0, 19, 3]], x[[3, 0, 19, 3]])
    np.testing.assert_array_equal(s[5:9], x[5:9])
    idx = np.array([9, 2, 17, 4])
    view = s.subset(idx)
    np.testing.assert_array_equal(view[[1, 3]], x[idx][[1, 3]])
    np.testing.assert_array_equal(view.subset([2, 0])[0:2], x[idx][[2, 0]])
    assert (tmp_path / "x.u8").stat().st_size == x.nbytes
    with pytest.raises(TypeError, match="index it"):
        np.asarray(s)


def test_training_batches_are_the_same_from_a_file(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (50, 6, 6, 3), dtype=np.uint8)
    y = np.arange(50) % 3
    pre = Preprocessing(height=6, width=6, channels=3)
    keras.utils.set_random_seed(3)
    a = [(i.numpy(), j.numpy()) for i, j in make_dataset(x, y, pre, 16, True, 3)]
    keras.utils.set_random_seed(3)
    b = [(i.numpy(), j.numpy()) for i, j in make_dataset(_filled(tmp_path, x), y, pre, 16, True, 3)]
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_cache_on_disk_reproduces_the_logits(tmp_path, monkeypatch):
    """The teacher cache with its copies in a file: the same images, labels and
    teacher logits batch by batch as in memory, and each logit the teacher's."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 255, (40, 8, 8, 1), dtype=np.uint8)
    y = rng.integers(0, 3, 40)
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                                keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    pre = Preprocessing(height=8, width=8, channels=1)

    def batches(folder):
        tf.random.set_seed(5)
        ds = cached_views(x, y, teacher, pre, views=3, batch_size=16, seed=0, mirror=True,
                          folder=folder)
        return [[t.numpy() for t in batch] for batch in ds]
    in_memory = batches(None)
    monkeypatch.setenv("EDGEKD_STORE_RAM_LIMIT", "0")
    on_disk = batches(tmp_path)
    assert (tmp_path / "teacher_views.u8").stat().st_size == 6 * x.nbytes
    for a, b in zip(in_memory, on_disk, strict=True):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
        images, _, logits = b
        flipped = teacher(images[:, :, ::-1], training=False).numpy()
        np.testing.assert_allclose(logits, (teacher(images, training=False).numpy() + flipped) / 2,
                                   rtol=1e-4, atol=1e-5)


def test_a_run_from_disk_matches_the_run_in_memory(tmp_path, monkeypatch, capsys):
    """A whole distill run on a photo folder with every large array forced into
    files: the same splits, the same batches (so the same trained weights, up
    to float noise) as in memory, and no store folder left beside --out.
    Without augmentation: random crops in a parallel tf.data map are drawn in
    thread order, so they differ between any two runs."""
    from distill.config import resolve
    from distill.run import run
    from distill.safe_load import load as load_keras
    rng = np.random.default_rng(4)
    for split, n in (("train", 24), ("test", 6)):
        for c in ("a", "b", "c"):
            (tmp_path / "photos" / split / c).mkdir(parents=True)
            for i in range(n):
                h, w = rng.integers(14, 30, 2)
                im = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(im).save(tmp_path / "photos" / split / c / f"{i}.png")
    cfg = resolve("quick", data=str(tmp_path / "photos"), teacher_arch="tiny_teacher",
                  student_arch="tiny_student", teacher_epochs=1, epochs=1, train_subset=None,
                  calib_size=20, batch_size=16, augment=False, teacher_cache_views=1,
                  image_size=16)
    for where in ("memory", "disk"):
        if where == "disk":
            monkeypatch.setenv("EDGEKD_STORE_RAM_LIMIT", "0")
        out = tmp_path / where / "art"
        run(cfg, out, verbose=0)
        assert sorted(p.name for p in out.parent.iterdir()) == ["art"]
        log = capsys.readouterr().out
        assert "training images" in log and f"MiB {'on disk' if where == 'disk' else 'in memory'}" \
            in log.split("training images")[1].splitlines()[0]
        assert f"MiB {'on disk' if where == 'disk' else 'in memory'}" in \
            log.split("teacher cache: 1 copies of 72 images")[1].splitlines()[0]
    mem, disk = tmp_path / "memory" / "art", tmp_path / "disk" / "art"
    for name in ("eval.npz", "calib.npz"):
        with np.load(mem / name) as a, np.load(disk / name) as b:
            np.testing.assert_array_equal(a["x"], b["x"])
    for role in ("teacher", "student"):
        wa = load_keras(mem / f"{role}.keras", role).get_weights()
        wb = load_keras(disk / f"{role}.keras", role).get_weights()
        for u, v in zip(wa, wb, strict=True):
            np.testing.assert_allclose(u, v, atol=1e-4)
    pre = json.loads((disk / "preprocessing.json").read_text())
    assert (pre["height"], pre["width"], pre["resize"]) == (16, 16, "crop")
