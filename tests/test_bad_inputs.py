"""Bad input, table-driven: every case gets its exit code and one error line
with the expected fragment, no traceback, and leaves every file as it was
(nothing added, removed or changed anywhere under the test's folder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import cli_in_process, small_npz, tree_digest


class Case:
    """A world in tmp (data, a copy of a real artifacts folder), the command's
    arguments in it, and what the user must see."""

    def __init__(self, tmp: Path, exported: Path, monkeypatch=None):
        self.tmp, self.exported, self.monkeypatch = tmp, exported, monkeypatch

    def env(self, **values: str) -> list:
        """Set environment variables for the command; no arguments of its own."""
        for name, value in values.items():
            self.monkeypatch.setenv(name, value)
        return []

    @property
    def data(self) -> Path:
        return small_npz(self.tmp / "data.npz")

    def npz(self, **changes) -> Path:
        path = self.tmp / "bad.npz"
        with np.load(self.data) as z:
            arrays = {k: z[k] for k in z.files}
        arrays.update(changes)
        np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
        return path

    def folder(self, **damage) -> Path:
        """A copy of the exported artifacts; damage: name -> bytes, or a callable."""
        dst = self.tmp / "art"
        if not dst.exists():
            shutil.copytree(self.exported, dst, symlinks=True)
        for name, what in damage.items():
            path = dst / name.replace("__", ".")
            if callable(what):
                what(path)
            else:
                path.unlink(missing_ok=True)
                path.write_bytes(what)
        return dst

    def manifest(self, edit) -> Path:
        dst = self.folder()
        m = json.loads((dst / "manifest.json").read_text())
        edit(m)
        (dst / "manifest.json").write_text(json.dumps(m))
        return dst

    def out(self) -> Path:
        return self.tmp / "out"

    def bench_json(self, *rows: dict) -> Path:
        """A bench.json in a copy of the exported folder holding these artifact
        rows (--latency-from): their files are the export's."""
        path = self.folder() / "bench.json"
        path.write_text(json.dumps({"machine": {"cpu": "Test CPU"}, "artifacts": list(rows)}))
        return path


def _timed(role: str, fmt: str, p50_ms: float, macs: int, threads: str = "1",
           path: str = "student_int8.tflite") -> dict:
    return {"name": f"{role}_{fmt}", "role": role, "format": fmt, "macs": macs, "path": path,
            "latency": {threads: {"p50_ms": p50_ms}}}


def _images(root: Path, classes=("a", "b"), corrupt=False) -> Path:
    from PIL import Image
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((10, 10, 3), 40 * i, np.uint8)).save(root / c / f"{i}.png")
    if corrupt:
        (root / classes[0] / "broken.png").write_bytes(b"\x89PNG not really")
    return root


def _onnx_teacher(path: Path, inputs=1, outputs=1, domain="") -> Path:
    """A 12x12x3 -> 3 logits ONNX teacher (onnx.helper only): extra inputs or
    outputs, or its one op in a custom domain."""
    import onnx
    from onnx import TensorProto, helper
    info = helper.make_tensor_value_info
    nodes = [helper.make_node("GlobalAveragePool" if not domain else "EvilOp", ["x"], ["p"],
                              domain=domain),
             helper.make_node("Flatten", ["p"], ["logits"])]
    ins = [info(f"x{i}" if i else "x", TensorProto.FLOAT, ["n", 3, 12, 12]) for i in range(inputs)]
    outs = [info("logits", TensorProto.FLOAT, ["n", 3])]
    for i in range(1, outputs):
        nodes.append(helper.make_node("Identity", ["logits"], [f"copy{i}"]))
        outs.append(info(f"copy{i}", TensorProto.FLOAT, ["n", 3]))
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph(nodes, "t", ins, outs), opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _foreign(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "notes.txt").write_text("mine")
    return path


def _link_outside(path: Path) -> None:
    path.unlink()
    path.symlink_to("/etc/hostname")


def _quick(c: Case, *args, data=None):
    return ["--data", data or c.data, "--out", c.out(), "--preset", "quick", *args]


