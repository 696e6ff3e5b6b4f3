"""The Keras models of an artifacts folder as bench rows (`bench --keras`).

bench itself imports no TensorFlow and nothing of distill: for these rows its
worker process loads this module by name (bench.run.KERAS_RUNNER), only where
TensorFlow is installed.
"""

from __future__ import annotations

import numpy as np

from distill.optimize import load
from distill.tfenv import tf
from edgekd.runtime import Runner


class KerasRunner(Runner):
    """The Keras source model itself, for bench's optional labelled extra row."""

    runtime = "keras"

    def __init__(self, path, threads=None, trust_code: bool = False):
        super().__init__(path, threads)
        tf.config.threading.set_intra_op_parallelism_threads(self.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        self.model = load(self.path, self.path.stem, trust_code)
        self.inputs = [{"name": "input", "shape": [None, *self.model.input_shape[1:]],
                        "dtype": "float32", "quantization": None}]
        self.outputs = [{"name": "logits", "shape": list(self.model.output_shape),
                         "dtype": "float32", "quantization": None}]
        self._x = None
        self._y = None

    def prepare(self, x: np.ndarray) -> None:
        self._x = x.astype(np.float32, copy=False)

    def invoke(self) -> None:
        # __call__, not predict(): predict's per-call set-up would dominate batch-1 latency
        self._y = self.model(self._x, training=False)

    def output(self) -> np.ndarray:
        return np.asarray(self._y, dtype=np.float32)


def open_runner(path, runtime: str, threads: int | None = None, providers=None,
                trust_code: bool = False) -> KerasRunner:
    """bench.worker's runner factory for runtime "keras" (providers: unused)."""
    return KerasRunner(path, threads, trust_code)
