"""Image arrays too large for memory: uint8 rows in a file, read by index.

The training images and the teacher cache grow with N x pixels (x views):
45,000 photos at 128 px are 2.2 GB, and 2 cached copies of them 4.4 GB. Past
RAM_LIMIT bytes such an array lives in a file in the run's store folder, and
the process holds only the batch it reads. Rows are read with pread, not
through a memory map: the kernel's page cache keeps the hot part of the file
(reclaimable, shared), while a memory map would count every page it ever
touched in the process's resident size.

`ImageStore` is what the pipeline needs of an array: `shape`, `len`, and rows
by index array or slice (`x[idx]` returns an ndarray). `subset(idx)` is a view
by index (no copy). Smaller arrays stay plain numpy arrays: the same code
indexes both, and CIFAR-sized data keeps its in-memory speed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgekd import envvars
from edgekd.files import is_ours, write_marker

RAM_LIMIT = 1 << 30  # bytes; larger image arrays go to a file (EDGEKD_STORE_RAM_LIMIT)


def ram_limit() -> int:
    return envvars.byte_limit(envvars.STORE_RAM_LIMIT, RAM_LIMIT, zero_ok=True)


class ImageStore:
    """uint8 rows of `row_shape` in `path` (written by `write`), optionally
    seen through `rows` (an index map)."""

    def __init__(self, path: Path, n: int, row_shape: tuple[int, ...],
                 rows: np.ndarray | None = None):
        self.path, self.n, self.row_shape = Path(path), n, tuple(row_shape)
        self.row_bytes = int(np.prod(self.row_shape))
        self.rows = rows
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    @classmethod
    def create(cls, folder: Path, name: str, n: int, row_shape) -> "ImageStore":
        store = cls(Path(folder) / name, n, row_shape)
        os.ftruncate(store._fd, n * store.row_bytes)
        return store

    def __del__(self):
        if getattr(self, "_fd", None) is not None and self.rows is None:
            os.close(self._fd)
            self._fd = None

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return self.n if self.rows is None else len(self.rows)

    def _file_rows(self, idx: np.ndarray) -> np.ndarray:
        return idx if self.rows is None else self.rows[idx]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            key = np.arange(len(self))[key]
        idx = self._file_rows(np.asarray(key, dtype=np.int64).reshape(-1))
        b = self.row_bytes
        data = b"".join(os.pread(self._fd, b, int(i) * b) for i in idx)
        return np.frombuffer(data, np.uint8).reshape(len(idx), *self.row_shape).copy()

    def write(self, start: int, block: np.ndarray) -> None:
        """Rows start.. of the file (not through a view): one pwrite."""
        os.pwrite(self._fd, np.ascontiguousarray(block, np.uint8).tobytes(),
                  start * self.row_bytes)

    def subset(self, idx) -> "ImageStore":
        view = ImageStore.__new__(ImageStore)
        view.__dict__.update(self.__dict__)
        view.rows = self._file_rows(np.asarray(idx, dtype=np.int64))
        view._owner = self  # keeps the file descriptor open while the view lives
        return view

    def __array__(self, dtype=None, copy=None):
        raise TypeError("an ImageStore is not loaded whole; index it (x[idx]) instead")


def empty(n: int, row_shape, folder: Path | None, name: str):
    """A uint8 (n, *row_shape) array to fill: numpy within ram_limit() (or
    without a folder), else an ImageStore file in `folder`."""
    if folder is None or n * int(np.prod(row_shape)) <= ram_limit():
        return np.empty((n, *row_shape), np.uint8)
    return ImageStore.create(folder, name, n, row_shape)


def put(array, start: int, block: np.ndarray) -> None:
    if isinstance(array, ImageStore):
        array.write(start, block)
    else:
        array[start:start + len(block)] = block


def stacked(parts, folder: Path | None, name: str, block: int = 4096):
    """The rows of `parts` (arrays or ImageStores of one row shape), one after
    another, in a new array or store (`empty`), copied `block` rows at a time."""
    out = empty(sum(len(p) for p in parts), parts[0].shape[1:], folder, name)
    start = 0
    for part in parts:
        for a in range(0, len(part), block):
            put(out, start + a, take(part, np.arange(a, min(len(part), a + block))))
        start += len(part)
    return out


def take(array, idx) -> np.ndarray:
    """Rows of a numpy array or an ImageStore, as a numpy array."""
    return array[np.asarray(idx)]


def subset(array, idx):
    return array.subset(idx) if isinstance(array, ImageStore) else array[idx]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def open_folder(out: Path) -> Path:
    """The run's store folder beside `out`: hidden, marked as ours and named
    by the process, so that one left by a killed run is removed by the next
    (and never a live worker's of the same run)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.store-*"):
        pid = stale.name[len(f".{out.name}.store-"):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)) and stale.is_dir() and is_ours(stale):
            shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.store-{os.getpid()}-", dir=out.parent))
    write_marker(folder, "store")
    return folder


@contextmanager
def folder_beside(out: Path):
    """open_folder for the length of a run; removed however the run ends."""
    folder = open_folder(out)
    try:
        yield folder
    finally:
        if folder.is_dir() and is_ours(folder):
            shutil.rmtree(folder, ignore_errors=True)
