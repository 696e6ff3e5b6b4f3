"""--unlabeled: the folder walker, the leakage guard, the missing hard-label
term, and runs (with resume) that use unlabeled photos."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, error_lines, killed_after_first_epoch, run_cli, small_npz


def _png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, np.uint8)).save(path)


def test_walker_nested_folders_symlink_loops_and_other_files(tmp_path):
    from distill.unlabeled import walk
    root = tmp_path / "cam"
    px = np.zeros((4, 4, 3), np.uint8)
    _png(root / "a.png", px)
    _png(root / "day1" / "b.PNG", px)
    _png(root / "day1" / "deep" / "er" / "c.png", px)
    (root / "notes.txt").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"\0")
    (root / "day1" / "._b.png").write_bytes(b"AppleDouble")  # hidden: not a photo
    os.symlink(root, root / "day1" / "loop")  # a loop back to the top
    os.symlink(root / "missing.png", root / "broken.png")  # a dangling link
    walked = walk([root])
    assert [p.relative_to(root).as_posix() for p in walked.files] == [
        "a.png", "day1/b.PNG", "day1/deep/er/c.png"]
    assert walked.skipped == 4  # notes.txt, .DS_Store, ._b.png, broken.png
    # the same folder twice (or through a link) is walked once
    assert len(walk([root, root / "day1" / "loop"]).files) == 3


@pytest.mark.parametrize("make,msg", [
    (lambda d: None, "no .bmp/.jpeg/.jpg/.png/.webp images at any depth (0 other file(s))"),
    (lambda d: (d / "x.txt").write_text("x"), "images at any depth (1 other file(s))"),
])
def test_walker_refuses_folders_without_photos(tmp_path, make, msg):
    from distill.unlabeled import walk
    from edgekd.errors import EdgekdError
    folder = tmp_path / "empty"
    folder.mkdir()
    make(folder)
    with pytest.raises(EdgekdError, match=msg.replace(".", r"\.").replace("(", r"\(")
                       .replace(")", r"\)")):
        walk([folder])
    with pytest.raises(EdgekdError, match="not a folder"):
        walk([tmp_path / "nowhere"])


def test_leakage_guard_drops_test_copies_and_duplicates():
    from distill.unlabeled import keep_rows
    rng = np.random.default_rng(0)
    test, train = rng.integers(0, 256, (5, 6, 6, 3), np.uint8), rng.integers(0, 256, (4, 6, 6, 3), np.uint8)
    fresh = rng.integers(0, 256, (3, 6, 6, 3), np.uint8)
    x = np.stack([fresh[0], test[2], train[1], fresh[1], fresh[0], test[4], fresh[2]])
    keep, leaked, dupes = keep_rows(x, test, train)
    assert keep.tolist() == [0, 3, 6] and leaked == 2 and dupes == 2


def test_unlabeled_examples_have_no_hard_label_term():
    """The loss of an unlabeled example is the soft loss alone, computed here
    from the definition: it fails if any label reaches its hard-label term."""
    from distill.loss import DistillationLoss
    from distill.recipe import soft_targets
    from distill.tfenv import tf
    t, alpha = 4.0, 0.3
    teacher = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], np.float32)
    student = np.array([[0.3, 1.0, -0.2], [1.5, -0.5, 0.0]], np.float32)

    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    p, q = softmax(teacher / t), softmax(student / t)
    soft = (p * np.log(p / q)).sum(-1) * t * t
    ce0 = -np.log(softmax(student)[0, 1])
    loss = DistillationLoss(alpha, t, "kl")
    got = loss(np.array([1, -1]), teacher, student).numpy()
    np.testing.assert_allclose(got, [alpha * ce0 + (1 - alpha) * soft[0],
                                     (1 - alpha) * soft[1]], rtol=1e-5)
    # with label smoothing the unlabeled row becomes all zeros: again no hard term
    ds = tf.data.Dataset.from_tensors((np.zeros((2, 1), np.float32), np.array([1, -1])))
    _, y = next(iter(soft_targets(ds, 3, label_smoothing=0.1)))
    np.testing.assert_allclose(y.numpy()[1], 0.0)
    ce, _ = loss.parts(y, teacher, student)
    assert ce.numpy()[1] == 0.0 and ce.numpy()[0] > 0
    for kind in ("dkd", "mse", "kl-std"):  # every loss accepts unlabeled examples
        ce, kd = DistillationLoss(alpha, t, kind).parts(np.array([1, -1]), teacher, student)
        assert ce.numpy()[1] == 0.0 and np.all(np.isfinite(kd.numpy()))


def _photo_run_data(tmp_path, n_unlabeled=60):
    """A labeled .npz and a folder of unlabeled photos in class-named
    subfolders (names a walker must not read as labels), with one copy of a
    test image and one of a training image."""
    data = small_npz(tmp_path / "d.npz", n_train=200, n_test=60, shape=(16, 16, 3))
    with np.load(data) as z:
        x_test, x_train = z["x_test"], z["x_train"]
    rng = np.random.default_rng(1)
    unl = tmp_path / "camera"
    for i in range(n_unlabeled):
        _png(unl / ("0" if i % 2 else "2") / f"{i:03d}.png", rng.integers(0, 256, (16, 16, 3)))
    _png(unl / "copy_of_test.png", x_test[3])
    _png(unl / "copy_of_train.png", x_train[7])
    return data, unl


def test_student_data_labels_unlabeled_photos_as_unlabeled(tmp_path):
    from distill.config import resolve
    from distill.data import load_dataset
    from distill.phases import StudentData
    from distill.run import training_data
    from distill.unlabeled import UNLABELED, load
    data, unl = _photo_run_data(tmp_path)
    cfg = resolve("quick", data=str(data), unlabeled=(str(unl),), batch_size=16)
    ds = load_dataset(cfg.data)
    extra = load(cfg.unlabeled, ds, None, cfg.seed)
    assert extra.record() == {"found": 62, "drawn": 62, "used": 60, "skipped_files": 0,
                              "dropped_test_copies": 1, "dropped_duplicates": 1}
    (x_tr, y_tr), _, plain = training_data(cfg, ds)
    sd = StudentData(cfg, ds, None, plain, x_tr, y_tr, extra)
    assert len(sd.x) == len(x_tr) + 60
    np.testing.assert_array_equal(sd.y[:len(x_tr)], y_tr)
    assert (sd.y[len(x_tr):] == UNLABELED).all()  # folder names "0" and "2" are no labels
    np.testing.assert_array_equal(np.asarray(sd.x[len(x_tr):]), np.asarray(extra.x))
    # the teacher's and the scratch baseline's data: the labeled images only
    assert sum(int(b[1].shape[0]) for b in plain) == len(x_tr)


@pytest.mark.parametrize("recipe", [
    [],  # the teacher runs in the training step
    ["--augment", "--teacher-cache-views", "2", "--teacher-cache-mirror", "--mixup", "0.2"],
])
def test_run_with_unlabeled_records_counts(tmp_path, recipe):
    data, unl = _photo_run_data(tmp_path)
    out = tmp_path / "art"
    proc = run_cli("distill", "--data", str(data), "--preset", "quick", "--teacher-arch",
                   "tiny_teacher", "--student-arch", "tiny_student", "--epochs", "1",
                   "--teacher-epochs", "1", "--batch-size", "32", "--unlabeled", str(unl),
                   "--out", str(out), *recipe)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "unlabeled: 60 photos used of 62 found (0 other files skipped; dropped: 1 copies " \
        "of test images, 1 duplicates)" in proc.stdout
    report = json.loads((out / "train_report.json").read_text())
    assert report["dataset"]["n_unlabeled"] == 60
    assert report["dataset"]["unlabeled"]["dropped_test_copies"] == 1
    assert report["images_seen"] == {"teacher": {"labeled": 200, "unlabeled": 0},
                                     "student": {"labeled": 200, "unlabeled": 60},
                                     "student_scratch": {"labeled": 200, "unlabeled": 0}}
    assert report["config"]["unlabeled"] == [str(unl)]
    if recipe:
        return
    # the counts reach the manifest and the benchmark's report.md
    proc = run_cli("export", str(out), "--formats", "tflite_fp32", "--roles", "student")
    assert proc.returncode == 0, proc.stderr[-2000:]
    from bench.report import _images_seen
    dataset = json.loads((out / "manifest.json").read_text())["dataset"]
    assert dataset["images_seen"] == report["images_seen"]
    assert _images_seen(dataset)[0] == ("Training images: teacher 200 labeled; student 200 "
                                        "labeled + 60 unlabeled; student_scratch 200 labeled.")


def test_bad_unlabeled_folders_get_one_line(tmp_path):
    data = small_npz(tmp_path / "d.npz")
    (tmp_path / "empty").mkdir()
    for folder, msg in ((tmp_path / "empty", "no .bmp/.jpeg/.jpg/.png/.webp images"),
                        (tmp_path / "nowhere", "not a folder")):
        proc = run_cli("distill", "--data", str(data), "--unlabeled", str(folder),
                       "--out", str(tmp_path / "art"))
        assert proc.returncode != 0
        lines = error_lines(proc)
        assert len(lines) == 1 and msg in lines[0], lines
        assert not (tmp_path / "art").exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.jpg").write_bytes(b"not a jpeg")
    proc = run_cli("distill", "--data", str(data), "--preset", "quick", "--teacher-arch",
                   "tiny_teacher", "--student-arch", "tiny_student", "--unlabeled", str(broken),
                   "--out", str(tmp_path / "art"))
    lines = error_lines(proc)
    assert proc.returncode != 0 and len(lines) == 1 and "x.jpg" in lines[0], lines
    assert not (tmp_path / "art").exists() and not (tmp_path / "art.partial").exists()


def test_resume_of_a_killed_run_with_unlabeled(tmp_path):
    """Killed in the distilled phase (the one that sees unlabeled photos);
    the same command resumes it and records the same counts."""
    data, unl = _photo_run_data(tmp_path, n_unlabeled=400)
    out = tmp_path / "art"
    cmd = [sys.executable, "-m", "distill", "--data", str(data), "--preset", "quick",
           "--teacher-arch", "tiny_teacher", "--student-arch", "tiny_student",
           "--teacher-epochs", "1", "--epochs", "4", "--batch-size", "8", "--no-scratch",
           "--unlabeled", str(unl), "--out", str(out)]
    log = out.parent / "art.partial" / "_checkpoints" / "student_epochs.json"
    first = killed_after_first_epoch(cmd, log)
    assert 1 <= len(first) < 4, "the run must be killed mid-student"
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming the interrupted run" in done.stdout
    report = json.loads((out / "train_report.json").read_text())
    assert [e["epoch"] for e in report["models"]["student"]["epochs"]] == [1, 2, 3, 4]
    assert report["models"]["student"]["epochs"][0] == first[0]
    assert report["images_seen"]["student"] == {"labeled": 200, "unlabeled": 400}
