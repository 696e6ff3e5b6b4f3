"""Peak memory of distill with a supplied teacher of each kind: the README
photo command's fine-tuned MobileNet (benchmarks.photo_command's 128 px run)
converted to a SavedModel, an ONNX and a TFLite file, each passed as
--teacher to a 96 px run on the same 3,000 photos: the teacher's input is
128 px, so every image is resized for it while its logits are cached.

    python -m benchmarks.teacher_memory [--work /var/tmp/edgekd-quick]

One student epoch: what is measured is the cache build (the teacher's
batches at its own size) and one epoch on it. The Keras 3 file is the same
network rebuilt in Keras 3 (Rescaling, Keras 3's MobileNet, Dense) with the
weights copied, checked against the tf_keras model's outputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.saved import publish
from benchmarks.stage import Stage, run_once
from edgekd.environment import machine, versions

KINDS = ("keras3", "savedmodel", "onnx", "tflite")
GOAL_GIB = 4.0


def convert(teacher: Path, folder: Path) -> dict[str, Path]:
    """The tf_keras teacher as each kind of file (made once)."""
    from distill.safe_load import load
    from distill.tfenv import tf
    files = {"keras3": folder / "teacher_keras3.keras", "savedmodel": folder / "teacher_savedmodel",
             "onnx": folder / "teacher.onnx", "tflite": folder / "teacher.tflite"}
    if all(p.exists() for p in files.values()):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    model = load(teacher, "teacher")
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="input")
    serve = tf.function(lambda x: {"logits": model(x, training=False)}, input_signature=[spec])
    tf.saved_model.save(model, str(files["savedmodel"]), signatures={"serving_default": serve})
    import tf2onnx
    tf2onnx.convert.from_keras(model, input_signature=(spec,), opset=17,
                               output_path=str(files["onnx"]))
    files["tflite"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    _keras3_copy(model, files["keras3"])
    return files


def _keras3_copy(model, path: Path) -> None:
    """The pretrained teacher's layout (input, Rescaling, MobileNet, Dropout,
    Dense) rebuilt in Keras 3 with its weights."""
    import keras as keras3
    import numpy as np
    _, rescale, backbone, _, head = model.layers
    side = model.input_shape[1]
    inp = keras3.Input(model.input_shape[1:])
    body = keras3.applications.MobileNet(input_shape=(side, side, 3), include_top=False,
                                         pooling="avg", weights=None)
    x = body(keras3.layers.Rescaling(rescale.scale, rescale.offset)(inp))
    out = keras3.layers.Dense(head.units)(keras3.layers.Dropout(0.2)(x))
    copy = keras3.Model(inp, out)
    body.set_weights(backbone.get_weights())
    copy.layers[-1].set_weights(head.get_weights())
    x = np.random.default_rng(0).random((4, *model.input_shape[1:]), dtype=np.float32)
    assert np.abs(np.asarray(copy(x)) - model(x).numpy()).max() < 1e-4
    copy.save(path)


def _distill(photos: Path, teacher: Path, out: Path) -> Stage:
    return run_once(out, "-m", "distill", "--data", str(photos), "--image-size", "96",
                    "--teacher", str(teacher), "--student-macs", "10e6", "--epochs", "1",
                    "--out", str(out), "--quiet")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/var/tmp/edgekd-quick"))
    a = p.parse_args(argv)
    teacher = a.work / "photo_cmd_128" / "teacher.keras"
    if not teacher.is_file():
        raise SystemExit("run python -m benchmarks.photo_command first (its 128 px teacher)")
    files = convert(teacher, a.work / "teachers")
    rows = []
    for kind in KINDS:
        out = a.work / f"teacher_{kind}_96"
        stage = _distill(a.work / "photos_3000", files[kind], out)
        report = json.loads((out / "train_report.json").read_text())
        t = report["models"]["teacher"]
        rows.append(f"| {kind} | {t['input']['height']} px | {report['teacher_cache_copies']} x "
                    f"{report['dataset']['n_train']:,} | {stage.seconds / 60:.1f} min | "
                    f"{stage.peak_rss_mb / 1024:.2f} GiB | "
                    f"{'yes' if stage.peak_rss_mb / 1024 <= GOAL_GIB else 'no'} |")
    m, v = machine(), versions()
    text = "\n".join([
        "# Memory with a supplied teacher of each kind", "",
        "`python -m benchmarks.teacher_memory`: the photo command's fine-tuned MobileNet "
        "(128 px input) as a Keras 3 .keras, SavedModel, ONNX and TFLite file, passed as "
        "`--teacher` to "
        "`python -m distill --image-size 96 --student-macs 10e6 --epochs 1` on 3,000 generated "
        "photos: the teacher cache is built at the teacher's size, then one student epoch. "
        f"Peak RSS of the distill process. Machine: {m['cpu']}, {m['cores']} cores; tensorflow "
        f"{v.get('tensorflow')}.", "",
        f"| teacher | its input | cached copies x images | distill wall time | peak RSS "
        f"| within {GOAL_GIB:g} GiB |",
        "|---|---:|---:|---:|---:|---|", *rows, ""])
    return publish("teacher_memory", text)


if __name__ == "__main__":
    sys.exit(main())
