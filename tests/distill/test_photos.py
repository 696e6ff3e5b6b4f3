"""Photo folders: the training size chosen from the data, the resize policy,
and that bench.predict brings a photo to the model the way training did."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from distill import data, photos
from edgekd.preprocess import Preprocessing, fit_image
from edgekd.runtime import open_runner
from tests.conftest import run_cli

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _bands(h: int, w: int) -> np.ndarray:
    """Left quarter red, middle half green, right quarter blue: where each
    colour ends up says how the photo was cropped, padded or stretched."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, :w // 4], a[:, w // 4:3 * w // 4], a[:, 3 * w // 4:] = RED, GREEN, BLUE
    return a


def _folder(root, sizes_by_class):
    for c, sizes in sizes_by_class.items():
        (root / c).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(_bands(h, w)).save(root / c / f"{i}.png")


def test_policies_on_a_wide_photo():
    im = Image.fromarray(_bands(40, 80))
    crop = np.asarray(fit_image(im, 20, 20, "crop"))
    # the centre of the long side, undistorted (bilinear blends the outermost column)
    assert (crop[:, 1:-1] == GREEN).all()
    pad = np.asarray(fit_image(im, 20, 20, "pad"))
    assert (pad[:5] == 0).all() and (pad[15:] == 0).all()  # 40x80 -> 10x20, centred
    assert (pad[5:15, :4] == RED).all() and (pad[5:15, 6:14] == GREEN).all()
    assert (pad[5:15, 16:] == BLUE).all()
    stretch = np.asarray(fit_image(im, 20, 20, "stretch"))
    assert (stretch[:, :4] == RED).all() and (stretch[:, -4:] == BLUE).all()


def test_mixed_sizes_default_to_the_median_shorter_side_cropped(tmp_path, capsys):
    _folder(tmp_path / "train", {"a": [(30, 60), (48, 36)], "b": [(60, 30), (36, 72)]})
    _folder(tmp_path / "test", {"a": [(40, 40)], "b": [(44, 88)]})
    ds = data.load_dataset(str(tmp_path))
    # shorter sides 30, 36, 30, 36, 40, 44: median_low 36
    assert ds.x_train.shape[1:] == (36, 36, 3) and ds.preprocessing.resize == "crop"
    assert "training at 36x36 (the median shorter side" in capsys.readouterr().out
    centre = np.concatenate([ds.x_train, ds.x_test])[:, 14:22, 14:22]
    assert (centre == GREEN).all()  # every photo centre-cropped, none stretched


def test_large_photos_are_capped_and_one_size_folders_kept(tmp_path, capsys):
    _folder(tmp_path / "big" / "train", {"a": [(300, 400)], "b": [(400, 300)]})
    _folder(tmp_path / "big" / "test", {"a": [(300, 400)], "b": [(400, 300)]})
    big = data.load_dataset(str(tmp_path / "big"))
    assert big.x_train.shape[1:3] == (photos.MAX_DEFAULT_SIDE, photos.MAX_DEFAULT_SIDE)
    _folder(tmp_path / "small" / "train", {"a": [(20, 30)], "b": [(20, 30)]})
    _folder(tmp_path / "small" / "test", {"a": [(20, 30)], "b": [(20, 30)]})
    small = data.load_dataset(str(tmp_path / "small"))
    assert small.x_train.shape[1:3] == (20, 30)
    assert "all 20x30: training at that size" in capsys.readouterr().out


@pytest.mark.parametrize("policy", ["pad", "stretch"])
def test_policy_flag_reaches_the_data(tmp_path, policy):
    _folder(tmp_path, {"a": [(40, 80)] * 3, "b": [(40, 80)] * 3})
    ds = data.load_dataset(str(tmp_path), image_size=20, val_split=0.3, resize=policy)
    expected = np.asarray(fit_image(Image.fromarray(_bands(40, 80)), 20, 20, policy))
    np.testing.assert_array_equal(ds.x_train[0], expected)
    assert ds.preprocessing.resize == policy


def test_predict_honours_the_recorded_policy(tmp_path, mini_exported):
    """A wide photo through bench.predict, with the manifest saying `pad`: the
    model must see the photo scaled to the width with black bands, computed
    here by hand, not by edgekd's resize."""
    folder = tmp_path / "art"
    shutil.copytree(mini_exported, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["preprocessing"]["resize"] = "pad"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    pre = Preprocessing.from_dict(manifest["preprocessing"])
    h, w = pre.height, pre.width
    photo = np.random.default_rng(0).integers(0, 256, (h, 2 * w, 3)).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "wide.png")
    half = np.asarray(Image.fromarray(photo).resize((w, h // 2), Image.Resampling.BILINEAR))
    expected = np.zeros((1, h, w, 3), np.uint8)
    top = (h - h // 2) // 2
    expected[0, top:top + h // 2] = half
    logits = open_runner(folder / "student_fp32.tflite", "tflite").predict(pre.apply(expected))
    proc = run_cli("bench.predict", str(folder), str(tmp_path / "wide.png"),
                   "--artifact", "student_tflite_fp32", "--top", "1")
    assert proc.returncode == 0, proc.stderr
    z = np.exp(logits[0] - logits[0].max())
    best = int(np.argmax(z))
    labels = manifest["dataset"]["labels"]
    assert proc.stdout.splitlines()[1].endswith(f"{labels[best]} {100 * z[best] / z.sum():.1f} %")


def test_photo_folders_get_a_cached_pretrained_teacher(tmp_path, monkeypatch):
    from distill.cli import photo_teacher
    from distill.config import resolve
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "photos").mkdir()
    cfg = resolve("default", data=str(tmp_path / "photos"))
    assert photo_teacher(cfg, "default", False).teacher_arch == "edge_pool"  # nothing cached
    weights = tmp_path / "keras" / "models" / "mobilenet_1_0_224_tf_no_top.h5"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights")
    chosen = photo_teacher(cfg, "default", False)
    assert (chosen.teacher_arch, chosen.teacher_weights) == ("mobilenet", str(weights))
    assert photo_teacher(cfg, "default", True).teacher_arch == "edge_pool"  # --teacher-arch given
    assert photo_teacher(resolve("seed", data=cfg.data), "seed", False).teacher_arch == \
        "seed_teacher"
    npz = resolve("default", data=str(tmp_path / "x.npz"))
    assert photo_teacher(npz, "default", False).teacher_arch == "edge_pool"
