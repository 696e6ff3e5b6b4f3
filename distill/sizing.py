"""--student-macs: the widest student of one scalable family that fits a MACs
budget at the data's resolution.

The family is edge_res's (zoo.edge_res_scaled): width multiplier x, stem
stride s. The stem stride starts where the residual stages see about 16x16,
as edge_res does on 32 px images (s = 2 at 32 px, 4 at 64, 8 at 128, 16 at
256): MACs grow with the pixels, and spending them on width at a moderate
resolution is what the 32 px zoo measurements favoured. Stride 2 keeps
edge_res's 3x3 stem; larger strides take the patch stem (`_p<s>`), which
trains at about the 32 px model's cost per MAC where the stride-2 chain costs
4x (docs/results/stems.md). Within that stride the widest x on a grid of
1/16 steps that fits is taken; only when even x = 0.25 does not fit does the
stride double. MACs are counted on the built model (models.count_macs), the
same count the report shows. `--student-ms` runs the same search with each
candidate's predicted latency on the user's target as its cost
(distill.budget).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from distill import models
from distill.zoo import scaled_name
from edgekd.errors import EdgekdError

WIDTHS = tuple(k / 16 for k in range(4, 49))  # 0.25 to 3; widths round to multiples of 8
MIN_FEATURE_SIDE = 4  # the last residual stage works at side / (4 s); below 1 px it is moot
MAX_STRIDE = 64  # the family's largest stem (zoo.SCALED)


@dataclass(frozen=True)
class Sized:
    name: str
    macs: int
    params: int


def base_stride(side: int) -> int:
    return 2 ** max(1, round(math.log2(max(side, 1) / 16)))


def measure(name: str, input_shape, num_classes: int) -> Sized:
    """A zoo model's MACs and parameters, counted on the built model."""
    model = models.build(name, input_shape, num_classes)
    return Sized(name, models.count_macs(model), int(model.count_params()))


def pick(budget: float, input_shape, num_classes: int, cost: Callable[[Sized], float] | None = None,
         flag: str = "--student-macs", unit: tuple[str, float] = ("M MACs", 1e6)) -> Sized:
    """The widest family member whose cost (default: its MACs) is within
    `budget`: a binary search over WIDTHS, as cost grows with the width. `flag`
    and `unit` (name, divisor) word the error when nothing fits."""
    cost = cost or (lambda s: s.macs)
    side = min(input_shape[:2])
    stride = base_stride(side)
    smallest = None
    while stride <= MAX_STRIDE and (side // stride >= MIN_FEATURE_SIDE
                                    or stride == base_stride(side)):
        smallest = measure(scaled_name(WIDTHS[0], stride, stride > 2), input_shape, num_classes)
        if cost(smallest) <= budget:
            lo, hi, best = 1, len(WIDTHS) - 1, smallest
            while lo <= hi:
                mid = (lo + hi) // 2
                candidate = measure(scaled_name(WIDTHS[mid], stride, stride > 2), input_shape, num_classes)
                if cost(candidate) <= budget:
                    best, lo = candidate, mid + 1
                else:
                    hi = mid - 1
            return best
        stride *= 2
    h, w = input_shape[:2]
    name, per = unit
    raise EdgekdError(
        f"no student fits {budget / per:g}{name} at {h}x{w}: the smallest, {smallest.name}, "
        f"needs {cost(smallest) / per:.2f}{name}; raise {flag} or lower --image-size")
