"""A pretrained teacher: a Keras Applications backbone with weights from a
file (never downloaded in tests), fine-tuned head first, then distilled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli, small_npz

SHARED_WEIGHTS = ROOT.parent / "shared" / "data" / "pretrained" / "mobilenet_1_0_224_tf_no_top.h5"


def _bn_moving_means(model) -> dict[str, np.ndarray]:
    return {w.name.split("/")[-2]: w.numpy() for w in model.weights if "moving_mean" in w.name}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """MobileNet v1 (alpha 1) weights in Keras Applications' no-top layout, with
    moving means that ImageNet training would not leave at 0."""
    from distill.tfenv import keras
    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNet(input_shape=(32, 32, 3), include_top=False,
                                        pooling="avg", weights=None)
    # Calibrated as ImageNet training leaves a backbone: each batch norm's moving
    # statistics those of its input (one pass over coloured images, momentum 0),
    # so its features stay informative instead of saturating; never 0.
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    rng = np.random.default_rng(0)
    colours = rng.uniform(-1, 1, (64, 1, 1, 3))
    base(np.float32(colours + rng.normal(0, 0.2, (64, 32, 32, 3))), training=True)
    path = tmp_path_factory.mktemp("weights") / "mobilenet_no_top.h5"
    base.save_weights(path)
    return path, _bn_moving_means(base)


def test_offline_imagenet_fails_in_seconds(tmp_path, monkeypatch):
    from distill import data
    monkeypatch.setattr(data, "_online", lambda url, timeout=4.0: False)
    npz = small_npz(tmp_path / "d.npz")
    proc = run_cli("distill", "--data", str(npz), "--out", str(tmp_path / "a"),
                   "--teacher-arch", "mobilenet")
    assert proc.returncode == 2
    assert ("the ImageNet weights of mobilenet cannot be downloaded (offline?): pass "
            "--teacher-weights PATH to a Keras Applications file "
            "(mobilenet_1_0_224_tf_no_top.h5)") in proc.stderr
    assert not (tmp_path / "a").exists()


def _colour_npz(path: Path, n_train=600, n_test=200) -> Path:
    """12x12 RGB, 3 classes told apart by their mean colour: what a backbone
    with random weights still carries through its average pooling, so the
    fine-tuned teacher beats chance clearly (small_npz's per-pixel patterns
    average out)."""
    rng = np.random.default_rng(0)
    colours = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200]])
    def make(n):
        y = rng.integers(0, 3, n)
        x = colours[y][:, None, None, :] + rng.normal(0, 30, (n, 12, 12, 3))
        return np.clip(x, 0, 255).astype(np.uint8), y
    (xtr, ytr), (xte, yte) = make(n_train), make(n_test)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


@pytest.mark.slow  # end to end, a MobileNet fine-tuned at 128 px, then handed back twice: make test-extra
def test_weights_are_loaded_and_the_teacher_fine_tuned(tmp_path, weights):
    path, means = weights
    npz = _colour_npz(tmp_path / "d.npz")  # 12x12 RGB: the teacher upsizes to 128 inside
    out = tmp_path / "art"
    proc = run_cli("distill", "--data", str(npz), "--out", str(out), "--preset", "quick",
                   "--teacher-arch", "mobilenet", "--teacher-weights", str(path),
                   "--teacher-epochs", "3", "--student-arch", "tiny_student", "--epochs", "1",
                   "--no-scratch", "--batch-size", "16", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((out / "train_report.json").read_text())
    t = report["models"]["teacher"]
    assert t["source"] == f"mobilenet, weights {path}" and len(t["epochs"]) == 3
    from distill.pretrained import backbone
    from distill.safe_load import load
    teacher = load(out / "teacher.keras", "teacher")
    got = _bn_moving_means(backbone(teacher))
    assert got.keys() == means.keys()
    for name, value in means.items():  # loaded, and kept: the backbone ran in inference mode
        np.testing.assert_array_equal(got[name], value)
    assert not (out / "teacher_head.keras").exists()
    assert teacher.input_shape[1:] == (12, 12, 3)
    assert backbone(teacher).input_shape[1:] == (128, 128, 3)  # FINE_TUNE_SIDE
    # the recorded accuracy is the saved teacher's, on the data's own eval images
    with np.load(out / "eval.npz") as z:
        logits = teacher.predict(z["x"] / np.float32(255), verbose=0)
        assert t["accuracy"] == pytest.approx(float(np.mean(logits.argmax(-1) == z["y"])))
    assert t["accuracy"] > 0.6  # chance: about 1/3
    _handed_back(tmp_path, npz, out / "teacher.keras", t["accuracy"])


def _handed_back(tmp_path, npz, teacher_file, accuracy):
    """The fine-tuned teacher (Rescaling(2, -1) first, fed x / 255) passed to a
    new run as --teacher scores what its own run measured: read from the
    contract edgekd wrote into the file, and, with that entry removed, found
    by measuring the usual scalings on labeled training images."""
    import shutil
    import zipfile
    bare = tmp_path / "bare" / "teacher.keras"
    bare.parent.mkdir()
    with zipfile.ZipFile(teacher_file) as src, zipfile.ZipFile(bare, "w") as dst:
        assert "edgekd.json" in src.namelist()
        for name in src.namelist():
            if name != "edgekd.json":
                dst.writestr(name, src.read(name))
    for i, (path, source) in enumerate([(teacher_file, "written into the file"),
                                        (bare, "measured on")]):
        again = tmp_path / f"again{i}"
        proc = run_cli("distill", "--data", str(npz), "--out", str(again), "--preset", "quick",
                       "--teacher", str(path), "--student-arch", "tiny_student", "--epochs", "1",
                       "--no-scratch", "--batch-size", "16", "--quiet")
        assert proc.returncode == 0, proc.stderr[-2000:]
        t = json.loads((again / "train_report.json").read_text())["models"]["teacher"]
        assert t["accuracy"] == pytest.approx(accuracy, abs=1e-6), proc.stdout
        assert t["input"]["scale"] == pytest.approx(1 / 255) and t["input"]["offset"] == 0
        assert t["input_from"].startswith(source), t["input_from"]
        shutil.rmtree(again)


def test_weights_that_do_not_fit(tmp_path):
    from distill.pretrained import build
    from edgekd.errors import EdgekdError
    bad = tmp_path / "w.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(EdgekdError, match="teacher weights .* do not fit mobilenet"):
        build("mobilenet", (32, 32, 3), 3, str(bad))


@pytest.mark.data
def test_the_shared_imagenet_weights_load():
    """../shared's ImageNet MobileNet file (make test-extra): loads into the teacher."""
    from distill.pretrained import backbone, build
    model = build("mobilenet", (96, 96, 3), 10, str(SHARED_WEIGHTS))
    first = backbone(model).get_layer("conv1").get_weights()[0]
    assert first.shape == (3, 3, 3, 32) and float(np.abs(first).mean()) > 0.01
    assert Path(SHARED_WEIGHTS).stat().st_size > 10_000_000


