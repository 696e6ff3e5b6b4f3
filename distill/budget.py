"""--student-ms: a latency budget on the user's own target, measured there by
bench and carried to candidate students by timing them here.

MACs alone do not predict latency across image sizes: on the dev machine,
students picked by MACs at the 32 px student's milliseconds per MAC ran up to
1.5x over their budget at 128 and 160 px (the input's quantization and the
patch stem grow with the pixels, and some widths suit the int8 kernels less;
docs/results/latency_budget.md). So each candidate is converted to
the bench row's format (export's converter, untrained: latency does not
depend on the weights) and timed on this machine against the very file the
row timed on the target; the target's median times that ratio is the
candidate's predicted latency there. That carries the target's speed and this
machine's view of what the candidate costs relative to the row's model; where
the two CPUs differ in which operators are cheap, the prediction moves with
it (bench the chosen student on the target to know).

Reading and checking bench.json imports no TensorFlow, so a bad file fails
before training starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from edgekd.errors import EdgekdError
from edgekd.files import inside, read_json
from edgekd.formats import FORMATS
from edgekd.roles import SCRATCH, STUDENT

CALIBRATION_ROLES = (STUDENT, SCRATCH)  # edge_res family members, as the picks are
LOCAL = "local"  # --latency-target: the machine bench ran on, not one of its --target boards


@dataclass(frozen=True)
class Rate:
    artifact: str  # the bench.json row, e.g. student_tflite_int8
    format: str
    threads: int
    p50_ms: float  # on the target
    macs: int
    machine: str  # bench.json's machine.cpu
    path: Path  # the row's file, inside the bench.json's folder
    int8_io: bool = False

    def describe(self) -> str:
        return (f"{self.artifact} on {self.machine}, {self.threads} thread(s): "
                f"{self.p50_ms:.3f} ms for {self.macs / 1e6:.2f}M MACs")


def check_request(ms: float | None, bench_json: str | None, fmt: str, threads: int) -> None:
    """The flags alone, before any file is read."""
    if ms is None:
        if bench_json:
            raise EdgekdError("--latency-from is the rate for --student-ms: pass both")
        return
    if not (math.isfinite(ms) and ms > 0):
        raise EdgekdError(f"--student-ms must be a positive number of milliseconds, got {ms}")
    if not bench_json:
        raise EdgekdError("--student-ms needs --latency-from BENCH_JSON: the bench.json of a "
                          "run benched on your target (python -m bench OUT [--target ...])")
    if fmt not in FORMATS:
        raise EdgekdError(f"--latency-format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if threads < 1:
        raise EdgekdError(f"--latency-threads must be >= 1, got {threads}")


def _rows(obj: dict, path: Path) -> list:
    rows = obj.get("artifacts")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise EdgekdError(f"{path} is no bench.json: it has no list of artifacts "
                          "(python -m bench writes one)")
    return rows


def _p50(row: dict, threads: int) -> float | None:
    latency = row.get("latency")
    timing = latency.get(str(threads)) if isinstance(latency, dict) else None
    p50 = timing.get("p50_ms") if isinstance(timing, dict) else None
    return float(p50) if isinstance(p50, (int, float)) and p50 > 0 else None


def _source(obj: dict, path: Path, target: str | None) -> dict:
    """The results of the machine asked for: one of the remote targets bench
    ran on (`--target`), or the machine bench itself ran on (LOCAL). Without
    a choice, the only remote target, or LOCAL when there is none."""
    remote = [t for t in obj.get("targets") or [] if isinstance(t, dict)]
    urls = [str(t.get("target")) for t in remote]
    if target is None and len(remote) > 1:
        raise EdgekdError(f"{path} holds {len(remote)} targets ({', '.join(urls)}): pass "
                          f"--latency-target one of them, or {LOCAL}")
    if target is None:
        return remote[0] if remote else obj
    if target == LOCAL:
        return obj
    match = [t for t in remote if t.get("target") == target]
    if not match:
        raise EdgekdError(f"{path} has no target {target!r} (it has: {', '.join([*urls, LOCAL])})")
    return match[0]


def read_rate(bench_json: str | Path, fmt: str = "tflite_int8", threads: int = 1,
              target: str | None = None) -> Rate:
    """The first calibration role's row in `fmt`, timed at `threads` on `target`."""
    path = Path(bench_json)
    source = _source(read_json(path, "--latency-from"), path, target)
    rows = _rows(source, path)
    row = next((r for role in CALIBRATION_ROLES for r in rows
                if r.get("role") == role and r.get("format") == fmt), None)
    if row is None:
        have = sorted({str(r.get("name")) for r in rows})
        raise EdgekdError(f"{path} has no {' or '.join(CALIBRATION_ROLES)} row in {fmt} "
                          f"(it has: {', '.join(have) or 'none'}); pass --latency-format one of "
                          "those formats, or export and bench a student in it")
    name, p50, macs = str(row.get("name")), _p50(row, threads), row.get("macs")
    if p50 is None:
        timed = sorted(row["latency"]) if isinstance(row.get("latency"), dict) else []
        raise EdgekdError(f"{path}: {name} was not timed at {threads} thread(s) "
                          f"(timed: {', '.join(timed) or 'none'}); pass --latency-threads "
                          "one of those, or bench with --threads")
    if not isinstance(macs, int) or macs <= 0:
        raise EdgekdError(f"{path}: {name} records no MACs; re-run bench")
    if not isinstance(row.get("path"), str):
        raise EdgekdError(f"{path}: {name} names no file; re-run bench")
    file = inside(path.parent, row["path"], "--latency-from")
    if not file.is_file():
        raise EdgekdError(f"{path}: {name}'s file {file} is missing: candidates are timed here "
                          "against it; pass the bench.json inside its artifacts folder")
    machine = source.get("machine") if isinstance(source.get("machine"), dict) else {}
    where = str(machine.get("cpu", "unknown")) + (f" ({source['target']})" if "target" in source else "")
    options = row.get("options") if isinstance(row.get("options"), dict) else {}
    return Rate(name, fmt, threads, p50, macs, where, file, bool(options.get("int8_io")))


