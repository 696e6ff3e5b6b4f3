"""--student-ms: the rate read from bench.json, and the student it picks, whose
predicted latency fits the budget while the next width up would not."""

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from distill import budget, models, sizing
from distill.zoo import scaled_name
from edgekd.errors import EdgekdError


def _row(role, fmt, macs, path="student_int8.tflite", **p50_by_threads):
    return {"name": f"{role}_{fmt}", "role": role, "format": fmt, "macs": macs, "path": path,
            "latency": {k.lstrip("t"): {"p50_ms": v} for k, v in p50_by_threads.items()}}


def _bench(folder, *rows, cpu="Cortex-A76"):
    for row in rows:
        if not (folder / row["path"]).exists():
            (folder / row["path"]).write_bytes(b"")
    path = folder / "bench.json"
    path.write_text(json.dumps({"machine": {"cpu": cpu}, "artifacts": list(rows)}))
    return path


def test_the_rate_is_the_students_row_in_the_format_and_threads_asked(tmp_path):
    path = _bench(tmp_path,
                  _row("teacher", "tflite_int8", 48_000_000, "teacher_int8.tflite", t1=1.2),
                  _row("student_scratch", "tflite_int8", 9_000_000, "s.tflite", t1=9.0),
                  _row("student", "tflite_fp32", 10_000_000, "student_fp32.tflite", t1=0.5),
                  _row("student", "tflite_int8", 10_000_000, t1=0.25, t4=0.1))
    rate = budget.read_rate(path)  # tflite_int8 at 1 thread, the distilled student first
    assert (rate.artifact, rate.threads, rate.machine) == ("student_tflite_int8", 1, "Cortex-A76")
    assert (rate.p50_ms, rate.macs, rate.path) == (0.25, 10_000_000, tmp_path / "student_int8.tflite")
    assert budget.read_rate(path, threads=4).p50_ms == 0.1
    assert budget.read_rate(path, "tflite_fp32").path.name == "student_fp32.tflite"
    (tmp_path / "other").mkdir()
    scratch_only = _bench(tmp_path / "other", _row("student_scratch", "onnx_int8", 9_000_000,
                                                    "s.onnx", t1=0.45))
    assert budget.read_rate(scratch_only, "onnx_int8").artifact == "student_scratch_onnx_int8"


@pytest.mark.parametrize("content,message", [
    ("[1, 2]", "must hold a JSON object, got list"),
    ('{"artifacts": 3}', "is no bench.json: it has no list of artifacts"),
    ('{"artifacts": []}', "has no student or student_scratch row in tflite_int8 (it has: none)"),
    (json.dumps({"artifacts": [_row("student", "tflite_int8", 10**7, t2=0.2)]}),
     "student_tflite_int8 was not timed at 1 thread(s) (timed: 2)"),
    (json.dumps({"artifacts": [_row("student", "tflite_int8", 0, t1=0.2)]}),
     "student_tflite_int8 records no MACs"),
    (json.dumps({"artifacts": [_row("student", "tflite_int8", 10**7, "gone.tflite", t1=0.2)]}),
     "student_tflite_int8's file"),
])
def test_a_bad_bench_json_is_one_line_naming_it(tmp_path, content, message):
    (tmp_path / "student_int8.tflite").write_bytes(b"")
    path = tmp_path / "bench.json"
    path.write_text(content)
    with pytest.raises(EdgekdError, match=re.escape(str(path)) + ".*" + re.escape(message)):
        budget.read_rate(path)


def test_a_row_pointing_outside_its_folder_is_refused(tmp_path):
    (tmp_path / "secret.tflite").write_bytes(b"")
    (tmp_path / "art").mkdir()
    path = _bench(tmp_path / "art", _row("student", "tflite_int8", 10**7, "x.tflite", t1=0.2))
    path.write_text(path.read_text().replace('"x.tflite"', '"../secret.tflite"'))
    with pytest.raises(EdgekdError, match="points outside the artifacts folder"):
        budget.read_rate(path)


def test_files_are_timed_in_turn_and_the_lowest_median_kept(monkeypatch):
    """A slow spell in the first round hits both files; each keeps its best round."""
    medians = iter([5.0, 9.0, 1.0, 2.0, 3.0, 4.0])
    calls = []

    def fake(path, runtime, threads, seconds):
        calls.append((path, runtime, threads, seconds))
        return next(medians)
    monkeypatch.setattr(budget, "host_p50_ms", fake)
    best = budget.timed_in_turn({"a": "a.tflite", "b": "b.tflite"}, "tflite", 2, 0.5, rounds=3)
    assert best == {"a": 1.0, "b": 2.0}
    assert [c[0] for c in calls] == ["a.tflite", "b.tflite"] * 3
    assert {c[1:] for c in calls} == {("tflite", 2, 0.5)}


