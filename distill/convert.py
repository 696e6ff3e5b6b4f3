"""Converters, keyed by the names of edgekd.formats.FORMATS (one function
each, no index-based branching). Each writes one file and returns options
worth recording in the manifest."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from distill.tfenv import keras, tf
from edgekd.preprocess import Preprocessing
from edgekd.quiet import native_stderr_muted


class Inputs:
    """What a converter may need besides the model."""

    def __init__(self, pre: Preprocessing, calib: np.ndarray, int8_io: bool):
        self.pre, self.calib, self.int8_io = pre, calib, int8_io

    def representative(self):
        x = self.pre.apply(self.calib)
        for i in range(len(x)):
            yield [x[i:i + 1]]


def _tflite(model: keras.Model, configure: Callable) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    configure(converter)
    # The converter's notes are no use to a user: "Statistics for quantized inputs
    # were expected" (float I/O is asked for) and its C++ "fully_quantize: 0,
    # inference_type: 6, ..." lines; parity checks every file instead.
    with warnings.catch_warnings(), native_stderr_muted():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return converter.convert()


def tflite_fp32(model, path: Path, inp: Inputs) -> dict:
    path.write_bytes(_tflite(model, lambda c: None))
    return {}


def tflite_fp16(model, path: Path, inp: Inputs) -> dict:
    def cfg(c):
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.target_spec.supported_types = [tf.float16]
    path.write_bytes(_tflite(model, cfg))
    return {}


def tflite_dynamic(model, path: Path, inp: Inputs) -> dict:
    def cfg(c):
        c.optimizations = [tf.lite.Optimize.DEFAULT]
    path.write_bytes(_tflite(model, cfg))
    return {}


def tflite_int8(model, path: Path, inp: Inputs) -> dict:
    def cfg(c):
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = inp.representative
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if inp.int8_io:
            c.inference_input_type = tf.int8
            c.inference_output_type = tf.int8
    path.write_bytes(_tflite(model, cfg))
    return {"int8_io": inp.int8_io, "calibration_images": int(len(inp.calib))}


def onnx_fp32(model, path: Path, inp: Inputs) -> dict:
    import tf2onnx
    spec = (tf.TensorSpec((None, *inp.pre.input_shape), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(path))
    return {"opset": 17, "dynamic_batch": True}


class _CalibReader:
    """onnxruntime.quantization's CalibrationDataReader over calib.npz."""

    def __init__(self, x: np.ndarray, name: str):
        self._it = iter([{name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self._it, None)


def onnx_int8(model, path: Path, inp: Inputs) -> dict:
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static
    with tempfile.TemporaryDirectory() as tmp:
        fp32, prep = Path(tmp) / "fp32.onnx", Path(tmp) / "prep.onnx"
        onnx_fp32(model, fp32, inp)
        quant_pre_process(str(fp32), str(prep))
        # reduce_range (7-bit weights): x86 CPUs without VNNI compute int8 products with
        # VPMADDUBSW, whose int16 intermediate saturates on full-range weights; the same
        # file then gives different decisions on x86 and ARM (seen: 3 of 200 images).
        # With 7-bit weights every CPU computes the same exact integers.
        quantize_static(str(prep), str(path), _CalibReader(inp.pre.apply(inp.calib), "input"),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    return {"quant_format": "QDQ", "per_channel": True, "reduce_range": True,
            "calibration_images": int(len(inp.calib))}


def tflite_qat(model, path: Path, inp: Inputs) -> dict:
    def cfg(c):
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = inp.representative  # for any op QAT left unannotated
    path.write_bytes(_tflite(model, cfg))
    return {"qat": True}


def onnx_qat(model, path: Path, inp: Inputs) -> dict:
    """Through the QAT int8 TFLite: tf2onnx's direct conversion of the Keras
    fake-quant graph kept float weights and disagreed with the QAT model on
    18 % of CIFAR-10 images (seed student); from the TFLite file it gives int8
    QDQ weights that agree with it."""
    import tf2onnx
    with tempfile.TemporaryDirectory() as tmp:
        tfl = Path(tmp) / "qat.tflite"
        tflite_qat(model, tfl, inp)
        tf2onnx.convert.from_tflite(str(tfl), opset=17, output_path=str(path))
    return {"qat": True, "opset": 17, "via": "tflite_qat"}


CONVERTERS: dict[str, Callable] = {
    "tflite_fp32": tflite_fp32,
    "tflite_fp16": tflite_fp16,
    "tflite_dynamic": tflite_dynamic,
    "tflite_int8": tflite_int8,
    "onnx_fp32": onnx_fp32,
    "onnx_int8": onnx_int8,
    "tflite_qat": tflite_qat,
    "onnx_qat": onnx_qat,
}
