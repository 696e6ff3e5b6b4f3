"""One bench run over manifest.json: verify every file, measure every artifact
in its own subprocess, compute accuracy and agreement, write bench.json and
report.md (+ report.png)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgekd import environment
from edgekd import manifest as mf
from edgekd.atomic import write_json
from edgekd.errors import EdgekdError
from edgekd.files import inside, load_npz
from edgekd.preprocess import spread_indices


@dataclass(frozen=True)
class BenchConfig:
    threads: tuple[int, ...] = (1,)
    runs: int = 200  # at least this many timed runs ...
    seconds: float = 10.0  # ... and at least this long, whichever is longer
    warmup_runs: int = 10
    warmup_seconds: float = 1.0
    formats: tuple[str, ...] | None = None
    roles: tuple[str, ...] | None = None  # None: every role in the manifest
    accuracy_budget: float = 0.01  # best artifact: within 1 point of the float student
    providers: tuple[str, ...] | None = None
    timeout_s: float = 1800.0
    eval_limit: int | None = None  # accuracy on the first N eval images only (emulators)
    keras: bool = False  # also measure the Keras models (needs TensorFlow; a labelled extra row)
    trust_model_code: bool = False  # --keras: skip the model-file allow-lists (code may run on load)
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.threads or min(self.threads) < 1:
            raise EdgekdError(f"threads must be positive integers, got {self.threads}")
        times = (self.seconds, self.warmup_seconds, self.timeout_s)
        if not all(math.isfinite(t) for t in times) or not math.isfinite(self.accuracy_budget):
            raise EdgekdError(f"--seconds, --warmup-seconds and --accuracy-budget must be finite "
                              f"numbers, got {self.seconds}, {self.warmup_seconds}, "
                              f"{100 * self.accuracy_budget}")
        if self.runs < 1 or self.seconds < 0 or self.warmup_runs < 0 or self.warmup_seconds < 0:
            raise EdgekdError("runs must be >= 1, seconds and warm-up >= 0")
        if not 0 <= self.accuracy_budget <= 1:
            raise EdgekdError(f"--accuracy-budget must be in [0, 100] points, "
                              f"got {100 * self.accuracy_budget:g}")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise EdgekdError(f"--eval-limit must be >= 1, got {self.eval_limit}")


def select(manifest: dict, cfg: BenchConfig) -> list[dict]:
    arts = [a for a in manifest["artifacts"] if (cfg.roles is None or a["role"] in cfg.roles)
            and (cfg.formats is None or a["format"] in cfg.formats)]
    if not arts:
        raise EdgekdError(f"no artifact in the manifest matches formats={cfg.formats}, "
                          f"roles={cfg.roles}")
    return arts


# Where the Keras rows' runner lives: a module name the worker process imports,
# so that bench's own import path holds no TensorFlow.
KERAS_RUNNER = "distill.keras_runner"


def keras_rows(manifest: dict, cfg: BenchConfig) -> list[dict]:
    """Pseudo-artifacts for the Keras source models (bench --keras)."""
    import importlib.util
    if not cfg.keras:
        return []
    if importlib.util.find_spec("tensorflow") is None:
        raise EdgekdError("--keras needs TensorFlow (pip install .[train]); the runtime-only "
                          "install measures the exported files")
    return [{**rec, "name": f"{role}_keras", "role": role, "format": "keras",
             "runtime": "keras", "precision": "fp32 (Keras, TensorFlow)", "options": {}}
            for role, rec in manifest.get("models", {}).items()
            if cfg.roles is None or role in cfg.roles]


def verify(folder: Path, manifest: dict, arts: list[dict]) -> None:
    """Refuse to run anything if a file differs from its manifest record."""
    mf.verify_file(folder, manifest["eval"], "eval set")
    mf.verify_file(folder, manifest["references"], "reference outputs")
    for a in arts:
        mf.verify_file(folder, a, a["name"])


def _worker(folder: Path, manifest: dict, art: dict, cfg: BenchConfig) -> dict:
    spec = {"path": str(inside(folder, art["path"], art["name"])), "runtime": art["runtime"],
            "eval_path": str(inside(folder, manifest["eval"]["path"], "eval set")),
            "pre": manifest["preprocessing"], "threads": list(cfg.threads),
            "runs": cfg.runs, "seconds": cfg.seconds, "warmup_runs": cfg.warmup_runs,
            "warmup_seconds": cfg.warmup_seconds,
            "providers": list(cfg.providers) if cfg.providers else None,
            "eval_limit": cfg.eval_limit, "trust_code": cfg.trust_model_code,
            "runner_module": KERAS_RUNNER if art["runtime"] == "keras" else None}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")]))}
    try:
        # EDGEKD_PYTHON: the interpreter for workers, e.g. an emulator shim (no binfmt_misc)
        python = os.environ.get("EDGEKD_PYTHON") or sys.executable
        proc = subprocess.run([python, "-m", "bench.worker", json.dumps(spec)],
                              capture_output=True, text=True, timeout=cfg.timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise EdgekdError(f"{art['name']}: measurement took over {cfg.timeout_s:.0f} s") from None
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgekdError(f"{art['name']}: the measuring process failed ({tail})") from None
    if "error" in out:
        raise EdgekdError(f"{art['name']}: {out['error']}")
    return out


def _accuracy(preds: np.ndarray, refs: dict, limit: int | None, n_classes: int) -> dict:
    """Top-1, per-class top-1 (recall; None for a class without eval images),
    the confusion matrix (rows: true class, columns: predicted) and the
    agreement with each Keras model's decisions."""
    idx = spread_indices(len(refs["y"]), limit)  # the images the worker measured
    refs = {k: v[idx] for k, v in refs.items()}
    y = refs["y"].astype(np.int64)
    if len(preds) and (preds.min() < 0 or preds.max() >= n_classes):
        raise EdgekdError(f"predicted class {int(preds.max())} is outside the data set's "
                          f"{n_classes} classes: the model does not match manifest.json")
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (y, preds.astype(np.int64)), 1)
    support = confusion.sum(axis=1)
    out = {"accuracy": float(np.mean(preds == y)),
           "per_class_accuracy": [float(confusion[k, k] / support[k]) if support[k] else None
                                  for k in range(n_classes)],
           "confusion": confusion.tolist()}
    for role in ("student", "teacher"):
        key = f"{role}_logits"
        if key in refs:
            out[f"agreement_{role}"] = float(np.mean(preds == np.argmax(refs[key], -1)))
    return out