def _macs_timer(path, runtime, threads, seconds):
    """A stand-in for host_p50_ms: a fixed cost per call plus one per MAC of
    the model the file holds (a candidate's file is named `<arch>_<h>x<w>`,
    the row's is the edge_res student). Wall time is no test: this one gives
    the same answer on any machine, busy or idle."""
    name = path.name.split("_32x32")[0] if path.name != "student_int8.tflite" else "edge_res"
    return 0.02 + _macs(name) / 1e8


@functools.lru_cache(maxsize=None)
def _macs(name: str) -> int:
    return models.count_macs(models.build(name, (32, 32, 3), 10))


REAL_CANDIDATE_FILE = budget.candidate_file


def _named_file(name, input_shape, num_classes, fmt, folder, int8_io=False):
    """A stand-in for candidate_file: an empty file named as the real one is
    (all _macs_timer reads); the real conversion is tested once, below."""
    from edgekd.formats import FORMATS
    path = Path(folder) / f"{name}_{input_shape[0]}x{input_shape[1]}{FORMATS[fmt].suffix}"
    path.write_bytes(b"")
    return path


@pytest.fixture(autouse=True)
def named_files(monkeypatch):
    monkeypatch.setattr(budget, "candidate_file", _named_file)


def test_a_candidate_is_converted_by_the_export_converter(tmp_path):
    from edgekd.runtime import open_runner
    path = REAL_CANDIDATE_FILE("edge_res_x0.25_s2", (32, 32, 3), 10, "tflite_int8", tmp_path)
    assert path == tmp_path / "edge_res_x0.25_s2_32x32_int8.tflite"
    runner = open_runner(path, "tflite", 1)
    assert runner.inputs[0]["shape"] == [1, 32, 32, 3] and runner.outputs[0]["shape"] == [1, 10]
    assert runner.outputs[0]["quantization"] is None  # float I/O unless int8_io, int8 inside


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """A target 10x slower than this machine: its bench row says 10x what
    the same int8 file takes here (the injected timer's view of here)."""
    from distill.convert import Inputs, tflite_int8
    from edgekd.preprocess import Preprocessing
    folder = tmp_path_factory.mktemp("target")
    model = models.build("edge_res", (32, 32, 3), 10)
    calib = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    tflite_int8(model, folder / "student_int8.tflite", Inputs(Preprocessing(32, 32, 3), calib, False))
    here = _macs_timer(folder / "student_int8.tflite", "tflite", 1, 1.0)
    path = _bench(folder, _row("student", "tflite_int8", models.count_macs(model), t1=10 * here))
    work = tmp_path_factory.mktemp("probe")
    return budget.Probe(budget.read_rate(path), (32, 32, 3), 10, work, seconds=0.3, timer=_macs_timer)


def test_the_probe_carries_the_targets_speed_to_candidates(probe):
    """The candidate's time here over the row file's time here, times the
    target's median: the row's own architecture is predicted at the row's
    median; four times the MACs at twice the width, at the timer's ratio."""
    row_ms, here = probe.rate.p50_ms, probe.rate.p50_ms / 10
    assert probe("edge_res_x1_s2") == pytest.approx(row_ms)
    wide = _macs_timer(Path("edge_res_x2_s2_32x32.tflite"), "tflite", 1, 1.0)
    assert probe("edge_res_x2_s2") == pytest.approx(row_ms * wide / here)
    assert probe("edge_res_x2_s2") > 2 * probe("edge_res_x1_s2")
    assert list(probe.work.glob("edge_res_x2_s2*.tflite"))  # the candidate, in the work folder


def test_the_real_timer_times_a_converted_file(probe):
    """host_p50_ms itself (the timer the probe uses outside tests) returns a
    positive median for the file a bench row names; no bound on its value."""
    ms = budget.host_p50_ms(probe.rate.path, "tflite", 1, seconds=0.1)
    assert 0 < ms < float("inf")


def test_the_pick_is_the_widest_predicted_within_the_budget(probe):
    ms = 0.6 * probe.rate.p50_ms
    picked = sizing.pick(ms, (32, 32, 3), 10, lambda s: probe(s.name), "--student-ms", (" ms", 1.0))
    assert probe(picked.name) <= ms
    width = float(picked.name.split("_x")[1].split("_")[0])
    wider = scaled_name(min(w for w in sizing.WIDTHS if w > width), 2)
    assert wider in probe.known and probe(wider) > ms  # tried during the search, and too slow
    assert width < 1


