"""python -m bench.predict: an artifact on image files, TF-free, with the
training preprocessing; the deploy summary that ends `make edge-model`."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from bench.predict import chosen, deploy_summary
from edgekd.preprocess import Preprocessing
from edgekd.runtime import open_runner
from edgekd.stats import softmax
from tests.conftest import run_cli


@pytest.fixture()
def photos(tmp_path, mini_exported):
    """Eight eval images as PNG files, and the same images upscaled 3x (as a
    user's photos would come larger than the model's input)."""
    with np.load(mini_exported / "eval.npz") as z:
        x, labels = z["x"][:8], [str(s) for s in z["labels"]]
    paths = []
    for i, img in enumerate(x):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(img).save(paths[-1])
    big = tmp_path / "big.png"
    Image.fromarray(x[0]).resize((36, 36), Image.NEAREST).save(big)
    return x, labels, paths, big


def test_predict_prints_the_artifacts_own_top_class(mini_exported, photos):
    x, labels, paths, _ = photos
    pre = Preprocessing.from_dict(json.loads((mini_exported / "preprocessing.json").read_text()))
    logits = open_runner(mini_exported / "student_int8.tflite", "tflite").predict(pre.apply(x))
    proc = run_cli("bench.predict", str(mini_exported), *map(str, paths), "--top", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].startswith("[predict] student_int8.tflite (not benched on this machine")
    for line, row in zip(out[1:], softmax(logits)):
        best = int(np.argmax(row))
        assert line.split(": ", 1)[1].startswith(f"{labels[best]} {100 * row[best]:.1f} %"), line
        assert len(line.split(", ")) == 2


def test_larger_photos_are_resized_like_training(mini_exported, photos):
    _, _, paths, big = photos
    dep = chosen(mini_exported, "student_tflite_fp32")
    from bench.predict import load_image, predict
    assert load_image(big, dep.pre).shape == (12, 12, 3)
    np.testing.assert_allclose(predict(dep, [big]).sum(), 1.0, rtol=1e-5)


def test_bench_choice_and_deploy_summary(tmp_path, mini_exported):
    folder = tmp_path / "art"
    shutil.copytree(mini_exported, folder)
    (folder / "bench.json").write_text(json.dumps({"summary": {"best_student":
                                                               "student_onnx_fp32"}}))
    dep = chosen(folder)
    assert dep.path.name == "student_fp32.onnx" and "bench's choice" in dep.why
    text = deploy_summary(folder)
    assert text.splitlines()[0] == f"Deploy: {folder / 'student_fp32.onnx'} ({dep.why})."
    assert "12x12x3 RGB images" in text and "x * 0.00392157 + 0" in text
    assert f"3 logits, in the order of {folder / 'labels.txt'}" in text


@pytest.mark.parametrize("args,msg", [
    (["--artifact", "nosuch"], "no artifact 'nosuch'"),
    (["missing.jpg"], "image missing.jpg not found"),
    (["--top", "0"], "--top and --threads must be >= 1"),
])
def test_predict_errors_are_one_line(mini_exported, photos, args, msg):
    _, _, paths, _ = photos
    extra = [] if "missing.jpg" in args else [str(paths[0])]
    proc = run_cli("bench.predict", str(mini_exported), *extra, *args)
    assert proc.returncode == 2 and msg in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_undecodable_image(mini_exported, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    proc = run_cli("bench.predict", str(mini_exported), str(bad))
    assert proc.returncode == 2 and f"cannot decode image {bad}" in proc.stderr
