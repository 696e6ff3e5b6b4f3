"""Pseudo-labels (`--pseudo-label-threshold P`): the teacher also learns from
the unlabeled photos it is sure of.

A teacher trained on a few hundred labeled photos caps its student: the
student learns the teacher's outputs, mistakes included. Self-training (Lee
2013; Xie et al. 2020, Noisy Student) lifts the teacher with the unlabeled
photos themselves: the teacher's class for each photo it gives at least P,
used as that photo's label. Here the teacher trained on the labeled photos
is fine-tuned further on them plus the confident unlabeled ones, with the
recipe of its last stage (the same optimizer, rate and schedule) for the same
number of optimizer steps (at least one pass over the joined photos), under
the preset's augmentation: the augmented view must agree with a label the
teacher gave to the clean photo, the "noise" that makes self-training more
than copying. The students then learn from that teacher. The unlabeled photos
below P teach the students only, through the teacher's outputs, as without P.
With `--pseudo-label-rounds N` the teacher so fine-tuned labels the photos
again and is fine-tuned again, N times (Noisy Student's iterations): a better
teacher is sure of more photos and right about more of them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from distill import store
from distill.recipe import steps_per_epoch
from distill.unlabeled import CHUNK
from edgekd.stats import softmax

STAGE = "teacher_labeled"  # the teacher on the labeled photos only, before pseudo-labels
ROUND = "teacher_round"  # the teacher after round r of several (--pseudo-label-rounds)


def round_stage(r: int) -> str:
    return f"{ROUND}{r}"


@dataclass(frozen=True)
class PseudoLabels:
    rows: np.ndarray  # the unlabeled images kept (their rows)
    labels: np.ndarray  # the teacher's class for each
    threshold: float
    of: int  # unlabeled images considered
    accuracy_before: float  # the teacher on the test images, before fine-tuning on them

    def record(self, num_classes: int) -> dict:
        per_class = np.bincount(self.labels, minlength=num_classes)
        return {"threshold": self.threshold, "used": int(len(self.rows)), "of": self.of,
                "per_class": [int(n) for n in per_class],
                "teacher_accuracy_before": round(self.accuracy_before, 4)}


def confident(teacher, x, threshold: float, accuracy_before: float) -> PseudoLabels:
    """The rows of `x` (uint8 images, an array or store) whose top softmax
    probability under `teacher` is at least `threshold`, with that class."""
    rows, labels = [], []
    for a in range(0, len(x), CHUNK):
        p = softmax(teacher.logits(store.take(x, np.arange(a, min(len(x), a + CHUNK)))))
        keep = np.flatnonzero(p.max(axis=-1) >= threshold)
        rows.append(a + keep)
        labels.append(p.argmax(axis=-1)[keep])
    return PseudoLabels(np.concatenate(rows).astype(np.int64),
                        np.concatenate(labels).astype(np.int64), threshold, len(x),
                        accuracy_before)


def record(rounds: list[PseudoLabels], num_classes: int) -> dict:
    """The run's record: the last round's photos (what the final teacher
    learnt), the teacher's accuracy before any pseudo-label, and each round's."""
    return {**rounds[-1].record(num_classes),
            "teacher_accuracy_before": round(rounds[0].accuracy_before, 4),
            "rounds": [r.record(num_classes) for r in rounds]}


def joined(x_labeled, y_labeled, x_unlabeled, pseudo: PseudoLabels, folder,
           name: str = "teacher_images.u8"):
    """(images, labels): the labeled images, then the confident unlabeled ones
    with the teacher's classes."""
    x = store.stacked([x_labeled, store.subset(x_unlabeled, pseudo.rows)], folder, name,
                      CHUNK)
    return x, np.concatenate([np.asarray(y_labeled, np.int64), pseudo.labels])


def phase(last, model, data, n_labeled: int, n_joined: int, batch_size: int, role: str):
    """The teacher's last stage `last` again, from its trained `model`, on
    `data`: as many optimizer steps as `last` took, at least one epoch."""
    epochs = max(1, round(last.epochs * steps_per_epoch(n_labeled, batch_size)
                          / steps_per_epoch(n_joined, batch_size)))
    return replace(last, role=role, make=lambda: model, epochs=epochs, data=data,
                   save_as=None, seed_offset=last.seed_offset + 1 + _round(role))


def _round(role: str) -> int:
    """Round r's seed offset: each round shuffles and augments afresh."""
    return int(role[len(ROUND):]) if role.startswith(ROUND) else 0
