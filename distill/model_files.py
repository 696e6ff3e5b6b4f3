"""Model files are data: each is read as plain data and checked against an
allow-list before any framework deserializes it (the idea of Keras'
safe_mode and of `saved_model_cli scan`, made an allow-list instead of a
deny-list, since a deny-list misses whatever its author did not think of).

- Keras configs (`.keras` zip, `.h5`, a SavedModel's keras_metadata.pb):
  every `class_name`, `module` and `registered_name` must be a Keras built-in
  (tf_keras or Keras 3), TFOpLambda layers may call only math functions, and
  no value may hold serialized code (`*_type: "lambda"|"function"` pairs,
  marshalled bytecode).
- SavedModels: every op of every graph and function must be a pure math op;
  checkpoint I/O ops only inside TensorFlow's own save/restore functions,
  which no other function may call.
- ONNX: standard and onnxruntime domains only. TFLite: builtin ops only.

`--trust-model-code` skips all of it (and Keras' safe mode).
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from edgekd.errors import EdgekdError

TRUST_FLAG = "--trust-model-code"


def refuse(path: Path, what: str, entry: str) -> EdgekdError:
    return EdgekdError(f"{what} model {path}: {entry}; refusing to load it (edgekd loads only "
                       f"model files that hold no code). If you trust its author, pass {TRUST_FLAG}")


def _walk(node, where: str = "") -> Iterator[tuple[str, dict]]:
    """Every dict of a config with its path; not compile_config (the optimizer,
    loss and metrics), which edgekd's loaders never deserialize (compile=False)."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            if key != "compile_config":
                yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}/{i}")


@lru_cache(maxsize=1)
def keras_builtins() -> frozenset[str]:
    """Class names of Keras' own layers, initializers, regularizers, constraints,
    optimizers, losses, metrics and dtype policies, in tf_keras and Keras 3,
    and tensorflow-model-optimization's wrappers, less the ones that hold
    code (Lambda) or are bases for user classes."""
    import importlib
    names = {"Functional", "Sequential", "TFOpLambda", "SlicingOpLambda", "__keras_tensor__",
             "__tensor__", "__numpy__", "__typespec__", "function", "Policy", "DTypePolicy",
             "FloatDTypePolicy", "QuantizedDTypePolicy", "TensorShape", "__tuple__",
             "__ellipsis__", "__slice__", "__bytes__", "TypeSpec"}
    for top in ("tf_keras", "keras"):
        for sub in ("layers", "initializers", "regularizers", "constraints", "optimizers",
                    "optimizers.schedules", "losses", "metrics", "mixed_precision",
                    "dtype_policies", "activations"):
            try:
                module = importlib.import_module(f"{top}.{sub}")
            except ImportError:
                continue
            names.update(n for n in dir(module) if not n.startswith("_"))
    import tensorflow_model_optimization as tfmot  # its QAT and pruning wrappers are data too
    for scope in (tfmot.quantization.keras.quantize_scope(), tfmot.sparsity.keras.prune_scope()):
        names.update(n for objects in scope.custom_objects for n in objects)
    return frozenset(names - {"Lambda", "Layer", "Model", "Wrapper", "Loss", "Metric",
                              "Optimizer", "Regularizer", "Constraint", "Initializer",
                              "deserialize", "get", "serialize"})


# TFOpLambda layers call tf.<function> by name: math and array functions only.
_TF_FUNCTION = re.compile(
    r"(__operators__|math|nn|linalg|image|signal)\.\w+"
    r"|(compat\.v1\.)?(reshape|transpose|concat|stack|unstack|split|squeeze|expand_dims|"
    r"identity|cast|clip_by_value|pad|tile|gather|gather_nd|shape|size|rank|ones_like|"
    r"zeros_like|fill|range|where|einsum|matmul|broadcast_to|reverse|slice|strided_slice|"
    r"maximum|minimum|abs|exp|sqrt|square|sigmoid|tanh|reduce_\w+|argmax|argmin|one_hot)")
_CODE_TYPES = ("lambda", "function")
# Packages whose modules a config may name (their classes are still checked by name)
LIBRARIES = ("keras", "tf_keras", "tensorflow_model_optimization")
_B64 = re.compile(r"[A-Za-z0-9+/=\n]{16,}")


