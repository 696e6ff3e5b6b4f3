"""tf.distribute for the distill stage: which strategy, who is the chief, and
where a worker may write.

- default: one device, no distribution.
- mirrored: MirroredStrategy, synchronous data parallelism over the GPUs of one
  machine (or its CPU when there are none).
- multiworker: MultiWorkerMirroredStrategy over the machines named in
  TF_CONFIG (`python -m distill.launch` writes one per local worker).

`batch_size` is always the GLOBAL batch: tf.data batches with it and the
strategy splits each batch across replicas, and the loss is averaged over the
global batch (distill/loss.py), so a run gives the same result on 1 or N
replicas up to float summation order (and batch-norm statistics, which are
per replica). To keep the per-replica batch when adding workers, raise
--batch-size and --learning-rate together (the linear scaling rule).

Only the chief writes the artifacts folder. Other workers take part in every
collective (fit, predict, checkpoint saves) and write to temporary paths that
are deleted (TensorFlow's own rule: every worker must call save()).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from distill.launch import tf_config
from distill.tfenv import tf
from edgekd.atomic import atomic_path
from edgekd.errors import EdgekdError

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy object; must be created before any other TensorFlow op."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        tf_config()
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    raise EdgekdError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True where artifacts may be written: single-process runs, and in a
    cluster the `chief` task or, without one, worker 0 (TF's convention)."""
    if not strategy.extended._in_multi_worker_mode():  # noqa: SLF001 (TF has no public API)
        return True
    return bool(strategy.extended.should_checkpoint)


def worker_index(strategy: tf.distribute.Strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(resolver.task_id) if resolver is not None and resolver.task_id is not None else 0


def num_workers(strategy: tf.distribute.Strategy) -> int:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not strategy.extended._in_multi_worker_mode():  # noqa: SLF001
        return 1
    return len(resolver.cluster_spec().as_dict().get("worker", [])) or 1


def shard_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    """In-memory datasets have no files to shard: each worker keeps its part
    of every global batch (AutoShardPolicy.DATA), so all see the same order."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def save_model(model, path: Path, chief: bool, save) -> None:
    """`save(model, path)` on the chief; elsewhere into a temporary folder that
    is then deleted, so every worker joins the save as TF requires."""
    if chief:
        with atomic_path(path) as tmp:  # a kill mid-save leaves no half-written model
            save(model, tmp)
        return
    tmp = Path(tempfile.mkdtemp(prefix="edgekd-worker-"))
    try:
        save(model, tmp / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
