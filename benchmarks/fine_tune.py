"""How fast the pretrained teacher learns photos unlike ImageNet's: the
whole-net fine-tuning rate, compared from one shared head.

    python -m benchmarks.fine_tune [--image-size 64] [--epochs 12]

Sign Language Digits (1,856 training and 206 held-out photos), the default
preset's data, split, augmentation and batch. The teacher's first phase (its
new head on the frozen ImageNet MobileNet, Adam 1e-3, a third of the teacher
epochs) is trained once and saved; each variant then thaws the backbone and
fine-tunes from that head for --epochs, scoring the held-out photos after
every epoch. Each phase runs in its own process and appends one JSON line per
epoch to <work>/<variant>.jsonl; a finished variant is not rerun, so a rerun
only re-renders. Variants are `optimizer_rate_schedule`: adam_1e-5_constant is
Keras' transfer-learning guide; adam_3e-4_onecycle is distill.pretrained's.
Records benchmarks/results/fine_tune/table.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
from pathlib import Path

from benchmarks.saved import publish
from benchmarks.sign_digits import data_arguments
from benchmarks.stage import run_stage
from edgekd.environment import machine, versions

VARIANTS = ("adam_1e-5_constant", "adam_1e-4_constant", "adam_3e-4_onecycle")
HEAD = "head"


def _train(a) -> None:
    """One phase (--phase): the head, or one variant from the saved head."""
    from distill import pretrained, run
    from distill.config import resolve
    from distill.data import load_dataset
    from distill.phases import soft
    from distill.recipe import make_optimizer
    from distill.tfenv import keras
    from distill.train import accuracy, compile_classifier

    ds = load_dataset(str(a.work / "sign-digits"), image_size=a.image_size)
    cfg = resolve("default", teacher_arch="mobilenet", teacher_weights=str(a.weights))
    _, _, train_ds = run.training_data(cfg, ds)
    steps = int(train_ds.cardinality())
    log, t0 = a.work / f"{a.phase}.jsonl", time.perf_counter()

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            heldout = accuracy(self.model, ds.x_test, ds.y_test, ds.preprocessing)
            with open(log, "a") as f:
                f.write(json.dumps({"epoch": epoch + 1, "train": float(logs["accuracy"]),
                                    "heldout": heldout,
                                    "seconds": round(time.perf_counter() - t0, 1)}) + "\n")

    keras.utils.set_random_seed(cfg.seed)
    head_file = a.work / f"head_{a.image_size}.keras"
    if a.phase == HEAD:
        model = pretrained.build("mobilenet", ds.preprocessing.input_shape, len(ds.labels),
                                 str(a.weights))
        opt = keras.optimizers.Adam(pretrained.HEAD_LR)
        epochs = pretrained.head_epochs(cfg.teacher_epochs)
    else:
        model = keras.models.load_model(head_file)
        pretrained.backbone(model).trainable = True
        kind, rate, schedule = a.phase.split("_")
        epochs = a.epochs
        opt = make_optimizer(kind, float(rate), schedule, 0.0, epochs * steps,
                             int(cfg.warmup_epochs * steps))
    compile_classifier(model, opt, False, soft(cfg))
    model.fit(train_ds, epochs=epochs, verbose=0, callbacks=[Record()])
    if a.phase == HEAD:
        model.save(head_file)


def _epochs(work: Path, phase: str) -> list[dict]:
    path = work / f"{phase}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _run(a, phase: str) -> None:
    done = ((a.work / f"head_{a.image_size}.keras").is_file() if phase == HEAD
            else len(_epochs(a.work, phase)) >= a.epochs)
    if done:
        return
    (a.work / f"{phase}.jsonl").unlink(missing_ok=True)  # an interrupted phase starts over
    with open(a.work / f"{phase}.log", "w") as log:
        run_stage("-m", "benchmarks.fine_tune", "--phase", phase, "--work", str(a.work),
                  "--image-size", str(a.image_size), "--epochs", str(a.epochs),
                  "--weights", str(a.weights), log=log)


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.2f} %"


def document(a, head: list[dict], runs: dict[str, list[dict]]) -> str:
    m, v = machine(), versions()
    rows = [f"| {e} | " + " | ".join(_pct(r[e - 1]["heldout"]) if len(r) >= e else ""
                                     for r in runs.values()) + " |"
            for e in range(1, a.epochs + 1)]
    last = " | ".join(_pct(r[-1]["train"]) for r in runs.values())
    return "\n".join([
        "# Fine-tuning the pretrained teacher: the whole net's rate", "",
        f"`python -m benchmarks.fine_tune --image-size {a.image_size} --epochs {a.epochs}`: "
        "Sign Language Digits (1,856 training, 206 held-out photos: one photo is 0.49 points), "
        f"{a.image_size} px, the default preset's augmentation and batch; MobileNet v1 (ImageNet "
        "weights) upsampled to 128 px. One head (Adam 1e-3, backbone frozen, "
        f"{len(head)} epochs: {_pct(head[-1]['heldout'])} held-out) is trained once; every "
        "variant thaws the backbone and fine-tunes from it. one-cycle: warm-up over the "
        "first epoch, cosine decay to 0. Machine: "
        f"{m['cpu']}, {m['cores']} cores; tensorflow {v.get('tensorflow')}.",
        "", "Held-out top-1 after each fine-tuning epoch:", "",
        "| epoch | " + " | ".join(runs) + " |", "|---:|" + "---:|" * len(runs), *rows,
        f"| training accuracy, last epoch | {last} |", ""])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data_arguments(p)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=12, help="fine-tuning epochs per variant")
    p.add_argument("--work", type=Path, default=Path("/tmp/edgekd-fine-tune"))
    p.add_argument("--phase", help=argparse.SUPPRESS)  # the child process's one phase
    a = p.parse_args(argv)
    if a.phase:
        _train(a)
        return 0
    a.work.mkdir(parents=True, exist_ok=True)
    if not (a.work / "sign-digits").is_dir():
        with tarfile.open(a.tar) as tar:
            tar.extractall(a.work, filter="data")
    for phase in (HEAD, *VARIANTS):
        _run(a, phase)
    runs = {v: _epochs(a.work, v) for v in VARIANTS}
    return publish("fine_tune", document(a, _epochs(a.work, HEAD), runs))


if __name__ == "__main__":
    sys.exit(main())
