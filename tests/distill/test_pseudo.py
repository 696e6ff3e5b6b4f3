"""--pseudo-label-threshold: which unlabeled photos the teacher labels, with
what, how long it trains on them, and a run that uses it."""

import json

import numpy as np
import pytest

from distill import pseudo
from distill.phases import Phase
from tests.conftest import error_lines, run_cli, small_npz
from tests.distill.test_unlabeled import _png


class _TableTeacher:
    """Logits looked up by the image's first pixel (its row number)."""

    def __init__(self, logits):
        self.table, self.calls = np.asarray(logits, np.float32), []

    def logits(self, x):
        self.calls.append(len(x))
        return self.table[np.asarray(x)[:, 0, 0, 0].astype(int)]


def test_confident_keeps_rows_at_or_over_the_threshold_with_the_argmax():
    # probabilities chosen, logits = their logs: softmax gives them back
    probs = np.array([[0.95, 0.03, 0.02],   # kept, class 0
                      [0.10, 0.85, 0.05],   # under 0.9
                      [0.02, 0.02, 0.96],   # kept, class 2
                      [0.34, 0.33, 0.33],   # under
                      [0.05, 0.91, 0.04]])  # kept, class 1
    x = np.zeros((5, 2, 2, 1), np.uint8)
    x[:, 0, 0, 0] = np.arange(5)
    teacher = _TableTeacher(np.log(probs))
    got = pseudo.confident(teacher, x, 0.9, 0.5)
    np.testing.assert_array_equal(got.rows, [0, 2, 4])
    np.testing.assert_array_equal(got.labels, [0, 2, 1])
    assert got.record(3) == {"threshold": 0.9, "used": 3, "of": 5, "per_class": [1, 1, 1],
                             "teacher_accuracy_before": 0.5}
    none = pseudo.confident(teacher, x, 0.99, 0.5)
    assert len(none.rows) == 0 and none.record(3)["per_class"] == [0, 0, 0]


def test_confident_reads_in_chunks(monkeypatch):
    monkeypatch.setattr(pseudo, "CHUNK", 2)
    probs = np.tile([[0.8, 0.2]], (5, 1))
    probs[3] = [0.1, 0.9]
    x = np.zeros((5, 1, 1, 1), np.uint8)
    x[:, 0, 0, 0] = np.arange(5)
    teacher = _TableTeacher(np.log(probs))
    got = pseudo.confident(teacher, x, 0.85, 0.0)
    assert teacher.calls == [2, 2, 1]
    np.testing.assert_array_equal(got.rows, [3])  # a row index of the whole array
    np.testing.assert_array_equal(got.labels, [1])


def test_joined_keeps_true_labels_and_adds_the_teachers():
    x_lab = np.full((3, 2, 2, 1), 7, np.uint8)
    y_lab = np.array([2, 0, 1])
    x_unl = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 1), np.uint8)
    labels = pseudo.PseudoLabels(np.array([1, 4]), np.array([2, 2]), 0.9, 5, 0.5)
    x, y = pseudo.joined(x_lab, y_lab, x_unl, labels, None)
    np.testing.assert_array_equal(y, [2, 0, 1, 2, 2])
    np.testing.assert_array_equal(x[:3], x_lab)
    np.testing.assert_array_equal(x[3:], x_unl[[1, 4]])


@pytest.mark.parametrize("last_epochs,n_labeled,n_joined,batch,want", [
    (10, 100, 1000, 32, 1),    # 40 steps before; 32 per epoch after: one epoch
    (10, 100, 150, 32, 8),     # 40 steps; 5 per epoch: 8 epochs
    (150, 186, 1600, 128, 23),  # 300 steps of 2; 13 per epoch: 23 epochs
    (1, 10, 5000, 32, 1),      # at least one epoch over the joined photos
])
def test_the_pseudo_phase_takes_as_many_steps_as_the_last_stage(last_epochs, n_labeled,
                                                                 n_joined, batch, want):
    last = Phase("teacher_labeled", lambda: None, False, last_epochs, 3e-4, schedule="onecycle",
                 optimizer="adam", weight_decay=0.0, seed_offset=0,
                 save_as="teacher_labeled.keras")
    model, batches = object(), object()
    ph = pseudo.phase(last, model, batches, n_labeled, n_joined, batch, "teacher")
    assert ph.epochs == want
    assert (ph.role, ph.save_as, ph.data, ph.make()) == ("teacher", None, batches, model)
    # the last stage's recipe, continued
    assert (ph.lr, ph.schedule, ph.optimizer, ph.weight_decay) == (3e-4, "onecycle", "adam", 0.0)


def test_record_of_rounds_gives_the_last_rounds_photos_and_the_first_accuracy():
    first = pseudo.PseudoLabels(np.array([0, 3]), np.array([1, 1]), 0.9, 6, 0.5)
    second = pseudo.PseudoLabels(np.array([0, 2, 3, 5]), np.array([1, 0, 1, 1]), 0.9, 6, 0.75)
    got = pseudo.record([first, second], 2)
    assert (got["used"], got["of"], got["per_class"]) == (4, 6, [1, 3])
    assert got["teacher_accuracy_before"] == 0.5  # before any pseudo-label
    assert [r["used"] for r in got["rounds"]] == [2, 4]
    assert [r["teacher_accuracy_before"] for r in got["rounds"]] == [0.5, 0.75]