def _is_bytecode(value: str) -> bool:
    """A base64 string that decodes to a marshalled Python code object."""
    if not _B64.fullmatch(value):
        return False
    try:
        raw = base64.b64decode(value.replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return False
    return raw[:1] in (b"\xe3", b"c")  # marshal's TYPE_CODE, with or without FLAG_REF


def keras_config_problem(config) -> str | None:
    """The first entry of a Keras config that is not a known built-in or that
    holds code, as a phrase naming it; None when the whole config is data."""
    allowed = keras_builtins()
    for where, node in _walk(config):
        name = node.get("class_name")
        module = node.get("module")
        # tf_keras imports the module a config names; "builtins" makes it
        # search Keras' own function modules only
        if module is not None and not (isinstance(module, str) and (
                module.split(".")[0] in LIBRARIES
                or (module == "builtins" and name == "function"))):
            return f"{where or '/'} asks to import module {module!r}"
        if name == "function" and not (module == "builtins"
                                       or str(module).endswith(("activations", "losses", "metrics"))):
            return f"{where} names function {node.get('config')!r} of module {module!r}"
        if name is not None and (not isinstance(name, str) or name not in allowed):
            return f"{where or '/'} names class {name!r}, which is not a Keras built-in"
        registered = node.get("registered_name")
        if registered is not None and (not isinstance(registered, str) or registered not in allowed):
            return f"{where or '/'} names registered object {registered!r}"
        if name in ("TFOpLambda", "SlicingOpLambda"):
            fn = (node.get("config") or {}).get("function") if isinstance(node.get("config"), dict) else None
            if not isinstance(fn, str) or not _TF_FUNCTION.fullmatch(fn):
                return f"{where} calls tf.{fn}, which is not a math function"
        for key, value in node.items():
            if isinstance(key, str) and key.endswith("_type") and value in _CODE_TYPES:
                return f"{where}/{key} holds serialized Python code ({value})"
            strings = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and _is_bytecode(v) for v in strings):
                return f"{where}/{key} holds Python bytecode"
    return None


# Ops a model's inference may run: arithmetic, neural-network and array ops,
# variables (in memory), random numbers (dropout), function calls and
# control flow (their functions are checked too). No I/O, no strings, no
# Python (PyFunc), no printing, no queues or datasets.
PURE_OPS = frozenset("""
Abs Acos Acosh Add AddN AddV2 All Any ApproximateEqual ArgMax ArgMin Asin Asinh Atan Atan2 Atanh
AvgPool AvgPool3D AvgPoolGrad BatchMatMul BatchMatMulV2 BatchMatMulV3 BatchToSpaceND BiasAdd
BiasAddGrad BroadcastArgs BroadcastGradientArgs BroadcastTo Bucketize Cast Ceil CheckNumerics
ClipByValue Complex ComplexAbs Concat ConcatOffset ConcatV2 Const Conv2D Conv2DBackpropFilter
Conv2DBackpropInput Conv3D Cos Cosh Cumprod Cumsum DepthToSpace DepthwiseConv2dNative
DepthwiseConv2dNativeBackpropFilter DepthwiseConv2dNativeBackpropInput Dilation2D Div DivNoNan
Einsum Elu EluGrad Empty EnsureShape Equal Erf Erfc Exp ExpandDims Expm1 ExtractImagePatches
FakeQuantWithMinMaxArgs FakeQuantWithMinMaxVars FakeQuantWithMinMaxVarsPerChannel Fill Floor
FloorDiv FloorMod FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3 FusedBatchNormGradV3 Gather
GatherNd GatherV2 Gelu Greater GreaterEqual HardSigmoid Identity IdentityN Imag InvertPermutation
IsFinite IsInf IsNan L2Loss LeakyRelu LeakyReluGrad Less LessEqual Lgamma LinSpace Log Log1p
LogSoftmax LogicalAnd LogicalNot LogicalOr MatMul Max MaxPool MaxPool3D MaxPoolGrad MaxPoolV2
Maximum Mean Min Minimum MirrorPad Mod Mul MulNoNan Neg NextAfter NoOp NotEqual OneHot OnesLike
Pack Pad PadV2 Placeholder PlaceholderWithDefault Pow Prod QuantizeAndDequantizeV2
QuantizeAndDequantizeV3 QuantizeAndDequantizeV4 Range Rank Real RealDiv Reciprocal Relu Relu6
Relu6Grad ReluGrad Reshape ResizeArea ResizeBicubic ResizeBilinear ResizeNearestNeighbor
Reverse ReverseV2 Rint Round Rsqrt RsqrtGrad Select SelectV2 Selu Shape ShapeN Sigmoid
SigmoidGrad Sign Sin Sinh Size Slice Snapshot Softmax Softplus Softsign SpaceToBatchND
SpaceToDepth Split SplitV Sqrt SqrtGrad Square SquaredDifference Squeeze StopGradient
StridedSlice StridedSliceGrad Sub Sum Tan Tanh TanhGrad Tile TopKV2 Transpose TruncateDiv
Unpack Where Xdivy Xlog1py Xlogy ZerosLike
RandomUniform RandomStandardNormal TruncatedNormal RandomUniformInt StatelessRandomUniformV2
StatelessRandomNormalV2 StatelessRandomGetKeyCounter StatelessRandomGetAlg
VarHandleOp ReadVariableOp AssignVariableOp AssignAddVariableOp AssignSubVariableOp
VarIsInitializedOp DestroyResourceOp
PartitionedCall StatefulPartitionedCall If StatelessIf While StatelessWhile Case StatelessCase
""".split())
# TensorFlow's own checkpoint functions (names it gives them) may read or write
# the variables; nothing may call them but the SavedModel's saver.
_CHECKPOINT = {"__inference__traced_save_": {"SaveV2", "MergeV2Checkpoints", "ShardedFilename",
                                             "StringJoin", "StaticRegexFullMatch",
                                             "DisableCopyOnRead"},
               "__inference__traced_restore_": {"RestoreV2"}}


