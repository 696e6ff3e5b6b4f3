"""Measure ONE artifact in its own process (so peak RSS and cold start are
its own): cold start, warm-up, timed runs per thread count, predictions on
the eval set. Prints one JSON object on stdout. Used by bench.run; not a
user command."""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

HEAD = 32  # eval images whose raw outputs are kept in bench.json


def _rss_mb() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes; edge targets are Linux)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(path: str, runtime: str, eval_path: str, pre: dict, threads: list[int],
            runs: int, seconds: float, warmup_runs: int, warmup_seconds: float,
            providers: list[str] | None = None, eval_limit: int | None = None,
            runner_module: str | None = None, trust_code: bool = False) -> dict:
    """`runner_module`: a module whose open_runner() makes this runtime's runner
    (the Keras rows: TensorFlow is imported there, never by bench itself)."""
    from edgekd.files import load_npz
    from edgekd.preprocess import Preprocessing, spread_indices
    from edgekd.runtime import open_runner
    from edgekd.stats import summarize, timed_loop

    if runner_module:
        plugin = importlib.import_module(runner_module).open_runner
        open_runner = functools.partial(plugin, trust_code=trust_code)  # noqa: F811
    pre_obj = Preprocessing.from_dict(pre)
    x_eval = load_npz(Path(eval_path), ("x",), "re-run distill and export")["x"]
    x_all = x_eval[spread_indices(len(x_eval), eval_limit)]
    x1 = pre_obj.apply(x_all[:1])
    rss_base = _rss_mb()
    t0 = time.perf_counter()
    runner = open_runner(path, runtime, threads[0], providers)
    runner.prepare(x1)
    runner.invoke()
    runner.output()
    cold_ms = (time.perf_counter() - t0) * 1e3
    latency = {}
    for n in threads:
        if n != runner.threads:
            runner = open_runner(path, runtime, n, providers)
            runner.prepare(x1)
        timed_loop(runner.invoke, warmup_runs, warmup_seconds)
        samples = timed_loop(runner.invoke, runs, seconds)
        latency[str(n)] = {**summarize(samples), "samples_ns": samples}
    rss_peak = _rss_mb()
    logits = runner.predict(pre_obj.apply(x_all))
    return {"cold_start_ms": cold_ms, "latency": latency, "rss_base_mb": rss_base,
            "rss_peak_mb": rss_peak, "runner": runner.describe(),
            "predictions": np.argmax(logits, axis=-1).astype(int).tolist(),
            # outputs of the first images, to compare runs across machines
            "logits_head": logits[:HEAD].astype(float).tolist()}


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.worker")
    p.add_argument("spec", help="JSON: path, runtime, eval, pre, threads, runs, seconds, ...")
    spec = json.loads(p.parse_args().spec)
    try:
        out = measure(**spec)
    except Exception as exc:  # reported to the parent as one line, with the artifact name
        from edgekd.errors import EdgekdError  # a user error reads as itself, others by type
        json.dump({"error": str(exc) if isinstance(exc, EdgekdError) else f"{type(exc).__name__}: {exc}"},
                  sys.stdout)
        return 1
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
