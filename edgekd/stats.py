"""Latency statistics from raw samples (nanoseconds in, milliseconds out)."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities of logits (last axis), without overflow."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def summarize(samples_ns) -> dict:
    """min, p50, p90, p99, mean, std (population) and N, in milliseconds."""
    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if a.size == 0:
        raise ValueError("no latency samples to summarize")
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"n": int(a.size), "min_ms": float(a.min()), "p50_ms": float(p50),
            "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": float(a.mean()),
            "std_ms": float(a.std()), "max_ms": float(a.max())}


def timed_loop(step, min_runs: int, min_seconds: float, clock=None) -> list[int]:
    """Call `step()` until both at least `min_runs` calls and `min_seconds`
    have passed; return each call's duration in ns. Only `step` is timed."""
    import time
    clock = clock or time.perf_counter_ns
    samples: list[int] = []
    deadline = clock() + int(min_seconds * 1e9)
    while len(samples) < min_runs or clock() < deadline:
        t0 = clock()
        step()
        samples.append(clock() - t0)
    return samples
