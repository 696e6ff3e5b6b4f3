"""Real distillation runs, the artifacts folder, resume, and the CLI's errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import (
    FASHION_SMALL,
    ROOT,
    error_lines,
    killed_after_first_epoch,
    run_cli,
    small_npz,
)

EXPECTED = {".edgekd", "teacher.keras", "student.keras", "student_scratch.keras", "eval.npz",
            "calib.npz", "labels.txt", "config.json", "train_report.json", "preprocessing.json"}


def test_fashion_mnist_distillation_beats_chance(tiny_artifacts):
    assert {p.name for p in tiny_artifacts.iterdir()} == EXPECTED
    report = json.loads((tiny_artifacts / "train_report.json").read_text())
    m = report["models"]
    # 10 classes: chance is 10 %; 2 epochs on 3,000 images reach far above it
    assert m["teacher"]["accuracy"] > 0.6
    assert m["student"]["accuracy"] > 0.5
    assert m["student_scratch"]["accuracy"] > 0.4
    assert report["distillation_gain"] == pytest.approx(
        m["student"]["accuracy"] - m["student_scratch"]["accuracy"], abs=1e-4)
    for role in ("teacher", "student", "student_scratch"):
        assert len(m[role]["epochs"]) == 2 and all(e["seconds"] > 0 for e in m[role]["epochs"])
        assert m[role]["macs"] > 0 and m[role]["params"] > 0
    assert report["dataset"]["n_train"] == 2500 and report["dataset"]["n_test"] == 500


def test_artifact_contents(tiny_artifacts):
    from distill.data import load_dataset
    ds = load_dataset(FASHION_SMALL)
    with np.load(tiny_artifacts / "eval.npz") as z:
        np.testing.assert_array_equal(z["x"], ds.x_test)
        np.testing.assert_array_equal(z["y"], ds.y_test)
    with np.load(tiny_artifacts / "calib.npz") as z:
        assert z["x"].shape == (200, 28, 28, 1) and z["x"].dtype == np.uint8
    cfg = json.loads((tiny_artifacts / "config.json").read_text())
    assert cfg["student_arch"] == "tiny_student" and cfg["alpha"] == 0.1
    assert (tiny_artifacts / "labels.txt").read_text().splitlines()[9] == "ankle boot"
    pre = json.loads((tiny_artifacts / "preprocessing.json").read_text())
    assert pre == {"height": 28, "width": 28, "channels": 1, "scale": 1 / 255, "offset": 0.0,
                   "layout": "NHWC", "stored_dtype": "uint8", "resize": "crop"}


def _epochs_logged(path):
    try:
        return len(json.loads(path.read_text()))
    except (OSError, ValueError):
        return 0


def test_resume_after_kill(tmp_path):
    """Kill the run after the teacher's first epoch; the same command resumes."""
    data = small_npz(tmp_path / "d.npz", n_train=6000, n_test=200, shape=(16, 16, 3))
    out = tmp_path / "art"
    cmd = [sys.executable, "-m", "distill", "--data", str(data), "--preset", "quick",
           "--teacher-arch", "tiny_teacher", "--student-arch", "tiny_student",
           "--teacher-epochs", "4", "--epochs", "1", "--batch-size", "16", "--out", str(out)]
    log = out.parent / "art.partial" / "_checkpoints" / "teacher_epochs.json"
    first = killed_after_first_epoch(cmd, log)
    assert 1 <= len(first) < 4, "the run must be killed mid-teacher"
    assert not out.exists(), "a killed run must not leave an artifacts folder"
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming the interrupted run" in done.stdout
    epochs = json.loads((out / "train_report.json").read_text())["models"]["teacher"]["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
    # the completed epoch was not trained again: its record is the first run's
    assert epochs[0] == first[0]
    assert not (out.parent / "art.partial").exists()


@pytest.mark.parametrize("args,msg", [
    (["--temperature", "0"], "temperature must be > 0, got 0.0"),
    (["--alpha", "1.5"], "alpha must be in [0, 1], got 1.5"),
    (["--epochs", "0"], "epochs must be >= 1, got 0 (0 only with --student"),
    (["--preset", "seed", "--epochs", "0", "--student", "s.keras"],
     "add --no-scratch and drop --prune-sparsity"),
    (["--preset", "huge"], "unknown preset 'huge'; valid presets: seed, quick"),
    (["--preset", "seed", "--teacher-cache-mirror"],
     "teacher cache mirror needs cached views: add --teacher-cache-views"),
    (["--data", "no/such/place"], "unknown data source 'no/such/place'"),
    (["--data", FASHION_SMALL, "--teacher", "missing.keras"],
     "teacher model missing.keras not found"),
    (["--batch-size", "abc"], "argument --batch-size: invalid int value"),
])
def test_cli_errors_are_one_line(tmp_path, args, msg):
    proc = run_cli("distill", "--out", str(tmp_path / "a"), *args, cwd=tmp_path)
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1, lines
    assert msg in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "a").exists()


