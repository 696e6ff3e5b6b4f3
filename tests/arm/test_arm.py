"""Artifacts and the runtime-only bench on emulated aarch64 (a Pi 4's
Cortex-A72 under QEMU user mode), locally and as an SSH target.

Marked `arm` (run by `make test-arm`): builds the sysroot with
scripts/arm-sysroot.sh on first use (~2 min, needs the package registries)."""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from tests import sshd
from tests.conftest import FASHION_SMALL, ROOT

pytestmark = pytest.mark.arm
SYSROOT = os.environ.get("EDGEKD_ARM_SYSROOT", "/var/tmp/edgekd-arm/sysroot")
FAST = ["--threads", "1", "--runs", "3", "--seconds", "0", "--warmup-runs", "1",
        "--warmup-seconds", "0", "--eval-limit", "200", "--no-progress"]


@pytest.fixture(scope="session")
def arm_python():
    subprocess.run(["bash", str(ROOT / "scripts" / "arm-sysroot.sh"), SYSROOT], check=True,
                   env={**os.environ, "PIP": f"{sys.executable} -m pip"})
    return os.path.join(SYSROOT, "bin-host", "python3")


@pytest.fixture(scope="session")
def seed_student(tmp_path_factory):
    """The seed student (tutorial architecture), briefly distilled, every format."""
    from distill.config import resolve
    from distill.run import run as distill
    from edgekd.formats import FORMATS
    from export.run import run as export
    out = tmp_path_factory.mktemp("arm") / "seed student"
    distill(resolve("quick", data=FASHION_SMALL, teacher_arch="tiny_teacher",
                    student_arch="seed_student", teacher_epochs=1, epochs=1,
                    train_subset=2000, scratch=False, calib_size=100), out, verbose=0)
    export(out, list(FORMATS), ("student",), log=lambda *_: None)
    return out


def _bench(python, folder, *extra):
    start = time.time()
    proc = subprocess.run([python, "-m", "bench", str(folder), *FAST, *extra], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=3000)
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    return json.loads((folder / "bench.json").read_text()), time.time() - start


def _check_agreement(x86_rows, arm_rows):
    """float: max |diff| within 1e-5 of the logit range (NEON and AVX kernels sum in
    different orders: absolute diffs of ~2e-5 on logits of ~5 are float32 noise);
    int8: identical top-1 on every image."""
    for mine, theirs in zip(x86_rows, arm_rows):
        assert mine["name"] == theirs["name"]
        a, b = np.asarray(mine["logits_head"]), np.asarray(theirs["logits_head"])
        diff = float(np.max(np.abs(a - b)))
        agree = np.mean(np.asarray(mine["predictions"]) == np.asarray(theirs["predictions"]))
        print(f"{mine['name']:<24} max|diff| {diff:.2e} (range {np.ptp(a):.1f}) "
              f"top-1 agreement {100 * agree:.2f} %")
        if mine["precision"] in ("fp32", "fp16"):
            assert diff <= 1e-5 * np.ptp(a), mine["name"]
            assert mine["accuracy"] == theirs["accuracy"]
        else:  # int8 kernels: identical decisions
            assert mine["predictions"] == theirs["predictions"], mine["name"]


def test_emulated_aarch64_matches_x86(arm_python, seed_student, tmp_path):
    arm_folder = tmp_path / "arm copy"
    shutil.copytree(seed_student, arm_folder)
    x86, _ = _bench(sys.executable, seed_student)
    arm, seconds = _bench(arm_python, arm_folder)
    assert arm["machine"]["arch"] == "aarch64" and arm["machine"]["emulated"]
    assert arm["machine"]["cpu"] == "Cortex-A72"
    assert len(arm["artifacts"]) == 6
    _check_agreement(x86["artifacts"], arm["artifacts"])
    assert "emulated: latency is meaningless" in (arm_folder / "report.md").read_text()
    print(f"emulated bench of 6 artifacts: {seconds:.0f} s")


def test_ssh_target_is_an_emulated_pi(arm_python, seed_student, tmp_path):
    board = sshd.start(tmp_path / "sshd", bin_dir=os.path.dirname(arm_python))
    try:
        folder = tmp_path / "art"
        shutil.copytree(seed_student, folder)
        result, _ = _bench(sys.executable, folder, "--target", board.url, "--ssh-config",
                           str(board.config), "--remote-dir", str(tmp_path / "pi home"),
                           "--formats", "tflite_fp32,tflite_int8,onnx_int8")
    finally:
        board.stop()
    (pi,) = result["targets"]
    assert pi["machine"]["arch"] == "aarch64" and pi["machine"]["emulated"]
    _check_agreement(result["artifacts"], pi["artifacts"])
    report = (folder / "report.md").read_text()
    assert "aarch64" in report and "EMULATED, latency meaningless" in report
