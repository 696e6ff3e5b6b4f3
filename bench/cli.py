"""python -m bench: a thin CLI over bench.run (TF-free)."""

from __future__ import annotations

import os
from typing import Sequence

from edgekd.errors import EdgekdError, OneLineParser, run_cli
from edgekd.formats import FORMATS, parse_formats


def parse_threads(spec: str) -> tuple[int, ...]:
    """'1,all' -> (1, cores); duplicates removed, order kept."""
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        try:
            n = (os.cpu_count() or 1) if part == "all" else int(part)
        except ValueError:
            raise EdgekdError(f"--threads takes integers or 'all', got {part!r}") from None
        if n < 1:
            raise EdgekdError(f"--threads must be >= 1, got {n}")
        if n not in out:
            out.append(n)
    return tuple(out)


def parser() -> OneLineParser:
    p = OneLineParser(prog="python -m bench", description=(
        "Measure latency (batch 1) and accuracy of every artifact in manifest.json; "
        "write bench.json, report.md and report.png. Needs no TensorFlow."))
    p.add_argument("folder", help="artifacts folder with manifest.json (python -m export)")
    p.add_argument("--threads", default="1,all", help="thread counts, e.g. 1,2,4 (default 1,all)")
    p.add_argument("--runs", type=int, default=200, help="min timed runs (default 200)")
    p.add_argument("--seconds", type=float, default=10.0, help="min timed seconds (default 10)")
    p.add_argument("--warmup-runs", type=int, default=10)
    p.add_argument("--warmup-seconds", type=float, default=1.0)
    p.add_argument("--formats", help=f"subset of: {', '.join(FORMATS)}")
    p.add_argument("--roles", default="teacher,student,student_scratch")
    p.add_argument("--accuracy-budget", type=float, default=1.0,
                   help="points of accuracy the best student may lose (default 1.0)")
    p.add_argument("--ort-provider", action="append", dest="providers",
                   help="onnxruntime execution provider (repeatable; default CPU)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    from bench.run import BenchConfig, run
    cfg = BenchConfig(threads=parse_threads(a.threads), runs=a.runs, seconds=a.seconds,
                      warmup_runs=a.warmup_runs, warmup_seconds=a.warmup_seconds,
                      formats=tuple(parse_formats(a.formats)) if a.formats else None,
                      roles=tuple(r.strip() for r in a.roles.split(",") if r.strip()),
                      accuracy_budget=a.accuracy_budget / 100.0,
                      providers=tuple(a.providers) if a.providers else None)
    from bench.report import table
    result = run(a.folder, cfg, progress=not a.no_progress)
    print(table(result))
    print(f"\nbest student artifact: {result['summary']['best_student']}")
    print(f"[bench] wrote {a.folder}/bench.json, report.md, report.png")
    return 0


def entry() -> int:
    return run_cli(main, "python -m bench")
