"""The Hinton et al. (2015) distillation loss as its own object.

kl (default):  alpha * CE(y, s) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))
mse:           alpha * CE(y, s) + (1 - alpha) * 1/2 mean_i((s_i - mean s) - (t_i - mean t))^2

`mse` is the paper's high-temperature limit ("matching logits"): as T grows,
T^2 * KL tends to half the mean squared difference of the zero-meaned logits
(softmax ignores a logit vector's mean, so only the centred logits are matched).

Two variants for the recipe search (not defaults; docs/results/ will say
whether either pays):
kl-std:        kl on logits standardized per example, (z - mean z) / std z (Sun et
               al. 2024): the student matches the teacher's logit shape, not its scale.
dkd:           decoupled KD (Zhao et al. 2022), TCKD + 8 * NCKD, each T^2-scaled: the
               KL of the binary target/non-target split, and the KL among the
               non-target classes alone (8: the paper's CIFAR weight).

It returns per-example losses; the caller averages them over the global batch
(tf.nn.compute_average_loss), which is what keeps results independent of the
number of replicas under tf.distribute.
"""

from __future__ import annotations

from distill.config import LOSSES
from distill.tfenv import keras, tf
from edgekd.errors import EdgekdError


def labeled(y_true):
    """1.0 for a labeled example, 0.0 for an unlabeled one (class index -1, or
    an all-zero target row: distill.unlabeled), per example."""
    y_true = tf.convert_to_tensor(y_true)
    if y_true.shape.rank == 2:
        return tf.cast(tf.reduce_sum(y_true, axis=-1) > 0, tf.float32)
    return tf.cast(y_true >= 0, tf.float32)


def hard_label_ce(y_true, logits):
    """Cross-entropy against class indices (rank 1) or soft targets (rank 2);
    0 for unlabeled examples (index -1, all-zero targets): they have no hard
    label, only the teacher's."""
    y_true = tf.convert_to_tensor(y_true)
    if y_true.shape.rank == 2:  # an all-zero row's cross-entropy is 0 as it is
        return keras.losses.categorical_crossentropy(y_true, logits, from_logits=True)
    known = labeled(y_true)
    ce = keras.losses.sparse_categorical_crossentropy(tf.maximum(y_true, 0), logits,
                                                      from_logits=True)
    return ce * tf.cast(known, ce.dtype)


DKD_NCKD_WEIGHT = 8.0
_EPS = 1e-7


def _centred(z):
    return z - tf.reduce_mean(z, axis=-1, keepdims=True)


def _standardized(z):
    return _centred(z) / (tf.math.reduce_std(z, axis=-1, keepdims=True) + _EPS)


def _kl(p, log_p, log_q):
    return tf.reduce_sum(p * (log_p - log_q), axis=-1)


def _dkd(y_true, teacher_logits, student_logits, t: float):
    """TCKD + DKD_NCKD_WEIGHT * NCKD per example; soft targets count by their
    largest class."""
    y_true = tf.convert_to_tensor(y_true)
    target = tf.argmax(y_true, axis=-1) if y_true.shape.rank == 2 else tf.cast(y_true, tf.int64)
    # an unlabeled example's target class is the teacher's
    target = tf.where(labeled(y_true) > 0, target, tf.argmax(teacher_logits, axis=-1))
    gt = tf.one_hot(target, tf.shape(student_logits)[-1], dtype=student_logits.dtype)
    pt, ps = tf.nn.softmax(teacher_logits / t, axis=-1), tf.nn.softmax(student_logits / t, axis=-1)

    def binary(p):  # (p of the target class, p of the rest), clipped away from 0
        on = tf.reduce_sum(p * gt, axis=-1, keepdims=True)
        return tf.clip_by_value(tf.concat([on, 1.0 - on], axis=-1), _EPS, 1.0)
    bt, bs = binary(pt), binary(ps)
    tckd = _kl(bt, tf.math.log(bt), tf.math.log(bs))
    # among the other classes only: the target's logit pushed far below the rest
    off_t, off_s = teacher_logits / t - 1000.0 * gt, student_logits / t - 1000.0 * gt
    nckd = _kl(tf.nn.softmax(off_t, axis=-1), tf.nn.log_softmax(off_t, axis=-1),
               tf.nn.log_softmax(off_s, axis=-1))
    return (tckd + DKD_NCKD_WEIGHT * nckd) * (t * t)


class DistillationLoss:
    def __init__(self, alpha: float = 0.1, temperature: float = 10.0, kind: str = "kl"):
        if kind not in LOSSES:
            raise EdgekdError(f"unknown distillation loss {kind!r}: use {', '.join(LOSSES)}")
        if not 0.0 <= alpha <= 1.0:
            raise EdgekdError(f"alpha must be in [0, 1], got {alpha}: it weights the "
                              "hard-label loss against the teacher's soft targets")
        if not temperature > 0:
            raise EdgekdError(f"temperature must be > 0, got {temperature}")
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.kind = kind

    def parts(self, y_true, teacher_logits, student_logits):
        """(hard-label CE, soft loss), each per example: the soft loss is T^2-scaled
        KL, or the logit-matching MSE. `y_true`: class indices, or per-class target
        probabilities (label smoothing, mixup)."""
        t = self.temperature
        ce = hard_label_ce(y_true, student_logits)
        teacher_logits = tf.cast(teacher_logits, student_logits.dtype)
        if self.kind == "mse":
            diff = _centred(student_logits) - _centred(teacher_logits)
            return ce, 0.5 * tf.reduce_mean(tf.square(diff), axis=-1)
        if self.kind == "dkd":
            return ce, _dkd(y_true, teacher_logits, student_logits, t)
        if self.kind == "kl-std":
            teacher_logits, student_logits = _standardized(teacher_logits), _standardized(student_logits)
        # keras' kl_divergence clips both to [1e-7, 1], exactly like the tutorial's KLDivergence
        kl = keras.losses.kl_divergence(tf.nn.softmax(teacher_logits / t, axis=-1),
                                        tf.nn.softmax(student_logits / t, axis=-1))
        return ce, kl * (t * t)

    def __call__(self, y_true, teacher_logits, student_logits):
        ce, kl = self.parts(y_true, teacher_logits, student_logits)
        return self.alpha * ce + (1.0 - self.alpha) * kl

    def get_config(self) -> dict:
        return {"alpha": self.alpha, "temperature": self.temperature, "kind": self.kind}