def test_each_round_shuffles_and_augments_afresh():
    last = Phase("teacher_labeled", lambda: None, False, 10, 3e-4, seed_offset=0)
    offsets = {pseudo.phase(last, None, None, 10, 20, 5, role).seed_offset
               for role in ("teacher", pseudo.round_stage(1), pseudo.round_stage(2))}
    assert len(offsets) == 3


@pytest.mark.parametrize("preset,given,want", [
    ("default", {}, 0.95),                                # the default preset's
    ("default", {"pseudo_label_threshold": 0.8}, 0.8),    # a threshold given wins
    ("default", {"pseudo_label_threshold": 0.0}, None),   # 0: off
    ("default", {"pseudo_label_rounds": 2}, 0.95),        # rounds of the default threshold
    ("default", {"teacher_path": "t.keras"}, None),       # a supplied teacher trains no more
    ("default", {"unlabeled": None}, None),               # nothing to label
    ("latency", {}, 0.95),                                # the default's recipe
    ("quick", {}, None),                                  # smoke runs stay short
])
def test_pseudo_labels_by_default_where_a_teacher_trains_here(preset, given, want):
    from distill.config import resolve
    args = {"data": "d.npz", "unlabeled": ("camera",), **given}
    assert resolve(preset, **args).pseudo_label_threshold == want


@pytest.mark.parametrize("flags,msg", [
    (["--pseudo-label-threshold", "0.9"], "add --unlabeled DIR"),
    (["--preset", "quick", "--pseudo-label-rounds", "2", "--unlabeled", "U"],  # no default P
     "add --pseudo-label-threshold P"),
    (["--pseudo-label-threshold", "0.9", "--pseudo-label-rounds", "0", "--unlabeled", "U"],
     "pseudo-label rounds must be in [1, 10], got 0"),
    (["--pseudo-label-threshold", "1.5", "--unlabeled", "U"], "must be in (0, 1)"),
    (["--pseudo-label-threshold", "0.9", "--unlabeled", "U", "--teacher", "T.keras"],
     "a supplied --teacher is used as it is"),
])
def test_bad_pseudo_label_flags_get_one_line(tmp_path, flags, msg):
    data = small_npz(tmp_path / "d.npz")
    (tmp_path / "U").mkdir()
    _png(tmp_path / "U" / "a.png", np.zeros((12, 12, 3)))
    flags = [str(tmp_path / f) if f in ("U", "T.keras") else f for f in flags]
    proc = run_cli("distill", "--data", str(data), "--out", str(tmp_path / "art"), *flags)
    lines = error_lines(proc)
    assert proc.returncode != 0 and len(lines) == 1 and msg in lines[0], lines
    assert not (tmp_path / "art").exists() and not (tmp_path / "art.partial").exists()


def _unlabeled_like(data, folder, n):
    """Photos drawn like the data's own (class means plus noise), no labels."""
    with np.load(data) as z:
        x, y = z["x_train"].astype(np.float32), z["y_train"]
    means = np.stack([x[y == c].mean(axis=0) for c in np.unique(y)])
    rng = np.random.default_rng(5)
    for i in range(n):
        _png(folder / f"{i:03d}.png",
             np.clip(means[i % len(means)] + rng.normal(0, 30, x.shape[1:]), 0, 255))


