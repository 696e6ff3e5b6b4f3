"""Which folders edgekd may write, and which files it may read (TF-free).

Three rules, one place:
- ownership: a stage replaces or deletes only folders that carry edgekd's
  marker file (it made them); any other non-empty folder is refused, and so
  are the working directory and the data folder, whatever they hold;
- containment: a file named by a manifest, report or fixed artifact name must
  resolve, symlinks followed, inside its artifacts folder;
- readers turn a damaged JSON or npz file into one EdgekdError line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from edgekd import __version__
from edgekd.errors import EdgekdError

MARKER = ".edgekd"  # JSON {"made_by": "edgekd", ...}: written into every folder edgekd makes


def write_marker(folder: Path, kind: str) -> None:
    from edgekd.atomic import write_json
    write_json(folder / MARKER, {"made_by": "edgekd", "kind": kind, "version": __version__})


def is_ours(folder: Path) -> bool:
    """True when `folder` carries edgekd's marker (a regular file, not a link)."""
    marker = Path(folder) / MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("made_by") == "edgekd"
    except (OSError, ValueError, AttributeError):
        return False


def _within(path: Path, parent: Path) -> bool:
    return path == parent or path.is_relative_to(parent)


def check_writable(out: str | Path, data: str | None = None, flag: str = "--out") -> Path:
    """The resolved folder a stage may create or replace, or an EdgekdError
    that says why not and what to pass instead."""
    target = Path(out).expanduser().resolve()
    cwd = Path.cwd().resolve()
    if _within(cwd, target):
        raise EdgekdError(f"refusing {flag} {out}: it is the working directory or holds it; "
                          f"pass a new folder, e.g. {flag} artifacts")
    if data and Path(data).exists():
        src = Path(data).expanduser().resolve()
        if _within(src, target) or _within(target, src):
            raise EdgekdError(f"refusing {flag} {out}: it is, holds or lies inside the data "
                              f"folder {src}; pass a folder outside it, e.g. {flag} artifacts")
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise EdgekdError(f"refusing {flag} {out}: it is a file, not a folder; pass a new "
                              "folder")
        if any(target.iterdir()) and not is_ours(target):
            raise EdgekdError(f"refusing {flag} {out}: it holds files edgekd did not make (no "
                              f"{MARKER} marker) and would be replaced; pass a new or empty "
                              "folder")
    return target


def inside(folder: Path, name: str, what: str) -> Path:
    """`folder / name`, provided it resolves inside `folder` (symlinks followed)."""
    root = Path(folder).resolve()
    path = root / name
    if os.path.isabs(name) or not _within(path.resolve(), root):
        raise EdgekdError(f"{what}: {name!r} points outside the artifacts folder {root}; "
                          "refusing to read it (re-run export to rewrite the folder)")
    return path


def read_json(path: Path, what: str) -> dict:
    """A JSON object from `path`, or one EdgekdError line."""
    if not path.is_file():
        raise EdgekdError(f"{what} {path} not found")
    try:
        obj = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise EdgekdError(f"{what} {path} is not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise EdgekdError(f"{what} {path} must hold a JSON object, got {type(obj).__name__}")
    return obj


def check_schema(obj, schema: dict, what: str) -> None:
    """Raise EdgekdError naming the first place where `obj` breaks its JSON schema."""
    import jsonschema
    try:
        jsonschema.validate(obj, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise EdgekdError(f"invalid {what} at {where}: {exc.message}") from None


def load_npz(path: Path, keys: tuple[str, ...], hint: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz (no pickles: an object array is refused), with
    `keys` present and numeric, or one EdgekdError line ending in `hint`."""
    if not path.is_file():
        raise EdgekdError(f"{path} not found: {hint}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zip, format and pickle errors all mean: not a usable npz
        raise EdgekdError(f"cannot read {path} ({str(exc).splitlines()[0][:120]}): "
                          f"{hint}") from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise EdgekdError(f"{path} lacks {', '.join(missing)}: {hint}")
    return arrays