def host_p50_ms(path: Path, runtime: str, threads: int, seconds: float = 1.0) -> float:
    """bench's timing of one file on this machine: warm-up, then a timed loop's
    median, on a random input of the file's own shape and type."""
    import numpy as np

    from edgekd.runtime import open_runner
    from edgekd.stats import summarize, timed_loop
    runner = open_runner(path, runtime, threads)
    shape = [1, *runner.inputs[0]["shape"][1:]]  # ONNX files may leave the batch open
    runner.prepare(np.random.default_rng(0).random(shape, dtype=np.float32))
    timed_loop(runner.invoke, 10, seconds / 4)
    return summarize(timed_loop(runner.invoke, 30, seconds))["p50_ms"]


def timed_in_turn(files: dict, runtime: str, threads: int, seconds: float, rounds: int = 2,
                  timer=None) -> dict:
    """`timer` (host_p50_ms unless given) of each file (keyed as given), the
    files taken in turn each round and the lowest of `rounds` medians kept: a
    slow spell of a shared host then hits every file alike instead of one."""
    timer = timer or host_p50_ms
    best: dict = {}
    for _ in range(rounds):
        for key, path in files.items():
            best[key] = min(best.get(key, math.inf), timer(path, runtime, threads, seconds))
    return best


class Probe:
    """A candidate's predicted latency on the target: the target's median for
    the bench row times the candidate's time over the row file's time, both
    measured here in turn (timed_in_turn). Candidates are converted once and
    remembered by name. `timer(path, runtime, threads, seconds)` is the
    measurement (host_p50_ms); tests inject one, as wall time is no test."""

    def __init__(self, rate: Rate, input_shape, num_classes: int, work: Path,
                 seconds: float = 1.0, timer=None):
        self.rate, self.input_shape, self.num_classes = rate, tuple(input_shape), num_classes
        self.work, self.seconds, self.known, self.timer = work, seconds, {}, timer
        self.runtime = FORMATS[rate.format].runtime

    def __call__(self, name: str) -> float:
        if name not in self.known:
            t = timed_in_turn({"row": self.rate.path, "candidate": self._convert(name)},
                              self.runtime, self.rate.threads, self.seconds / 4,
                              timer=self.timer)
            self.known[name] = self.rate.p50_ms * t["candidate"] / t["row"]
        return self.known[name]

    def _convert(self, name: str) -> Path:
        return candidate_file(name, self.input_shape, self.num_classes, self.rate.format,
                              self.work, self.rate.int8_io)


def candidate_file(name: str, input_shape, num_classes: int, fmt: str, folder: Path,
                   int8_io: bool = False) -> Path:
    """The zoo model `name`, untrained, converted to `fmt` by export's converter
    (random calibration images: latency does not depend on them)."""
    import numpy as np

    from distill import models
    from distill.convert import CONVERTERS, Inputs
    from edgekd.preprocess import Preprocessing
    h, w, c = input_shape
    model = models.build(name, tuple(input_shape), num_classes)
    calib = np.random.default_rng(0).integers(0, 256, (16, h, w, c), dtype=np.uint8)
    path = folder / f"{name}_{h}x{w}{FORMATS[fmt].suffix}"
    CONVERTERS[fmt](model, path, Inputs(Preprocessing(h, w, c), calib, int8_io))
    return path
