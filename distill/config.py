"""The fully resolved configuration of a distill run: a frozen dataclass,
written as config.json next to the artifacts. Presets are named, complete
configurations; command-line flags override single fields."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace

from distill import budget, students
from edgekd.errors import EdgekdError
from edgekd.preprocess import RESIZE_POLICIES

SAMPLING = ("uniform", "sqrt", "balanced")  # recipe.class_weights' policies
FINE_TUNE = ("all", "top")  # which layers of a pretrained teacher fine-tune (pretrained.thaw)
LOSSES = ("kl", "mse", "kl-std", "dkd")  # the soft losses distill.loss implements
# FixMatch's confidence threshold (Sohn et al. 2020): the pseudo-labels it keeps were
# 97-99 % right on Sign Language Digits and CIFAR-10 (docs/history.md)
PSEUDO_LABEL_THRESHOLD = 0.95
MAX_PSEUDO_LABEL_ROUNDS = 10  # each round costs as much teacher training as the first


@dataclass(frozen=True)
class DistillConfig:
    data: str = "cifar10"
    preset: str = "seed"
    teacher_arch: str = "seed_teacher"
    student_arch: str = "seed_student"
    student_macs: float | None = None  # budget: student_arch becomes the widest
    # edge_res_x<w>_s<stride> within it at the training size (distill.sizing)
    student_ms: float | None = None  # latency budget on the machine of a bench.json
    # Set by the CLI when no student is named: a preset student that would cost
    # more than 1.25x this many MACs at the training size (the CIFAR student
    # at 96 px costs 9x its 32 px MACs) is replaced by sizing's pick within it.
    student_bound: float | None = None
    latency_from: str | None = None  # row (distill.budget): the student row's latency
    latency_format: str = "tflite_int8"  # in this format at this many threads
    latency_threads: int = 1
    latency_target: str | None = None  # which of bench.json's machines (budget.read_rate)
    # Bring your own teacher (not retrained): a file or folder, or a list of them
    # (an ensemble); any kind distill.teachers reads.
    teacher_path: str | list[str] | None = None
    teacher_scale: float | None = None  # the teacher's own input scaling, when its file
    teacher_offset: float | None = None  # does not say (default: the data's)
    teacher_output: str | None = None  # which output is the logits, when a file has several
    student_path: str | None = None  # bring your own student architecture/init
    # A pretrained student_arch (distill/students.py): "imagenet" (the Keras cache,
    # else downloaded) or a Keras Applications weights file.
    student_weights: str | None = None
    teacher_epochs: int = 5
    # A pretrained teacher_arch (distill/pretrained.py): "imagenet" (downloaded by
    # Keras) or a weights file in Keras Applications' layout.
    teacher_weights: str | None = None
    # Which of its layers the second phase fine-tunes: "top", those at 1/16 of its
    # input side and coarser (pretrained.thaw: the early ones stay ImageNet's), or
    # "all". On 2,945 photos at 96 px, top scored 71.3 % against 66.5 % in 58 %
    # of the minutes (docs/results/photo_schedule.md).
    teacher_fine_tune: str = "top"
    # Its peak rate there (Adam, one-cycle). 3e-4 made the thawed layers forget:
    # training accuracy fell from 64 to 39 % after the warm-up, and the teacher
    # ended at 68.1 % against 74.1 % at 1e-4 (the same photos at 96 px).
    teacher_fine_tune_lr: float = 1e-4
    # The backbone's input side (0: the data's, images under 96 px upsampled to
    # 128: pretrained.backbone_size). At 96 px it costs 104M MACs, at 128 186M.
    teacher_size: int = 0
    epochs: int = 5  # distillation epochs; the scratch baseline gets the same. 0 (only
    # with student_path): the supplied student is kept as is, e.g. as QAT's start
    teacher_min_steps: int = 0  # the same for a teacher trained here (its epochs)
    min_steps: int = 0  # the student phases' epochs are raised to at least this many
    # optimizer steps on small data sets (recipe.student_epochs); 0 when epochs are given
    scratch: bool = True  # train the same student without a teacher as baseline
    batch_size: int = 32
    # The students' batch on a small data set, where min_steps raises their epochs
    # (recipe.student_schedule; 0: batch_size). --batch-size turns it off.
    small_data_batch_size: int = 0
    student_batch_size: int = 0  # the students' batch this run trains at (0: batch_size),
    # set by run._scaled_epochs like epochs
    learning_rate: float = 1e-3
    temperature: float = 10.0
    alpha: float = 0.1
    loss: str = "kl"  # kl: Hinton's softened KL at T; mse: matching logits (its T -> inf limit)
    train_subset: int | None = None  # first N shuffled training images (smoke runs)
    # Folders of unlabeled photos (distill.unlabeled): the distilled phases also
    # learn the teacher's outputs on them; the scratch baseline doesn't, and the
    # teacher only through its pseudo-labels.
    unlabeled: tuple[str, ...] = ()
    # With unlabeled photos and a teacher trained here: the teacher is fine-tuned
    # further on the labeled photos and the unlabeled ones it gives at least this
    # probability, its class as their label (distill.pseudo). None: off.
    pseudo_label_threshold: float | None = None
    # The threshold a preset uses when there are unlabeled photos and a teacher
    # trained here, unless one is given (0 turns them off).
    pseudo_label_default: float | None = None
    # Rounds of that: each round's teacher labels the unlabeled photos again
    # (Xie et al. 2020 iterate Noisy Student), and trains as long as the first.
    pseudo_label_rounds: int = 1
    # An image folder: the default training size's cap, and the test photos
    # decoded at most (train_subset caps the training photos decoded).
    max_image_side: int = 128
    max_test_images: int | None = None
    val_split: float = 0.1  # only for image folders without a test/ folder
    image_size: int | None = None  # square training size; None: chosen from the data
    # (distill.photos: the median shorter side, at most 128)
    resize: str = "crop"  # crop | pad | stretch: photos of other shapes (edgekd.preprocess)
    calib_size: int = 500
    seed: int = 42
    qat_epochs: int = 0  # > 0: quantization-aware distillation after the float one
    qat_learning_rate: float | None = None  # default: learning_rate / 10
    prune_sparsity: float | None = None  # e.g. 0.5: also distill a pruned student
    # The training recipe (distill/recipe.py); the seed values are the tutorial's.
    optimizer: str = "adam"  # adam | sgd (Nesterov, momentum 0.9)
    schedule: str = "constant"  # constant | onecycle (warm-up, then cosine to 0)
    warmup_epochs: float = 1.0  # one-cycle warm-up length
    weight_decay: float = 0.0  # decoupled: each step multiplies weights by 1 - lr * wd
    augment: bool = False  # random padded crops (recipe.crop_pad) and flips
    teacher_cache_views: int = 0  # > 0: V cached augmented views with teacher logits
    teacher_cache_mirror: bool = False  # also cache each view mirrored; logits averaged
    teacher_cache_mix: int = 0  # M more cached copies per image, each blended with another
    class_sampling: str = "uniform"  # uniform | sqrt | balanced: draws of the cached views
    # Soft hard-label targets (recipe.soft_targets), for every phase that trains:
    label_smoothing: float = 0.0  # epsilon: one-hot targets become (1 - eps) y + eps / K
    mixup: float = 0.0  # > 0: mixup (Zhang et al. 2018), lambda ~ Beta(mixup, mixup) per batch
    strategy: str = "default"  # default | mirrored | multiworker (tf.distribute)
    # XLA for the training steps (teacher, student). Measured in a real fit() on
    # this CPU (docs/results/zoo_throughput.md): wide teacher 1.21x, edge_res 1.16x;
    # but edge_sep (depthwise) 8x slower, so it is a per-preset choice.
    jit_compile: bool = False
    # Load model files that are not plain data (code, imports, I/O or custom
    # ops: distill.model_files); off: such a file is refused, the entry named.
    trust_model_code: bool = False

    @property
    def folder_limits(self):
        from distill.data import FolderLimits
        return FolderLimits(self.max_image_side, self.train_subset, self.max_test_images)

    def _check_pseudo_labels(self) -> None:
        p, n = self.pseudo_label_threshold, self.pseudo_label_rounds
        if not 1 <= n <= MAX_PSEUDO_LABEL_ROUNDS:
            raise EdgekdError(f"pseudo-label rounds must be in [1, {MAX_PSEUDO_LABEL_ROUNDS}], "
                              f"got {n}")
        if p is None:
            if n > 1:
                raise EdgekdError("--pseudo-label-rounds repeats the pseudo-labels: add "
                                  "--pseudo-label-threshold P")
            return
        if not 0.0 < p < 1.0:
            raise EdgekdError(f"pseudo-label threshold must be in (0, 1) (a probability; 0 "
                              f"turns them off), got {p}")
        if not self.unlabeled:
            raise EdgekdError("--pseudo-label-threshold labels unlabeled photos: add "
                              "--unlabeled DIR")
        if self.teachers:
            raise EdgekdError("--pseudo-label-threshold fine-tunes a teacher trained here; a "
                              "supplied --teacher is used as it is: drop one of the two")

    @property
    def students_batch(self) -> int:
        """The student phases' batch size (the teacher's is batch_size)."""
        return self.student_batch_size or self.batch_size

    @property
    def teachers(self) -> tuple[str, ...]:
        """The supplied teacher files (several: an ensemble); () when trained here."""
        if not self.teacher_path:
            return ()
        return (self.teacher_path,) if isinstance(self.teacher_path, str) else tuple(
            self.teacher_path)

    def __post_init__(self) -> None:
        if isinstance(self.teacher_path, (list, tuple)):  # one file: a plain string
            paths = [str(p) for p in self.teacher_path]
            object.__setattr__(self, "teacher_path", paths[0] if len(paths) == 1 else paths)
        object.__setattr__(self, "unlabeled", tuple(str(p) for p in self.unlabeled or ()))
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise EdgekdError(f"--{f.name.replace('_', '-')} must be a finite number, "
                                  f"got {value}")
        if not 0 <= self.seed < 2**31:
            raise EdgekdError(f"seed must be in [0, 2**31), got {self.seed}")
        if not self.temperature > 0:
            raise EdgekdError(f"temperature must be > 0, got {self.temperature}")
        if self.teacher_fine_tune not in FINE_TUNE:
            raise EdgekdError(f"teacher fine-tune must be one of {', '.join(FINE_TUNE)}, got "
                              f"{self.teacher_fine_tune!r}")
        if not self.teacher_fine_tune_lr > 0 or not 0 <= self.teacher_size <= 1024:
            raise EdgekdError(f"teacher fine-tune lr must be > 0 and teacher size in [0, 1024] "
                              f"px, got {self.teacher_fine_tune_lr} and {self.teacher_size}")
        if self.loss not in LOSSES:
            raise EdgekdError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise EdgekdError(f"alpha must be in [0, 1], got {self.alpha}")
        for name in ("teacher_epochs", "epochs"):
            if getattr(self, name) < 0:
                raise EdgekdError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.epochs < 1 and not self.student_path:
            raise EdgekdError(f"epochs must be >= 1, got {self.epochs} (0 only with --student: "
                              "keep the supplied student, e.g. to start QAT from it)")
        if self.epochs == 0 and (self.scratch or self.prune_sparsity):
            raise EdgekdError("epochs 0 keeps the supplied student untrained, so there is no "
                              "scratch baseline or pruned student to train: add --no-scratch "
                              "and drop --prune-sparsity")
        if self.batch_size < 1:
            raise EdgekdError(f"batch size must be >= 1, got {self.batch_size}")
        if self.small_data_batch_size < 0 or self.student_batch_size < 0:
            raise EdgekdError(f"small-data and student batch sizes must be >= 0 (0: the batch "
                              f"size), got {self.small_data_batch_size}, "
                              f"{self.student_batch_size}")
        if self.min_steps < 0 or self.teacher_min_steps < 0:
            raise EdgekdError(f"min steps must be >= 0, got {self.min_steps} (students), "
                              f"{self.teacher_min_steps} (teacher)")
        if not self.learning_rate > 0:
            raise EdgekdError(f"learning rate must be > 0, got {self.learning_rate}")
        if self.train_subset is not None and self.train_subset < 10:
            raise EdgekdError(f"train subset must be >= 10 images, got {self.train_subset}")
        if not 0.0 < self.val_split < 1.0:
            raise EdgekdError(f"val split must be in (0, 1), got {self.val_split}")
        if self.calib_size < 1:
            raise EdgekdError(f"calib size must be >= 1, got {self.calib_size}")
        if self.qat_learning_rate is not None and not self.qat_learning_rate > 0:
            raise EdgekdError(f"QAT learning rate must be > 0, got {self.qat_learning_rate}")
        if self.qat_epochs < 0:
            raise EdgekdError(f"QAT epochs must be >= 0, got {self.qat_epochs}")
        if self.prune_sparsity is not None and not 0.0 < self.prune_sparsity < 1.0:
            raise EdgekdError(f"prune sparsity must be in (0, 1), got {self.prune_sparsity}")
        if self.optimizer not in ("adam", "sgd"):
            raise EdgekdError(f"optimizer must be adam or sgd, got {self.optimizer!r}")
        if self.schedule not in ("constant", "onecycle"):
            raise EdgekdError(f"schedule must be constant or onecycle, got {self.schedule!r}")
        if self.warmup_epochs < 0 or self.weight_decay < 0 or self.teacher_cache_views < 0:
            raise EdgekdError("warmup epochs, weight decay and teacher cache views must be >= 0, "
                              f"got {self.warmup_epochs}, {self.weight_decay}, "
                              f"{self.teacher_cache_views}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise EdgekdError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.mixup < 0:
            raise EdgekdError(f"mixup must be >= 0 (the Beta concentration; 0: off), "
                              f"got {self.mixup}")
        self._check_pseudo_labels()
        if self.teacher_cache_mix < 0:
            raise EdgekdError(f"teacher cache mix must be >= 0 (blended copies per image), "
                              f"got {self.teacher_cache_mix}")
        if self.class_sampling not in SAMPLING:
            raise EdgekdError(f"class sampling must be {', '.join(SAMPLING)}, "
                              f"got {self.class_sampling!r}")
        if self.class_sampling != "uniform" and not self.teacher_cache_views:
            raise EdgekdError("class sampling draws from the cached views: add "
                              "--teacher-cache-views N (N >= 1)")
        if self.teacher_cache_mix and not self.teacher_cache_views:
            raise EdgekdError("teacher cache mix needs cached views: add "
                              "--teacher-cache-views N (N >= 1)")
        if self.teacher_cache_mirror and not self.teacher_cache_views:
            raise EdgekdError("teacher cache mirror needs cached views: add "
                              "--teacher-cache-views N (N >= 1)")
        if self.strategy not in ("default", "mirrored", "multiworker"):
            raise EdgekdError(f"strategy must be default, mirrored or multiworker, "
                              f"got {self.strategy!r}")
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            raise EdgekdError(f"image size must be in [8, 1024], got {self.image_size}")
        if self.student_macs is not None and not (math.isfinite(self.student_macs)
                                                  and self.student_macs >= 1e5):
            raise EdgekdError(f"--student-macs must be a number of multiply-accumulates >= 1e5 "
                              f"(e.g. 10e6), got {self.student_macs}")
        if self.student_weights is not None and students.parse(self.student_arch) is None:
            raise EdgekdError(f"--student-weights needs a pretrained --student-arch "
                              f"({students.FAMILY}, {students.FAMILY}_x0.25, ...), got "
                              f"{self.student_arch!r}")
        if self.student_macs is not None and self.student_path:
            raise EdgekdError("--student-macs picks a student; it cannot size a supplied "
                              "--student model")
        budget.check_request(self.student_ms, self.latency_from, self.latency_format,
                             self.latency_threads)
        if self.latency_target is not None and self.student_ms is None:
            raise EdgekdError("--latency-target chooses the machine for --student-ms: pass both")
        if self.student_ms is not None and (self.student_macs is not None or self.student_path):
            raise EdgekdError("--student-ms picks a student: pass it or --student-macs / "
                              "--student, not both")
        if self.resize not in RESIZE_POLICIES:
            raise EdgekdError(f"resize must be one of {', '.join(RESIZE_POLICIES)}, "
                              f"got {self.resize!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "DistillConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# The tutorial exactly: Adam(1e-3), batch 32, 5 epochs, alpha 0.1, T 10.
SEED = DistillConfig(preset="seed")
# The best recipe (docs/results/default.md; how it was found: docs/history.md):
# a batch-norm residual student within the tutorial student's params and MACs,
# a plain full-resolution teacher in airbench's shape (stronger and faster than
# a wide residual one), crop+flip augmentation, SGD with a one-cycle schedule,
# and cached teacher logits. Weight decay 5e-3 decoupled equals the usual 5e-4
# L2 under momentum 0.9 (which multiplies it by 10).
# 40 student epochs: more gave no gain beyond the spread between teachers.
# Mirrored cache: the student learns from the teacher's logits averaged over
# each view and its mirror (flip test-time augmentation makes the teacher about
# one point better), for a few more teacher passes.
# 10 views instead of 5: a small gain (0.1 to 0.3 points, near the seed noise)
# for a few minutes of teacher passes.
# Label smoothing and mixup stay off: neither helped the student in the
# ablation, and a smoothed teacher's full-length student scored lower.
# At least 300 teacher steps: 18 epochs of 186 labeled photos are 36 steps, and
# the fine-tuned MobileNet teacher scored 33.5 % after them, 94.2 % after 300
# (Sign Language Digits at 64 px, docs/history.md); from about 2,100 images
# on, 18 epochs are more than 300 steps and nothing changes.
# On a small data set, at least 12,800 student steps in batches of 32: as many
# images seen as 3,200 steps of 128 (40 epochs of 10,240 images), in 4x the
# updates. 40 epochs of 500 images are 160 steps, and 1,600 steps raised that
# student from 32.0 to 46.8 % (docs/history.md); on 2,945 photos the same
# images seen in batches of 128, 64, 32 and 16 gave 61.5, 66.4, 68.9 and
# 69.9 % (float) in 4.2, 4.1, 4.9 and 5.5 minutes (photo_levers.md). 32: most
# of the gain, at a per-step overhead that slower machines pay more of.
DEFAULT = replace(
    SEED, preset="default", teacher_arch="edge_pool", student_arch="edge_res",
    teacher_epochs=18, teacher_min_steps=300, epochs=40, scratch=False, batch_size=128, learning_rate=0.1,
    optimizer="sgd", schedule="onecycle", warmup_epochs=1.0, weight_decay=5e-3,
    augment=True, temperature=4.0, alpha=0.1, teacher_cache_views=10,
    teacher_cache_mirror=True, jit_compile=True, min_steps=12800, small_data_batch_size=32,
    pseudo_label_default=PSEUDO_LABEL_THRESHOLD)

PRESETS: dict[str, DistillConfig] = {
    "seed": SEED,
    # Smoke runs: a few minutes on 2 CPU cores, same models, fewer images/epochs.
    # On photos at 32 px at most and 10,000 + 2,000 of them decoded: a few minutes
    # and under 2 GB on any folder (docs/results/quick_photos.md).
    "quick": replace(SEED, preset="quick", teacher_epochs=2, epochs=2, train_subset=10000,
                     max_image_side=32, max_test_images=2000),
    "default": DEFAULT,
    # For targets where int8 runs no faster than fp32 (x86 with AVX2 only), so
    # latency follows MACs: the default recipe with edge_res_mid (7.98M MACs
    # against 9.83M), trained 55 epochs instead of 40 to make up the accuracy
    # (85.2 to 85.7 % int8 from three default teachers; docs/results/latency.md).
    "latency": replace(DEFAULT, preset="latency", student_arch="edge_res_mid", epochs=55),
}


STUDENT_BOUND = 10e6  # MACs: the CIFAR student's ~9.8M, the default cost of any student


def resolve(preset: str, **overrides) -> DistillConfig:
    """Preset + non-None overrides -> validated config. Epochs given are exact:
    they turn the preset's min_steps (teacher_min_steps) off unless given too; a
    batch size given is every phase's, small data sets included."""
    if preset not in PRESETS:
        raise EdgekdError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "epochs" in given:
        given.setdefault("min_steps", 0)
    if "batch_size" in given:
        given.setdefault("small_data_batch_size", 0)
    if "teacher_epochs" in given:
        given.setdefault("teacher_min_steps", 0)
    pseudo = {k: given.pop(k) for k in ("pseudo_label_threshold", "pseudo_label_rounds")
              if k in given}  # checked together, once the preset's default applies
    cfg = replace(PRESETS[preset], **given)
    threshold = pseudo.get("pseudo_label_threshold")
    if threshold is None and cfg.unlabeled and not cfg.teachers:
        threshold = cfg.pseudo_label_default
    return replace(cfg, **{**pseudo, "pseudo_label_threshold": threshold or None})  # 0: off