D, E, B, P = "distill", "export", "bench", "bench.predict"
CASES = [
    # distill: flags
    (D, lambda c: _quick(c, "--temperature", "0"), 2, "temperature must be > 0"),
    (D, lambda c: _quick(c, "--temperature", "inf"), 2, "--temperature must be a finite number"),
    (D, lambda c: _quick(c, "--temperature", "nan"), 2, "--temperature must be a finite number"),
    (D, lambda c: _quick(c, "--alpha", "1.5"), 2, "alpha must be in [0, 1]"),
    (D, lambda c: _quick(c, "--loss", "l1"), 2, "argument --loss: invalid choice: 'l1'"),
    (D, lambda c: _quick(c, "--learning-rate", "-1"), 2, "learning rate must be > 0"),
    (D, lambda c: _quick(c, "--learning-rate", "inf"), 2, "--learning-rate must be a finite"),
    (D, lambda c: _quick(c, "--seed", "-1"), 2, "seed must be in [0, 2**31)"),
    (D, lambda c: _quick(c, "--batch-size", "0"), 2, "batch size must be >= 1"),
    (D, lambda c: _quick(c, "--batch-size", "abc"), 2, "argument --batch-size: invalid int"),
    (D, lambda c: _quick(c, "--epochs", "-1"), 2, "epochs must be >= 0"),
    (D, lambda c: _quick(c, "--val-split", "1.5"), 2, "val split must be in (0, 1)"),
    (D, lambda c: _quick(c, "--min-steps", "-1"), 2, "min steps must be >= 0, got -1"),
    (D, lambda c: _quick(c, "--image-size", "4"), 2, "image size must be in [8, 1024], got 4"),
    (D, lambda c: _quick(c, "--image-size", "5000"), 2, "image size must be in [8, 1024], got 5000"),
    (D, lambda c: _quick(c, "--resize", "squash"), 2, "argument --resize: invalid choice: 'squash'"),
    (D, lambda c: _quick(c, "--student-macs", "10"), 2, "--student-macs must be a number of "
     "multiply-accumulates >= 1e5"),
    (D, lambda c: _quick(c, "--student-macs", "1e7", "--student-arch", "edge_res"), 2,
     "--student-macs picks the student's architecture: pass it or --student-arch, not both"),
    (D, lambda c: _quick(c, "--student-macs", "1e5", "--image-size", "64"), 2,
     "no student fits 0.1M MACs at 64x64: the smallest, edge_res_x0.25_p16"),
    (D, lambda c: _quick(c, "--student-ms", "1"), 2, "--student-ms needs --latency-from "
     "BENCH_JSON: the bench.json of a run benched on your target"),
    (D, lambda c: _quick(c, "--student-ms", "-1", "--latency-from", "b.json"), 2,
     "--student-ms must be a positive number of milliseconds, got -1.0"),
    (D, lambda c: _quick(c, "--student-ms", "1", "--student-arch", "edge_res"), 2,
     "--student-ms picks the student's architecture: pass it or --student-arch, not both"),
    (D, lambda c: _quick(c, "--student-ms", "1", "--student-macs", "1e7", "--latency-from",
                         "b.json"), 2, "--student-ms picks a student: pass it or --student-macs"),
    (D, lambda c: _quick(c, "--latency-from", "b.json"), 2,
     "--latency-from is the rate for --student-ms: pass both"),
    (D, lambda c: _quick(c, "--latency-target", "local"), 2,
     "--latency-target chooses the machine for --student-ms: pass both"),
    (D, lambda c: _quick(c, "--student-ms", "1", "--latency-from", c.tmp / "missing.json"), 2,
     "missing.json not found"),
    (D, lambda c: _quick(c, "--student-ms", "1", "--latency-from", c.bench_json(
        _timed("teacher", "tflite_int8", 1.0, 10**8))), 2,
     "has no student or student_scratch row in tflite_int8 (it has: teacher_tflite_int8)"),
    (D, lambda c: _quick(c, "--student-ms", "1", "--latency-threads", "4", "--latency-from",
                         c.bench_json(_timed("student", "tflite_int8", 0.3, 10**7))), 2,
     "student_tflite_int8 was not timed at 4 thread(s) (timed: 1)"),
    (D, lambda c: _quick(c, "--student-ms", "1", "--latency-from", c.bench_json(
        _timed("student", "tflite_int8", 0.3, 10**7, path="gone.tflite"))), 2,
     "student_tflite_int8's file"),
    (D, lambda c: _quick(c, "--student-ms", "1", "--latency-from", c.bench_json(
        _timed("student", "tflite_int8", 0.3, 10**7, path="../../x.tflite"))), 2,
     "outside"),
    (D, lambda c: _quick(c, "--student-ms", "0.001", "--image-size", "64", "--latency-from",
                         c.bench_json(_timed("student", "tflite_int8", 0.3, 10**7))), 2,
     "no student fits 0.001 ms at 64x64: the smallest, edge_res_x0.25_p16, needs"),
    (D, lambda c: _quick(c, "--teacher-cache-mirror"), 2, "teacher cache mirror needs cached"),
    (D, lambda c: ["--data", c.data, "--out", c.out(), "--preset", "huge"], 2,
     "unknown preset 'huge'"),
    # distill: models
    (D, lambda c: _quick(c, "--student-arch", "nosuch"), 2, "unknown student model 'nosuch'"),
    (D, lambda c: _quick(c, "--teacher-arch", "nosuch"), 2, "unknown teacher model 'nosuch'"),
    (D, lambda c: _quick(c, "--teacher", c.tmp / "missing.keras"), 2, "missing.keras not found"),
    (D, lambda c: _quick(c, "--teacher", c.folder(teacher__keras=b"garbage") / "teacher.keras"),
     2, "cannot load teacher model"),
    (D, lambda c: _quick(c, "--teacher", _onnx_teacher(c.tmp / "t.onnx", inputs=2)), 2,
     "takes 2 inputs (x, x1); edgekd feeds it one batch of images"),
    (D, lambda c: _quick(c, "--teacher", _onnx_teacher(c.tmp / "t.onnx", outputs=2)), 2,
     "has 2 outputs (logits, copy1): name the one holding the logits with --teacher-output NAME"),
    (D, lambda c: _quick(c, "--teacher", _onnx_teacher(c.tmp / "t.onnx"), "--teacher-output",
                         "probs"), 2, "has no output 'probs' (--teacher-output); its outputs: logits"),
    (D, lambda c: _quick(c, "--teacher", _onnx_teacher(c.tmp / "t.onnx", domain="evil.ops")), 2,
     "runs custom op EvilOp of domain 'evil.ops'; refusing to load it"),
    # distill: data
    (D, lambda c: _quick(c, data=c.tmp / "no" / "where"), 2, "unknown data source"),
    (D, lambda c: _quick(c, data=c.npz(x_train=np.zeros((600, 12, 12, 3)) + 0.5)), 2,
     "float images in [0.5, 0.5]"),
    (D, lambda c: _quick(c, data=c.npz(x_test=np.full((200, 12, 12, 3), np.nan))), 2,
     "NaN or infinite"),
    (D, lambda c: _quick(c, data=c.npz(x_train=np.zeros((600, 2, 2, 3), np.uint8),
                                       x_test=np.zeros((200, 2, 2, 3), np.uint8))), 2,
     "edgekd needs at least 8x8"),
    (D, lambda c: _quick(c, data=c.npz(y_train=np.zeros(0, np.int64))), 2, "0 labels"),
    (D, lambda c: _quick(c, data=c.npz(y_train=np.zeros(600, np.int64))), 2,
     "the train split holds only one class"),
    (D, lambda c: _quick(c, data=c.npz(y_test=np.ones(200, np.int64))), 2,
     "the test split holds only one class"),
    (D, lambda c: _quick(c, data=c.npz(y_train=np.full(600, 0.5))), 2,
     "labels must be integer class indices"),
    (D, lambda c: _quick(c, data=c.npz(labels=np.array(["a", "b"]))), 2,
     "labels must be in [0, 1]"),
    (D, lambda c: _quick(c, data=c.npz(y_test=None)), 2, "lacks y_test"),
    (D, lambda c: _quick(c, data=c.npz(y_train=np.array([{"x": 1}] * 600, dtype=object))), 2,
     "cannot read"),
    (D, lambda c: _quick(c, data=c.folder(x__npz=b"not a zip") / "x.npz"), 2, "cannot read"),
    (D, lambda c: _quick(c, data=_images(c.tmp / "one", classes=("a",))), 2,
     "expected at least 2 class folders"),
    (D, lambda c: _quick(c, data=_images(c.tmp / "img", corrupt=True)), 2, "cannot decode image"),
    (D, lambda c: _quick(c, data=_images(c.tmp / "img", classes=("a", "b\nc"))), 2,
     "class name 1 ('b\\nc') holds control character '\\n'"),
    (D, lambda c: _quick(c, data=c.npz(labels=np.array(["a", "b\nc", "d"]))), 2,
     "class name 1 ('b\\nc') holds control character '\\n'"),
    (D, lambda c: _quick(c, data=c.npz(labels=np.array(["a", "b", "a"]))), 2,
     "class name 'a' appears twice"),
    (D, lambda c: [*c.env(EDGEKD_MAX_IMAGE_PIXELS="50"), *_quick(c, data=_images(c.tmp / "img"))],
     2, "is 10x10 px, over the 50 px edgekd decodes"),
    # distill: environment variables, checked before any work
    (D, lambda c: [*c.env(EDGEKD_CACHE_LIMIT="abc"), *_quick(c)], 2,
     "EDGEKD_CACHE_LIMIT='abc' is not a positive number of bytes"),
    (D, lambda c: [*c.env(EDGEKD_STORE_RAM_LIMIT="-1"), *_quick(c)], 2,
     "EDGEKD_STORE_RAM_LIMIT='-1' is not a number of bytes"),
    (D, lambda c: [*c.env(EDGEKD_MAX_IMAGE_PIXELS="1e9"), *_quick(c)], 2,
     "EDGEKD_MAX_IMAGE_PIXELS='1e9' is not a positive number of pixels"),
    # distill: output folders
    (D, lambda c: ["--data", c.data, "--out", _foreign(c.tmp / "mine")], 2,
     "holds files edgekd did not make"),
    (D, lambda c: ["--data", _images(c.tmp / "img"), "--out", c.tmp / "img"], 2,
     "the data folder"),
    (D, lambda c: ["--data", _images(c.tmp / "img"), "--out", c.tmp / "img" / "a"], 2,
     "the data folder"),
    (D, lambda c: ["--data", c.data, "--out", c.folder() / "eval.npz"], 2, "it is a file"),
    (D, lambda c: ["--data", c.data, "--out", c.data], 2, "the data folder"),
    (D, lambda c: ["--data", c.data, "--out", "."], 2, "it is the working directory"),
    (D, lambda c: ["--data", c.data, "--out", c.tmp.parent], 2, "working directory or holds it"),
    (D, lambda c: (_foreign(c.tmp / "out.partial"), _quick(c))[1], 2,
     "out.partial exists and was not made by edgekd"),
    # export
    (E, lambda c: [c.tmp / "nothing"], 2, "not found: run `python -m distill` first"),
    (E, lambda c: [_foreign(c.tmp / "mine")], 2, "is not an artifacts folder made by"),
    (E, lambda c: [c.folder(preprocessing__json=b"{oops")], 2, "is not valid JSON"),
    (E, lambda c: [c.folder(preprocessing__json=b'{"height": "12", "width": 12}')], 2,
     "invalid preprocessing"),
    (E, lambda c: [c.folder(preprocessing__json=b"[1, 2]")], 2, "must hold a JSON object"),
    (E, lambda c: [c.folder(eval__npz=lambda p: p.unlink())], 2, "eval.npz not found"),
    (E, lambda c: [c.folder(eval__npz=_link_outside)], 2,
     "'eval.npz' points outside the artifacts folder"),
    (E, lambda c: [c.folder(calib__npz=b"PK not a zip")], 2, "cannot read"),
    (E, lambda c: [c.folder(student__keras=b"garbage")], 2, "cannot load student model"),
    (E, lambda c: [c.folder(), "--formats", "tflite_fp64"], 2, "unknown format(s) tflite_fp64"),
    (E, lambda c: [c.folder(), "--roles", "student,coach"], 2, "unknown role(s) ['coach']"),
    (E, lambda c: [c.folder(), "--parity-n", "0"], 2, "--parity-n must be >= 1"),
    # bench
    (B, lambda c: [c.tmp / "nothing"], 2, "does not exist"),
    (B, lambda c: [c.folder(manifest__json=lambda p: p.unlink())], 2, "manifest.json not found"),
    (B, lambda c: [c.folder(manifest__json=b"{")], 2, "is not valid JSON"),
    (B, lambda c: [c.manifest(lambda m: m.pop("artifacts"))], 2,
     "'artifacts' is a required property"),
    (B, lambda c: [c.manifest(lambda m: m["artifacts"][0].update(path="../../etc/passwd"))], 2,
     "points outside the artifacts folder"),
    (B, lambda c: [c.manifest(lambda m: m["artifacts"][0].update(path="/etc/passwd"))], 2,
     "points outside the artifacts folder"),
    (B, lambda c: [c.manifest(lambda m: m["eval"].update(path="../eval.npz"))], 2,
     "eval set: '../eval.npz' points outside"),
    (B, lambda c: [c.folder(student_fp32__tflite=_link_outside)], 2, "points outside"),
    (B, lambda c: [c.folder(student_fp32__tflite=b"tampered")], 2,
     "does not match the manifest"),
    (B, lambda c: [_with_pickled_references(c)], 2, "cannot read"),
    (B, lambda c: [c.folder(), "--target", "ssh://-V"], 2, "may not start with '-'"),
    (B, lambda c: [c.folder(), "--target", "ssh://-oProxyCommand=x"], 2, "may not start"),
    (B, lambda c: [c.folder(), "--target", "pi@board"], 2, "bad --target 'pi@board'"),
    (B, lambda c: [c.folder(), "--target", "ssh://pi\n@board"], 2, "the user name 'pi\\n'"),
    (B, lambda c: [c.folder(), "--target", "ssh://board\n-oProxyCommand=x"], 2,
     "the host name 'board\\n-oProxyCommand=x'"),
    (B, lambda c: [c.folder(), "--remote-dir", "~pi/x"], 2, "~user is not expanded"),
    (B, lambda c: [c.folder(), "--threads", "0"], 2, "--threads must be >= 1"),
    (B, lambda c: [c.folder(), "--threads", "many"], 2, "--threads takes integers or 'all'"),
    (B, lambda c: [c.folder(), "--formats", "tflite_fp64"], 2, "unknown format(s)"),
    (B, lambda c: [c.folder(), "--roles", "coach"], 2, "no artifact in the manifest matches"),
    (B, lambda c: [c.folder(), "--eval-limit", "0"], 2, "--eval-limit must be >= 1"),
    (B, lambda c: [c.folder(), "--seconds", "inf"], 2, "must be finite numbers"),
    (B, lambda c: [c.folder(), "--runs", "0"], 2, "runs must be >= 1"),
    (B, lambda c: [c.folder(), "--accuracy-budget", "-5"], 2, "--accuracy-budget must be in"),
    # bench.predict
    (P, lambda c: [*c.env(EDGEKD_MAX_IMAGE_PIXELS="50"), c.folder(), _images(c.tmp / "i") / "a" / "0.png"],
     2, "0.png is 10x10 px, over the 50 px edgekd decodes"),
    (P, lambda c: [c.folder(), c.tmp / "none.png"], 2, "none.png"),
]


