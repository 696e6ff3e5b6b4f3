"""Model builders: the tutorial's exact sizes, MACs counted by hand."""

import pytest

from distill import models
from distill.tfenv import keras
from edgekd.errors import EdgekdError


def test_seed_parameter_counts():
    assert models.build("seed_teacher", (32, 32, 3), 10).count_params() == 1_515_018
    assert models.build("seed_student", (32, 32, 3), 10).count_params() == 313_354


def test_seed_macs_by_hand():
    # teacher: conv1 16*16*(3*3*3)*256, conv2 8*8*(3*3*256)*512, dense 8*8*512*10
    teacher = 16 * 16 * 27 * 256 + 8 * 8 * 9 * 256 * 512 + 8 * 8 * 512 * 10
    student = 16 * 16 * 27 * 64 + 8 * 8 * 9 * 64 * 256 + 8 * 8 * 256 * 10
    assert models.count_macs(models.build("seed_teacher", (32, 32, 3), 10)) == teacher == 77_594_624
    assert models.count_macs(models.build("seed_student", (32, 32, 3), 10)) == student


def test_macs_of_depthwise_separable_and_nested():
    inner = keras.Sequential([keras.Input((8, 8, 4)),
                              keras.layers.DepthwiseConv2D(3, padding="same"),  # 8*8*9*4
                              keras.layers.SeparableConv2D(6, 3, padding="same")], name="inner")
    outer = keras.Sequential([keras.Input((8, 8, 4)), inner, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3)])  # 6*3
    expected = 8 * 8 * 9 * 4 + 8 * 8 * (9 * 4 + 4 * 6) + 6 * 3
    assert models.count_macs(outer) == expected


def test_unknown_model_lists_valid_names():
    with pytest.raises(EdgekdError, match="unknown model 'resnet9000'; valid models: seed_teacher"):
        models.build("resnet9000", (32, 32, 3), 10)


def test_corrupt_and_missing_model_files(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(EdgekdError, match="cannot load teacher model .*bad.keras"):
        models.load_model(bad, "teacher")
    with pytest.raises(EdgekdError, match="teacher model .*nope.keras not found"):
        models.load_model(tmp_path / "nope.keras", "teacher")


def test_io_mismatch_is_explained():
    m = models.build("tiny_student", (28, 28, 1), 10)
    with pytest.raises(EdgekdError, match=r"expects inputs \(28, 28, 1\), but the data is \(32, 32, 3\)"):
        models.check_io(m, (32, 32, 3), 10, "student")
    with pytest.raises(EdgekdError, match="has 10 outputs, the data has 3 classes"):
        models.check_io(m, (28, 28, 1), 3, "student")
