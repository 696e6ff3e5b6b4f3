"""Training cost per MAC of the student family's two stems at photo sizes:
the stride-2 chain (`edge_res_x<w>_s<s>`) against the patch stem
(`edge_res_x<w>_p<s>`), the latter also trained as a matrix product on
arranged patches (distill.patches), with the default student at 32 px as the
reference.

    python -m benchmarks.stems [--seconds 12]

Per image size, each stem's widest member within 10M MACs (distill.sizing's
rule with the stem fixed), synthetic batches of 128, SGD and sparse
cross-entropy under XLA as in the default preset (benchmarks.zoo_throughput's
timing, best of several rounds). The figure is microseconds of a training step
per image per million MACs: what `--student-macs` promises to hold constant
across sizes. Records benchmarks/results/stems/table.md with the machine and
versions.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.saved import publish
from benchmarks.zoo_throughput import BATCH, images_per_second, training_setup
from edgekd.environment import machine, versions

BUDGET = 10e6
SIZES = (64, 96, 128, 160)


def widest(side: int, patch: bool) -> str:
    from distill import sizing
    from distill.zoo import scaled_name
    stride = sizing.base_stride(side)
    for width in reversed(sizing.WIDTHS):
        name = scaled_name(width, stride, patch)
        if sizing.measure(name, (side, side, 3), 10).macs <= BUDGET:
            return name
    raise SystemExit(f"nothing fits {BUDGET:g} MACs at {side} px")


def compiled(name: str, side: int, product: bool = False) -> dict:
    """The model under XLA as in the default preset, with one synthetic batch;
    `product`: its patch stem trained as distill does on cached views, as a
    matrix product on arranged patches (distill.patches.twin)."""
    from distill import models, patches
    model, x, y = training_setup(name, (side, side, 3), jit=True)
    row = {"model": name + (" (as a product)" if product else ""), "side": side,
           "macs": models.count_macs(model), "params": model.count_params()}
    if product:
        trained, x = patches.twin(model), patches.arrange(x, patches.stem_stride(model))
        trained.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=True)
        model = trained
    return {**row, "step": lambda: model.train_on_batch(x, y)}


def measure(rows: list[dict], seconds: float, rounds: int) -> None:
    """Best of `rounds` timings per model, the models taken in turn each round:
    a shared host's slow spells then hit every model alike, and the best
    round is the least disturbed (timeit's rule)."""
    for _ in range(rounds):
        for r in rows:
            r["train"] = max(r.get("train", 0.0), images_per_second(r["step"], seconds / rounds))
    for r in rows:
        r["per"] = 1e6 / r["train"] / (r["macs"] / 1e6)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=12.0, help="timed seconds per model")
    p.add_argument("--rounds", type=int, default=4)
    a = p.parse_args(argv)
    rows = [compiled("edge_res", 32)]
    for side in SIZES:
        patch = widest(side, True)
        rows += [compiled(widest(side, False), side), compiled(patch, side),
                 compiled(patch, side, product=True)]
    measure(rows, a.seconds, a.rounds)
    ref = rows[0]["per"]
    m, v = machine(), versions()
    lines = [f"| {r['side']} px | {r['model']} | {r['params']:,} | {r['macs'] / 1e6:.2f}M | "
             f"{r['train']:.0f} | {r['per']:.0f} | {r['per'] / ref:.2f} |" for r in rows]
    return publish("stems", "\n".join([
        "# Student stems at photo sizes: training cost per MAC", "",
        f"`python -m benchmarks.stems`: per image size, the widest `_s` (stride-2 chain) and "
        f"`_p` (patch) member of the student family within {BUDGET / 1e6:g}M MACs, the latter "
        "also as distill trains it on cached views (its stem a matrix product on patches "
        f"arranged beforehand, distill.patches); synthetic "
        f"batches of {BATCH}, SGD, XLA; the best of {a.rounds} rounds of {a.seconds / a.rounds:g} s of "
        f"timed steps per model, the models in turn. Machine: {m['cpu']}, "
        f"{m['cores']} cores; tensorflow {v.get('tensorflow')}, tf-keras {v.get('tf-keras')}.",
        "",
        "| size | student | params | MACs | train img/s | µs per image per MMAC "
        "| vs edge_res at 32 px |",
        "|---|---|---:|---:|---:|---:|---:|", *lines, ""]))


if __name__ == "__main__":
    sys.exit(main())
