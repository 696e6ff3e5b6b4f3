"""The Hinton et al. (2015) distillation loss as its own object.

loss = alpha * CE(y, student) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))

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


class DistillationLoss:
    def __init__(self, alpha: float = 0.1, temperature: float = 10.0):
        if not 0.0 <= alpha <= 1.0:
            raise EdgekdError(f"alpha must be in [0, 1], got {alpha}: it weights the "
                              "hard-label loss against the teacher's soft targets")
        if not temperature > 0:
            raise EdgekdError(f"temperature must be > 0, got {temperature}")
        self.alpha = float(alpha)
        self.temperature = float(temperature)

    def parts(self, y_true, teacher_logits, student_logits):
        """(hard-label CE, T^2-scaled soft KL), each per example. `y_true`: class
        indices, or per-class target probabilities (label smoothing, mixup)."""
        t = self.temperature
        ce = hard_label_ce(y_true, student_logits)
        # keras' kl_divergence clips both to [1e-7, 1], exactly like the tutorial's KLDivergence
        kl = keras.losses.kl_divergence(tf.nn.softmax(teacher_logits / t, axis=-1),
                                        tf.nn.softmax(student_logits / t, axis=-1))
        return ce, kl * (t * t)

    def __call__(self, y_true, teacher_logits, student_logits):
        ce, kl = self.parts(y_true, teacher_logits, student_logits)
        return self.alpha * ce + (1.0 - self.alpha) * kl

    def get_config(self) -> dict:
        return {"alpha": self.alpha, "temperature": self.temperature}