@pytest.mark.parametrize("h,w,want", [
    (32, 32, (128, 128)),
    (64, 80, (128, 160)),  # aspect kept: 80 * 2
    (95, 200, (128, 269)),  # 200 * 128 / 95 = 269.5, rounded
    (96, 96, (96, 96)),  # from UPSAMPLE_BELOW on: the images' own size
    (96, 144, (96, 144)),
    (224, 224, (224, 224)),
])
def test_small_images_are_upsampled_for_the_backbone(h, w, want):
    from distill.pretrained import backbone_size
    assert backbone_size(h, w) == want


@pytest.mark.parametrize("h,w,side,want", [
    (96, 96, 128, (128, 128)),  # --teacher-size: the shorter side, whatever the data's
    (96, 144, 128, (128, 192)),
    (64, 64, 64, (64, 64)),  # no upsampling where the side is given as the data's
    (200, 300, 100, (100, 150)),
])
def test_teacher_size_sets_the_backbone_side(h, w, side, want):
    from distill.pretrained import backbone_size
    assert backbone_size(h, w, side) == want


def test_a_96_px_teacher_runs_its_backbone_at_96_px(weights):
    from distill.pretrained import backbone, build
    model = build("mobilenet", (96, 96, 3), 3, str(weights[0]))
    assert backbone(model).input_shape[1:] == (96, 96, 3)
    assert "to_backbone_size" not in [layer.name for layer in model.layers]
    small = build("mobilenet", (64, 64, 3), 3, str(weights[0]))
    assert small.get_layer("to_backbone_size").output_shape[1:] == (128, 128, 3)


def test_thaw_top_keeps_the_fine_resolution_layers_frozen(weights):
    """"top" fine-tunes MobileNet from block 6 on (its first layer at 8x8 of a
    128 px input: 1/16), and nothing before it; "all" every layer."""
    from distill.pretrained import backbone, build, thaw
    model = build("mobilenet", (32, 32, 3), 3, str(weights[0]))  # upsampled to 128 inside
    base = backbone(model)
    assert not base.trainable  # the head phase's
    thaw(model, "top")
    names = [layer.name for layer in base.layers]
    first = names.index("conv_dw_6")
    assert base.get_layer("conv_dw_6").output_shape[1:3] == (8, 8)
    assert [n for n in names[:first] if base.get_layer(n).trainable] == []
    assert all(base.get_layer(n).trainable for n in names[first:])
    trainable = {w.name.split("/")[0] for w in model.trainable_weights}
    assert "conv_pw_5" not in trainable and {"conv_pw_13", "logits"} <= trainable
    thaw(model, "all")
    assert all(layer.trainable for layer in base.layers)


def test_fine_tune_must_be_all_or_top():
    from distill.config import resolve
    from edgekd.errors import EdgekdError
    with pytest.raises(EdgekdError, match="teacher fine-tune must be one of all, top, got 'half'"):
        resolve("default", teacher_fine_tune="half")


@pytest.mark.parametrize("flag,value", [("--teacher-fine-tune-lr", "0"),
                                        ("--teacher-fine-tune-lr", "-1e-4"),
                                        ("--teacher-size", "-1"), ("--teacher-size", "5000")])
def test_teacher_rate_and_size_errors(tmp_path, flag, value):
    npz = small_npz(tmp_path / "d.npz")
    proc = run_cli("distill", "--data", str(npz), "--out", str(tmp_path / "a"), f"{flag}={value}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "teacher fine-tune lr must be > 0 and teacher size in [0, 1024] px, got "
        f"{float(value) if 'lr' in flag else 0.0001} and {value if 'size' in flag else 0}")
    assert not (tmp_path / "a").exists()
