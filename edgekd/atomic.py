"""Write-then-swap helpers: a stage writes into a temporary sibling folder and
only a complete result replaces the destination, so a failed run never leaves
a half-written artifacts folder."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path


def swap_into_place(tmp: Path, dest: Path) -> None:
    """Replace `dest` by the complete folder `tmp` (same parent directory)."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json(path: Path, obj) -> None:
    """Atomic JSON file write (tmp + rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shared
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shared
    os.replace(tmp, path)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link a file (cheap, same content) or copy it across filesystems."""
    if src.is_dir():
        shutil.copytree(src, dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
