"""How well `--student-ms` keeps its promise: the students it picks at several
sizes and budgets, their predicted int8 TFLite latency against measured, and
what a budget in MACs at the reference's rate would have picked instead.

    python -m benchmarks.latency_budget [--seconds 2]

The target is this machine: the reference, the default student (edge_res at
32 px, untrained, int8 TFLite), is timed the way bench times it (one thread,
median of a timed loop after a warm-up) and written as a bench.json row, which
distill.budget reads as `--latency-from` does. For each size, one Probe (as
distill runs it) times candidates against that file while sizing.pick
searches the widths. Afterwards every pick, both rules', is timed again, all
in turn for two rounds, keeping the lower median (a shared host's slow spells
then hit every model alike). On one machine the probe's ratio is exact up to
timing noise; on a board the prediction also carries this machine's view of
the candidates' relative cost, which this benchmark cannot test. Records
benchmarks/results/latency_budget/table.md with the machine and versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.saved import publish
from edgekd.environment import machine, versions

SIZES = (32, 64, 96, 128, 160)
BUDGETS_MS = (0.15, 0.3, 0.6)
CLASSES = 10
ROUNDS = 2


@dataclass(frozen=True)
class Pick:
    side: int
    budget_ms: float
    name: str  # --student-ms's pick
    macs: int
    predicted_ms: float
    by_macs: str  # the widest within budget_ms at the reference's ms per MAC


def timed(files: dict, seconds: float) -> dict:
    from distill.budget import timed_in_turn
    return timed_in_turn(files, "tflite", 1, seconds, ROUNDS)


def run(seconds: float, work: Path) -> tuple:
    """The reference's row, each size x budget's picks, and the measured
    medians (keyed by (name, side); the reference by "ref")."""
    from distill import budget, models, sizing

    def int8(name: str, side: int) -> Path:
        return budget.candidate_file(name, (side, side, 3), CLASSES, "tflite_int8", work)
    reference = int8("edge_res", 32)
    ref_macs = models.count_macs(models.build("edge_res", (32, 32, 3), CLASSES))
    row = {"name": "student_tflite_int8", "role": "student", "format": "tflite_int8",
           "macs": ref_macs, "path": reference.name,
           "latency": {"1": {"p50_ms": timed({"ref": reference}, seconds)["ref"]}}}
    (work / "bench.json").write_text(json.dumps({"machine": machine(), "artifacts": [row]}))
    rate = budget.read_rate(work / "bench.json")
    picks = []
    for side in SIZES:
        shape = (side, side, 3)
        (work / str(side)).mkdir()
        probe = budget.Probe(rate, shape, CLASSES, work / str(side), seconds)
        for ms in BUDGETS_MS:
            sized = sizing.pick(ms, shape, CLASSES, lambda c: probe(c.name), "--student-ms",
                                (" ms", 1.0))
            by_macs = sizing.pick(ms * rate.macs / rate.p50_ms, shape, CLASSES).name
            picks.append(Pick(side, ms, sized.name, sized.macs, probe(sized.name), by_macs))
    files = {"ref": reference}
    for p in picks:
        for name in (p.name, p.by_macs):
            if (name, p.side) not in files:
                files[(name, p.side)] = int8(name, p.side)
    return rate, picks, timed(files, seconds)


def document(rate, picks: list[Pick], measured: dict, seconds: float) -> str:
    m, v = machine(), versions()
    rows = ["| size | budget | --student-ms pick | MACs | predicted | measured | "
            "by MACs alone | measured |", "|---:|---:|---|---:|---:|---:|---|---:|"]
    for p in picks:
        got, alone = measured[(p.name, p.side)], measured[(p.by_macs, p.side)]
        rows.append(f"| {p.side} px | {p.budget_ms:g} ms | {p.name} | {p.macs / 1e6:.2f}M | "
                    f"{p.predicted_ms:.3f} ms | {got:.3f} ms | {p.by_macs} | {alone:.3f} ms |")

    def worst(key) -> str:
        ratios = [measured[(key(p), p.side)] / p.budget_ms for p in picks]
        over = sum(r > 1 for r in ratios)
        return f"{over} of {len(picks)} over budget, at most {max(ratios):.2f}x the budget"
    return "\n".join([
        "# A latency budget: --student-ms", "",
        f"`python -m benchmarks.latency_budget --seconds {seconds:g}`: the target is this "
        f"machine; the bench row is the default student's (edge_res, 32 px, "
        f"{rate.macs / 1e6:.2f}M MACs, int8 TFLite, one thread: {rate.p50_ms:.3f} ms, again "
        f"{measured['ref']:.3f} ms in the final rounds). Predicted: the probe's, while "
        "`--student-ms` searched; measured: the lower of two later medians. By MACs alone: "
        "the widest student within the budget at the reference's milliseconds per MAC. "
        f"Machine: {m['cpu']}, {m['cores']} cores, int8 features "
        f"{', '.join(m.get('int8_features') or []) or 'none'}; tensorflow "
        f"{v.get('tensorflow')}, ai-edge-litert {v.get('ai-edge-litert', '?')}.", "",
        *rows, "",
        f"- `--student-ms`: {worst(lambda p: p.name)}.",
        f"- By MACs alone: {worst(lambda p: p.by_macs)}.", ""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=2.0, help="timed seconds per median")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgekd-latency-budget-") as tmp:
        rate, picks, measured = run(a.seconds, Path(tmp))
    return publish("latency_budget", document(rate, picks, measured, a.seconds))


if __name__ == "__main__":
    sys.exit(main())