def _called(node) -> list[str]:
    """Names of the functions a node calls (PartitionedCall's f, If's branches, ...)."""
    out = []
    for value in node.attr.values():
        if value.HasField("func"):
            out.append(value.func.name)
        out += [f.name for f in value.list.func]
    return out


def _checkpoint_ops(function: str) -> set[str]:
    return next((ops for prefix, ops in _CHECKPOINT.items() if function.startswith(prefix)), set())


def savedmodel_problem(path: Path) -> str | None:
    """The first op of a SavedModel's graphs or functions outside the
    allow-list (or a call into the checkpoint functions), as a phrase."""
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
    except Exception:  # noqa: BLE001 - protobuf's DecodeError: not ours to explain
        return "saved_model.pb is not a SavedModel"
    for graph in proto.meta_graphs:
        for node in graph.graph_def.node:
            if node.op not in PURE_OPS:
                return f"its graph runs op {node.op} (node {node.name!r}), which is not a math op"
        for fn in graph.graph_def.library.function:
            name, extra = fn.signature.name, _checkpoint_ops(fn.signature.name)
            for node in fn.node_def:
                if node.op not in PURE_OPS and node.op not in extra:
                    return (f"function {name} runs op {node.op} (node {node.name!r}), "
                            "which is not a math op")
                inner = [f for f in _called(node) if _checkpoint_ops(f)]
                if inner:
                    return f"function {name} calls TensorFlow's checkpoint function {inner[0]}"
    return None


ONNX_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")


def onnx_problem(path: Path) -> str | None:
    """The first node of an ONNX graph (subgraphs and local functions too)
    in a domain other than ONNX's and onnxruntime's own."""
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    local = {(f.domain, f.name) for f in model.functions}
    graphs = [model.graph]
    nodes = [n for f in model.functions for n in f.node]
    while graphs:
        g = graphs.pop()
        nodes += list(g.node)
        for n in g.node:
            for a in n.attribute:  # If/Loop/Scan bodies
                graphs += ([a.g] if a.HasField("g") else []) + list(a.graphs)
    for n in nodes:
        if n.domain not in ONNX_DOMAINS and (n.domain, n.op_type) not in local:
            return f"node {n.name!r} runs custom op {n.op_type} of domain {n.domain!r}"
    return None


def tflite_problem(path: Path) -> str | None:
    """The first custom op of a TFLite file (builtin ops only)."""
    from tensorflow.lite.python import schema_py_generated as schema
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(path.read_bytes(), 0))
    for code in model.operatorCodes or []:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            name = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            return f"it runs custom op {name!r}"
    return None
