"""Shared fixtures: one tiny but real artifacts folder per test session
(Fashion-MNIST subset, tiny teacher and student), exported once."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
# 2,500 + 500 real Fashion-MNIST images, committed (tests/data/README.md): the
# default suite trains on real data with no data set installed.
FASHION_SMALL = str(ROOT / "tests" / "data" / "fashion_mnist_small.npz")


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m <args>` as a user runs it, but in this process (TensorFlow
    starts once per test session): exit code, stdout and stderr."""
    import contextlib
    import importlib
    import io

    from edgekd.errors import run_cli as wrap
    stage, argv = args[0], [str(a) for a in args[1:]]
    module = importlib.import_module(stage)  # a stage's package (its .cli) or a command module
    main = getattr(module, "main", None) or importlib.import_module(f"{stage}.cli").main
    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        os.chdir(cwd or ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = wrap(main, f"python -m {stage}", argv)
            except SystemExit as exc:  # argparse's usage errors and --help
                rc = exc.code
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def killed_after_first_epoch(cmd: list[str], log: Path) -> list[dict]:
    """Start `cmd`, SIGKILL it once `log` (an epoch log) holds an epoch, and
    return that log. The deadline only stops a hung run; nothing is timed."""
    import json
    import signal
    import time

    def logged() -> int:
        try:
            return len(json.loads(log.read_text()))
        except (OSError, ValueError):
            return 0
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while logged() < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return json.loads(log.read_text())


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """stderr lines that are not TensorFlow/absl start-up noise."""
    noise = ("WARNING: All log messages", "I0000", "W0000", "E0000")
    return [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith(noise)]


def small_npz(path: Path, n_train=600, n_test=200, shape=(12, 12, 3), classes=3, seed=0) -> Path:
    """A learnable synthetic set: each class has its own mean colour pattern."""
    rng = np.random.default_rng(seed)
    protos = rng.integers(40, 215, size=(classes, *shape))
    def make(n):
        y = rng.integers(0, classes, n)
        x = np.clip(protos[y] + rng.normal(0, 30, (n, *shape)), 0, 255).astype(np.uint8)
        return x, y
    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


@pytest.fixture(scope="session", autouse=True)
def deterministic_ops():
    """Seeds fix the initial weights and the data order, but TensorFlow's
    multi-threaded CPU kernels still sum in varying order: the same seeded run
    scored 0.38 and 0.66 (scratch student) in one process. With op determinism
    every training test gives the same numbers on every run, busy machine or not."""
    from distill.tfenv import tf
    tf.config.experimental.enable_op_determinism()


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory) -> Path:
    """distill on the 2,500 committed Fashion-MNIST images, tiny models, 2 epochs each."""
    from distill.config import resolve
    from distill.run import run
    out = tmp_path_factory.mktemp("tiny") / "artifacts"
    cfg = resolve("quick", data=FASHION_SMALL, teacher_arch="tiny_teacher",
                  student_arch="tiny_student", teacher_epochs=2, epochs=2,
                  train_subset=3000, learning_rate=3e-3, calib_size=200, batch_size=64)
    run(cfg, out, verbose=0)
    return out


@pytest.fixture(scope="session")
def exported(tmp_path_factory, tiny_artifacts) -> Path:
    """tiny_artifacts exported to every format (a copy: tests may tamper with it)."""
    from edgekd.formats import FORMATS
    from export.run import run
    folder = tmp_path_factory.mktemp("exported") / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    run(folder, list(FORMATS), ("teacher", "student"), log=lambda *_: None)
    return folder


@pytest.fixture()
def exported_copy(tmp_path, exported) -> Path:
    """A private copy of the exported folder, for tests that modify it."""
    dst = tmp_path / "artifacts"
    shutil.copytree(exported, dst)
    return dst


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry below `root` (dotfiles, links and folders too) -> its sha256,
    link target or "dir": equal digests mean nothing was added, removed or changed."""
    import hashlib
    out = {}
    for path in sorted(Path(root).rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[key] = "dir"
        else:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def cli_in_process(stage: str, args, capsys) -> tuple[int, list[str]]:
    """run_cli's exit code and the non-empty lines it printed on stderr."""
    proc = run_cli(stage, *args, cwd=Path.cwd())
    return proc.returncode, [line for line in proc.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def mini_artifacts(tmp_path_factory) -> Path:
    """A real distill run on generated data (12x12 RGB, 3 classes, tiny models,
    one epoch each): seconds, and no data set to install."""
    from distill.config import resolve
    from distill.run import run
    root = tmp_path_factory.mktemp("mini")
    data = small_npz(root / "data.npz")
    cfg = resolve("quick", data=str(data), teacher_arch="tiny_teacher",
                  student_arch="tiny_student", teacher_epochs=1, epochs=1, train_subset=None,
                  calib_size=50, batch_size=64, learning_rate=3e-3)
    run(cfg, root / "artifacts", verbose=0)
    return root / "artifacts"


@pytest.fixture(scope="session")
def mini_exported(tmp_path_factory, mini_artifacts) -> Path:
    """mini_artifacts exported to the float formats and full int8 TFLite."""
    from export.run import run
    folder = tmp_path_factory.mktemp("mini_exported") / "artifacts"
    shutil.copytree(mini_artifacts, folder, symlinks=True)
    run(folder, ["tflite_fp32", "tflite_int8", "onnx_fp32"], ("teacher", "student"),
        log=lambda *_: None)
    return folder
