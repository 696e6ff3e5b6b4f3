"""The phases of a distill run: each model to train is a Phase (what it is, how
it starts, what teaches it), and a Session trains phases with what they share
(config, data, work folder). A finished phase is saved and skipped on resume.

The student phases all start from the same initial weights: the distilled
student, the scratch baseline (same student, no teacher), the pruned student,
and quantization-aware versions of the float and pruned students.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from distill import models, optimize, patches
from distill.config import DistillConfig
from distill.data import DataSet
from distill.distribute import save_model, shard_by_data
from distill.loss import DistillationLoss
from distill.recipe import CachePlan, cache_views, class_weights, make_optimizer, plan_views, soft_targets
from distill.tfenv import keras, tf
from distill.train import Distiller, compile_classifier, make_dataset, run_phase
from distill.unlabeled import Unlabeled, joined
from distill.workdir import damaged
from edgekd.errors import EdgekdError, first_line
from edgekd.roles import SCRATCH, STUDENT, model_file


def _same(model):
    return model


@dataclass(frozen=True)
class Phase:
    """One model to train."""
    role: str
    make: Callable[[], keras.Model]  # the model before training
    distilled: bool  # True: against the teacher; False: cross-entropy only
    epochs: int
    lr: float
    schedule: str | None = None  # None: the config's
    optimizer: str | None = None  # None: the config's (adam | sgd)
    weight_decay: float | None = None  # None: the config's
    seed_offset: int = 2  # initial weights from seed + offset (the teacher's: 0)
    callbacks: tuple = ()
    finish: Callable[[keras.Model], keras.Model] = _same  # e.g. strip pruning wrappers
    save_as: str | None = None  # a stage that is no role of its own (default: the role's file)
    data: object = None  # its own batches (None: the session's, by `distilled`)


def augmented_batches(cfg: DistillConfig, x, y, pre, classes: int, batch_size: int):
    """Shuffled, augmented batches of (x, y) with one-hot (smoothed, mixed)
    targets, sharded for the strategy in scope: every phase's that does not
    train on cached teacher views."""
    batches = make_dataset(x, y, pre, batch_size, True, cfg.seed, cfg.augment)
    return shard_by_data(soft_targets(batches, classes, cfg.label_smoothing, cfg.mixup))


class StudentData:
    """Training data by use: `plain` (the teacher's), `labeled_batches()` (the
    scratch baseline's) and `distill()`: cached teacher views when configured
    (built on first use, timed), else plain."""

    def __init__(self, cfg: DistillConfig, ds: DataSet, teacher, plain, x_tr, y_tr,
                 extra: Unlabeled | None = None):
        self.cfg, self.pre, self.teacher, self.plain = cfg, ds.preprocessing, teacher, plain
        self.store_dir = ds.store_dir
        self.labeled = x_tr, y_tr  # the labeled training images (the teacher's, the scratch's)
        # the distilled phases' images: the labeled ones, then any unlabeled ones
        self.x, self.y = joined(x_tr, y_tr, extra, ds.store_dir)
        self.extra = extra
        self.classes = len(ds.labels)
        self._views, self.cache_seconds, self.cache_copies = None, None, None
        self._batches: dict = {}  # patch stride, "plain" or "labeled" -> batches

    def views(self) -> CachePlan:
        """Cached views (and blended copies) per image: the config's (as many
        as the phases and the cache limit can use, recipe.plan_views), or 1 view
        for a teacher that the training step cannot call (not a tf_keras model
        on the data's input)."""
        cfg = self.cfg
        if cfg.teacher_cache_views and cfg.augment:
            plan = plan_views(cfg.teacher_cache_views, cfg.teacher_cache_mirror,
                              max(cfg.epochs, cfg.qat_epochs), len(self.x),
                              int(np.prod(self.x.shape[1:])), cfg.teacher_cache_mix)
            if plan.reason:
                print(f"[distill] teacher cache: {plan.views} views, {plan.mixed} blended, not "
                      f"{cfg.teacher_cache_views} and {cfg.teacher_cache_mix}: {plan.reason}",
                      flush=True)
            return plan
        if cfg.teacher_cache_views or self.teacher.keras_model is not None:
            return CachePlan(cfg.teacher_cache_views, "", cfg.teacher_cache_mix)
        print(f"[distill] the teacher ({self.teacher.kind}) runs outside TensorFlow's training "
              "step: its logits are cached, 1 view per image (--teacher-cache-views N for "
              "more)", flush=True)
        return CachePlan(1, "")

    def labeled_batches(self):
        """`plain` in the students' batch size: the scratch baseline's batches,
        and the distilled phases' when the teacher runs in the training step."""
        cfg = self.cfg
        if cfg.students_batch == cfg.batch_size:
            return self.plain
        if "labeled" not in self._batches:
            self._batches["labeled"] = augmented_batches(cfg, *self.labeled, self.pre,
                                                         self.classes, cfg.students_batch)
        return self._batches["labeled"]

    @property
    def cached(self) -> bool:
        """Whether the distilled phases' batches come from the teacher cache."""
        return self._views is not None

    def _plain_all(self):
        """Augmented batches of every image the distilled phases see, for a
        teacher that runs in the training step (the labeled ones: labeled_batches)."""
        if self.extra is None:
            return self.labeled_batches()
        if "plain" not in self._batches:
            self._batches["plain"] = augmented_batches(self.cfg, self.x, self.y, self.pre,
                                                       self.teacher.classes,
                                                       self.cfg.students_batch)
        return self._batches["plain"]

    def distill(self, patch: int = 0):
        """The distilled phases' data: cached views (their batches with patches
        arranged for a patch stem of stride `patch`, distill.patches) or, when
        the teacher runs in the training step, `plain`."""
        cfg = self.cfg
        if self._views is None:
            plan = self.views()
            views = plan.views
            if not views:
                return self._plain_all()
            t0 = time.perf_counter()
            self._views = cache_views(self.x, self.y, self.teacher, self.pre, views, cfg.seed,
                                      cfg.augment, cfg.teacher_cache_mirror, self.store_dir,
                                      plan.mixed)
            self.cache_seconds = round(time.perf_counter() - t0, 2)
            self.cache_copies = self._views.copies
            mirrored = " (and their mirrors)" if cfg.teacher_cache_mirror else ""
            print(f"[distill] teacher logits cached for {views} views"
                  f"{mirrored} in {self.cache_seconds} s", flush=True)
        if patch not in self._batches:
            self._batches[patch] = shard_by_data(soft_targets(
                self._views.dataset(cfg.students_batch, cfg.seed, patch,
                                    class_weights(self.y, cfg.class_sampling)),
                self.teacher.classes,
                cfg.label_smoothing, cfg.mixup, cfg.temperature))
        return self._batches[patch]


def epoch_log(work: Path, role: str) -> list[dict]:
    """The epoch log of a finished phase ([] when the run already cleaned it up)."""
    path = work / "_checkpoints" / f"{role}_epochs.json"
    return json.loads(path.read_text()) if path.is_file() else []


def soft(cfg: DistillConfig) -> bool:
    """Whether the hard-label targets come as probabilities (recipe.soft_targets)."""
    return bool(cfg.label_smoothing or cfg.mixup)


def optimizer(cfg: DistillConfig, phase: Phase, train_ds):
    """The phase's optimizer: its own settings where it has them, else the config's."""
    steps = int(train_ds.cardinality())
    wd = cfg.weight_decay if phase.weight_decay is None else phase.weight_decay
    return make_optimizer(phase.optimizer or cfg.optimizer, phase.lr,
                          phase.schedule or cfg.schedule, wd, max(1, phase.epochs * steps),
                          int(cfg.warmup_epochs * steps))


@dataclass
class Session:
    """What the phases of one run share."""
    cfg: DistillConfig
    ds: DataSet
    work: Path
    data: StudentData
    verbose: int = 2
    chief: bool = True
    trained: dict = field(default_factory=dict)  # role -> (model, epoch log)

    def train(self, phase: Phase) -> tuple[keras.Model, list[dict]]:
        """Train `phase` unless its finished model is saved; returns (model, log)."""
        saved = self.work / (phase.save_as or model_file(phase.role))
        if saved.is_file():
            try:
                result = optimize.load(saved, phase.role), epoch_log(self.work, phase.role)
            except (EdgekdError, ValueError, OSError) as exc:
                raise damaged(self.work, first_line(exc, 300)) from None
        else:
            keras.utils.set_random_seed(self.cfg.seed + phase.seed_offset)
            model = phase.make()
            trained, data = self._as_trained(model, phase)
            trainer = self._trainer(trained, phase.distilled, optimizer(self.cfg, phase, data))
            log = run_phase(phase.role, trainer, data, phase.epochs, self.work, self.verbose,
                            list(phase.callbacks), chief=self.chief,
                            backup="backup" if trained is model else "patches_backup")
            model = phase.finish(model)
            save_model(model, saved, self.chief, optimize.save)
            result = model, log
        self.trained[phase.role] = result
        return result

    def _jit(self, model) -> bool:
        # XLA makes depthwise convolutions ~8x slower to train on CPU (docs/results/
        # zoo_throughput.md): MobileNet-style models train without it
        return self.cfg.jit_compile and not (
            _depthwise(model) and not tf.config.list_physical_devices("GPU"))

    def _as_trained(self, model, phase: Phase):
        """(the model to train, its data). A distilled phase on cached views
        whose model starts with a patch stem trains it under XLA as a matrix
        product on arranged patches (distill.patches), the same function
        computed faster; phases whose batches are augmented (or whose teacher
        runs) in the training loop see images."""
        if phase.data is not None:
            return model, phase.data
        if not phase.distilled:
            return model, self.data.plain
        stride = patches.stem_stride(model) if self._jit(model) else 0
        data = self.data.distill(stride)
        if not stride or not self.data.cached:
            return model, data
        return patches.twin(model), data

    def _trainer(self, model, distilled: bool, opt):
        """A Distiller against the teacher, or a plain classifier."""
        cfg = self.cfg
        jit = self._jit(model)
        if cfg.jit_compile and not jit:
            print(f"[distill] {model.name}: XLA off (depthwise convolutions on CPU)", flush=True)
        if not distilled:
            return compile_classifier(model, opt, jit, soft(cfg))
        loss = DistillationLoss(cfg.alpha, cfg.temperature, cfg.loss)
        trainer = Distiller(model, self.data.teacher.keras_model, loss)
        trainer.compile(optimizer=opt, jit_compile=jit)
        trainer(np.zeros((1, *model.input_shape[1:]), np.float32))  # resume needs it
        return trainer


def _depthwise(model: keras.Model) -> bool:
    return any(isinstance(m, keras.layers.DepthwiseConv2D) for m in model.submodules)


def student_init(cfg: DistillConfig, ds: DataSet) -> keras.Model:
    """The student every phase starts from: supplied (--student) or built by name."""
    pre, n = ds.preprocessing, len(ds.labels)
    keras.utils.set_random_seed(cfg.seed + 1)
    if cfg.student_path:
        student = models.load_model(cfg.student_path, "student", cfg.trust_model_code)
        models.check_io(student, pre.input_shape, n, "student")
    else:
        student = models.build(cfg.student_arch, pre.input_shape, n, cfg.student_weights)
    print(f"[distill] student {student.name}: {student.count_params() / 1e6:.3f}M params, "
          f"{models.count_macs(student) / 1e6:.2f}M MACs per {pre.height}x{pre.width} image",
          flush=True)
    return student


def copies_of(init: keras.Model) -> Callable[[], keras.Model]:
    """A maker of fresh copies of `init` (same weights): every student phase starts alike."""
    def fresh() -> keras.Model:
        model = keras.models.clone_model(init)
        model.set_weights(init.get_weights())
        return model
    return fresh


def scratch_phase(cfg: DistillConfig, fresh, data: StudentData) -> Phase:
    """The baseline: the same student, init and recipe, without the teacher."""
    return Phase(SCRATCH, fresh, False, cfg.epochs, cfg.learning_rate, data=data.labeled_batches())


def train_students(session: Session, init: keras.Model, n_train: int) -> dict:
    """Every student phase the config asks for, in order; role -> (model, log)."""
    cfg, fresh = session.cfg, copies_of(init)
    lr, qat_lr = cfg.learning_rate, cfg.qat_learning_rate or cfg.learning_rate / 10
    float_student, _ = session.train(Phase(STUDENT, fresh, True, cfg.epochs, lr))
    if cfg.scratch:
        session.train(scratch_phase(cfg, fresh, session.data))
    if cfg.prune_sparsity:
        sparsity, steps = cfg.prune_sparsity, cfg.epochs * -(-n_train // cfg.students_batch)
        pruned, _ = session.train(Phase(
            "student_pruned", lambda: optimize.prunable(fresh(), sparsity, steps), True,
            cfg.epochs, lr, callbacks=tuple(optimize.pruning_callbacks()),
            finish=optimize.strip))
    if cfg.qat_epochs:
        session.train(Phase("student_qat", lambda: optimize.qat_model(float_student), True,
                            cfg.qat_epochs, qat_lr, schedule="constant"))
        if cfg.prune_sparsity:
            session.train(Phase("student_pruned_qat", lambda: optimize.qat_model(pruned, True),
                                True, cfg.qat_epochs, qat_lr, schedule="constant"))
    return {role: result for role, result in session.trained.items()
            if role.startswith(STUDENT)}