def test_the_flags_alone_are_checked_before_any_file(tmp_path):
    budget.check_request(None, None, "tflite_int8", 1)  # no budget: nothing to check
    with pytest.raises(EdgekdError, match="--latency-format must be one of tflite_fp32, .* got 'tflite'"):
        budget.check_request(1.0, "b.json", "tflite", 1)
    with pytest.raises(EdgekdError, match="--latency-threads must be >= 1, got 0"):
        budget.check_request(1.0, "b.json", "tflite_int8", 0)
    with pytest.raises(EdgekdError, match="--student-ms must be a positive number"):
        budget.check_request(float("nan"), "b.json", "tflite_int8", 1)


def test_a_board_bench_ran_on_is_chosen_by_its_url(tmp_path):
    """bench --target keeps each board's results under "targets": the only
    board is the default; with two, --latency-target names one (or local)."""
    local = _row("student", "tflite_int8", 10**7, t1=0.3)
    pi = {"target": "ssh://pi@pi4", "machine": {"cpu": "Cortex-A72"},
          "artifacts": [_row("student", "tflite_int8", 10**7, t1=2.0, t4=0.8)]}
    path = _bench(tmp_path, local)
    obj = json.loads(path.read_text())
    path.write_text(json.dumps({**obj, "targets": [pi]}))
    rate = budget.read_rate(path, threads=4)
    assert (rate.p50_ms, rate.machine) == (0.8, "Cortex-A72 (ssh://pi@pi4)")
    assert budget.read_rate(path, target="local").p50_ms == 0.3
    jetson = {**pi, "target": "ssh://nvidia@jetson", "machine": {"cpu": "Carmel"}}
    path.write_text(json.dumps({**obj, "targets": [pi, jetson]}))
    with pytest.raises(EdgekdError, match=r"holds 2 targets \(ssh://pi@pi4, ssh://nvidia@jetson\): "
                                          "pass --latency-target one of them, or local"):
        budget.read_rate(path)
    assert budget.read_rate(path, target="ssh://nvidia@jetson").machine.startswith("Carmel")
    with pytest.raises(EdgekdError, match=r"has no target 'ssh://x' \(it has: ssh://pi@pi4, "
                                          r"ssh://nvidia@jetson, local\)"):
        budget.read_rate(path, target="ssh://x")


def test_distill_resolves_student_ms_to_a_named_student(probe, tmp_path, capsys, monkeypatch):
    """run._sized_student, as distill calls it before training: the config's
    student becomes the pick, and the line printed says what it predicts."""
    from dataclasses import replace
    from types import SimpleNamespace

    from distill import run
    from distill.config import resolve
    monkeypatch.setattr(budget, "host_p50_ms", _macs_timer)
    bench_json = probe.rate.path.parent / "bench.json"
    cfg = resolve("default", student_ms=0.6 * probe.rate.p50_ms, latency_from=str(bench_json))
    ds = SimpleNamespace(preprocessing=SimpleNamespace(input_shape=(32, 32, 3)),
                         x_train=np.zeros((1, 32, 32, 3), np.uint8), labels=list("abcdefghij"))
    store, out = tmp_path / "store", tmp_path / "out"
    store.mkdir()
    picked = run._sized_student(cfg, ds, store, out).student_arch
    assert picked.startswith("edge_res_x0.") and picked.endswith("_s2")
    printed = capsys.readouterr().out
    assert f"at 32x32: {picked}, " in printed and "ms predicted on Cortex-A76" in printed
    assert not any(store.iterdir())  # the converted candidates are gone
    # Interrupted, then started again: the saved pick is kept, not timed afresh.
    (tmp_path / "out.partial").mkdir()
    saved = json.loads(run._scaled_epochs(replace(cfg, student_arch="edge_res_x0.25_s2"), 1).to_json())
    (tmp_path / "out.partial" / "config.json").write_text(json.dumps(saved))
    assert run._sized_student(cfg, ds, store, out).student_arch == "edge_res_x0.25_s2"
    assert "edge_res_x0.25_s2, as the interrupted run picked" in capsys.readouterr().out
    saved["student_ms"] = 1.0  # another command: picked afresh
    (tmp_path / "out.partial" / "config.json").write_text(json.dumps(saved))
    assert run._sized_student(cfg, ds, store, out).student_arch != "edge_res_x0.25_s2"
