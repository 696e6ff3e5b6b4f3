"""Safety: one test (or a few) per way edgekd used to harm a user's files or
run their model files' code. Each asserts the exit code, the one error line,
and that every file that existed before is byte-identical afterwards."""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekd.errors import EdgekdError
from edgekd.formats import FORMATS
from tests.conftest import cli_in_process, small_npz, tree_digest


def _one_line(rc: int, lines: list[str], code: int, fragment: str) -> None:
    assert rc == code, lines
    assert len(lines) == 1, lines
    assert fragment in lines[0], lines
    assert "Traceback" not in lines[0]


def _image_folder(root: Path, classes=("a", "b"), n=3, size=(12, 12)) -> Path:
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


# 1. --out never replaces a folder edgekd did not make -------------------------

@pytest.mark.parametrize("case", ["unrelated folder", "working directory", "data folder"])
def test_out_never_replaces_a_users_folder(tmp_path, capsys, monkeypatch, case):
    data = small_npz(tmp_path / "data.npz")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("years of work")
    (mine / ".config").write_text("dotfile")
    photos = _image_folder(tmp_path / "photos")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "Makefile").write_text("all:\n")
    monkeypatch.chdir(tmp_path / "project")
    args = {"unrelated folder": ["--data", data, "--out", mine],
            "working directory": ["--data", data, "--out", "."],
            "data folder": ["--data", photos, "--out", photos]}[case]
    fragment = {"unrelated folder": "holds files edgekd did not make",
                "working directory": "it is the working directory",
                "data folder": "the data folder"}[case]
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process("distill", [*args, "--preset", "quick"], capsys)
    _one_line(rc, lines, 2, fragment)
    assert tree_digest(tmp_path) == before


def test_export_and_bench_refuse_folders_edgekd_did_not_make(tmp_path, capsys, mini_exported):
    folder = tmp_path / "art"
    shutil.copytree(mini_exported, folder, symlinks=True)
    (folder / ".edgekd").unlink()
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process("export", [folder], capsys)
    _one_line(rc, lines, 2, "is not an artifacts folder made by `python -m distill`")
    assert tree_digest(tmp_path) == before


# 2. --remote-dir on the board -------------------------------------------------

def _local_ssh(home: Path):
    """bench.remote._ssh, but the 'board' is a bash in `home` on this machine."""
    def run(target, command, opts, stdin=None, timeout=None):
        proc = subprocess.run(["bash", "-c", command], cwd=home, input=stdin,
                              capture_output=True, timeout=60)
        if proc.returncode:
            raise EdgekdError(f"{target.url}: remote command failed")
        return proc.stdout.decode()
    return run


@pytest.mark.parametrize("remote_dir", [".", "projects"])
def test_remote_dir_with_users_files_is_refused(tmp_path, capsys, monkeypatch, mini_exported,
                                                 remote_dir):
    home = tmp_path / "board-home"
    (home / "projects" / "artifacts").mkdir(parents=True)
    (home / "projects" / "artifacts" / "precious.txt").write_text("mine")
    (home / "projects" / "code").mkdir()
    (home / "artifacts").mkdir()
    (home / ".bashrc").write_text("# mine")
    monkeypatch.setattr("bench.remote._ssh", _local_ssh(home))
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process("bench", [mini_exported, "--target", "ssh://pi@board",
                                         "--remote-dir", remote_dir, "--no-progress",
                                         "--runs", "1", "--seconds", "0", "--threads", "1",
                                         "--formats", "tflite_fp32", "--roles", "student"],
                               capsys)
    _one_line(rc, lines, 2, f"--remote-dir {remote_dir} holds files edgekd did not make")
    assert tree_digest(tmp_path) == before


def test_remote_dir_empty_or_marked_is_used(tmp_path, monkeypatch):
    from bench.remote import REMOTE_MARKER, RemoteOptions, _remote_dir, parse_target
    home = tmp_path / "home"
    (home / "empty").mkdir(parents=True)
    monkeypatch.setattr("bench.remote._ssh", _local_ssh(home))
    target = parse_target("ssh://pi@board")
    for name in ("empty", "new dir 'quoted'"):
        assert _remote_dir(target, RemoteOptions(remote_dir=name)) == str(home / name)
        assert (home / name / REMOTE_MARKER).is_file()
    (home / "empty" / "artifacts").mkdir()  # marked: edgekd's own, reused
    assert _remote_dir(target, RemoteOptions(remote_dir="empty")) == str(home / "empty")


