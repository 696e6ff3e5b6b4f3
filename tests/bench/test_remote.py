"""bench --target over a real ssh connection to a loopback sshd (x86 here;
tests/arm runs the same path against an emulated aarch64 board)."""

import json
import shutil
import sys

import pytest

from bench.remote import Target, parse_target
from edgekd.errors import EdgekdError
from tests import sshd
from tests.conftest import error_lines, run_cli


def test_parse_target():
    assert parse_target("ssh://pi@raspberrypi.local:2222") == Target(
        "ssh://pi@raspberrypi.local:2222", "raspberrypi.local", "pi", 2222)
    assert parse_target("ssh://jetson") == Target("ssh://jetson", "jetson", None, None)
    for bad in ("pi@host", "ssh://", "ssh://a@b:99999", "ssh://a@b:22/x; rm -rf /"):
        with pytest.raises(EdgekdError, match="bad --target"):
            parse_target(bad)


def test_newlines_in_a_target_are_refused():
    """`$` matches before a final newline: the names are checked whole."""
    for bad in ("ssh://pi\n@host", "ssh://host\n-oProxyCommand=x", "ssh://pi@ho\nst:22"):
        with pytest.raises(EdgekdError, match="bad --target"):
            parse_target(bad)


def test_remote_dir_tilde_is_the_remote_home():
    """Quoted for the board's shell, `~` would not expand: edgekd makes it
    relative to the home ssh starts in; `~user` is refused."""
    from bench.remote import RemoteOptions, remote_path
    assert remote_path("~") == "." and remote_path("~/") == "."
    assert remote_path("~/bench/run1") == "bench/run1"
    assert remote_path("/tmp/x") == "/tmp/x" and remote_path("edgekd-bench") == "edgekd-bench"
    for bad, why in (("~pi/x", "~user is not expanded"), ("", "give a folder name"),
                     ("a\nb", "give a folder name")):
        with pytest.raises(EdgekdError, match=why):
            RemoteOptions(remote_dir=bad)


@pytest.fixture()
def board(tmp_path):
    try:
        b = sshd.start(tmp_path / "sshd")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield b
    b.stop()


@pytest.mark.ssh
def test_remote_bench_with_awkward_paths(tmp_path, exported, board):
    # spaces and quotes in both the local and the remote path
    local = tmp_path / "my 'local' artifacts"
    shutil.copytree(exported, local)
    remote_dir = tmp_path / "remote dir \"with\" 'quotes'"
    proc = run_cli("bench", str(local), "--target", board.url, "--ssh-config", str(board.config),
                   "--remote-dir", str(remote_dir), "--remote-python", sys.executable,
                   "--formats", "tflite_int8,onnx_fp32",
                   "--roles", "student", "--threads", "1", "--runs", "3", "--seconds", "0",
                   "--warmup-runs", "1", "--warmup-seconds", "0", "--eval-limit", "300",
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((local / "bench.json").read_text())
    (remote,) = result["targets"]
    assert remote["target"] == board.url
    assert (remote_dir / "artifacts" / "bench.json").is_file()
    # only what the bench needs was copied
    shipped = {p.name for p in (remote_dir / "artifacts").iterdir()} - {
        "bench.json", "report.md", "report.png"}  # the remote bench's own outputs
    assert shipped == {"eval.npz", "manifest.json", "reference.npz", "student_fp32.onnx",
                       "student_int8.tflite"}
    for mine, theirs in zip(result["artifacts"], remote["artifacts"]):
        assert mine["name"] == theirs["name"]
        assert mine["predictions"] == theirs["predictions"]  # same machine: identical
    report = (local / "report.md").read_text()
    assert "## All targets" in report and f"{board.url} agree %" in report


def test_unreachable_board_is_one_line(exported, tmp_path):
    port = sshd.free_port()  # nothing listens there
    proc = run_cli("bench", str(exported), "--target", f"ssh://root@127.0.0.1:{port}",
                   "--formats", "tflite_int8", "--roles", "student", "--runs", "1",
                   "--seconds", "0", "--threads", "1", "--no-progress", "--eval-limit", "10")
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1 and f"cannot reach ssh://root@127.0.0.1:{port}" in lines[0], lines


@pytest.mark.ssh
def test_old_remote_python_is_refused(exported, board, tmp_path):
    old = tmp_path / "python3.8"
    old.write_text("#!/bin/sh\necho '3.8 '\n")
    old.chmod(0o755)
    proc = run_cli("bench", str(exported), "--target", board.url, "--ssh-config",
                   str(board.config), "--remote-python", str(old), "--remote-dir",
                   str(tmp_path / "r"), "--formats", "tflite_int8", "--roles", "student",
                   "--runs", "1", "--seconds", "0", "--threads", "1", "--no-progress")
    assert proc.returncode == 2
    assert "is Python 3.8; bench needs >= 3.10" in error_lines(proc)[0]
