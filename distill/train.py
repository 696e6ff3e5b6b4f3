"""Training phases: teacher (plain CE), distilled student, scratch student.

Each phase is a `fit` with BackupAndRestore in the run's work folder and an
epoch log, so a killed run started again with the same command continues from
the last completed epoch; a finished phase saves its model and is skipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from distill.loss import DistillationLoss, labeled
from distill.recipe import augment_batch
from distill.store import ImageStore
from distill.tfenv import keras, tf
from edgekd.errors import first_line
from edgekd.preprocess import Preprocessing


def make_dataset(x: np.ndarray, y: np.ndarray, pre: Preprocessing, batch_size: int,
                 shuffle: bool, seed: int, augment: bool = False) -> tf.data.Dataset:
    """uint8 arrays -> batched, scaled, prefetched tf.data pipeline; `augment`
    adds random padded crops (recipe.crop_pad) and horizontal flips, per image."""
    scale, offset = np.float32(pre.scale), np.float32(pre.offset)
    if isinstance(x, ImageStore):
        ds = _indexed(x, y, batch_size, shuffle, seed)
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)

    def prepare(a, b):
        a = tf.cast(a, tf.float32) * scale + offset
        return (augment_batch(a) if augment else a), b
    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _indexed(x: ImageStore, y: np.ndarray, batch_size: int, shuffle: bool,
             seed: int) -> tf.data.Dataset:
    """Batches of (images, labels) read from a file by index: only the indices
    are shuffled in memory (distill.store)."""
    y = np.asarray(y)

    def read(idx):
        return x[idx], y[idx]

    def lookup(idx):
        images, labels = tf.numpy_function(read, [idx], [tf.uint8, tf.as_dtype(y.dtype)],
                                           stateful=False)
        images.set_shape([None, *x.shape[1:]])
        labels.set_shape([None, *y.shape[1:]])
        return images, labels
    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(lookup, num_parallel_calls=tf.data.AUTOTUNE)


def _labels(y):
    """Class indices of sparse or soft (smoothed, mixed) targets."""
    return tf.argmax(y, axis=-1) if y.shape.rank == 2 else y


class Distiller(keras.Model):
    """Trains `student` against a frozen `teacher` with a DistillationLoss."""

    def __init__(self, student: keras.Model, teacher: keras.Model | None,
                 loss: DistillationLoss):
        """`teacher` None: its logits come cached with every batch (distill.recipe)."""
        super().__init__(name="distiller")
        if teacher is not None:
            teacher.trainable = False  # frozen here, once, not by convention
        self.student, self.teacher, self.kd_loss = student, teacher, loss
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.ce_tracker = keras.metrics.Mean(name="student_loss")
        self.kl_tracker = keras.metrics.Mean(name="distillation_loss")
        self.acc = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.ce_tracker, self.kl_tracker, self.acc]

    def call(self, x, training=False):
        return self.student(x, training=training)

    def train_step(self, data):
        if len(data) == 3:  # teacher logits cached with the (exactly repeated) inputs
            x, y, teacher_logits = data
        else:
            x, y = data
            teacher_logits = self.teacher(x, training=False)
        with tf.GradientTape() as tape:
            student_logits = self.student(x, training=True)
            ce, kl = self.kd_loss.parts(y, teacher_logits, student_logits)
            per_example = self.kd_loss.alpha * ce + (1.0 - self.kd_loss.alpha) * kl
            loss = tf.nn.compute_average_loss(per_example)
            if self.student.losses:  # weight decay etc.
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.student.losses))
        grads = tape.gradient(loss, self.student.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.student.trainable_variables))
        self.loss_tracker.update_state(per_example)
        self.ce_tracker.update_state(ce)
        self.kl_tracker.update_state(kl)
        known = labeled(y)  # unlabeled examples have no accuracy to count
        self.acc.update_state(tf.maximum(_labels(y), 0), student_logits, sample_weight=known)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data[:2]
        self.acc.update_state(y, self.student(x, training=False))
        return {"accuracy": self.acc.result()}


class EpochLog(keras.callbacks.Callback):
    """Per-epoch seconds and metrics, persisted so they survive a resume."""

    def __init__(self, path: Path, write: bool = True):
        super().__init__()
        self.path, self.write = path, write
        self.epochs = json.loads(path.read_text()) if path.is_file() else []
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - self._t0, 3),
                 **{k: float(v) for k, v in (logs or {}).items()}}
        self.epochs = [e for e in self.epochs if e["epoch"] < epoch + 1] + [entry]
        if not self.write:  # not the chief: log only
            print(f"[distill] worker epoch {epoch + 1}: {entry}", flush=True)
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.epochs, indent=1))
        tmp.replace(self.path)


def run_phase(name: str, model: keras.Model, train_ds, epochs: int, work: Path,
              verbose: int = 1, callbacks: list | None = None, chief: bool = True,
              backup: str = "backup") -> list[dict]:
    """fit() with checkpoint-per-epoch resume; returns the epoch log. Under
    MultiWorkerMirroredStrategy every worker restores from the chief's backup
    (BackupAndRestore writes other workers' saves to deleted temp folders).
    `backup` names the checkpoint per way of training a phase: a checkpoint
    of another model layout would restore nothing, silently."""
    ckpt = work / "_checkpoints"
    if chief:
        ckpt.mkdir(parents=True, exist_ok=True)
    log = EpochLog(ckpt / f"{name}_epochs.json", write=chief)
    # One iterator for all epochs. Keras re-creates a finite dataset's iterator
    # each epoch, and destroying the old one (waiting on its tf.data threads)
    # stalled 10-50 s between many epochs of the default preset here (py-spy:
    # RootDataset::Iterator::~Iterator in fit's epoch loop, outside the epoch
    # times). repeat() reshuffles (and redraws cached views) on every pass.
    steps = int(train_ds.cardinality())
    per_epoch = {}
    if steps > 0:
        train_ds, per_epoch = train_ds.repeat(), {"steps_per_epoch": steps}
    if epochs > 0:
        print(f"[distill] {name}: {epochs} epoch(s)", flush=True)
        try:
            model.fit(train_ds, epochs=epochs, verbose=verbose, **per_epoch, callbacks=[
                keras.callbacks.BackupAndRestore(str(ckpt / f"{name}_{backup}")), log,
                *(callbacks or [])])
        except (tf.errors.DataLossError, tf.errors.NotFoundError) as exc:  # a cut-short checkpoint
            from distill.workdir import damaged
            raise damaged(work, f"{name}'s checkpoint ({first_line(exc, 200)})") from None
    return log.epochs


def compile_classifier(model: keras.Model, optimizer, jit_compile: bool = False,
                       soft_targets: bool = False) -> keras.Model:
    """Plain cross-entropy training; `optimizer` is a Keras optimizer or a
    learning rate for Adam (the tutorial's); `jit_compile`: XLA train steps;
    `soft_targets`: the labels come as per-class probabilities (recipe.soft_targets)."""
    if isinstance(optimizer, (int, float)):
        optimizer = keras.optimizers.Adam(optimizer)
    if soft_targets:
        loss = keras.losses.CategoricalCrossentropy(from_logits=True)
        metric = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss, metrics=[metric], jit_compile=jit_compile)
    return model


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray, pre: Preprocessing) -> float:
    logits = model.predict(make_dataset(x, y, pre, 256, False, 0).map(lambda a, b: a),
                           verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))