# 3. code in model files never runs --------------------------------------------

@pytest.fixture(scope="session")
def evil(tmp_path_factory):
    """A Lambda model (12x12x3 -> 3 logits) whose function writes `marker`,
    saved as .h5 and as a SavedModel, and a student_qat.h5 for export."""
    from distill.tfenv import keras
    root = tmp_path_factory.mktemp("evil")
    marker = root / "MARKER"
    fn = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")
    inp = keras.Input((12, 12, 3))
    out = keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.Lambda(fn, name="evil")(inp)))
    model = keras.Model(inp, out)
    model.save(root / "evil.h5")
    model.save(root / "evil_savedmodel", save_format="tf")
    marker.unlink()
    return {"h5": root / "evil.h5", "savedmodel": root / "evil_savedmodel", "marker": marker}


def test_the_lambda_runs_when_trusted(evil):
    """The control: the same files do run their code when the user trusts them."""
    from distill.safe_load import load
    for kind in ("h5", "savedmodel"):
        load(evil[kind], "teacher", trust_code=True)
        assert evil["marker"].read_text() == "ran"
        evil["marker"].unlink()


@pytest.mark.parametrize("kind", ["h5", "savedmodel"])
@pytest.mark.parametrize("flag", ["--teacher", "--student"])
def test_distill_refuses_model_code(tmp_path, capsys, evil, kind, flag):
    data = small_npz(tmp_path / "d.npz")
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process("distill", ["--data", data, "--out", tmp_path / "a", "--preset",
                                           "quick", flag, evil[kind]], capsys)
    _one_line(rc, lines, 2, "names class 'Lambda', which is not a Keras built-in")
    assert "--trust-model-code" in lines[0]
    assert not evil["marker"].exists()
    assert tree_digest(tmp_path) == before


def test_export_and_bench_keras_refuse_model_code(tmp_path, capsys, evil, mini_exported):
    folder = tmp_path / "art"
    shutil.copytree(mini_exported, folder, symlinks=True)
    shutil.copy(evil["h5"], folder / "student_qat.h5")
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process("export", [folder, "--formats", "tflite_qat"], capsys)
    _one_line(rc, lines, 2, "student_qat model")
    assert "names class 'Lambda'" in lines[0] and not evil["marker"].exists()
    assert tree_digest(tmp_path) == before
    # bench --keras loads manifest["models"]: point the student's record at the Lambda file
    shutil.copy(evil["h5"], folder / "student.keras")
    manifest = json.loads((folder / "manifest.json").read_text())
    from edgekd.manifest import sha256_file
    manifest["models"]["student"].update(sha256=sha256_file(folder / "student.keras"),
                                         bytes=(folder / "student.keras").stat().st_size)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process("bench", [folder, "--keras", "--roles", "student", "--formats",
                                         "tflite_fp32", "--no-progress", "--runs", "1",
                                         "--seconds", "0", "--threads", "1"], capsys)
    _one_line(rc, lines, 2, "names class 'Lambda'")
    assert not evil["marker"].exists()
    assert tree_digest(tmp_path) == before


# 4. nothing outside the artifacts folder is read or shipped -------------------

@pytest.mark.parametrize("path", ["../../x", "/etc/passwd", "link.tflite"])
def test_manifest_paths_outside_the_folder(tmp_path, capsys, mini_exported, path):
    folder = tmp_path / "art"
    shutil.copytree(mini_exported, folder, symlinks=True)
    (folder / "link.tflite").symlink_to("/etc/passwd")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["artifacts"][0]["path"] = path
    (folder / "manifest.json").write_text(json.dumps(manifest))
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process("bench", [folder, "--no-progress", "--target", "ssh://pi@board"],
                               capsys)
    _one_line(rc, lines, 2, f"{path!r} points outside the artifacts folder")
    assert tree_digest(tmp_path) == before
    from bench.remote import bundle
    with pytest.raises(EdgekdError, match="points outside"):
        bundle(folder, manifest, manifest["artifacts"][:1])


# 5. the host never reaches ssh as an option ------------------------------------

