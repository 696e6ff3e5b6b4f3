"""THE table of deployable formats, read by name by export (what to write,
how to check it) and bench (how to run it). Converters live in export/ and
are keyed by these names; parity gates live here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekd.errors import EdgekdError


@dataclass(frozen=True)
class ParityGate:
    """Pass criteria against the Keras model on the parity slice."""
    max_rel_diff: float | None  # max |logit diff| / logit range; None: not checked
    min_top1_agreement: float  # fraction of the slice
    max_accuracy_drop: float | None  # accuracy points lost (fraction), quantized only


FLOAT32_GATE = ParityGate(max_rel_diff=1e-4, min_top1_agreement=1.0, max_accuracy_drop=None)
# float16 weights: ~3 significant digits, near-ties may flip.
FLOAT16_GATE = ParityGate(max_rel_diff=1e-2, min_top1_agreement=0.99, max_accuracy_drop=None)
# int8: outputs move by quantization steps; judge decisions, not logits.
INT8_GATE = ParityGate(max_rel_diff=None, min_top1_agreement=0.90, max_accuracy_drop=0.03)


@dataclass(frozen=True)
class Format:
    name: str
    runtime: str  # "tflite" (ai-edge-litert) or "onnx" (onnxruntime)
    precision: str  # fp32 | fp16 | int8-dynamic | int8
    suffix: str
    gate: ParityGate
    description: str
    qat: bool = False  # for quantization-aware (QAT) Keras models only

    @property
    def quantized(self) -> bool:
        return self.precision.startswith("int8")


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("tflite_fp32", "tflite", "fp32", "_fp32.tflite", FLOAT32_GATE,
           "TFLite float32"),
    Format("tflite_fp16", "tflite", "fp16", "_fp16.tflite", FLOAT16_GATE,
           "TFLite float16 weights (float32 compute on CPU)"),
    Format("tflite_dynamic", "tflite", "int8-dynamic", "_dynamic.tflite", INT8_GATE,
           "TFLite dynamic-range: int8 weights, float activations"),
    Format("tflite_int8", "tflite", "int8", "_int8.tflite", INT8_GATE,
           "TFLite full integer, calibrated on calib.npz"),
    Format("onnx_fp32", "onnx", "fp32", "_fp32.onnx", FLOAT32_GATE,
           "ONNX float32 (tf2onnx, dynamic batch)"),
    Format("onnx_int8", "onnx", "int8", "_int8.onnx", INT8_GATE,
           "ONNX int8 QDQ (onnxruntime static quantization on calib.npz)"),
    # Quantization-aware students carry their own quantization ranges:
    Format("tflite_qat", "tflite", "int8", "_int8.tflite", INT8_GATE,
           "TFLite int8 from a QAT model (fake-quant ranges)", qat=True),
    Format("onnx_qat", "onnx", "int8", "_int8.onnx", INT8_GATE,
           "ONNX QDQ from a QAT model (tf2onnx)", qat=True),
)}


def formats_for(names: list[str], qat_model: bool) -> list[str]:
    """The selected formats that apply to a (QAT or float) Keras model."""
    return [n for n in names if FORMATS[n].qat == qat_model]

RUNTIMES = ("tflite", "onnx")


def parse_formats(spec: str | None) -> list[str]:
    """'tflite_fp32,onnx_int8' -> names, in table order; None/'all' -> all."""
    if spec is None or spec.strip() in ("", "all"):
        return list(FORMATS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise EdgekdError(f"unknown format(s) {', '.join(unknown)}; valid formats: "
                          f"{', '.join(FORMATS)}")
    return [n for n in FORMATS if n in names]
