"""Any teacher: to distillation a teacher is only a function from images to
logits, so it may come from any framework. One small interface, Teacher
(logits of a batch of uint8 images at the data's size), with an adapter per
kind of file, detected from the file itself:

- `.keras`: Keras 3 (loaded with Keras 3, in safe mode) or tf_keras;
- `.h5` and SavedModel folders written by tf_keras;
- any other SavedModel with a serving signature (Keras 3's `model.export`);
- `.onnx` (onnxruntime; NCHW inputs, as PyTorch exports them, are transposed);
- `.tflite` (LiteRT).

Each teacher has its own input contract: size (images are resized for it, so
a 224 px teacher can teach a 96 px student), channels, and scaling (1 and 0
when the model starts with a Rescaling layer, else --teacher-scale/offset,
else the data's). A `labels.txt` beside the file must list the data's classes
in the same order. Several files make an ensemble (`--teacher` repeated).

Only a tf_keras teacher whose contract is the data's is callable in the
training step; any other teacher's logits are cached (distill.recipe).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from distill import safe_load
from distill.tfenv import tf
from edgekd.contract import read_contract
from edgekd.errors import EdgekdError, first_line
from edgekd.preprocess import Preprocessing

KINDS = ("Keras 3 .keras", "tf_keras .keras/.h5", "SavedModel folder", ".onnx", ".tflite")


@dataclass(frozen=True)
class Contract:
    """What a teacher's input must be: float32 NHWC, `pixels * scale + offset`."""
    height: int
    width: int
    channels: int
    scale: float
    offset: float


BATCH_BYTES = 64 << 20


