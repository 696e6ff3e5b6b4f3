"""python -m bench: a thin CLI over bench.run (TF-free)."""

from __future__ import annotations

import os
from pathlib import Path
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
    p.add_argument("--roles", help="subset of roles, e.g. teacher,student (default: all)")
    p.add_argument("--accuracy-budget", type=float, default=1.0,
                   help="points of accuracy the best student may lose (default 1.0)")
    p.add_argument("--ort-provider", action="append", dest="providers",
                   help="onnxruntime execution provider (repeatable; default CPU)")
    p.add_argument("--keras", action="store_true",
                   help="also measure the Keras models (needs TensorFlow), as labelled extra rows")
    p.add_argument("--trust-model-code", action="store_true",
                   help="with --keras: load models that are not plain data (Lambda layers, "
                   "non-Keras classes or modules: code that runs on load); only for folders you trust")
    p.add_argument("--eval-limit", type=int,
                   help="accuracy on the first N eval images only (slow boards, emulators)")
    p.add_argument("--no-progress", action="store_true")
    r = p.add_argument_group("remote boards")
    r.add_argument("--target", action="append", dest="targets", default=[],
                   help="ssh://[user@]host[:port] of a board to bench too (repeatable)")
    r.add_argument("--remote-dir", default="edgekd-bench",
                   help="working folder on the board (default ~/edgekd-bench)")
    r.add_argument("--remote-python", help="interpreter on the board that has the runtime "
                   "extra; default: python3, else a venv edgekd creates there")
    r.add_argument("--ssh-timeout", type=float, default=15.0, help="connect timeout, seconds")
    r.add_argument("--ssh-config", help="ssh client config file (ssh -F); default: your own")
    r.add_argument("--parallel", action="store_true", help="bench remote targets in parallel")
    return p


def remote_args(a) -> tuple[str, ...]:
    """The measurement flags, forwarded unchanged to `python -m bench` on a board."""
    out = ["--threads", a.threads, "--runs", str(a.runs), "--seconds", str(a.seconds),
           "--warmup-runs", str(a.warmup_runs), "--warmup-seconds", str(a.warmup_seconds),
           "--accuracy-budget", str(a.accuracy_budget)]
    if a.roles:
        out += ["--roles", a.roles]
    if a.formats:
        out += ["--formats", a.formats]
    if a.eval_limit:
        out += ["--eval-limit", str(a.eval_limit)]
    for provider in a.providers or []:
        out += ["--ort-provider", provider]
    return tuple(out)


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    from bench.remote import RemoteOptions, parse_target
    from bench.run import BenchConfig, run
    targets = [parse_target(t) for t in a.targets]  # bad URLs fail before any work
    cfg = BenchConfig(threads=parse_threads(a.threads), runs=a.runs, seconds=a.seconds,
                      warmup_runs=a.warmup_runs, warmup_seconds=a.warmup_seconds,
                      formats=tuple(parse_formats(a.formats)) if a.formats else None,
                      roles=(tuple(r.strip() for r in a.roles.split(",") if r.strip())
                             if a.roles else None),
                      accuracy_budget=a.accuracy_budget / 100.0,
                      providers=tuple(a.providers) if a.providers else None,
                      eval_limit=a.eval_limit, keras=a.keras,
                      trust_model_code=a.trust_model_code)
    from bench.report import table, targets_table
    opts = RemoteOptions(a.remote_dir, a.remote_python, a.ssh_timeout, a.ssh_config,
                         extra_args=remote_args(a))
    result = run(a.folder, cfg, progress=not a.no_progress, targets=targets, remote=opts,
                 parallel=a.parallel)
    print(table(result))
    if result.get("targets"):
        print("\n" + targets_table(result))
    print(f"\nbest student artifact: {result['summary']['best_student']}")
    print(f"[bench] wrote {a.folder}/bench.json, report.md, report.png")
    if result["summary"]["best_student"]:
        from bench.predict import deploy_summary
        print("\n" + deploy_summary(Path(a.folder)))
    return 0


def entry() -> int:
    return run_cli(main, "python -m bench")
