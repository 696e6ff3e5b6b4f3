"""Write-then-swap helpers: a stage writes into a temporary sibling folder and
only a complete result replaces the destination, so a failed run never leaves
a half-written artifacts folder. Single files are written to a temporary name
and renamed over the destination: a symlink there is replaced, never written
through, and a failed write (a full disk) leaves no temporary file behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def temp_sibling(dest: Path, tag: str) -> Path:
    """A new empty folder beside `dest` to build its replacement in, with the
    mode a plain mkdir gives under the user's umask (mkdtemp's 0700 would
    otherwise become the artifacts folder's mode when it is swapped in)."""
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.{tag}-"))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    return tmp


def swap_into_place(tmp: Path, dest: Path) -> None:
    """Replace `dest` by the complete folder `tmp` (same parent directory).
    Callers check first that `dest` is edgekd's own (edgekd.files.check_writable)."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix, for writers that read it);
    renamed onto `path` when the block succeeds, removed when it fails."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        _remove(Path(tmp))
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Atomic text file write."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, obj) -> None:
    """Atomic JSON file write."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link a file (cheap, same content) or copy it across filesystems;
    symlinks are recreated as symlinks, folders copied with theirs."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        shutil.copytree(src, dst, symlinks=True)
    else:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
