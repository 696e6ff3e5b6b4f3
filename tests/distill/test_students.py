"""Pretrained students (distill.students): names, sizing by MACs, weights
loading, QAT and pruning wrappers, and a run that distils, exports and checks
parity on one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli
from tests.distill.test_pretrained import _colour_npz

SHARED = ROOT.parent / "shared" / "data" / "pretrained"
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *((512, 1),) * 5,
          (1024, 2), (1024, 1))  # MobileNet v1's 13 depthwise-separable blocks at alpha 1


def mobilenet_macs(side: int, alpha: float, classes: int) -> int:
    """MobileNet v1's conv and dense multiply-accumulates, from the paper's
    table (Howard et al. 2017), for a square input: Keras pads (0, 1) before
    each stride-2 conv, so a side h becomes (h - 2) // 2 + 1."""
    h = (side - 2) // 2 + 1
    cin = int(32 * alpha)
    total = h * h * 9 * 3 * cin
    for filters, stride in BLOCKS:
        if stride == 2:
            h = (h - 2) // 2 + 1
        cout = int(filters * alpha)
        total += h * h * 9 * cin + h * h * cin * cout
        cin = cout
    return total + cin * classes


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Keras Applications MobileNet v1 alpha-0.25 weights (random, saved as the
    no-top file is laid out): no download, no shared data."""
    from distill.tfenv import keras
    keras.utils.set_random_seed(0)
    base = keras.applications.MobileNet(input_shape=(64, 64, 3), alpha=0.25,
                                        include_top=False, pooling="avg", weights=None)
    path = tmp_path_factory.mktemp("w") / "mobilenet_2_5_128_tf_no_top.h5"
    base.save_weights(path)
    return path, base.get_layer("conv_pw_13").get_weights()[0]


def test_names():
    from distill.students import Spec, name_of, parse
    from edgekd.errors import EdgekdError
    assert parse("mobilenet_v1") == Spec(None, None)
    assert parse("mobilenet_v1_x0.25") == Spec(0.25, None)
    assert parse("mobilenet_v1_x0.5_r112") == Spec(0.5, 112)
    assert parse("mobilenet_v1_x0.3") is None and parse("edge_res") is None
    assert name_of(0.25, 96) == "mobilenet_v1_x0.25_r96" and name_of(0.5, None) == "mobilenet_v1_x0.5"
    with pytest.raises(EdgekdError, match="input side must be 32 to 1024 px, got 8"):
        parse("mobilenet_v1_x0.25_r8")


@pytest.mark.parametrize("name,shape,side,alpha", [
    ("mobilenet_v1_x0.25_r96", (32, 32, 3), 96, 0.25),
    ("mobilenet_v1_x0.5", (64, 64, 3), 64, 0.5),
    ("mobilenet_v1_x0.25_r128", (40, 40, 1), 128, 0.25),
])
def test_macs_match_the_paper(name, shape, side, alpha):
    from distill.models import build, count_macs
    model = build(name, shape, 10)
    assert count_macs(model) == mobilenet_macs(side, alpha, 10)
    assert model.input_shape[1:] == shape and model.output_shape[-1] == 10


@pytest.mark.parametrize("budget,shape,alphas,want", [
    (10e6, (32, 32, 3), (0.5, 0.25), "mobilenet_v1_x0.25_r96"),  # 0.5 exceeds 10M at 64 px
    (10e6, (96, 96, 3), (0.5, 0.25), "mobilenet_v1_x0.25"),  # the data's size fits: no resize
    (10e6, (128, 128, 3), (0.25,), "mobilenet_v1_x0.25_r112"),
    (30e6, (128, 128, 3), (0.5, 0.25), "mobilenet_v1_x0.5_r104"),
])
def test_pick_is_the_widest_alpha_at_the_largest_side_within_the_budget(budget, shape, alphas,
                                                                        want):
    from distill.students import SIDE_STEP, parse, pick
    picked = pick(budget, shape, 10, alphas)
    assert picked.name == want
    spec = parse(want)
    side = spec.side or shape[0]
    assert picked.macs == mobilenet_macs(side, spec.alpha, 10) <= budget
    assert mobilenet_macs(side + SIDE_STEP, spec.alpha, 10) > budget or side >= max(shape[0], 96)
    wider = [a for a in alphas if a > spec.alpha]
    assert all(mobilenet_macs(64, a, 10) > budget for a in wider)


def test_nothing_fits_a_tiny_budget():
    from distill.students import pick
    from edgekd.errors import EdgekdError
    with pytest.raises(EdgekdError, match="no mobilenet_v1 student fits 1M MACs: alpha 0.25 at "
                       "64 px needs 3.3"):
        pick(1e6, (64, 64, 3), 10, (0.25,))


def test_weights_load_and_the_student_wraps_for_qat_and_pruning(weights, tmp_path):
    from distill import optimize
    from distill.models import build
    from distill.students import check_weights, file_alpha
    from edgekd.errors import EdgekdError
    path, kernel = weights
    assert file_alpha(path) == 0.25
    model = build("mobilenet_v1_x0.25_r64", (32, 32, 1), 3, str(path))
    np.testing.assert_array_equal(model.get_layer("conv_pw_13").get_weights()[0], kernel)
    assert model.get_layer("to_student_size").output_shape[1:3] == (64, 64)
    qat = optimize.qat_model(model)  # Rescaling and Resizing get output quantizers
    x = np.random.default_rng(0).random((2, 32, 32, 1), np.float32)
    assert qat(x).shape == (2, 3)
    pruned = optimize.prunable(model, 0.5, 10)
    np.testing.assert_allclose(pruned(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(EdgekdError, match="are MobileNet v1 at alpha 0.25, not 0.5: name "
                       "mobilenet_v1_x0.25"):
        check_weights("mobilenet_v1_x0.5", str(path))
    with pytest.raises(EdgekdError, match="needs a pretrained --student-arch"):
        check_weights("edge_res", str(path))
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(EdgekdError, match="not a Keras Applications MobileNet v1 weights file"):
        file_alpha(bad)


def test_a_pretrained_student_fine_tunes_unless_told_otherwise():
    from distill.cli import parser
    from distill.config import resolve
    from distill.students import FINE_TUNE, fine_tune
    cfg = resolve("default", student_arch="mobilenet_v1", student_weights="imagenet")
    tuned = fine_tune(cfg, {})
    assert (tuned.optimizer, tuned.learning_rate, tuned.weight_decay) == ("adam", 3e-4, 0.0)
    assert FINE_TUNE["learning_rate"] == 3e-4
    args = vars(parser().parse_args(["--learning-rate", "0.01", "--optimizer", "sgd",
                                     "--student-arch", "mobilenet_v1", "--student-weights",
                                     "imagenet"]))
    given = {k: v for k, v in args.items() if k not in ("out", "preset", "quiet")}
    kept = fine_tune(resolve("default", **given), given)
    assert (kept.optimizer, kept.learning_rate, kept.weight_decay) == ("sgd", 0.01, 0.0)
    assert fine_tune(resolve("default"), {}) == resolve("default")  # no pretrained student


def _distil_export_parity(tmp_path, weights_file: str) -> dict:
    npz = _colour_npz(tmp_path / "d.npz")
    out = tmp_path / "art"
    proc = run_cli("distill", "--data", str(npz), "--out", str(out), "--preset", "quick",
                   "--teacher-arch", "tiny_teacher", "--student-arch", "mobilenet_v1",
                   "--student-macs", "10e6", "--student-weights", weights_file, "--epochs", "1",
                   "--teacher-epochs", "2", "--no-scratch", "--batch-size", "16", "--quiet")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mobilenet_v1 within 10M MACs at 12x12: mobilenet_v1_x0.25_r96" in proc.stdout
    report = json.loads((out / "train_report.json").read_text())
    assert report["models"]["student"]["name"] == "mobilenet_v1_x0.25_r96"
    proc = run_cli("export", str(out), "--formats", "tflite_fp32,tflite_int8,onnx_fp32",
                   "--roles", "student")
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    rows = {a["format"]: a for a in manifest["artifacts"] if a["role"] == "student"}
    assert set(rows) == {"tflite_fp32", "tflite_int8", "onnx_fp32"}
    assert all(r["parity"]["passed"] for r in rows.values()), rows
    return report


@pytest.mark.slow  # a MobileNet at 96 px trained an epoch and exported: make test-extra
def test_a_pretrained_student_distils_and_exports_with_parity(tmp_path, weights):
    path, kernel = weights
    report = _distil_export_parity(tmp_path, str(path))
    assert len(report["models"]["student"]["epochs"]) == 1
    from distill.safe_load import load
    trained = load(tmp_path / "art" / "student.keras", "student")
    assert trained.get_layer("conv_pw_13").get_weights()[0].shape == kernel.shape
    assert not np.allclose(trained.get_layer("conv_pw_13").get_weights()[0], kernel)  # trained


@pytest.mark.data
def test_the_shared_imagenet_student_weights_load_and_export(tmp_path):
    """../shared's alpha 0.25 and 0.5 files (make test-extra): each loads into its
    student, and one distils a step and exports with parity."""
    from distill.models import build
    from distill.students import file_alpha
    for name, alpha in (("mobilenet_2_5_128_tf_no_top.h5", 0.25),
                        ("mobilenet_5_0_160_tf_no_top.h5", 0.5)):
        path = SHARED / name
        assert file_alpha(path) == alpha
        model = build(f"mobilenet_v1_x{alpha:g}", (96, 96, 3), 10, str(path))
        kernel = model.get_layer("conv1").get_weights()[0]
        assert kernel.shape == (3, 3, 3, int(32 * alpha)) and float(np.abs(kernel).mean()) > 0.01
    _distil_export_parity(tmp_path, str(SHARED / "mobilenet_2_5_128_tf_no_top.h5"))
    assert Path(SHARED / "mobilenet_2_5_128_tf_no_top.h5").is_file()
