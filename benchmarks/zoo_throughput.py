"""Training and inference throughput of the zoo on this machine's CPU, with and
without XLA (`jit_compile`): what decided the default preset's models.

    python -m benchmarks.zoo_throughput [--models edge_res,edge_res_wide] [--seconds 15]

Synthetic 32x32x3 batches of 128 (throughput does not depend on the pixels),
SGD with momentum and sparse cross-entropy as in `distill`, tf_keras under
TF_USE_LEGACY_KERAS. Each model and mode gets warm-up steps (graph tracing, XLA
compilation), then timed `train_on_batch` / `predict_on_batch` calls for
--seconds each. Records benchmarks/results/zoo_throughput/table.md with the machine and
versions beside the numbers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.saved import table_path

ROOT = Path(__file__).resolve().parent.parent

SHAPE, BATCH = (32, 32, 3), 128


def images_per_second(step, seconds: float, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * BATCH / (time.perf_counter() - t0)


def training_setup(name: str, shape: tuple[int, int, int], jit: bool):
    """(model compiled as distill trains it, one synthetic batch x, y)."""
    from distill import models
    from distill.tfenv import keras
    keras.utils.set_random_seed(0)
    model = models.build(name, shape, 10)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit)
    rng = np.random.default_rng(0)
    return model, rng.random((BATCH, *shape), dtype=np.float32), rng.integers(0, 10, BATCH)


def measure(name: str, jit: bool, seconds: float) -> dict:
    from distill import models
    model, x, y = training_setup(name, SHAPE, jit)
    return {"model": name, "jit": jit, "params": model.count_params(),
            "macs": models.count_macs(model),
            "train": images_per_second(lambda: model.train_on_batch(x, y), seconds),
            "infer": images_per_second(lambda: model.predict_on_batch(x), seconds / 3)}


def document(rows: list[dict], seconds: float) -> str:
    from edgekd import environment
    m, v = environment.machine(), environment.versions()
    plain = {r["model"]: r for r in rows if not r["jit"]}
    lines = [f"| {r['model']} | {r['params']:,} | {r['macs'] / 1e6:.2f} M | "
             f"{'XLA' if r['jit'] else 'graph'} | {r['train']:.0f} | {r['infer']:.0f} | "
             f"{r['train'] / plain[r['model']]['train']:.2f} |" for r in rows]
    return "\n".join([
        "# Zoo throughput: training and inference on this CPU", "",
        f"Machine: {m['cpu']}, {m['cores']} cores. tensorflow {v.get('tensorflow')}, "
        f"tf-keras {v.get('tf-keras')}. Batch {BATCH}, synthetic 32x32x3, SGD (Nesterov), "
        f">= {seconds} s of timed training steps per row after warm-up. "
        "`python -m benchmarks.zoo_throughput` (see its docstring). An epoch of "
        "50,000 images also pays for the input pipeline and, when distilling, "
        "the loss on cached teacher logits.", "",
        "| model | params | MACs | mode | train img/s | infer img/s | train vs graph |",
        "|---|---:|---:|---|---:|---:|---:|", *lines, ""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", help="comma-separated builder names (default: the whole zoo)")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--out", type=Path, default=table_path("zoo_throughput"))
    a = p.parse_args(argv)
    from distill.zoo import ZOO
    rows = []
    for name in a.models.split(",") if a.models else ZOO:
        for jit in (False, True):
            rows.append(measure(name, jit, a.seconds))
            print(rows[-1], flush=True)
    text = document(rows, a.seconds)
    a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