def test_run_with_pseudo_labels_records_them(tmp_path):
    data = small_npz(tmp_path / "d.npz", n_train=200, n_test=60, shape=(16, 16, 3))
    _unlabeled_like(data, tmp_path / "camera", 60)
    out = tmp_path / "art"
    # 0.05 is under 1/3, the least top probability of 3 classes: every photo is kept
    proc = run_cli("distill", "--data", str(data), "--preset", "quick", "--teacher-arch",
                   "tiny_teacher", "--student-arch", "tiny_student", "--epochs", "1",
                   "--teacher-epochs", "2", "--batch-size", "32", "--unlabeled",
                   str(tmp_path / "camera"), "--pseudo-label-threshold", "0.05", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pseudo-labels: 60 of 60 unlabeled photos at p >= 0.05" in proc.stdout
    report = json.loads((out / "train_report.json").read_text())
    teacher = report["models"]["teacher"]
    record = teacher["pseudo_labels"]
    assert (record["used"], record["of"], sum(record["per_class"])) == (60, 60, 60)
    assert 0.0 <= record["teacher_accuracy_before"] <= 1.0
    # 2 epochs on the labeled photos (7 steps each), then 14 steps over 260: 2 epochs
    assert len(teacher["epochs"]) == 4
    assert report["images_seen"]["teacher"] == {"labeled": 200, "unlabeled": 60,
                                                "pseudo_labels": True}
    assert report["images_seen"]["student"] == {"labeled": 200, "unlabeled": 60}
    assert report["config"]["pseudo_label_threshold"] == 0.05
    assert not (out / "teacher_labeled.keras").exists() and (out / "teacher.keras").is_file()
    from bench.report import _images_seen
    assert _images_seen({"images_seen": report["images_seen"]})[0].startswith(
        "Training images: teacher 200 labeled + 60 unlabeled (pseudo-labeled); student 200 "
        "labeled + 60 unlabeled")


def test_two_rounds_relabel_with_the_first_rounds_teacher(tmp_path, monkeypatch):
    from distill.config import resolve
    from distill.run import run
    data = small_npz(tmp_path / "d.npz", n_train=200, n_test=60, shape=(16, 16, 3))
    _unlabeled_like(data, tmp_path / "camera", 30)
    seen, real = [], pseudo.confident

    def spy(teacher, x, threshold, before):
        seen.append(teacher.logits(x[:4]))
        got = real(teacher, x, threshold, before)  # 0.05: every photo, round 1; then 10 of them
        return got if len(seen) == 1 else pseudo.PseudoLabels(
            got.rows[:10], got.labels[:10], threshold, got.of, before)
    monkeypatch.setattr(pseudo, "confident", spy)
    cfg = resolve("quick", data=str(data), teacher_arch="tiny_teacher",
                  student_arch="tiny_student", epochs=1, teacher_epochs=2, batch_size=32,
                  scratch=False, unlabeled=(str(tmp_path / "camera"),),
                  pseudo_label_threshold=0.05, pseudo_label_rounds=2)
    out = tmp_path / "art"
    report = run(cfg, out, verbose=0)
    assert len(seen) == 2 and not np.allclose(seen[0], seen[1])  # a teacher trained between
    teacher = report["models"]["teacher"]
    record = teacher["pseudo_labels"]
    assert [r["used"] for r in record["rounds"]] == [30, 10] and record["used"] == 10
    # 2 epochs of 7 steps on the labeled photos; each round 14 steps: over 230, 2 epochs;
    # over 210, 2 epochs
    assert len(teacher["epochs"]) == 2 + 2 + 2
    assert report["images_seen"]["teacher"] == {"labeled": 200, "unlabeled": 10,
                                                "pseudo_labels": True}
    assert not list(out.glob("teacher_round*")) and (out / "teacher.keras").is_file()


def test_no_confident_photo_keeps_the_labeled_teacher(tmp_path, monkeypatch):
    from distill.config import resolve
    from distill.run import run
    data = small_npz(tmp_path / "d.npz", n_train=200, n_test=60, shape=(16, 16, 3))
    _unlabeled_like(data, tmp_path / "camera", 20)
    nothing = pseudo.PseudoLabels(np.zeros(0, np.int64), np.zeros(0, np.int64), 0.9, 20, 0.5)
    monkeypatch.setattr(pseudo, "confident", lambda *args: nothing)
    cfg = resolve("quick", data=str(data), teacher_arch="tiny_teacher",
                  student_arch="tiny_student", epochs=1, teacher_epochs=1, batch_size=32,
                  scratch=False, unlabeled=(str(tmp_path / "camera"),),
                  pseudo_label_threshold=0.9)
    out = tmp_path / "art"
    report = run(cfg, out, verbose=0)
    teacher = report["models"]["teacher"]
    assert teacher["pseudo_labels"]["used"] == 0 and len(teacher["epochs"]) == 1
    assert report["images_seen"]["teacher"] == {"labeled": 200, "unlabeled": 0,
                                                "pseudo_labels": True}
    # the student learnt from the labeled teacher, saved under the teacher's own name
    assert (out / "teacher.keras").is_file() and not (out / "teacher_labeled.keras").exists()


@pytest.mark.slow
def test_resume_of_a_run_killed_in_the_pseudo_label_phase(tmp_path):
    """Killed while the teacher learns the pseudo-labels; the same command
    resumes it (the labeled teacher reloaded, the same photos relabeled)."""
    import subprocess
    import sys

    from tests.conftest import ROOT, killed_after_first_epoch
    data = small_npz(tmp_path / "d.npz", n_train=200, n_test=60, shape=(16, 16, 3))
    _unlabeled_like(data, tmp_path / "camera", 60)
    out = tmp_path / "art"
    # 8 epochs of 25 steps on the labeled photos, then 200 steps of 33: 6 epochs
    cmd = [sys.executable, "-m", "distill", "--data", str(data), "--preset", "quick",
           "--teacher-arch", "tiny_teacher", "--student-arch", "tiny_student",
           "--teacher-epochs", "8", "--epochs", "1", "--batch-size", "8", "--no-scratch",
           "--unlabeled", str(tmp_path / "camera"), "--pseudo-label-threshold", "0.05",
           "--out", str(out)]
    first = killed_after_first_epoch(cmd, out.parent / "art.partial" / "_checkpoints"
                                     / "teacher_epochs.json")
    assert 1 <= len(first) < 6, "the run must be killed in the pseudo-label phase"
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming the interrupted run" in done.stdout
    teacher = json.loads((out / "train_report.json").read_text())["models"]["teacher"]
    assert len(teacher["epochs"]) == 8 + 6 and teacher["epochs"][8] == first[0]
    assert teacher["pseudo_labels"]["used"] == 60