def _with_pickled_references(c: Case) -> Path:
    """reference.npz with an object array, its manifest record updated to match."""
    from edgekd.manifest import sha256_file
    folder = c.folder()
    ref = folder / "reference.npz"
    ref.unlink()
    np.savez(ref, y=np.array([object()] * 4, dtype=object), allow_pickle=True)
    return c.manifest(lambda m: m["references"].update(sha256=sha256_file(ref),
                                                       bytes=ref.stat().st_size))


def _case_id(case) -> str:
    stage, _, _, fragment = case
    return f"{stage}: {fragment[:40]}"


def test_there_are_at_least_40_cases_across_the_three_stages():
    stages = [c[0] for c in CASES]
    assert len(CASES) >= 40 and {D, E, B, P} <= set(stages)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input(tmp_path, capsys, monkeypatch, mini_exported, case):
    stage, make_args, code, fragment = case
    world = tmp_path / "world"
    world.mkdir()
    monkeypatch.chdir(world)
    c = Case(world, mini_exported, monkeypatch)
    _ = c.data  # every world has the good data set
    args = make_args(c)
    before = tree_digest(tmp_path)
    rc, lines = cli_in_process(stage, args, capsys)
    assert rc == code, lines
    assert len(lines) == 1 and fragment in lines[0], lines
    assert not any("Traceback" in l or "internal error" in l for l in lines)
    assert tree_digest(tmp_path) == before
    assert not list(Path(tmp_path).parent.glob(f".{tmp_path.name}*"))  # no stray siblings