@pytest.mark.parametrize("url", ["ssh://-V", "ssh://-oProxyCommand=touch_pwned",
                                 "ssh://-oProxyCommand=x@host", "ssh://pi@-V"])
def test_ssh_option_hosts_are_refused(tmp_path, capsys, mini_exported, url):
    before = tree_digest(mini_exported)
    rc, lines = cli_in_process("bench", [mini_exported, "--target", url], capsys)
    _one_line(rc, lines, 2, "may not start with '-'")
    assert tree_digest(mini_exported) == before


def test_ssh_command_ends_options_before_the_host():
    from bench.remote import parse_target
    cmd = parse_target("ssh://pi@raspberrypi.local:2222").ssh(5)
    assert cmd[-2:] == ["--", "pi@raspberrypi.local"]


# 6. no writing through symlinks; re-export keeps what it did not make -----------

def test_bench_replaces_a_symlinked_report_and_keeps_its_target(tmp_path, mini_exported):
    from bench.run import BenchConfig, run
    folder = tmp_path / "art"
    shutil.copytree(mini_exported, folder, symlinks=True)
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"not a report")
    for name in ("report.png", "report.md", "bench.json"):
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(victim)
    run(folder, BenchConfig(runs=1, seconds=0, warmup_runs=0, warmup_seconds=0,
                            formats=("tflite_fp32",), roles=("student",)), progress=False)
    assert victim.read_bytes() == b"not a report"
    for name in ("report.md", "bench.json"):
        assert not (folder / name).is_symlink()
    assert json.loads((folder / "bench.json").read_text())["files"] == ["report.md", "report.png"]


def test_reexport_keeps_files_it_did_not_list(tmp_path, mini_exported):
    from export.run import run
    folder = tmp_path / "art"
    shutil.copytree(mini_exported, folder, symlinks=True)
    keep = {".notes": b"dotfile", "mine.tflite": b"user model", "other.onnx": b"user onnx",
            "sub/deep.txt": b"nested"}
    for name, data in keep.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
    old_listed = {a["path"] for a in json.loads((folder / "manifest.json").read_text())["artifacts"]}
    run(folder, ["onnx_fp32"], ("student",), log=lambda *_: None)
    for name, data in keep.items():
        assert (folder / name).read_bytes() == data
    now = {p.name for p in folder.iterdir()}
    assert "student_fp32.onnx" in now
    assert not (old_listed - {"student_fp32.onnx"}) & now  # the old exports are gone
    assert not list(tmp_path.glob(".art.*"))  # no staging folder left


# 7. training that cannot work is refused before it starts ---------------------

@pytest.mark.parametrize("case,fragment", [
    ("float01", "float images in [0, 1]"),
    ("tiny", "edgekd needs at least 8x8"),
    ("inf", "--temperature must be a finite number, got inf"),
])
def test_training_that_cannot_work(tmp_path, capsys, case, fragment):
    data = small_npz(tmp_path / "d.npz")
    args = ["--data", data, "--out", tmp_path / "a", "--preset", "quick"]
    if case == "float01":
        z = dict(np.load(data))
        z["x_train"] = z["x_train"] / 255.0
        np.savez(data, **z)
    elif case == "tiny":
        small_npz(data, shape=(2, 2, 3))
    else:
        args += ["--temperature", "inf"]
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process("distill", args, capsys)
    _one_line(rc, lines, 2, fragment)
    assert tree_digest(tmp_path) == before


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("where", ["keras", "artifact"])
def test_non_finite_outputs_fail_every_gate(fmt, where):
    from export.parity import compare
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(20, 3)).astype(np.float32)
    got = ref.copy()
    (ref if where == "keras" else got)[3, 1] = np.nan
    result = compare(ref, got, rng.integers(0, 3, 20), FORMATS[fmt])
    assert not result["passed"] and "NaN or infinite" in result["failures"][0]


# 8. a failed or killed run never traps the user -------------------------------

def _mini_args(data, out):
    return ["--data", data, "--out", out, "--preset", "quick", "--teacher-arch", "tiny_teacher",
            "--student-arch", "tiny_student", "--teacher-epochs", "1", "--epochs", "1",
            "--no-scratch", "--batch-size", "64", "--quiet"]


