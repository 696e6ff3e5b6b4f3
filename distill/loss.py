"""The Hinton et al. (2015) distillation loss as its own object.

kl (default):  alpha * CE(y, s) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))
mse:           alpha * CE(y, s) + (1 - alpha) * 1/2 mean_i((s_i - mean s) - (t_i - mean t))^2

`mse` is the paper's high-temperature limit ("matching logits"): as T grows,
T^2 * KL tends to half the mean squared difference of the zero-meaned logits
(softmax ignores a logit vector's mean, so only the centred logits are matched).

It returns per-example losses; the caller averages them over the global batch
(tf.nn.compute_average_loss), which is what keeps results independent of the
number of replicas under tf.distribute.
"""

from __future__ import annotations

from distill.tfenv import keras, tf
from edgekd.errors import EdgekdError


def hard_label_ce(y_true, logits):
    """Cross-entropy against class indices (rank 1) or soft targets (rank 2)."""
    y_true = tf.convert_to_tensor(y_true)
    if y_true.shape.rank == 2:
        return keras.losses.categorical_crossentropy(y_true, logits, from_logits=True)
    return keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)


LOSSES = ("kl", "mse")


class DistillationLoss:
    def __init__(self, alpha: float = 0.1, temperature: float = 10.0, kind: str = "kl"):
        if kind not in LOSSES:
            raise EdgekdError(f"unknown distillation loss {kind!r}: use {' or '.join(LOSSES)}")
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
        if self.kind == "mse":
            def centred(z):
                return z - tf.reduce_mean(z, axis=-1, keepdims=True)
            diff = centred(student_logits) - centred(tf.cast(teacher_logits, student_logits.dtype))
            return ce, 0.5 * tf.reduce_mean(tf.square(diff), axis=-1)
        # keras' kl_divergence clips both to [1e-7, 1], exactly like the tutorial's KLDivergence
        kl = keras.losses.kl_divergence(tf.nn.softmax(teacher_logits / t, axis=-1),
                                        tf.nn.softmax(student_logits / t, axis=-1))
        return ce, kl * (t * t)

    def __call__(self, y_true, teacher_logits, student_logits):
        ce, kl = self.parts(y_true, teacher_logits, student_logits)
        return self.alpha * ce + (1.0 - self.alpha) * kl

    def get_config(self) -> dict:
        return {"alpha": self.alpha, "temperature": self.temperature, "kind": self.kind}
