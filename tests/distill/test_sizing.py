"""--student-macs: the chosen student fits the budget at any size, and is the
widest of its stride that does."""

import numpy as np
import pytest

from distill import models, sizing
from distill.zoo import scaled_name
from edgekd.errors import EdgekdError


def test_edge_res_is_the_family_at_width_1_stride_2():
    a, b = models.build("edge_res", (32, 32, 3), 10), models.build("edge_res_x1_s2", (32, 32, 3), 10)
    assert models.count_macs(a) == models.count_macs(b) and a.count_params() == b.count_params()


@pytest.mark.parametrize("side,budget,stride", [(32, 10.04e6, 2), (96, 10e6, 8), (160, 10e6, 8),
                                               (160, 40e6, 8)])
def test_budget_holds_at_each_size(side, budget, stride):
    shape = (side, side, 3)
    sized = sizing.pick(budget, shape, 10)
    model = models.build(sized.name, shape, 10)
    assert models.count_macs(model) == sized.macs <= budget
    assert sized.name.endswith(f"_s{stride}" if stride == 2 else f"_p{stride}")
    width = float(sized.name.split("_x")[1].split("_")[0])
    wider = [w for w in sizing.WIDTHS if w > width]
    if wider:  # the next width up would break the budget: the pick is the widest
        assert models.count_macs(models.build(scaled_name(wider[0], stride, stride > 2), shape, 10)) > budget


def test_at_32_px_the_tutorial_budget_gives_the_default_student():
    assert sizing.pick(10.04e6, (32, 32, 3), 10).name == "edge_res_x1_s2"


def test_a_tiny_budget_doubles_the_stride_then_fails_with_the_fix():
    assert sizing.pick(5e5, (64, 64, 3), 10).name.endswith("_p8")  # x0.25_p4 needs 0.85M
    with pytest.raises(EdgekdError, match=r"no student fits 0.1M MACs at 64x64: the smallest, "
                                          r"edge_res_x0.25_p16, needs .* raise --student-macs"):
        sizing.pick(1e5, (64, 64, 3), 10)


def test_the_patch_stem_is_one_conv_whose_kernel_is_its_stride():
    """_p8: one 8x8 conv at stride 8 before the residual stages (at 16x16 for
    128 px); _s8: three 3x3 stride-2 convs. Same widths, so the same body."""
    from distill.tfenv import keras
    shape = (128, 96, 3)
    patch, chain = (models.build(f"edge_res_x1_{k}8", shape, 10) for k in "ps")
    convs = lambda m: [l for l in m.layers if isinstance(l, keras.layers.Conv2D)]  # noqa: E731
    first = convs(patch)[0]
    assert first.kernel_size == (8, 8) and first.strides == (8, 8)
    assert first.output.shape[1:3] == (16, 12)
    assert [c.strides for c in convs(chain)[:3]] == [(2, 2)] * 3
    assert len(convs(chain)) == len(convs(patch)) + 2
    # the stem's MACs: 16 x 12 outputs x (8 x 8 x 3) inputs x 24 channels
    stem_macs = 16 * 12 * 8 * 8 * 3 * 24
    body = models.count_macs(chain) - sum(models._layer_macs(c) for c in convs(chain)[:3])
    assert models.count_macs(patch) == body + stem_macs


def test_the_largest_stem_bounds_the_search():
    """At 1024 px even the widest stride (64) cannot get under 2M MACs (its patch
    stem alone is 1024 x 1024 x 3 x 8): the error names that smallest student."""
    with pytest.raises(EdgekdError, match=r"no student fits 2M MACs at 1024x1024: the smallest, "
                                          r"edge_res_x0.25_p64, needs 25"):
        sizing.pick(2e6, (1024, 1024, 3), 10)


@pytest.mark.parametrize("side, kept", [(32, True), (96, False)])
def test_the_default_student_is_bounded_at_any_image_size(tmp_path, capsys, side, kept):
    """No student named (the CLI sets student_bound): the CIFAR student stays at
    32 px (9.8M MACs), and at 96 px (88M) is replaced by the widest within 10M."""
    from types import SimpleNamespace

    from distill import run
    from distill.config import STUDENT_BOUND, resolve
    cfg = resolve("default", student_bound=STUDENT_BOUND)
    shape = (side, side, 3)
    ds = SimpleNamespace(preprocessing=SimpleNamespace(input_shape=shape),
                         x_train=np.zeros((1, *shape), np.uint8), labels=list("abcdefghij"))
    got = run._sized_student(cfg, ds, tmp_path, tmp_path / "out")
    printed = capsys.readouterr().out
    if kept:
        assert got == cfg and printed == ""
        return
    picked = sizing.measure(got.student_arch, shape, 10)
    assert picked.macs <= STUDENT_BOUND < sizing.measure("edge_res", shape, 10).macs
    assert f"student: edge_res would cost {sizing.measure('edge_res', shape, 10).macs / 1e6:.1f}M " \
           f"MACs at 96x96; bounded by default to 10M: {got.student_arch}" in printed