def test_corrected_command_after_a_failed_run(tmp_path, capsys):
    data = small_npz(tmp_path / "d.npz")
    bad = tmp_path / "bad.keras"
    bad.write_text("not a model")
    out = tmp_path / "a"
    rc, lines = cli_in_process("distill", [*_mini_args(data, out), "--teacher", bad], capsys)
    _one_line(rc, lines, 2, "cannot load teacher model")
    assert not (tmp_path / "a.partial").exists() and not out.exists()
    rc, lines = cli_in_process("distill", [*_mini_args(data, out), "--student-arch", "nosuch"],
                               capsys)
    _one_line(rc, lines, 2, "unknown student model 'nosuch'")
    assert not (tmp_path / "a.partial").exists()  # found before the teacher trained
    rc, lines = cli_in_process("distill", _mini_args(data, out), capsys)
    assert rc == 0, lines
    assert (out / "student.keras").is_file() and (out / ".edgekd").is_file()


def test_rerun_finishes_a_run_killed_while_moving_into_place(tmp_path, capsys, mini_artifacts):
    from distill.workdir import finish_complete
    config = (mini_artifacts / "config.json").read_text()
    out = tmp_path / "a"
    shutil.copytree(mini_artifacts, tmp_path / "a.partial")  # complete, not yet moved
    assert finish_complete(out, config)
    assert tree_digest(out) == tree_digest(mini_artifacts)
    assert not (tmp_path / "a.partial").exists()


def test_refused_resume_says_what_to_delete(tmp_path, capsys):
    data = small_npz(tmp_path / "d.npz")
    work = tmp_path / "a.partial"
    rc, _ = cli_in_process("distill", [*_mini_args(data, tmp_path / "a"), "--epochs", "2"],
                           capsys)
    assert rc == 0
    # a run with saved work in progress, then a different configuration
    shutil.copytree(tmp_path / "a", work)
    (work / "train_report.json").unlink()
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process("distill", [*_mini_args(data, tmp_path / "a"), "--epochs", "3"],
                               capsys)
    _one_line(rc, lines, 2, f"delete it with: rm -rf {work}")
    assert "epochs 2 -> 3" in lines[0]
    assert tree_digest(tmp_path) == before


def test_a_damaged_file_of_an_interrupted_run_says_what_to_delete(tmp_path, capsys):
    """A model file cut short in <out>.partial fails every rerun the same way:
    the one line says so and gives the rm -rf."""
    data = small_npz(tmp_path / "d.npz")
    work = tmp_path / "a.partial"
    rc, _ = cli_in_process("distill", [*_mini_args(data, tmp_path / "a")], capsys)
    assert rc == 0
    shutil.copytree(tmp_path / "a", work)
    (work / "train_report.json").unlink()
    teacher = (work / "teacher.keras").read_bytes()
    (work / "teacher.keras").write_bytes(teacher[:len(teacher) // 2])
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process("distill", _mini_args(data, tmp_path / "a"), capsys)
    _one_line(rc, lines, 2, f"left it damaged (killed while saving, or a full disk?); delete "
                            f"that run with: rm -rf {work}")
    assert "teacher.keras" in lines[0]
    assert tree_digest(tmp_path) == before


def test_interrupted_save_leaves_the_old_file_and_no_temp(tmp_path):
    from edgekd.atomic import atomic_path
    target = tmp_path / "student.keras"
    target.write_bytes(b"previous model")

    def killed_mid_save(path):
        path.write_bytes(b"half a mod")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            killed_mid_save(tmp)
    assert target.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["student.keras"]


# 9. environment failures: one line, exit 1, no temp file ------------------------

def test_full_disk_is_one_line_and_leaves_no_temp_file(tmp_path, capsys, monkeypatch,
                                                        mini_exported):
    folder = tmp_path / "art"
    shutil.copytree(mini_exported, folder, symlinks=True)
    before = tree_digest(tmp_path)
    real = Path.write_text

    def full(self, *a, **k):
        if self.name.startswith(".bench."):
            real(self, "{", encoding="utf-8")  # part of the file got out, then the disk filled
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)
    monkeypatch.setattr(Path, "write_text", full)
    rc, lines = cli_in_process("bench", [folder, "--no-progress", "--runs", "1", "--seconds",
                                         "0", "--threads", "1", "--formats", "tflite_fp32",
                                         "--roles", "student"], capsys)
    _one_line(rc, lines, 1, "No space left on device")
    assert tree_digest(tmp_path) == before
