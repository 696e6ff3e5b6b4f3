"""The whole pipeline at the edges of the supported sizes (28 and 512 px) on
a folder of photos of mixed sizes and aspect ratios: distill, export with
parity, bench, and bench.predict on a photo, all at the size distill chose."""

import json

import numpy as np
import pytest
from PIL import Image

from bench.run import BenchConfig
from bench.run import run as bench
from edgekd.preprocess import Preprocessing, load_image
from edgekd.runtime import open_runner
from export.run import run as export
from tests.conftest import run_cli

FAST = BenchConfig(threads=(1,), runs=3, seconds=0.0, warmup_runs=1, warmup_seconds=0.0)


def _photos(root, rng, n=8):
    for split, count in (("train", n), ("test", 3)):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(count):
                h, w = rng.integers(20, 90, 2)
                arr = np.zeros((h, w, 3), np.uint8)
                arr[..., 0 if c == "a" else 2] = rng.integers(128, 256)  # a learnable colour
                Image.fromarray(arr + rng.integers(0, 40, (h, w, 3), dtype=np.uint8)).save(
                    root / split / c / f"{i}.jpg")


@pytest.mark.parametrize("size,student", [
    (28, "tiny_student"),
    pytest.param(512, 10e6, marks=pytest.mark.slow),  # end to end at 512 px: make test-extra
])
def test_pipeline_at_size(tmp_path, size, student):
    """At 512 px the student is --student-macs 10e6's pick: a patch-stem member
    of the family (edge_res_x<w>_p32), so its export is checked too."""
    from distill.config import resolve
    from distill.run import run as distill
    _photos(tmp_path / "photos", np.random.default_rng(size))
    arch = {"student_arch": student} if isinstance(student, str) else {"student_macs": student}
    cfg = resolve("quick", data=str(tmp_path / "photos"), teacher_arch="tiny_teacher",
                  teacher_epochs=1, epochs=1, train_subset=None, calib_size=8, batch_size=8,
                  image_size=size, **arch)
    out = tmp_path / "art"
    report = distill(cfg, out, verbose=0)
    if not isinstance(student, str):
        assert report["models"]["student"]["name"].endswith("_p32")
        assert report["models"]["student"]["macs"] <= student
    pre = Preprocessing.from_dict(json.loads((out / "preprocessing.json").read_text()))
    assert (pre.height, pre.width, pre.resize) == (size, size, "crop")
    manifest = export(out, ["tflite_fp32", "tflite_int8", "onnx_fp32"], ("teacher", "student"),
                      log=lambda *_: None)
    assert all(a["parity"]["passed"] for a in manifest["artifacts"])
    result = bench(out, FAST, progress=False)
    fp32 = next(r for r in result["artifacts"] if r["name"] == "student_tflite_fp32")
    assert fp32["accuracy"] == pytest.approx(result["keras_accuracy"]["student"])
    assert len(fp32["confusion"]) == 2 and sum(map(sum, fp32["confusion"])) == 6
    photo = next((tmp_path / "photos" / "test" / "b").iterdir())
    x = load_image(photo, pre)[None]
    logits = open_runner(out / "student_fp32.tflite", "tflite").predict(pre.apply(x))
    proc = run_cli("bench.predict", str(out), str(photo), "--artifact", "student_tflite_fp32")
    assert proc.returncode == 0, proc.stderr
    labels = manifest["dataset"]["labels"]
    assert proc.stdout.splitlines()[1].split(": ")[1].startswith(labels[int(np.argmax(logits))])