class Teacher:
    """Logits for uint8 images (N, H, W, C) at the data's size."""

    def __init__(self, kind: str, source: str, contract: Contract, classes: int,
                 run: Callable[[np.ndarray], np.ndarray], keras_model=None, params: int = 0,
                 output: str | None = None, contract_from: str = "the data's"):
        self.kind, self.source, self.contract, self.classes = kind, source, contract, classes
        self._run, self.keras_model, self.params, self.output = run, keras_model, params, output
        self.contract_from = contract_from  # why this contract (flags, the file, a measurement)
        self.claimed: float | None = None  # the accuracy the file's edgekd contract records
        # keras_model is callable in the training step only on the contract it came with
        self._native = (keras_model, contract)

    def use_contract(self, contract: Contract) -> None:
        model, native = self._native
        self.contract, self.keras_model = contract, model if contract == native else None

    def logits(self, x: np.ndarray, batch: int | None = None) -> np.ndarray:
        batch = batch or self.batch
        parts = [np.asarray(self._run(self._adapt(x[i:i + batch])), np.float32)
                 for i in range(0, len(x), batch)]
        return np.concatenate(parts).reshape(len(x), -1)

    @property
    def batch(self) -> int:
        """Images per call: 64 MiB of float input at the teacher's size (512 at
        32 px, 83 at 224 px). A model's activations grow with its input, and a
        fixed 512 held several GiB in a 224 px MobileNet's eager call."""
        c = self.contract
        return int(np.clip(BATCH_BYTES // (c.height * c.width * c.channels * 4), 8, 512))

    def _adapt(self, x: np.ndarray) -> np.ndarray:
        c = self.contract
        if x.shape[-1] != c.channels:  # gray data for an RGB teacher, or the reverse
            x = (np.repeat(x, 3, axis=-1) if c.channels == 3
                 else np.round(x @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)[..., None])
        xf = x.astype(np.float32)
        if xf.shape[1:3] != (c.height, c.width):
            xf = tf.image.resize(xf, (c.height, c.width), antialias=True).numpy()
        return xf * np.float32(c.scale) + np.float32(c.offset)

    def record(self) -> dict:
        out = {"kind": self.kind, "source": self.source, "input": asdict(self.contract),
               "input_from": self.contract_from}
        return {**out, "output": self.output} if self.output else out


class Ensemble(Teacher):
    """Members' logits combined as the mean of their log-probabilities, i.e. the
    logits of their normalized geometric mean. Unlike a mean of raw logits it
    ignores each member's logit offset (as softmax does) and compares members by
    their probabilities; unlike log(mean of probabilities) a class any member
    rules out stays unlikely, and the result is a logit vector that the
    temperature softens like a single teacher's."""

    def __init__(self, members: list[Teacher]):
        first = members[0]
        super().__init__("ensemble", ", ".join(m.source for m in members), first.contract,
                         first.classes, run=lambda x: x)
        self.members = members

    def logits(self, x: np.ndarray, batch: int | None = None) -> np.ndarray:
        logp = [tf.nn.log_softmax(m.logits(x, batch), axis=-1).numpy() for m in self.members]
        return np.mean(logp, axis=0).astype(np.float32)

    def record(self) -> dict:
        return {"kind": "ensemble", "source": self.source,
                "combine": "mean of log-probabilities",
                "members": [m.record() for m in self.members]}


def _rescales(layers) -> bool:
    """Whether a model scales raw pixels itself (a Rescaling layer first)."""
    names = [type(layer).__name__ for layer in layers if type(layer).__name__ != "InputLayer"]
    return bool(names) and names[0] == "Rescaling"


GUESSED = "guessed"


def _contract(shape, pre: Preprocessing, flags: dict, rescales: bool = False,
              written: dict | None = None) -> tuple[Contract, str]:
    """The teacher's input contract and where it came from: the flags, then
    the contract edgekd wrote into its own file, then a guess (measured
    against the alternatives in `load` when labeled images are at hand)."""
    h, w, c = (int(s) if s else d for s, d in zip(shape[-3:], pre.input_shape))
    scale, offset = flags["scale"], flags["offset"]
    if scale is not None or offset is not None:
        return Contract(h, w, c, pre.scale if scale is None else scale,
                        0.0 if offset is None else offset), "--teacher-scale/--teacher-offset"
    if written is not None:
        i = written["input"]
        return (Contract(h, w, c, float(i["scale"]), float(i["offset"])),
                "written into the file by the edgekd run that made it")
    if rescales:
        return Contract(h, w, c, 1.0, 0.0), f"{GUESSED}: it starts with a Rescaling layer"
    return Contract(h, w, c, pre.scale, pre.offset), f"{GUESSED}: the data's scaling"


def pick_output(path: Path, names: list[str], wanted: str | None) -> str:
    """The output holding the logits: the only one, or the one --teacher-output
    names. Several and none named is refused: taking the first would be a guess."""
    if wanted is not None:
        if wanted not in names:
            raise EdgekdError(f"teacher {path} has no output {wanted!r} (--teacher-output); "
                              f"its outputs: {', '.join(names)}")
        return wanted
    if len(names) != 1:
        raise EdgekdError(f"teacher {path} has {len(names)} outputs ({', '.join(names)}): name "
                          "the one holding the logits with --teacher-output NAME")
    return names[0]


def _keras_version(path: Path) -> str:
    """The Keras version a .keras zip was saved with ("2": unknown, tf_keras reads it)."""
    try:
        with zipfile.ZipFile(path) as z:
            return str(json.loads(z.read("metadata.json")).get("keras_version", "2"))
    except (KeyError, ValueError, zipfile.BadZipFile):
        return "2"


def _tf_keras(path: Path, pre: Preprocessing, flags: dict) -> Teacher:
    model = safe_load.load(path, "teacher", flags["trust_code"])
    written = read_contract(path) if path.is_file() else None
    contract, why = _contract(model.input_shape, pre, flags, _rescales(model.layers), written)
    teacher = from_keras(model, pre, str(path))
    teacher.contract_from, teacher.claimed = why, (written or {}).get("accuracy")
    teacher.use_contract(contract)
    return teacher


def _keras3(path: Path, pre: Preprocessing, flags: dict) -> Teacher:
    import keras as keras3  # Keras 3 ships beside tf_keras: users' .keras files need it
    try:
        model = keras3.saving.load_model(path, compile=False, safe_mode=not flags["trust_code"])
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file
        raise EdgekdError(f"cannot load teacher model {path} with Keras 3: "
                          f"{first_line(exc, 200)}") from None
    contract, why = _contract(model.input_shape, pre, flags, _rescales(model.layers),
                              read_contract(path))
    # One traced graph, not eager calls: a Keras 3 MobileNet called eagerly on
    # 128 px batches held 8.5 GiB while caching its logits (2.5 GiB as a graph).
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    infer = tf.function(lambda a: model(a, training=False), input_signature=[spec])
    return Teacher("keras3", str(path), contract, int(model.output_shape[-1]),
                   lambda x: infer(tf.constant(x)).numpy(), None,
                   int(model.count_params()), contract_from=why)


def _savedmodel(path: Path, pre: Preprocessing, flags: dict) -> Teacher:
    if (path / "keras_metadata.pb").is_file():
        return _tf_keras(path, pre, flags)
    try:
        fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    except (KeyError, OSError, ValueError) as exc:
        raise EdgekdError(f"teacher SavedModel {path} has no serving signature "
                          f"(serving_default): {first_line(exc, 120)}") from None
    inputs = fn.structured_input_signature[1]
    if len(inputs) != 1:
        raise EdgekdError(f"teacher SavedModel {path} takes {len(inputs)} inputs "
                          f"({', '.join(inputs)}); edgekd feeds it one batch of images")
    (name, spec), = inputs.items()
    out_name = pick_output(path, list(fn.structured_outputs), flags["output"])
    contract, why = _contract(spec.shape, pre, flags)
    classes = int(fn.structured_outputs[out_name].shape[-1])
    return Teacher("savedmodel", str(path), contract, classes,
                   lambda x: fn(**{name: tf.constant(x)})[out_name].numpy(),
                   output=out_name if len(fn.structured_outputs) > 1 else None, contract_from=why)


def _onnx(path: Path, pre: Preprocessing, flags: dict) -> Teacher:
    import onnxruntime as ort
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT's own error types
        raise EdgekdError(f"cannot load teacher model {path}: {first_line(exc, 200)}") from None
    if len(sess.get_inputs()) != 1:
        raise EdgekdError(f"teacher {path} takes {len(sess.get_inputs())} inputs "
                          f"({', '.join(i.name for i in sess.get_inputs())}); edgekd feeds it one "
                          "batch of images: export it with a single image input")
    inp = sess.get_inputs()[0]
    shape = [s if isinstance(s, int) else None for s in inp.shape]
    if len(shape) != 4:
        raise EdgekdError(f"teacher {path}'s input {inp.name} has shape {inp.shape}; edgekd "
                          "feeds images as 4-D NHWC or NCHW batches")
    nchw = shape[1] in (1, 3) and shape[3] not in (1, 3)
    hwc = [shape[2], shape[3], shape[1]] if nchw else shape[1:]
    contract, why = _contract(hwc, pre, flags)
    outputs = [o.name for o in sess.get_outputs()]
    out_name = pick_output(path, outputs, flags["output"])
    fixed = shape[0]  # a batch size baked into the file (1, as many exports have): fed so

    def run(x):
        def one(b):
            return sess.run([out_name], {inp.name: np.transpose(b, (0, 3, 1, 2)) if nchw else b})[0]
        if fixed is None:
            return one(x)
        parts = []
        for i in range(0, len(x), fixed):
            b = x[i:i + fixed]
            padded = np.concatenate([b, np.repeat(b[-1:], fixed - len(b), 0)]) if len(b) < fixed else b
            parts.append(one(padded)[:len(b)])
        return np.concatenate(parts)
    probe = np.zeros((1, contract.height, contract.width, contract.channels), np.float32)
    params = sum(int(np.prod(t.dims)) for t in _onnx_initializers(path))
    return Teacher("onnx", str(path), contract, int(run(probe).shape[-1]), run, params=params,
                   output=out_name if len(outputs) > 1 else None, contract_from=why)


def _onnx_initializers(path: Path):
    import onnx
    return onnx.load(str(path), load_external_data=False).graph.initializer


def _tflite(path: Path, pre: Preprocessing, flags: dict) -> Teacher:
    from edgekd.runtime import TFLiteRunner
    runner = TFLiteRunner(path, threads=None)
    if len(runner.inputs) != 1:
        raise EdgekdError(f"teacher {path} takes {len(runner.inputs)} inputs; edgekd feeds it "
                          "one batch of images")
    names = [str(o["name"]) for o in runner.outputs]
    if pick_output(path, names, flags["output"]) != names[0]:
        raise EdgekdError(f"teacher {path}: edgekd reads a TFLite teacher's first output only; "
                          "convert it with the logits as its only output")
    contract, why = _contract(runner.inputs[0]["shape"], pre, flags)
    return Teacher("tflite", str(path), contract, int(runner.outputs[0]["shape"][-1]),
                   lambda x: runner.predict(x, batch_size=len(x)),
                   output=names[0] if len(names) > 1 else None, contract_from=why)


def from_keras(model, pre: Preprocessing, source: str) -> Teacher:
    """A tf_keras model on the data's own input (the teacher distill trained)."""
    infer = tf.function(lambda a: model(a, training=False))
    return Teacher("tf_keras", source, Contract(*pre.input_shape, pre.scale, pre.offset),
                   int(model.output_shape[-1]), lambda x: infer(tf.constant(x)).numpy(), model,
                   int(model.count_params()))


def kind_of(path: Path) -> Callable:
    """The adapter for a teacher file, or an EdgekdError naming the kinds that work."""
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return _savedmodel
    suffix = path.suffix.lower()
    if suffix == ".keras" and zipfile.is_zipfile(path) and _keras_version(path).startswith("3"):
        return _keras3
    adapters = {".keras": _tf_keras, ".h5": _tf_keras, ".onnx": _onnx, ".tflite": _tflite}
    if suffix in adapters:
        return adapters[suffix]
    raise EdgekdError(f"cannot tell what kind of teacher {path} is; edgekd reads: "
                      f"{', '.join(KINDS)}")


def _check_labels(path: Path, labels: list[str]) -> None:
    """A labels.txt beside the teacher must name the data's classes in order."""
    file = (path if path.is_dir() else path.parent) / "labels.txt"
    if not file.is_file():
        return
    theirs = [line.strip() for line in file.read_text().splitlines() if line.strip()]
    if theirs != list(labels):
        first = next((i for i, (a, b) in enumerate(zip(theirs, labels)) if a != b),
                     min(len(theirs), len(labels)))
        raise EdgekdError(f"teacher {path}: its {file} lists other classes or another order "
                          f"than the data (first difference at class {first}: "
                          f"{theirs[first] if first < len(theirs) else '-'!r} vs "
                          f"{labels[first] if first < len(labels) else '-'!r})")


# Input scalings a foreign model may expect: raw pixels, [0, 1], [-1, 1].
SCALINGS = ((1.0, 0.0), (1 / 255, 0.0), (2 / 255, -1.0))
SWITCH_MARGIN = 0.05  # a measured scaling replaces the guess only when this much better
SAMPLE = 256  # labeled training images each supplied teacher is scored on


def _describe(c: Contract) -> str:
    return f"pixels * {c.scale:.6g} {'+' if c.offset >= 0 else '-'} {abs(c.offset):g}"


def check_on_sample(teacher: Teacher, x: np.ndarray, y: np.ndarray) -> str:
    """Score the teacher on labeled training images; for a guessed input
    contract, also each other usual scaling, and keep the one that works.
    A teacher near chance, or far below the accuracy its file records, stops
    the run with the numbers. Returns the line that says what was chosen."""
    def accuracy(c: Contract) -> float:
        teacher.use_contract(c)
        return float(np.mean(teacher.logits(x).argmax(-1) == y))
    guess = teacher.contract
    scores = {guess: accuracy(guess)}
    if teacher.contract_from.startswith(GUESSED):
        for scale, offset in SCALINGS:
            c = Contract(guess.height, guess.width, guess.channels, scale, offset)
            if all(abs(c.scale - k.scale) > 1e-9 or c.offset != k.offset for k in scores):
                scores[c] = accuracy(c)
    best = max(scores, key=scores.__getitem__)
    if scores[best] < scores[guess] + SWITCH_MARGIN:
        best = guess
    tried = ", ".join(f"{_describe(c)}: {a:.1%}" for c, a in scores.items())
    if best != guess:
        teacher.contract_from = f"measured on {len(y)} labeled training images ({tried})"
    teacher.use_contract(best)
    acc, chance = scores[best], float(np.bincount(y).max() / len(y))
    where = f"teacher {teacher.source} scores {acc:.1%} on {len(y)} labeled training images"
    if acc < 1.25 * chance:
        raise EdgekdError(f"{where}, near chance ({chance:.1%}; input tried: {tried}): it does "
                          "not fit this data, or expects another input; set its scaling with "
                          "--teacher-scale/--teacher-offset")
    if teacher.claimed is not None and acc < teacher.claimed - 0.25:
        raise EdgekdError(f"{where}, far below the {teacher.claimed:.1%} its file records "
                          f"(input: {_describe(best)}, {teacher.contract_from}): is it the "
                          "teacher for this data?")
    return f"{where}; input {_describe(best)} ({teacher.contract_from})"


def load(paths: tuple[str, ...], pre: Preprocessing, labels: list[str], scale=None,
         offset=None, trust_code: bool = False, output: str | None = None,
         sample: tuple[np.ndarray, np.ndarray] | None = None, log=print) -> Teacher:
    """One teacher, or an ensemble of several, checked against the data's
    classes and, given `sample` (labeled training images), on them."""
    flags = {"scale": scale, "offset": offset, "trust_code": trust_code, "output": output}
    members = []
    for p in map(Path, paths):
        if not p.exists():
            raise EdgekdError(f"teacher model {p} not found")
        adapter = kind_of(p)
        safe_load.check_code(p, "teacher", trust_code)  # every kind, before its framework reads it
        teacher = adapter(p, pre, flags)
        if teacher.classes != len(labels):
            raise EdgekdError(f"teacher model {p} has {teacher.classes} outputs, the data has "
                              f"{len(labels)} classes")
        _check_labels(p, labels)
        if sample is not None:
            log(f"[distill] {check_on_sample(teacher, *sample)}")
        members.append(teacher)
    return members[0] if len(members) == 1 else Ensemble(members)


__all__ = ["Contract", "Ensemble", "KINDS", "Teacher", "from_keras", "kind_of", "load"]
