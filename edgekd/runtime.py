"""Runtime adapters: one interface over ai-edge-litert and onnxruntime.

export uses them for parity, bench for latency and accuracy. Inputs are the
float32 preprocessed images; an adapter quantizes/dequantizes itself when the
model has int8 I/O, so callers never special-case a format.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgekd.errors import EdgekdError
from edgekd.quiet import native_stderr_muted


def _quantize(x: np.ndarray, q: dict | None, dtype: np.dtype) -> np.ndarray:
    if q is None or np.issubdtype(dtype, np.floating):
        return x.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / q["scale"] + q["zero_point"]), info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, q: dict | None) -> np.ndarray:
    if q is None or np.issubdtype(y.dtype, np.floating):
        return y.astype(np.float32, copy=False)
    return ((y.astype(np.float32) - q["zero_point"]) * q["scale"]).astype(np.float32)


class Runner:
    """Base: `predict(x)` for batches; `prepare(x)` + `invoke()` + `output()`
    for latency loops where only the inference itself is timed."""

    runtime = ""

    def __init__(self, path: str | Path, threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise EdgekdError(f"model file {self.path} not found")
        self.threads = threads or os.cpu_count() or 1
        self.inputs: list[dict] = []
        self.outputs: list[dict] = []

    def predict(self, x: np.ndarray, batch_size: int = 100) -> np.ndarray:
        parts = [self._run_batch(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return np.concatenate(parts, axis=0)

    def _run_batch(self, x: np.ndarray) -> np.ndarray:
        self.prepare(x)
        self.invoke()
        return self.output()

    def prepare(self, x: np.ndarray) -> None:
        """Set the input batch (float32, preprocessed); not timed."""
        raise NotImplementedError

    def invoke(self) -> None:
        """Run the model once on the prepared input: what latency loops time."""
        raise NotImplementedError

    def output(self) -> np.ndarray:
        """The last invoke's logits, float32."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"runtime": self.runtime, "threads": self.threads}


class TFLiteRunner(Runner):
    runtime = "tflite"

    def __init__(self, path, threads=None):
        super().__init__(path, threads)
        from ai_edge_litert.interpreter import Interpreter
        try:
            with native_stderr_muted():  # LiteRT's "Created ... XNNPACK delegate" line
                self.interp = Interpreter(model_path=str(self.path), num_threads=self.threads)
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise EdgekdError(f"cannot load TFLite model {self.path}: {exc}") from None
        self._in = self.interp.get_input_details()[0]
        self._out = self.interp.get_output_details()[0]
        self._batch = int(self._in["shape"][0])
        self.inputs = [self._tensor(d) for d in self.interp.get_input_details()]
        self.outputs = [self._tensor(d) for d in self.interp.get_output_details()]

    @staticmethod
    def _tensor(d: dict) -> dict:
        scale, zp = d["quantization"]
        q = {"scale": float(scale), "zero_point": int(zp)} if scale else None
        return {"name": d["name"], "shape": [int(s) for s in d["shape"]],
                "dtype": np.dtype(d["dtype"]).name, "quantization": q}

    def prepare(self, x: np.ndarray) -> None:
        if x.shape[0] != self._batch:
            self.interp.resize_tensor_input(self._in["index"], list(x.shape))
            self.interp.allocate_tensors()
            self._in = self.interp.get_input_details()[0]
            self._out = self.interp.get_output_details()[0]
            self._batch = x.shape[0]
        self.interp.set_tensor(self._in["index"],
                               _quantize(x, self.inputs[0]["quantization"], self._in["dtype"]))

    def invoke(self) -> None:
        self.interp.invoke()

    def output(self) -> np.ndarray:
        return _dequantize(self.interp.get_tensor(self._out["index"]),
                           self.outputs[0]["quantization"])


class ONNXRunner(Runner):
    runtime = "onnx"

    def __init__(self, path, threads=None, providers: list[str] | None = None):
        super().__init__(path, threads)
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.sess = ort.InferenceSession(str(self.path), opts,
                                             providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph types
            raise EdgekdError(f"cannot load ONNX model {self.path}: {exc}") from None
        self.inputs = [self._tensor(t) for t in self.sess.get_inputs()]
        self.outputs = [self._tensor(t) for t in self.sess.get_outputs()]
        self._name = self.inputs[0]["name"]
        self._feed: dict = {}
        self._result: np.ndarray | None = None

    @staticmethod
    def _tensor(t) -> dict:
        dtype = {"tensor(float)": "float32", "tensor(int8)": "int8",
                 "tensor(uint8)": "uint8", "tensor(float16)": "float16"}.get(t.type, t.type)
        shape = [s if isinstance(s, int) else None for s in t.shape]
        return {"name": t.name, "shape": shape, "dtype": dtype, "quantization": None}

    def prepare(self, x: np.ndarray) -> None:
        self._feed = {self._name: x.astype(np.float32, copy=False)}

    def invoke(self) -> None:
        self._result = self.sess.run(None, self._feed)[0]

    def output(self) -> np.ndarray:
        return np.asarray(self._result, dtype=np.float32)

    def describe(self) -> dict:
        return {**super().describe(), "providers": self.sess.get_providers()}


def open_runner(path: str | Path, runtime: str, threads: int | None = None,
                providers: list[str] | None = None) -> Runner:
    """The adapter for a manifest artifact's `runtime` field."""
    if runtime == "tflite":
        return TFLiteRunner(path, threads)
    if runtime == "onnx":
        return ONNXRunner(path, threads, providers)
    raise EdgekdError(f"unknown runtime {runtime!r} (expected tflite or onnx)")
