"""--student-macs: the chosen student fits the budget at any size, and is the
widest of its stride that does."""

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
    assert f"_s{stride}" in sized.name
    width = float(sized.name.split("_x")[1].split("_")[0])
    wider = [w for w in sizing.WIDTHS if w > width]
    if wider:  # the next width up would break the budget: the pick is the widest
        assert models.count_macs(models.build(scaled_name(wider[0], stride), shape, 10)) > budget


def test_at_32_px_the_tutorial_budget_gives_the_default_student():
    assert sizing.pick(10.04e6, (32, 32, 3), 10).name == "edge_res_x1_s2"


def test_a_tiny_budget_doubles_the_stride_then_fails_with_the_fix():
    assert sizing.pick(1e6, (64, 64, 3), 10).name.endswith("_s8")
    with pytest.raises(EdgekdError, match=r"no student fits 0.1M MACs at 64x64: the smallest, "
                                          r"edge_res_x0.25_s16, needs .* raise --student-macs"):
        sizing.pick(1e5, (64, 64, 3), 10)
