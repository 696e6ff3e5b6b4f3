"""python -m distill: a thin CLI over distill.run."""

from __future__ import annotations

import argparse
from typing import Sequence

from edgekd.errors import EdgekdError, OneLineParser, run_cli


def parser() -> OneLineParser:
    from distill.config import LOSSES  # cheap: no TensorFlow
    p = OneLineParser(prog="python -m distill", description=(
        "Train (or load) a teacher, distill a compact student, and write the artifacts "
        "folder (models, eval/calib sets, config.json, train_report.json) that export reads."))
    p.add_argument("--data", default="cifar10",
                   help="cifar10 | fashion_mnist | image folder (DIR/train/<class>/*) | .npz")
    p.add_argument("--preset", default="default",
                   help="default (the best recipe; the default) | seed (the tutorial exactly) | "
                   "quick (a smoke run) | latency "
                   "(default with a 7.98M-MAC student, for targets where int8 is no faster)")
    p.add_argument("--out", default="artifacts", help="artifacts folder (default: artifacts)")
    p.add_argument("--teacher", dest="teacher_path", action="append",
                   help="bring your own teacher, not retrained: a Keras 3 or tf_keras .keras, "
                   ".h5, SavedModel folder, .onnx or .tflite; repeat it for an ensemble")
    p.add_argument("--teacher-scale", type=float, help="the teacher's input scaling, "
                   "pixels * scale + offset, when its file has no Rescaling layer "
                   "(default: the data's, 1/255)")
    p.add_argument("--teacher-offset", type=float, help="see --teacher-scale (default 0)")
    p.add_argument("--teacher-output", help="the output holding the logits, for a teacher "
                   "file (ONNX, SavedModel, TFLite) with several outputs")
    p.add_argument("--student", dest="student_path", help="bring your own student model")
    p.add_argument("--teacher-arch", help="teacher builder name (default from preset), or a "
                   "pretrained backbone to fine-tune: mobilenet, mobilenet_v2, efficientnet_b0")
    p.add_argument("--teacher-weights", help="with a pretrained --teacher-arch: imagenet (the "
                   "default; needs internet) or a Keras Applications weights file")
    p.add_argument("--teacher-fine-tune", help="with a pretrained --teacher-arch, the layers "
                   "its second phase fine-tunes: top (default: those at 1/16 of its input "
                   "side and coarser; the early ones stay ImageNet's) or all")
    p.add_argument("--teacher-fine-tune-lr", type=float, help="its peak learning rate there "
                   "(Adam, one-cycle; default 1e-4)")
    p.add_argument("--teacher-size", type=int, help="with a pretrained --teacher-arch, the "
                   "backbone's input side in px (default: the training size; under 96 px, "
                   "upsampled to 128)")
    p.add_argument("--student-arch", help="student builder name (default from preset), or a "
                   "pretrained family: mobilenet_v1 (sized by --student-macs, default 10M), "
                   "mobilenet_v1_x<alpha>[_r<side>], e.g. mobilenet_v1_x0.25_r96")
    p.add_argument("--student-weights", help="with a mobilenet_v1 --student-arch: imagenet "
                   "(the Keras cache, else downloaded) or a Keras Applications weights file")
    p.add_argument("--epochs", type=int, help="distillation epochs (scratch baseline: same); 0 with "
                   "--student keeps that student as is (e.g. to fine-tune it with --qat)")
    p.add_argument("--min-steps", type=int, help="raise the student epochs on small data sets "
                   "to at least N optimizer steps (default preset: 12800, in batches of 32 on "
                   "data sets under about 10,000 images; 0: off; --epochs alone turns it off)")
    p.add_argument("--teacher-epochs", type=int)
    p.add_argument("--teacher-min-steps", type=int, help="raise the teacher's epochs on small "
                   "data sets to at least N optimizer steps (0: off)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--alpha", type=float, help="weight of the hard-label loss, in [0, 1]")
    p.add_argument("--loss", choices=LOSSES, help="soft loss: kl "
                   "(Hinton's KL at --temperature; default), mse (matching centred logits, KL's "
                   "T -> inf limit), kl-std (KL of standardized logits) or dkd (decoupled KD)")
    p.add_argument("--batch-size", type=int, help="every phase's batch (default preset: 128, "
                   "the students' 32 on small data sets: see --min-steps)")
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--train-subset", type=int, help="use only N training images")
    p.add_argument("--unlabeled", action="append", metavar="DIR", help="a folder of unlabeled "
                   "photos (any depth; repeatable): the student also learns the teacher's "
                   "outputs on them (a teacher trained here, their pseudo-labels: "
                   "--pseudo-label-threshold)")
    p.add_argument("--pseudo-label-threshold", type=float, metavar="P", help="with --unlabeled "
                   "and a teacher trained here: fine-tune the teacher further on the unlabeled "
                   "photos it gives a probability >= P, its class as their label (default "
                   "preset: 0.95; 0 turns it off)")
    p.add_argument("--pseudo-label-rounds", type=int, metavar="N", help="with "
                   "--pseudo-label-threshold: N rounds, each round's teacher labelling the "
                   "unlabeled photos again (default 1)")
    p.add_argument("--student-macs", type=float, help="MACs budget per image (e.g. 10e6): "
                   "the widest edge_res_x<w>_s2 / _p<stride> student within it at the training size; "
                   "replaces --student-arch")
    p.add_argument("--student-ms", type=float, help="latency budget in ms on your target: "
                   "the widest such student predicted within it there (candidates timed here "
                   "against the file --latency-from timed there); replaces --student-arch")
    p.add_argument("--latency-from", metavar="BENCH_JSON", help="bench.json of an earlier "
                   "run benched on the target (python -m bench OUT [--target ssh://...])")
    p.add_argument("--latency-format", help="the format whose latency counts "
                   "(default tflite_int8)")
    p.add_argument("--latency-threads", type=int, help="the thread count whose latency "
                   "counts (default 1)")
    p.add_argument("--latency-target", help="which machine of --latency-from: a --target URL "
                   "bench ran on, or local (default: its only target, else local)")
    p.add_argument("--image-size", type=int, help="train at N x N (default: the data's median "
                   "shorter side, at most 128; a folder of one size up to 128 keeps it)")
    p.add_argument("--resize", choices=("crop", "pad", "stretch"),
                   help="photos of another shape: crop (shorter side to N, centre crop; "
                   "default), pad (longer side to N, black borders) or stretch")
    p.add_argument("--val-split", type=float,
                   help="held-out fraction for image folders without test/ (default 0.1)")
    p.add_argument("--calib-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--no-scratch", dest="scratch", action="store_const", const=False,
                   help="skip the from-scratch baseline student")
    p.add_argument("--scratch", dest="scratch", action="store_const", const=True,
                   help="also train the from-scratch baseline (the default preset skips it)")
    p.add_argument("--qat", dest="qat_epochs", action="store_const", const=2,
                   help="also distill a quantization-aware student (2 epochs after the float one)")
    p.add_argument("--qat-epochs", type=int, help="quantization-aware epochs (implies --qat)")
    p.add_argument("--qat-learning-rate", type=float, help="default: learning rate / 10")
    p.add_argument("--prune-sparsity", type=float,
                   help="also distill a student pruned to this sparsity, e.g. 0.5")
    p.add_argument("--optimizer", help="adam | sgd (Nesterov momentum 0.9)")
    p.add_argument("--schedule", help="constant | onecycle (warm-up, then cosine to 0)")
    p.add_argument("--warmup-epochs", type=float)
    p.add_argument("--weight-decay", type=float, help="decoupled weight decay")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random padded crops and flips")
    p.add_argument("--teacher-cache-views", type=int, help="cache teacher logits for V "
                   "augmented views per image (0: run the teacher every step)")
    p.add_argument("--teacher-cache-mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="also cache each view mirrored, with the teacher's logits averaged "
                   "over the pair (flip test-time augmentation; twice the cache time)")
    p.add_argument("--teacher-cache-mix", type=int, help="M more cached copies per image, each "
                   "blended with another image, the teacher's logits on the blend and no hard "
                   "label (function matching)")
    p.add_argument("--class-sampling", help="uniform | sqrt | balanced: how often each class's "
                   "cached views are drawn (sqrt, balanced: small classes of an unbalanced folder "
                   "more often; no gain measured, docs/results/gap_levers.md)")
    p.add_argument("--label-smoothing", type=float, help="epsilon for the hard-label targets")
    p.add_argument("--mixup", type=float, help="mixup's Beta concentration (0: off); cached "
                   "teacher targets are mixed like the labels")
    p.add_argument("--strategy", help="default | mirrored (GPUs of one machine) | multiworker "
                   "(TF_CONFIG; see python -m distill.launch); --batch-size is the global batch")
    p.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=None,
                   help="XLA-compile the training steps (default preset: on; slower for "
                   "depthwise students such as edge_sep)")
    p.add_argument("--trust-model-code", action="store_true", default=None,
                   help="load --teacher/--student files that are not plain data (Lambda "
                   "layers, non-Keras classes or modules, SavedModel I/O ops, custom ONNX/TFLite "
                   "ops); only for files you trust")
    p.add_argument("--quiet", action="store_true", help="no per-batch progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    out, preset, quiet = args.pop("out"), args.pop("preset"), args.pop("quiet")
    from distill.students import FAMILY
    for budget in ("student_macs", "student_ms"):
        family = budget == "student_macs" and args.get("student_arch") == FAMILY
        if args.get(budget) is not None and args.get("student_arch") and not family:
            flag = "--" + budget.replace("_", "-")
            raise EdgekdError(f"{flag} picks the student's architecture: pass it or "
                              "--student-arch, not both")
    from distill.config import STUDENT_BOUND, resolve  # cheap; fails on bad values before TF loads
    if not any(args.get(k) for k in ("student_arch", "student_macs", "student_ms", "student_path")):
        args["student_bound"] = STUDENT_BOUND
    from edgekd.envvars import check_distill
    check_distill()
    cfg = photo_teacher(resolve(preset, **args), preset, explicit=bool(args.get("teacher_arch")))
    from distill.students import fine_tune
    cfg = fine_tune(cfg, args)
    from distill.data import preflight
    from distill.unlabeled import walk
    from edgekd.files import check_writable
    preflight(cfg.data)  # an unusable source fails here, before TensorFlow's start-up
    if cfg.unlabeled:
        walk(cfg.unlabeled)  # and so does an empty or missing --unlabeled folder
    if cfg.student_ms is not None:  # and so does a bad bench.json
        from distill.budget import read_rate
        read_rate(cfg.latency_from, cfg.latency_format, cfg.latency_threads, cfg.latency_target)
    if not cfg.teachers:
        from distill.pretrained import check_weights
        check_weights(cfg.teacher_arch, cfg.teacher_weights)  # offline: fails in seconds
    from distill.students import check_weights as check_student_weights
    if not cfg.student_path:
        check_student_weights(cfg.student_arch, cfg.student_weights)
    check_writable(out, cfg.data)  # and so does an --out edgekd may not replace
    if cfg.strategy == "multiworker":
        from distill.launch import tf_config
        tf_config()
    from distill.run import run  # imports TensorFlow
    report = run(cfg, out, verbose=2 if quiet else None)
    print(format_table(report))
    if report.get("artifacts"):  # only the chief writes (tf.distribute multiworker)
        print(f"[distill] artifacts written to {report['artifacts']}")
    return 0


def photo_teacher(cfg, preset: str, explicit: bool):
    """A folder of photos under the default preset, with no teacher given: a
    fine-tuned ImageNet MobileNet when its weights are already in the Keras
    cache (edgekd downloads nothing unasked). On a few thousand photos a teacher
    trained from scratch is weak (docs/results/sign_digits.md: 40.8 % against
    87.4 % fine-tuned)."""
    import os
    from dataclasses import replace
    from pathlib import Path
    if preset != "default" or cfg.teachers or explicit or not Path(cfg.data).is_dir():
        return cfg
    from distill.pretrained import BACKBONES
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    cached = home / "models" / BACKBONES["mobilenet"].weights_file
    if not cached.is_file():
        return cfg
    print(f"[distill] photo folder: the teacher is ImageNet MobileNet ({cached}), fine-tuned; "
          "--teacher-arch edge_pool trains one from scratch instead", flush=True)
    return replace(cfg, teacher_arch="mobilenet", teacher_weights=str(cached))


def format_table(report: dict) -> str:
    rows = ["| model | params | MACs | accuracy | s/epoch |", "|---|---:|---:|---:|---:|"]
    for role, m in report["models"].items():
        spe = m["seconds_per_epoch"]
        macs = "-" if m["macs"] is None else f"{m['macs']:,}"  # a teacher not in Keras
        rows.append(f"| {role} | {m['params']:,} | {macs} | {100 * m['accuracy']:.2f} % "
                    f"| {spe if spe is not None else '-'} |")
    return "\n".join(rows)


def entry() -> int:
    return run_cli(main, "python -m distill")
