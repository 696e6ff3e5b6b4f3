"""One distill run: data -> teacher -> distilled student -> scratch student ->
artifacts folder (written in `<out>.partial`, renamed into place at the end)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from distill import (
    budget,
    models,
    optimize,
    pretrained,
    safe_load,
    sizing,
    store,
    students,
    teachers,
    teaching,
    unlabeled,
)
from distill.config import STUDENT_BOUND, DistillConfig
from distill.data import DataSet, load_dataset
from distill.distribute import (
    is_chief,
    make_strategy,
    num_workers,
    save_model,
    worker_index,
)
from distill.phases import (
    Session,
    StudentData,
    augmented_batches,
    copies_of,
    scratch_phase,
    student_init,
    train_students,
)
from distill.recipe import student_epochs, student_schedule
from distill.tfenv import keras, tf
from distill.train import accuracy
from distill.workdir import discard_if_empty, finish_complete, open_work, saved_config
from edgekd import environment, train_report
from edgekd.atomic import atomic_path, swap_into_place, write_json, write_text
from edgekd.contract import write_contract
from edgekd.errors import EdgekdError
from edgekd.files import check_writable, is_ours, read_json
from edgekd.roles import ROLES, SCRATCH, STUDENT, TEACHER, model_file


def _split(ds: DataSet, cfg: DistillConfig):
    """Training subset and a calibration set (from train, so disjoint from eval)."""
    rng = np.random.default_rng(cfg.seed)
    order = rng.permutation(len(ds.x_train))
    calib_idx = order[:min(cfg.calib_size, len(order))]
    train_idx = order[:cfg.train_subset] if cfg.train_subset else order
    return ((store.subset(ds.x_train, train_idx), ds.y_train[train_idx]),
            store.take(ds.x_train, calib_idx))


def _scaled_epochs(cfg: DistillConfig, n_images: int, n_unlabeled: int = 0) -> DistillConfig:
    """The preset's student epochs, raised to min_steps on a small data set
    (its labeled training images and the unlabeled ones, which the distilled
    phases see too), in batches of small_data_batch_size there."""
    n_labeled = min(n_images, cfg.train_subset or n_images)
    cfg = _scaled_teacher_epochs(cfg, n_labeled)
    n_train = n_labeled + n_unlabeled
    epochs, batch = student_schedule(cfg.epochs, cfg.min_steps, n_train, cfg.batch_size,
                                     cfg.small_data_batch_size)
    if epochs == cfg.epochs:
        return cfg
    at = f" in batches of {batch}" if batch != cfg.batch_size else ""
    print(f"[distill] {cfg.epochs} epochs of {n_train} images are only "
          f"{cfg.epochs * -(-n_train // cfg.batch_size)} steps: the students train {epochs} "
          f"epochs{at} (at least {cfg.min_steps} steps; --epochs N sets them exactly)",
          flush=True)
    return replace(cfg, epochs=epochs,
                   student_batch_size=batch if batch != cfg.batch_size else 0)


def _scaled_teacher_epochs(cfg: DistillConfig, n_labeled: int) -> DistillConfig:
    """The teacher's epochs raised to teacher_min_steps on a small data set
    (a teacher trained here only: a supplied one is not trained)."""
    epochs = student_epochs(cfg.teacher_epochs, cfg.teacher_min_steps, n_labeled,
                            cfg.batch_size)
    if epochs == cfg.teacher_epochs or cfg.teachers:
        return cfg
    print(f"[distill] {cfg.teacher_epochs} teacher epochs of {n_labeled} images are only "
          f"{cfg.teacher_epochs * -(-n_labeled // cfg.batch_size)} steps: the teacher trains "
          f"{epochs} epochs (at least {cfg.teacher_min_steps} steps; --teacher-min-steps 0 "
          "turns it off)", flush=True)
    return replace(cfg, teacher_epochs=epochs)


def training_data(cfg: DistillConfig, ds: DataSet):
    """(x, y) of the training subset, the calibration images, and the shuffled
    (augmented) training dataset, sharded for the strategy in scope."""
    # The datasets' shuffles take the global seed too: set it here, so that a run
    # does not depend on what ran before it in the same process.
    keras.utils.set_random_seed(cfg.seed)
    (x_tr, y_tr), x_calib = _split(ds, cfg)
    train_ds = augmented_batches(cfg, x_tr, y_tr, ds.preprocessing, len(ds.labels),
                                 cfg.batch_size)
    return (x_tr, y_tr), x_calib, train_ds


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
    supplied = [("teacher", p) for p in cfg.teachers] + (
        [("student", cfg.student_path)] if cfg.student_path else [])
    for role, path in supplied:
        if not Path(path).exists():
            raise EdgekdError(f"{role} model {path} not found")
        if role == "teacher":
            teachers.kind_of(Path(path))  # a kind edgekd cannot read is named now
        safe_load.check_code(Path(path), role, cfg.trust_model_code)
    if not cfg.teachers:
        pretrained.check_weights(cfg.teacher_arch, cfg.teacher_weights)
    for role, arch, given in (("teacher", cfg.teacher_arch, cfg.teachers),
                              ("student", cfg.student_arch, cfg.student_path)):
        known = [*models.BUILDERS, *(pretrained.BACKBONES if role == "teacher" else ())]
        if not given and arch not in known and not models.known(arch):
            raise EdgekdError(f"unknown {role} model {arch!r}; valid models: {', '.join(known)}"
                              ", edge_res_x<width>_s<stride>, mobilenet_v1_x<alpha>[_r<side>]")
    if not cfg.student_path:
        students.check_weights(cfg.student_arch, cfg.student_weights)


def _teacher_record(teacher: teachers.Teacher, ds: DataSet, info: dict) -> dict:
    """A teacher edgekd can describe as a Keras model, or any other by its outputs."""
    def acc(t: teachers.Teacher) -> float:
        return float(np.mean(np.argmax(t.logits(ds.x_test), -1) == ds.y_test))
    if isinstance(teacher, teachers.Ensemble):
        info = {**info, "members": [{**m.record(), "accuracy": acc(m)} for m in teacher.members]}
    if teacher.keras_model is not None:
        return _model_record(teacher.keras_model, ds, info)
    c = teacher.contract
    return {"name": teacher.kind, "params": teacher.params, "macs": None,
            "input_shape": [c.height, c.width, c.channels], **info, "sparsity": {},
            "accuracy": acc(teacher), "seconds_per_epoch": None}


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
    with store.folder_beside(out) as store_dir:
        return _run(cfg, out, strategy, chief, verbose, t0, store_dir)


def _resumed_pick(cfg: DistillConfig, n_images: int, n_unlabeled: int,
                  out: Path) -> str | None:
    """The student an interrupted run of the same --student-ms command picked:
    timings vary, so picking again could refuse its resumption."""
    saved = saved_config(out)
    if not saved or not isinstance(saved.get("student_arch"), str):
        return None
    again = _scaled_epochs(replace(cfg, student_arch=saved["student_arch"]), n_images,
                           n_unlabeled)
    return saved["student_arch"] if json.loads(again.to_json()) == saved else None


def _sized_student(cfg: DistillConfig, ds, store_dir: Path, out: Path,
                   n_unlabeled: int = 0) -> DistillConfig:
    """--student-macs, --student-ms or the default MACs bound: the config with
    the picked student."""
    shape, side = ds.preprocessing.input_shape, "x".join(map(str, ds.x_train.shape[1:3]))
    spec = students.parse(cfg.student_arch)
    if spec is not None and spec.alpha is None:
        bound = cfg.student_macs or cfg.student_bound or STUDENT_BOUND
        picked = students.pick(bound, shape, len(ds.labels),
                               students.alphas_for(cfg.student_weights))
        print(f"[distill] {cfg.student_arch} within {bound / 1e6:g}M MACs at {side}: "
              f"{picked.name}, {picked.macs / 1e6:.2f}M MACs: {picked.why}", flush=True)
        return replace(cfg, student_arch=picked.name)
    resumed = cfg.student_ms is not None and _resumed_pick(cfg, len(ds.x_train), n_unlabeled, out)
    if resumed:
        print(f"[distill] --student-ms {cfg.student_ms:g}: {resumed}, as the interrupted run "
              "picked", flush=True)
        return replace(cfg, student_arch=resumed)
    if cfg.student_ms is not None:
        rate = budget.read_rate(cfg.latency_from, cfg.latency_format, cfg.latency_threads,
                                cfg.latency_target)
        print(f"[distill] --student-ms {cfg.student_ms:g}: timing candidates here against "
              f"{rate.describe()}", flush=True)
        with tempfile.TemporaryDirectory(dir=store_dir) as tmp:
            probe = budget.Probe(rate, shape, len(ds.labels), Path(tmp))
            sized = sizing.pick(cfg.student_ms, shape, len(ds.labels),
                                lambda s: probe(s.name), "--student-ms", (" ms", 1.0))
        print(f"[distill] --student-ms {cfg.student_ms:g} at {side}: {sized.name}, "
              f"{sized.macs / 1e6:.2f}M MACs, {probe(sized.name):.3f} ms predicted on "
              f"{rate.machine}", flush=True)
    elif cfg.student_macs:
        sized = sizing.pick(cfg.student_macs, shape, len(ds.labels))
        print(f"[distill] --student-macs {cfg.student_macs / 1e6:g}M at {side}: {sized.name}",
              flush=True)
    elif cfg.student_bound:
        preset = sizing.measure(cfg.student_arch, shape, len(ds.labels))
        if preset.macs <= 1.25 * cfg.student_bound:
            return cfg
        sized = sizing.pick(cfg.student_bound, shape, len(ds.labels))
        print(f"[distill] student: {cfg.student_arch} would cost {preset.macs / 1e6:.1f}M MACs "
              f"at {side}; bounded by default to {cfg.student_bound / 1e6:g}M: {sized.name}, "
              f"{sized.macs / 1e6:.2f}M MACs (--student-macs N or --student-arch NAME to choose)",
              flush=True)
    else:
        return cfg
    return replace(cfg, student_arch=sized.name)


def _run(cfg: DistillConfig, out: Path, strategy, chief: bool, verbose: int, t0: float,
         store_dir: Path) -> dict:
    ds = load_dataset(cfg.data, cfg.image_size, cfg.val_split, cfg.seed, cfg.resize, store_dir,
                      cfg.folder_limits)
    extra = unlabeled.load(cfg.unlabeled, ds, cfg.train_subset, cfg.seed)
    n_extra = len(extra.x) if extra else 0
    # before the work folder: a resumed run resolves alike
    cfg = _sized_student(cfg, ds, store_dir, out, n_extra)
    cfg = _scaled_epochs(cfg, len(ds.x_train), n_extra)
    work = open_work(out, cfg.to_json(), chief)
    try:
        with strategy.scope():
            report, teacher, x_calib = _train(cfg, ds, extra, work, verbose, chief)
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


def _train(cfg, ds, extra, work: Path, verbose: int, chief: bool):
    """All training and evaluation (inside the strategy's scope)."""
    pre = ds.preprocessing
    (x_tr, y_tr), x_calib, train_ds = training_data(cfg, ds)
    data = StudentData(cfg, ds, None, train_ds, x_tr, y_tr, extra)
    session = Session(cfg, ds, work, data, verbose, chief)
    init = student_init(cfg, ds)  # a bad student name or file fails before the teacher trains
    teacher, t_info = teaching.teacher(session, extra)
    data.teacher = teacher
    students = train_students(session, init, len(x_tr))
    report = {"dataset": {"name": ds.name, "source": cfg.data, "labels": ds.labels,
                          "n_train": int(len(x_tr)), "n_test": int(len(ds.x_test))},
              "preprocessing": pre.to_dict(),
              "models": {"teacher": _teacher_record(teacher, ds, t_info)}}
    for role, (model, log) in students.items():
        report["models"][role] = _model_record(model, ds, {"trained": True, "epochs": log})
    if SCRATCH in report["models"]:
        report["distillation_gain"] = round(report["models"][STUDENT]["accuracy"]
                                            - report["models"][SCRATCH]["accuracy"], 4)
    report["teacher_cache_seconds"] = data.cache_seconds
    report["teacher_cache_copies"] = data.cache_copies
    _count_images(report, len(x_tr), extra)
    return report, teacher, x_calib


def _count_images(report: dict, n_labeled: int, extra) -> None:
    """How many labeled and unlabeled images each trained model learnt from:
    unlabeled ones teach the distilled phases only."""
    n_extra = len(extra.x) if extra else 0
    report["dataset"]["n_unlabeled"] = n_extra
    if extra:
        report["dataset"]["unlabeled"] = extra.record()
    seen = {}
    for role, record in report["models"].items():
        if not record["trained"]:
            continue
        distilled = role != TEACHER and role != SCRATCH
        seen[role] = {"labeled": n_labeled, "unlabeled": n_extra if distilled else 0}
    relabeled = report["models"][TEACHER].get("pseudo_labels")
    if relabeled and TEACHER in seen:  # the confident unlabeled ones, with the teacher's labels
        seen[TEACHER] = {"labeled": n_labeled, "unlabeled": relabeled["used"],
                         "pseudo_labels": True}
    report["images_seen"] = seen


def _write(work: Path, ds: DataSet, teacher, x_calib, report: dict) -> None:
    if not (work / "teacher.keras").is_file() and teacher.keras_model is not None:
        # a supplied tf_keras teacher on the data's input is copied in (export converts
        # it too); other teachers stay where they are, named in train_report.json
        save_model(teacher.keras_model, work / "teacher.keras", True, lambda m, p: m.save(p))
    with atomic_path(work / "eval.npz") as tmp:
        np.savez_compressed(tmp, x=ds.x_test, y=ds.y_test, labels=np.array(ds.labels))
    with atomic_path(work / "calib.npz") as tmp:
        np.savez_compressed(tmp, x=x_calib)
    write_text(work / "labels.txt", "\n".join(ds.labels) + "\n")
    write_json(work / "preprocessing.json", report["preprocessing"])
    _stamp_contracts(work, ds, report)
    for pattern in teaching.STAGE_FILES:  # a trained teacher's earlier stages
        for stage in work.glob(pattern):
            stage.unlink()
    shutil.rmtree(work / "_checkpoints", ignore_errors=True)
    train_report.validate(report)
    write_json(work / "train_report.json", report)  # last: marks the folder complete


def _stamp_contracts(work: Path, ds: DataSet, report: dict) -> None:
    """Each .keras model of the run carries its input contract and accuracy
    (edgekd.contract): handed back as --teacher, it is read, not guessed."""
    pre = report["preprocessing"]
    for role, record in report["models"].items():
        path = work / model_file(role) if role in ROLES else None
        if path is not None and path.suffix == ".keras" and path.is_file():
            write_contract(path, {"input": pre, "labels": list(ds.labels), "role": role,
                                  "accuracy": record.get("accuracy")})


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
    if SCRATCH in report["models"]:
        raise EdgekdError(f"{out} already has a scratch baseline ({SCRATCH})")
    cfg = replace(DistillConfig.from_dict(json.loads((out / "config.json").read_text())),
                  scratch=True, strategy="default")
    verbose = verbose if verbose is not None else (1 if sys.stdout.isatty() else 2)
    t0 = time.perf_counter()
    with store.folder_beside(out) as store_dir:
        ds = load_dataset(cfg.data, cfg.image_size, cfg.val_split, cfg.seed, cfg.resize,
                          store_dir, cfg.folder_limits)
        (x_tr, y_tr), _, plain = training_data(cfg, ds)  # the run's own subset and shuffles
        work = open_work(out, cfg.to_json(), suffix=".scratch.partial")  # a killed run resumes
        data = StudentData(cfg, ds, None, plain, x_tr, y_tr)
        session = Session(cfg, ds, work, data, verbose)
        model, log = session.train(scratch_phase(cfg, copies_of(student_init(cfg, ds)), data))
    record = _model_record(model, ds, {"trained": True, "epochs": log})
    name = model_file(SCRATCH)
    with atomic_path(out / name) as tmp:
        shutil.copy2(work / name, tmp)
    report["models"][SCRATCH] = record
    report["distillation_gain"] = round(report["models"][STUDENT]["accuracy"]
                                        - record["accuracy"], 4)
    report["scratch_seconds"] = round(time.perf_counter() - t0, 1)  # not in total_seconds
    train_report.validate(report)
    write_json(report_file, report)
    shutil.rmtree(work, ignore_errors=True)
    return report
