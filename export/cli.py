"""python -m export: a thin CLI over export.run."""

from __future__ import annotations

from typing import Sequence

from edgekd.errors import EdgekdError, OneLineParser, run_cli
from edgekd.formats import FORMATS, parse_formats
from edgekd.roles import parse_roles


def parser() -> OneLineParser:
    p = OneLineParser(prog="python -m export", description=(
        "Write every TFLite and ONNX variant of the teacher and student in an artifacts "
        "folder, check each against its Keras model, and record them in manifest.json."))
    p.add_argument("folder", help="artifacts folder written by `python -m distill`")
    p.add_argument("--formats", help=f"comma-separated subset of: {', '.join(FORMATS)} "
                   "(default: all)")
    p.add_argument("--roles", help="models to export (default: teacher, student and the "
                   "pruned/QAT students distill made; student_scratch on request)")
    p.add_argument("--int8-io", action="store_true",
                   help="full-int8 TFLite with int8 input/output (MCUs, NPUs)")
    p.add_argument("--parity-n", type=int, default=256,
                   help="eval images used for the parity check (default 256)")
    p.add_argument("--allow-parity-failures", action="store_true",
                   help="keep artifacts that fail parity, marked failed in the manifest")
    p.add_argument("--trust-model-code", action="store_true",
                   help="load models that are not plain data (Lambda layers, non-Keras classes "
                   "or modules: code that runs on load); only for artifacts folders you trust")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    formats = parse_formats(args.formats)
    roles = parse_roles(args.roles)
    if args.parity_n < 1:
        raise EdgekdError(f"--parity-n must be >= 1, got {args.parity_n}")
    from export.run import run  # imports TensorFlow
    manifest = run(args.folder, formats, roles, args.int8_io, args.parity_n,
                   args.allow_parity_failures, trust_code=args.trust_model_code)
    n_fail = sum(not a["parity"]["passed"] for a in manifest["artifacts"])
    print(f"[export] {len(manifest['artifacts'])} artifacts, {n_fail} failed parity, "
          f"{manifest['export_seconds']} s; manifest: {args.folder}/manifest.json")
    return 0


def entry() -> int:
    return run_cli(main, "python -m export")
