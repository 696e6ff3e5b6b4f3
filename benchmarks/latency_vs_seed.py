"""Batch-1 latency of the zoo students against the tutorial teacher's fp32
TFLite, measured in one process, interleaved round by round so that clock
drift and neighbours hit every model alike:

    python -m benchmarks.latency_vs_seed [--tflite NAME=PATH ...] [--rounds 5] [--seconds 2]

Latency does not depend on the weights, so the seed teacher and the zoo
students are converted untrained (int8 calibrated on random images); `--tflite`
adds trained artifacts (e.g. a default run's student_int8.tflite) to check that.
LiteRT with its default XNNPACK delegate, 1 thread: the target is the default
int8 student at >= 10x below the seed teacher's fp32 p50. Records
benchmarks/results/latency_vs_seed/table.md with the machine, versions and
settings. The committed runs: results/latency_vs_seed_epyc/ (AMD EPYC, AVX2
only: int8 no faster than fp32) and results/latency_vs_seed_xeon/ (Intel Xeon
with AVX512-VNNI and AMX: int8 ~5x faster than fp32).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.saved import table_path

ROOT = Path(__file__).resolve().parent.parent

SHAPE = (32, 32, 3)
ZOO = ("seed_teacher", "seed_student", "edge_res", "edge_res_mid", "edge_res_lite", "edge_res_small",
       "edge_sep")


def convert_untrained(folder: Path) -> list[tuple[str, int, Path]]:
    """(label, MACs, path): fp32 and int8 TFLite of each ZOO model, random weights."""
    from distill import convert, models
    from edgekd.preprocess import Preprocessing
    pre = Preprocessing(*SHAPE)
    calib = np.random.default_rng(0).integers(0, 256, (64, *SHAPE)).astype(np.uint8)
    inp = convert.Inputs(pre, calib, int8_io=False)
    out = []
    for name in ZOO:
        model = models.build(name, SHAPE, 10)
        macs = models.count_macs(model)
        for fmt in ("fp32", "int8"):
            if name == "seed_teacher" and fmt == "int8":
                continue
            path = folder / f"{name}_{fmt}.tflite"
            getattr(convert, f"tflite_{fmt}")(model, path, inp)
            out.append((f"{name} {fmt}", macs, path))
    return out


def measure(entries, rounds: int, seconds: float) -> dict[str, list[int]]:
    from edgekd.runtime import open_runner
    from edgekd.stats import timed_loop
    x = np.random.default_rng(1).random((1, *SHAPE), dtype=np.float32)
    runners = {}
    for label, _, path in entries:
        r = open_runner(path, "tflite", threads=1)
        r.prepare(x)
        for _ in range(20):  # warm-up: XNNPACK packs weights on the first calls
            r.invoke()
        runners[label] = r
    samples: dict[str, list[int]] = {label: [] for label in runners}
    for _ in range(rounds):
        for label, r in runners.items():
            samples[label] += timed_loop(r.invoke, 50, seconds)
    return samples


def document(entries, samples, rounds: int, seconds: float) -> str:
    from edgekd import environment
    from edgekd.stats import summarize
    p50 = {label: summarize(s)["p50_ms"] for label, s in samples.items()}
    ref = p50["seed_teacher fp32"]
    m, v = environment.machine(), environment.versions()
    rows = [f"| {label} | {macs / 1e6:.2f} M | {p50[label]:.3f} | {ref / p50[label]:.1f}x |"
            for label, macs, _ in entries]
    return "\n".join([
        "# Batch-1 latency against the tutorial teacher's fp32 TFLite", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, int8 features "
        f"{environment.int8_text(m) or 'n/a'}. ai-edge-litert {v.get('ai-edge-litert')}, "
        f"tensorflow {v.get('tensorflow')} (converter). LiteRT, XNNPACK, 1 thread; "
        f"{rounds} interleaved rounds of >= {seconds} s and >= 50 runs per model. "
        "`python -m benchmarks.latency_vs_seed` (see its docstring).", "",
        "| model | MACs | p50 ms | seed teacher fp32 / this |", "|---|---:|---:|---:|",
        *rows, ""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tflite", action="append", default=[], metavar="NAME=PATH",
                   help="also time this trained artifact (MACs taken from NAME's zoo entry "
                        "if NAME starts with one, else 0)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--out", type=Path, default=table_path("latency_vs_seed"))
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        entries = convert_untrained(Path(tmp))
        macs = {label.split()[0]: m for label, m, _ in entries}
        for spec in a.tflite:
            name, _, path = spec.partition("=")
            if not path or not Path(path).is_file():
                raise SystemExit(f"latency_vs_seed: error: --tflite {spec!r}: need NAME=PATH "
                                 "of an existing .tflite file")
            entries.append((name, macs.get(name.split()[0], 0), Path(path)))
        samples = measure(entries, a.rounds, a.seconds)
    text = document(entries, samples, a.rounds, a.seconds)
    a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
