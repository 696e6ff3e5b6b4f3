"""One distill run: data -> teacher -> distilled student -> scratch student ->
artifacts folder (written in `<out>.partial`, renamed into place at the end)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from distill import models, optimize, safe_load
from distill.config import DistillConfig
from distill.data import DataSet, load_dataset
from distill.distribute import (
    is_chief,
    make_strategy,
    num_workers,
    save_model,
    shard_by_data,
    worker_index,
)
from distill.loss import DistillationLoss
from distill.recipe import cached_views, make_optimizer, soft_targets
from distill.tfenv import keras, tf
from distill.train import Distiller, accuracy, compile_classifier, make_dataset, run_phase
from distill.workdir import discard_if_empty, finish_complete, open_work
from edgekd import environment, train_report
from edgekd.atomic import atomic_path, swap_into_place, write_json, write_text
from edgekd.errors import EdgekdError
from edgekd.files import check_writable, is_ours, read_json


def _split(ds: DataSet, cfg: DistillConfig):
    """Training subset and a calibration set (from train, so disjoint from eval)."""
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(ds.x_train))
    calib_idx = order[:min(cfg.calib_size, len(order))]
    train_idx = order[:cfg.train_subset] if cfg.train_subset else order
    return (ds.x_train[train_idx], ds.y_train[train_idx]), ds.x_train[calib_idx]


def _training_data(cfg: DistillConfig, ds: DataSet):
    """(x, y) of the training subset, the calibration images, and the shuffled
    (augmented) training dataset, sharded for the strategy in scope."""
    (x_tr, y_tr), x_calib = _split(ds, cfg)
    plain = make_dataset(x_tr, y_tr, ds.preprocessing, cfg.batch_size, True, cfg.seed, cfg.augment)
    train_ds = shard_by_data(soft_targets(plain, len(ds.labels), cfg.label_smoothing, cfg.mixup))
    return (x_tr, y_tr), x_calib, train_ds


def _soft(cfg: DistillConfig) -> bool:
    """Whether the hard-label targets come as probabilities (recipe.soft_targets)."""
    return bool(cfg.label_smoothing or cfg.mixup)


def _teacher(cfg, ds, train_ds, work: Path, verbose: int,
             chief: bool = True) -> tuple[keras.Model, dict]:
    pre, n = ds.preprocessing, len(ds.labels)
    saved = work / "teacher.keras"
    if cfg.teacher_path:
        teacher = models.load_model(cfg.teacher_path, "teacher", cfg.trust_model_code)
        models.check_io(teacher, pre.input_shape, n, "teacher")
        return teacher, {"trained": False, "source": str(cfg.teacher_path), "epochs": []}
    if saved.is_file():
        return models.load_model(saved, "teacher"), {"trained": True,
                                                     "epochs": _epoch_log(work, "teacher")}
    keras.utils.set_random_seed(cfg.seed)
    teacher = compile_classifier(models.build(cfg.teacher_arch, pre.input_shape, n),
                                 _optimizer(cfg, cfg.learning_rate, cfg.teacher_epochs, train_ds),
                                 cfg.jit_compile, _soft(cfg))
    log = run_phase("teacher", teacher, train_ds, cfg.teacher_epochs, work, verbose, chief=chief)
    save_model(teacher, saved, chief, lambda m, p: m.save(p))
    return teacher, {"trained": True, "epochs": log}


def _without_cpu_xla_collectives(cfg: DistillConfig, strategy) -> DistillConfig:
    """XLA has no collectives on CPU: a distributed run on CPUs trains without
    jit_compile (the default preset's setting) rather than fail in its first step."""
    distributed = num_workers(strategy) > 1 or strategy.num_replicas_in_sync > 1
    if cfg.jit_compile and distributed and not tf.config.list_physical_devices("GPU"):
        print("[distill] XLA off: TensorFlow has no XLA collectives on CPU devices", flush=True)
        return replace(cfg, jit_compile=False)
    return cfg


def _check_models(cfg: DistillConfig) -> None:
    """Model names and supplied files, checked before any data is loaded or trained."""
    for role, arch, path in (("teacher", cfg.teacher_arch, cfg.teacher_path),
                             ("student", cfg.student_arch, cfg.student_path)):
        if path:
            if not Path(path).exists():
                raise EdgekdError(f"{role} model {path} not found")
            safe_load.check_code(Path(path), role, cfg.trust_model_code)
        elif arch not in models.BUILDERS:
            raise EdgekdError(f"unknown {role} model {arch!r}; valid models: "
                              f"{', '.join(models.BUILDERS)}")


def _epoch_log(work: Path, role: str) -> list[dict]:
    """The epoch log of a finished phase ([] when the run already cleaned it up)."""
    path = work / "_checkpoints" / f"{role}_epochs.json"
    return json.loads(path.read_text()) if path.is_file() else []


def _student_init(cfg, ds) -> keras.Model:
    pre, n = ds.preprocessing, len(ds.labels)
    keras.utils.set_random_seed(cfg.seed + 1)
    if cfg.student_path:
        student = models.load_model(cfg.student_path, "student", cfg.trust_model_code)
        models.check_io(student, pre.input_shape, n, "student")
        return student
    return models.build(cfg.student_arch, pre.input_shape, n)


def _copies_of(init: keras.Model):
    """A maker of fresh copies of `init` (same weights): every student phase starts alike."""
    def fresh() -> keras.Model:
        model = keras.models.clone_model(init)
        model.set_weights(init.get_weights())
        return model
    return fresh


def _optimizer(cfg, lr: float, epochs: int, train_ds, schedule: str | None = None):
    steps = int(train_ds.cardinality())
    return make_optimizer(cfg.optimizer, lr, schedule or cfg.schedule, cfg.weight_decay,
                          max(1, epochs * steps), int(cfg.warmup_epochs * steps))


def _trainer(cfg, ds, model, teacher, optimizer):
    """A Distiller for `model` (teacher given) or a plain classifier (teacher None)."""
    if teacher is None:
        return compile_classifier(model, optimizer, cfg.jit_compile, _soft(cfg))
    trainer = Distiller(model, teacher, DistillationLoss(cfg.alpha, cfg.temperature))
    trainer.compile(optimizer=optimizer, jit_compile=cfg.jit_compile)
    trainer(np.zeros((1, *ds.preprocessing.input_shape), np.float32))  # build: resume needs it
    return trainer


def _phase(role: str, cfg, ds, work: Path, verbose: int, make, teacher, epochs: int, lr: float,
           train_ds, callbacks=(), finish=lambda m: m, schedule=None, chief=True):
    """Train `make()` as `role` unless a finished model is saved; returns (model, log)."""
    saved = work / optimize.model_file(role)
    if saved.is_file():
        return optimize.load(saved, role), _epoch_log(work, role)
    keras.utils.set_random_seed(cfg.seed + 2)
    model = make()
    data = train_ds.plain if teacher is None else train_ds.distill()
    trainer = _trainer(cfg, ds, model, teacher, _optimizer(cfg, lr, epochs, data, schedule))
    log = run_phase(role, trainer, data, epochs, work, verbose, list(callbacks), chief=chief)
    model = finish(model)
    save_model(model, saved, chief, optimize.save)
    return model, log


def _students(cfg, ds, init, teacher, train_ds, work: Path, verbose: int, n_train: int,
              chief: bool):
    """Distilled student, and optionally: the same student (same init) from scratch,
    a pruned distilled student, and quantization-aware versions of both."""
    fresh = _copies_of(init)
    lr, qat_lr = cfg.learning_rate, cfg.qat_learning_rate or cfg.learning_rate / 10
    common = dict(cfg=cfg, ds=ds, work=work, verbose=verbose, train_ds=train_ds, chief=chief)
    out = {"student": _phase("student", make=fresh, teacher=teacher, epochs=cfg.epochs, lr=lr,
                             **common)}
    if cfg.scratch:
        out["student_scratch"] = _phase("student_scratch", make=fresh, teacher=None,
                                        epochs=cfg.epochs, lr=lr, **common)
    if cfg.prune_sparsity:
        steps = cfg.epochs * -(-n_train // cfg.batch_size)
        out["student_pruned"] = _phase(
            "student_pruned", make=lambda: optimize.prunable(fresh(), cfg.prune_sparsity, steps),
            teacher=teacher, epochs=cfg.epochs, lr=lr, callbacks=optimize.pruning_callbacks(),
            finish=optimize.strip, **common)
    if cfg.qat_epochs:
        float_student = out["student"][0]
        out["student_qat"] = _phase("student_qat", make=lambda: optimize.qat_model(float_student),
                                    teacher=teacher, epochs=cfg.qat_epochs, lr=qat_lr,
                                    schedule="constant", **common)
        if cfg.prune_sparsity:
            pruned = out["student_pruned"][0]
            out["student_pruned_qat"] = _phase(
                "student_pruned_qat", make=lambda: optimize.qat_model(pruned, True),
                teacher=teacher, epochs=cfg.qat_epochs, lr=qat_lr, schedule="constant", **common)
    return out


class StudentData:
    """Training data by use: `plain` (teacher, scratch) and `distill()`: cached
    teacher views when configured (built on first use, timed), else plain."""

    def __init__(self, cfg, pre, teacher, plain, x_tr, y_tr):
        self.cfg, self.pre, self.teacher, self.plain = cfg, pre, teacher, plain
        self.x, self.y = x_tr, y_tr
        self._views, self.cache_seconds = None, None

    def distill(self):
        cfg = self.cfg
        if not cfg.teacher_cache_views:
            return self.plain
        if self._views is None:
            t0 = time.perf_counter()
            views = cached_views(self.x, self.y, self.teacher, self.pre, cfg.teacher_cache_views,
                                 cfg.batch_size, cfg.seed, cfg.augment, cfg.teacher_cache_mirror)
            self._views = shard_by_data(soft_targets(
                views, self.teacher.output_shape[-1], cfg.label_smoothing, cfg.mixup,
                cfg.temperature))
            self.cache_seconds = round(time.perf_counter() - t0, 2)
            mirrored = " (and their mirrors)" if cfg.teacher_cache_mirror else ""
            print(f"[distill] teacher logits cached for {cfg.teacher_cache_views} views"
                  f"{mirrored} in {self.cache_seconds} s", flush=True)
        return self._views


def _model_record(model, ds, info: dict) -> dict:
    pre = ds.preprocessing
    epochs = info.get("epochs", [])
    secs = [e["seconds"] for e in epochs]
    return {**models.summary(model), **info, "sparsity": optimize.sparsity(model),
            "accuracy": accuracy(model, ds.x_test, ds.y_test, pre),
            "seconds_per_epoch": round(float(np.mean(secs)), 2) if secs else None}


def run(cfg: DistillConfig, out: str | Path, verbose: int | None = None) -> dict:
    """Distill and write the artifacts folder (on the chief); returns train_report."""
    out = check_writable(out, cfg.data)
    strategy = make_strategy(cfg.strategy)  # before any other TF op (multiworker needs it)
    chief = is_chief(strategy)
    cfg = _without_cpu_xla_collectives(cfg, strategy)
    verbose = verbose if verbose is not None else (1 if sys.stdout.isatty() else 2)
    t0 = time.perf_counter()
    if chief and finish_complete(out, cfg.to_json()):  # killed while being moved into place
        return read_json(out / "train_report.json", "train report")
    _check_models(cfg)
    ds = load_dataset(cfg.data, cfg.image_size, cfg.val_split, cfg.seed)
    work = open_work(out, cfg.to_json(), chief)
    try:
        with strategy.scope():
            report, teacher, x_calib = _train(cfg, ds, work, verbose, chief)
    except EdgekdError:
        if chief:
            discard_if_empty(work)  # a failure before any saved work leaves nothing behind
        raise
    report["distribution"] = {"strategy": cfg.strategy, "workers": num_workers(strategy),
                              "replicas": int(strategy.num_replicas_in_sync)}
    report.update(config=json.loads(cfg.to_json()), versions=environment.versions(),
                  machine=environment.machine(),
                  total_seconds=round(time.perf_counter() - t0, 1))
    if chief:
        report["artifacts"] = str(out)
        _write(work, ds, teacher, x_calib, report)
        swap_into_place(work, out)
    else:
        print(f"[distill] worker {worker_index(strategy)} done; the chief writes {out}",
              flush=True)
    return report


def _train(cfg, ds, work: Path, verbose: int, chief: bool):
    """All training and evaluation (inside the strategy's scope)."""
    pre = ds.preprocessing
    # The datasets' shuffles take the global seed too: set it here, so that a run
    # does not depend on what ran before it in the same process.
    keras.utils.set_random_seed(cfg.seed)
    (x_tr, y_tr), x_calib, train_ds = _training_data(cfg, ds)
    init = _student_init(cfg, ds)  # a bad student name or file fails before the teacher trains
    teacher, t_info = _teacher(cfg, ds, train_ds, work, verbose, chief)
    data = StudentData(cfg, pre, teacher, train_ds, x_tr, y_tr)
    students = _students(cfg, ds, init, teacher, data, work, verbose, len(x_tr), chief)
    report = {"dataset": {"name": ds.name, "source": cfg.data, "labels": ds.labels,
                          "n_train": int(len(x_tr)), "n_test": int(len(ds.x_test))},
              "preprocessing": pre.to_dict(),
              "models": {"teacher": _model_record(teacher, ds, t_info)}}
    for role, (model, log) in students.items():
        report["models"][role] = _model_record(model, ds, {"trained": True, "epochs": log})
    if "student_scratch" in report["models"]:
        report["distillation_gain"] = round(report["models"]["student"]["accuracy"]
                                            - report["models"]["student_scratch"]["accuracy"], 4)
    report["teacher_cache_seconds"] = data.cache_seconds
    return report, teacher, x_calib


def _write(work: Path, ds: DataSet, teacher, x_calib, report: dict) -> None:
    if not (work / "teacher.keras").is_file():  # a supplied teacher is copied in
        save_model(teacher, work / "teacher.keras", True, lambda m, p: m.save(p))
    with atomic_path(work / "eval.npz") as tmp:
        np.savez_compressed(tmp, x=ds.x_test, y=ds.y_test, labels=np.array(ds.labels))
    with atomic_path(work / "calib.npz") as tmp:
        np.savez_compressed(tmp, x=x_calib)
    write_text(work / "labels.txt", "\n".join(ds.labels) + "\n")
    write_json(work / "preprocessing.json", report["preprocessing"])
    shutil.rmtree(work / "_checkpoints", ignore_errors=True)
    train_report.validate(report)
    write_json(work / "train_report.json", report)  # last: marks the folder complete


def add_scratch(out: str | Path, verbose: int | None = None) -> dict:
    """Train the from-scratch baseline of a finished run and add it to its folder:
    the same config, student init and recipe, no teacher. For presets that skip
    it (default), so `make edge-model` stays a deployment run and benchmarks add
    the baseline after it. Returns the updated train_report."""
    out = Path(out).resolve()
    report_file = out / "train_report.json"
    if not is_ours(out) or not report_file.is_file() or not (out / "config.json").is_file():
        raise EdgekdError(f"{out} is not a finished distill run (no train_report.json or "
                          "config.json): run python -m distill first")
    report = train_report.load(out)
    if "student_scratch" in report["models"]:
        raise EdgekdError(f"{out} already has a scratch baseline (student_scratch)")
    cfg = replace(DistillConfig.from_dict(json.loads((out / "config.json").read_text())),
                  scratch=True, strategy="default")
    verbose = verbose if verbose is not None else (1 if sys.stdout.isatty() else 2)
    t0 = time.perf_counter()
    ds = load_dataset(cfg.data, cfg.image_size, cfg.val_split, cfg.seed)
    keras.utils.set_random_seed(cfg.seed)  # as in _train: the same shuffles
    (x_tr, y_tr), _, plain = _training_data(cfg, ds)
    work = open_work(out, cfg.to_json(), suffix=".scratch.partial")  # an interrupted run resumes
    model, log = _phase("student_scratch", cfg, ds, work, verbose,
                        _copies_of(_student_init(cfg, ds)), None, cfg.epochs,
                        cfg.learning_rate, StudentData(cfg, ds.preprocessing, None, plain,
                                                       x_tr, y_tr))
    record = _model_record(model, ds, {"trained": True, "epochs": log})
    name = optimize.model_file("student_scratch")
    with atomic_path(out / name) as tmp:
        shutil.copy2(work / name, tmp)
    report["models"]["student_scratch"] = record
    report["distillation_gain"] = round(report["models"]["student"]["accuracy"]
                                        - record["accuracy"], 4)
    report["scratch_seconds"] = round(time.perf_counter() - t0, 1)  # not in total_seconds
    train_report.validate(report)
    write_json(report_file, report)
    shutil.rmtree(work, ignore_errors=True)
    return report
