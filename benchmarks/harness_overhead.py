"""Harness overhead: bench's timed loop (one perf_counter_ns pair around each
runner.invoke()) against a bare `interpreter.invoke()` loop over the same
model in the same process. Goal: within 2 %.

    python -m benchmarks.harness_overhead artifacts/ [--seconds 5]

Interleaves harness and bare measurements (3 rounds) so drift hits both, and
records benchmarks/results/harness_overhead/table.md with the machine and versions."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.saved import table_path

ROOT = Path(__file__).resolve().parent.parent

from edgekd import environment
from edgekd.preprocess import Preprocessing
from edgekd.runtime import open_runner
from edgekd.stats import summarize, timed_loop


def bare_loop(invoke, seconds: float, block: int = 100) -> list[float]:
    """Per-call ns as block means of a plain `for` loop (no per-call clock)."""
    means, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter_ns()
        for _ in range(block):
            invoke()
        means.append((time.perf_counter_ns() - t0) / block)
    return means


def measure(folder: Path, art: dict, x1: np.ndarray, seconds: float) -> dict:
    runner = open_runner(folder / art["path"], art["runtime"], 1)
    runner.prepare(x1)
    raw_invoke = runner.interp.invoke if art["runtime"] == "tflite" else runner.invoke
    timed_loop(runner.invoke, 50, 1.0)  # warm-up
    harness, bare = [], []
    for _ in range(3):
        harness.append(summarize(timed_loop(runner.invoke, 200, seconds))["p50_ms"])
        bare.append(statistics.median(bare_loop(raw_invoke, seconds)) / 1e6)
    h, b = statistics.median(harness), statistics.median(bare)
    return {"artifact": art["name"], "harness_p50_ms": h, "bare_p50_ms": b,
            "overhead_pct": 100 * (h / b - 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("folder", type=Path)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--out", type=Path, default=table_path("harness_overhead"))
    a = p.parse_args()
    manifest = json.loads((a.folder / "manifest.json").read_text())
    pre = Preprocessing.from_dict(manifest["preprocessing"])
    with np.load(a.folder / manifest["eval"]["path"]) as z:
        x1 = pre.apply(z["x"][:1])
    wanted = ("student_tflite_int8", "student_tflite_fp32", "teacher_tflite_fp32")
    rows = [measure(a.folder, art, x1, a.seconds)
            for art in manifest["artifacts"] if art["name"] in wanted]
    m, v = environment.machine(), environment.versions(("ai-edge-litert", "onnxruntime"))
    lines = ["# Harness overhead: bench's timed loop vs a bare invoke() loop", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['os']}; ai-edge-litert "
             f"{v['ai-edge-litert']}, python {v['python']}. 1 thread, batch 1, 3 interleaved "
             f"rounds of {a.seconds} s each, medians. Command: `python "
             f"benchmarks/harness_overhead.py {a.folder}`.", "",
             "| artifact | harness p50 ms | bare loop ms | overhead |", "|---|---:|---:|---:|"]
    lines += [f"| {r['artifact']} | {r['harness_p50_ms']:.4f} | {r['bare_p50_ms']:.4f} | "
              f"{r['overhead_pct']:+.2f} % |" for r in rows]
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