def measure_all(folder: Path, manifest: dict, arts: list[dict], cfg: BenchConfig,
                progress: bool = True) -> list[dict]:
    from tqdm import tqdm
    refs = _references(folder, manifest)
    rows = []
    bar = tqdm(arts, desc="bench", unit="artifact", disable=not progress, file=sys.stderr)
    for art in bar:
        bar.set_postfix_str(art["name"])
        raw = _worker(folder, manifest, art, cfg)
        preds = np.asarray(raw["predictions"])
        rows.append({"name": art["name"], "role": art["role"], "format": art["format"],
                     "runtime": art["runtime"], "precision": art["precision"],
                     "path": art["path"], "bytes": art["bytes"],
                     "gzip_bytes": art.get("gzip_bytes"), "params": art["params"],
                     "macs": art["macs"], "options": art.get("options", {}),
                     **_accuracy(preds, refs, cfg.eval_limit, len(manifest["dataset"]["labels"])),
                     **raw})
    return rows


def _references(folder: Path, manifest: dict) -> dict[str, np.ndarray]:
    """reference.npz: labels and the Keras logits of every role, all numeric."""
    path = inside(folder, manifest["references"]["path"], "reference outputs")
    refs = load_npz(path, ("y",), "re-run export")
    n = len(refs["y"])
    for key, value in refs.items():
        if value.dtype.kind not in "iuf" or len(value) != n:
            raise EdgekdError(f"{path}: {key} is not a numeric array of {n} rows: re-run export")
    return refs


def _keras_accuracy(folder: Path, manifest: dict, limit: int | None) -> dict:
    """Keras accuracy per role on the same eval images the artifacts saw."""
    refs = _references(folder, manifest)
    idx = spread_indices(len(refs["y"]), limit)
    y = refs["y"][idx]
    return {k[:-len("_logits")]: float(np.mean(np.argmax(v[idx], -1) == y))
            for k, v in refs.items() if k.endswith("_logits")}


def run_targets(folder: Path, manifest: dict, arts: list[dict], targets, opts,
                parallel: bool) -> list[dict]:
    """The same bench on each remote board (one after another, or in parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    from bench.remote import run_remote
    if not targets:
        return []
    def one(t):
        print(f"[bench] {t.url}: copying {len(arts)} artifacts and running", flush=True)
        return run_remote(t, folder, manifest, arts, opts)
    if parallel:
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            return list(pool.map(one, targets))
    return [one(t) for t in targets]


def run(folder: str | Path, cfg: BenchConfig, progress: bool = True, targets=(),
        remote=None, parallel: bool = False) -> dict:
    folder = Path(folder).resolve()
    manifest = mf.load(folder)
    arts = select(manifest, cfg)
    extra = keras_rows(manifest, cfg)
    verify(folder, manifest, arts + extra)
    t0 = time.perf_counter()
    rows = measure_all(folder, manifest, arts + extra, cfg, progress)
    remote_results = run_targets(folder, manifest, arts, targets, remote, parallel)
    from bench import report
    result = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": environment.machine(),
              "versions": environment.versions(("edgekd", "numpy", "onnxruntime",
                                                "ai-edge-litert")),
              "config": {k: v for k, v in asdict(cfg).items()},
              "dataset": manifest["dataset"], "keras_accuracy": _keras_accuracy(
                  folder, manifest, cfg.eval_limit),
              "seconds": round(time.perf_counter() - t0, 1), "artifacts": rows,
              "targets": remote_results, "files": list(report.FILES)}
    result["summary"] = report.summarize_rows(result)
    write_json(folder / "bench.json", result)
    report.write(folder, result)
    return result
