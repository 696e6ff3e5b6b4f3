"""One export run: artifacts folder -> every format of every role, parity
checked, manifest.json written; all in a temporary copy swapped into place."""

from __future__ import annotations

import errno
import gzip
import json
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from distill.api import CONVERTERS, Inputs, check_io, count_macs, load
from edgekd import __version__, environment, train_report
from edgekd.atomic import atomic_path, link_or_copy, swap_into_place, temp_sibling, write_json
from edgekd.errors import EdgekdError, first_line
from edgekd.files import MARKER, inside, is_ours, load_npz, read_json
from edgekd.formats import FORMATS, formats_for
from edgekd.manifest import MANIFEST_NAME, SCHEMA_VERSION, sha256_file, validate
from edgekd.preprocess import Preprocessing, spread_indices
from edgekd.roles import DEFAULT_EXPORT, QAT_ROLES, ROLES, model_file
from edgekd.runtime import open_runner
from export.parity import compare

BENCH_NAME = "bench.json"  # lists the other files bench wrote ("files")


def read_inputs(folder: Path) -> tuple[Preprocessing, dict, np.ndarray]:
    """The distill outputs export needs, validated (each inside the folder)."""
    if not folder.is_dir():
        raise EdgekdError(f"artifacts folder {folder} not found: run `python -m distill` first")
    if not is_ours(folder):
        raise EdgekdError(f"{folder} is not an artifacts folder made by `python -m distill` "
                          f"(no {MARKER} marker): export writes only into such folders")
    pre = Preprocessing.from_dict(read_json(inside(folder, "preprocessing.json", "export"),
                                            "preprocessing record"))
    ev = load_npz(inside(folder, "eval.npz", "export"), ("x", "y", "labels"), "re-run distill")
    calib = load_npz(inside(folder, "calib.npz", "export"), ("x",),
                     "re-run distill (it writes the calibration set)")
    pre.check(ev["x"], "eval.npz images")
    pre.check(calib["x"], "calib.npz images")
    if ev["x"].dtype != np.uint8 or calib["x"].dtype != np.uint8:
        raise EdgekdError("eval.npz and calib.npz must hold uint8 images: re-run distill")
    return pre, ev, calib["x"]


def _load_roles(folder: Path, roles, pre: Preprocessing, n_classes: int,
                trust_code: bool = False) -> dict:
    out = {}
    for role in roles:
        path = inside(folder, model_file(role), role)
        if not path.exists():
            if not ROLES[role].always:
                continue  # distill made it only when asked (--qat, --prune-sparsity, scratch)
            raise EdgekdError(f"{path} not found: re-run distill, or leave {role} out of --roles")
        model = load(path, role, trust_code)
        check_io(model, pre.input_shape, n_classes, role)
        out[role] = model
    return out


def _export_one(model, role: str, fmt_name: str, tmp: Path, inp: Inputs, parity_x, ref_logits,
                labels, threads: int) -> dict:
    fmt = FORMATS[fmt_name]
    path = tmp / f"{role}{fmt.suffix}"
    t0 = time.perf_counter()
    try:
        options = CONVERTERS[fmt_name](model, path, inp)
    except Exception as exc:  # converter internals: report which artifact failed
        if isinstance(exc, OSError) or "No space left on device" in str(exc):
            # the environment, not the model (exit 1): converters wrap ENOSPC in their own types
            raise OSError(errno.ENOSPC if "No space left" in str(exc) else getattr(exc, "errno", None),
                          f"converting {role} to {fmt_name} failed: {first_line(exc)}") from None
        raise EdgekdError(f"converting {role} to {fmt_name} failed: {first_line(exc)}") from None
    seconds = time.perf_counter() - t0
    runner = open_runner(path, fmt.runtime, threads)
    parity = compare(ref_logits, runner.predict(parity_x), labels, fmt)
    return {"name": f"{role}_{fmt_name}", "role": role, "format": fmt_name,
            "runtime": fmt.runtime, "precision": fmt.precision, "path": path.name,
            "bytes": path.stat().st_size, "sha256": sha256_file(path),
            "source": model_file(role), "params": int(model.count_params()),
            "gzip_bytes": len(gzip.compress(path.read_bytes(), 9)),
            "macs": count_macs(model), "inputs": runner.inputs,
            "outputs": runner.outputs, "options": options,
            "export_seconds": round(seconds, 2), "parity": parity}