def test_teacher_with_other_classes(tmp_path, tiny_artifacts):
    """A teacher's input size is adapted (tests/distill/test_teachers.py); its
    classes cannot be."""
    data = small_npz(tmp_path / "d.npz", shape=(12, 12, 3))
    teacher = tiny_artifacts / "teacher.keras"
    proc = run_cli("distill", "--data", str(data), "--teacher", str(teacher),
                   "--out", str(tmp_path / "a"), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"teacher model {teacher} has 10 outputs, the data has 3 classes" in error_lines(proc)[0]
    assert not (tmp_path / "a").exists() and not (tmp_path / "a.partial").exists()


def test_add_scratch_after_the_run_matches_the_in_run_baseline(tmp_path, tiny_artifacts):
    """benchmarks/add_scratch.py trains the baseline after a run that skipped it:
    same config, init and recipe as the baseline trained inside the run
    (tiny_artifacts has one), reproducible; teacher and student stay untouched."""
    import shutil

    from distill.run import add_scratch
    from edgekd.errors import EdgekdError

    def without_scratch(name):
        folder = tmp_path / name
        shutil.copytree(tiny_artifacts, folder)
        (folder / "student_scratch.keras").unlink()
        report = json.loads((folder / "train_report.json").read_text())
        in_run = report["models"].pop("student_scratch")
        report.pop("distillation_gain")
        (folder / "train_report.json").write_text(json.dumps(report))
        return folder, report, in_run
    folder, report, in_run = without_scratch("run")
    before = {n: (folder / n).read_bytes() for n in ("teacher.keras", "student.keras")}

    added = add_scratch(folder, verbose=0)
    m = added["models"]["student_scratch"]
    # Same seeds, but the in-run baseline's shuffle order follows 4 earlier epochs
    # over the same dataset: equal up to 2-epoch noise (stated: 5 points).
    assert m["accuracy"] == pytest.approx(in_run["accuracy"], abs=0.05)
    again = add_scratch(without_scratch("again")[0], verbose=0)
    assert again["models"]["student_scratch"]["accuracy"] == m["accuracy"]  # reproducible
    assert len(m["epochs"]) == 2
    assert added["distillation_gain"] == pytest.approx(
        added["models"]["student"]["accuracy"] - m["accuracy"], abs=1e-4)
    assert added["total_seconds"] == report["total_seconds"]  # the pipeline's, unchanged
    assert added["scratch_seconds"] > 0
    assert json.loads((folder / "train_report.json").read_text()) == added
    assert {n: (folder / n).read_bytes() for n in before} == before
    assert {p.name for p in folder.iterdir()} == EXPECTED  # no temp or .partial left
    assert not (tmp_path / "run.scratch.partial").exists()
    with pytest.raises(EdgekdError, match="already has a scratch baseline"):
        add_scratch(folder, verbose=0)
    with pytest.raises(EdgekdError, match="not a finished distill run"):
        add_scratch(tmp_path, verbose=0)
