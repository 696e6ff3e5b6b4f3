"""Latency statistics against numpy / closed forms on known samples."""

import math

import numpy as np
import pytest

from bench.cli import parse_threads
from edgekd.errors import EdgekdError
from edgekd.stats import summarize, timed_loop


def test_summary_of_1_to_100_ms():
    s = summarize([i * 1_000_000 for i in range(1, 101)])  # 1..100 ms in ns
    assert s["n"] == 100 and s["min_ms"] == 1.0 and s["max_ms"] == 100.0
    assert s["p50_ms"] == pytest.approx(50.5)  # linear interpolation between 50 and 51
    assert s["p90_ms"] == pytest.approx(90.1)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["mean_ms"] == pytest.approx(50.5)
    assert s["std_ms"] == pytest.approx(math.sqrt((100 ** 2 - 1) / 12))  # uniform 1..n


def test_summary_matches_numpy_on_random_samples():
    rng = np.random.default_rng(7)
    ns = rng.lognormal(13, 0.4, 5000).astype(np.int64)
    s = summarize(ns)
    ms = ns / 1e6
    for key, q in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99)):
        assert s[key] == pytest.approx(np.percentile(ms, q))
    assert s["std_ms"] == pytest.approx(ms.std())


def test_empty_samples_rejected():
    with pytest.raises(ValueError, match="no latency samples"):
        summarize([])


class FakeClock:
    """Each call advances 1 ms; a step costs one extra ms."""

    def __init__(self):
        self.t = 0

    def __call__(self):
        self.t += 1_000_000
        return self.t

    def step(self):
        self.t += 1_000_000


# (3, 0.02): deadline = 1 + 20 ms; three runs end at t=10; each further loop
# reads the clock once to check (t=11, 15, 19 < 21) and runs; t=23 stops: 6 runs.
@pytest.mark.parametrize("runs,seconds,expected", [(5, 0.0, 5), (3, 0.02, 6)])
def test_timed_loop_runs_until_both_limits(runs, seconds, expected):
    clock = FakeClock()
    samples = timed_loop(clock.step, runs, seconds, clock=clock)
    assert len(samples) == expected
    assert set(samples) == {2_000_000}  # the step's ms plus the clock's own ms


def test_parse_threads():
    import os
    assert parse_threads("1,2,1") == (1, 2)
    assert parse_threads("all") == (os.cpu_count(),)
    with pytest.raises(EdgekdError, match="--threads takes integers or 'all', got 'x'"):
        parse_threads("1,x")
    with pytest.raises(EdgekdError, match="--threads must be >= 1"):
        parse_threads("0")