def _previous_outputs(folder: Path) -> set[str]:
    """Names the previous export (manifest.json) and bench (bench.json) wrote:
    the only files a re-export leaves behind. Everything else is carried over."""
    names = {MANIFEST_NAME, BENCH_NAME}
    for listing, key in ((MANIFEST_NAME, None), (BENCH_NAME, "files")):
        try:
            record = json.loads((folder / listing).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        if key is None:
            files = [a.get("path") for a in record.get("artifacts", []) if isinstance(a, dict)]
            files.append((record.get("references") or {}).get("path"))
        else:
            files = record.get(key, [])
        names.update(f for f in files if isinstance(f, str) and "/" not in f)
    return names


def _stage(folder: Path) -> Path:
    """A new temporary sibling holding links to everything in `folder` but the
    previous export's and bench's outputs."""
    tmp = temp_sibling(folder, "export")
    skip = _previous_outputs(folder)
    for item in folder.iterdir():
        if item.name not in skip:
            link_or_copy(item, tmp / item.name)
    return tmp


def _file_record(path: Path) -> dict:
    return {"path": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def run(folder: str | Path, formats: list[str], roles=DEFAULT_EXPORT,
        int8_io: bool = False, parity_n: int = 256, allow_failures: bool = False,
        threads: int | None = None, log=print, trust_code: bool = False) -> dict:
    """Export, verify and describe; returns the manifest."""
    folder = Path(folder).resolve()
    t0 = time.perf_counter()
    pre, ev, calib = read_inputs(folder)
    labels = [str(s) for s in ev["labels"]]
    keras_models = _load_roles(folder, roles, pre, len(labels), trust_code)
    inp = Inputs(pre, calib, int8_io)
    x_eval = pre.apply(ev["x"])
    tmp = _stage(folder)
    total = sum(len(formats_for(formats, role in QAT_ROLES)) for role in keras_models)
    bar = tqdm(total=total, unit="file", desc="export", file=sys.stderr, disable=None, leave=False)
    try:
        refs, artifacts = {}, []
        for role, model in keras_models.items():
            refs[role] = model.predict(x_eval, batch_size=256, verbose=0).astype(np.float32)
            idx = spread_indices(len(x_eval), parity_n)
            px, pr, py = x_eval[idx], refs[role][idx], ev["y"][idx]
            for name in formats_for(formats, role in QAT_ROLES):
                rec = _export_one(model, role, name, tmp, inp, px, pr, py, threads or 1)
                p = rec["parity"]
                log(f"[export] {rec['name']:<28} {rec['bytes']:>10,} B  top-1 agree "
                    f"{100 * p['top1_agreement']:6.2f} %  max|diff| {p.get('max_abs_diff', 0):.2e}"
                    f"  {'ok' if p['passed'] else 'FAILED'}")
                artifacts.append(rec)
                bar.update()
        with atomic_path(tmp / "reference.npz") as ref_file:
            np.savez_compressed(ref_file, y=ev["y"], **{f"{r}_logits": v for r, v in refs.items()})
        manifest = _manifest(tmp, ev, labels, pre, keras_models, artifacts, refs, t0)
        failed = [a for a in artifacts if not a["parity"]["passed"]]
        for a in (a for a in failed if ROLES[a["role"]].reference):
            log(f"[export] {a['name']} failed its gate ({'; '.join(a['parity']['failures'])}): "
                f"kept, marked failed in {MANIFEST_NAME}; the {a['role']} is not deployed")
        failed = [a for a in failed if not ROLES[a["role"]].reference]
        if failed and not allow_failures:
            a = failed[0]
            raise EdgekdError(f"parity failed for {a['name']}: {'; '.join(a['parity']['failures'])}"
                              f" ({len(failed)} artifact(s) failed; --allow-parity-failures "
                              "keeps them, marked failed)")
        validate(manifest)
        write_json(tmp / MANIFEST_NAME, manifest)
        swap_into_place(tmp, folder)
        return manifest
    finally:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _manifest(tmp: Path, ev: dict, labels, pre, keras_models, artifacts, refs, t0) -> dict:
    y = ev["y"]
    model_info = {}
    for role, model in keras_models.items():
        model_info[role] = {**_file_record(tmp / model_file(role)),
                            "params": int(model.count_params()),
                            "macs": count_macs(model),
                            "accuracy": float(np.mean(np.argmax(refs[role], -1) == y))}
    trained = train_report.load(tmp)
    dataset_name = trained["dataset"]["name"]
    seen = {"images_seen": trained["images_seen"]} if "images_seen" in trained else {}
    return {"schema_version": SCHEMA_VERSION, "edgekd_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": environment.versions(),
            "dataset": {"name": dataset_name, "labels": labels, "n_eval": int(len(y)), **seen},
            "preprocessing": pre.to_dict(),
            "eval": _file_record(tmp / "eval.npz"),
            "calib": _file_record(tmp / "calib.npz"),
            "references": _file_record(tmp / "reference.npz"),
            "models": model_info,
            "export_seconds": round(time.perf_counter() - t0, 1),
            "machine": environment.machine(),
            "artifacts": artifacts}
