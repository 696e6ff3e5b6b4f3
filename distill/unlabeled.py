"""Unlabeled photos (`--unlabeled DIR`): the transfer set of Hinton's
distillation. They need no labels: the teacher's cached outputs are their
only target (the hard-label term is absent for them, distill.loss), they
join the distilled student phases, and the teacher learns them only through
its own confident predictions (pseudo-labels, distill.pseudo), never their
labels (they have none).

A folder is walked at any depth (folder names mean nothing: a class-named
subfolder gives no label), symlinks followed once (a loop is walked once),
hidden files and files without an image suffix skipped and counted. The
photos are decoded like the labeled ones: the run's size, channels and
resize policy, into the run's store past its memory limit, at most the
preset's training limit of them (drawn at random before decoding).

Leakage guard: an unlabeled photo whose decoded pixels equal a test image's
is dropped (a byte-identical copy decodes to the same pixels), and so is
one equal to a labeled training image or to an earlier unlabeled one (it
would only count twice); both counts are printed and recorded.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from distill import photos, store
from distill.data import _drawn
from edgekd.errors import EdgekdError

UNLABELED = -1  # the label of an unlabeled image in the student's data
CHUNK = 4096  # rows hashed at a time (an ImageStore is read a block at a time)


@dataclass(frozen=True)
class Walked:
    files: tuple[Path, ...]
    skipped: int  # files that are not images by name (or hidden)


@dataclass(frozen=True)
class Unlabeled:
    x: object  # uint8 (N, H, W, C) array or store.ImageStore
    found: int  # image files found in the folders
    drawn: int  # of them, decoded (the training limit)
    skipped: int  # non-image or hidden files
    leaked: int  # dropped: the same pixels as a test image
    duplicates: int  # dropped: the same pixels as a labeled or an earlier unlabeled image

    def record(self) -> dict:
        return {"found": self.found, "drawn": self.drawn, "used": len(self.x),
                "skipped_files": self.skipped, "dropped_test_copies": self.leaked,
                "dropped_duplicates": self.duplicates}


def walk(folders) -> Walked:
    """Every image file under `folders`, sorted, each real folder once."""
    files, skipped, seen = [], 0, set()
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise EdgekdError(f"--unlabeled {folder}: not a folder")
        top = os.stat(folder)
        if (top.st_dev, top.st_ino) in seen:  # given twice, or inside one given before
            continue
        found, other = _walk_one(folder, seen)
        if not found:
            raise EdgekdError(
                f"--unlabeled {folder}: no {'/'.join(sorted(photos.IMAGE_SUFFIXES))} images "
                f"at any depth ({other} other file(s)); pass a folder of photos")
        files += found
        skipped += other
    return Walked(tuple(files), skipped)


def _walk_one(folder: Path, seen: set) -> tuple[list[Path], int]:
    files, skipped = [], 0
    for root, dirs, names in os.walk(folder, followlinks=True):
        st = os.stat(root)
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(root) / name
            if name.startswith(".") or path.suffix.lower() not in photos.IMAGE_SUFFIXES \
                    or not path.is_file():
                skipped += 1
            else:
                files.append(path)
    return files, skipped


def _digests(x) -> list[bytes]:
    out = []
    for a in range(0, len(x), CHUNK):
        block = np.ascontiguousarray(store.take(x, np.arange(a, min(len(x), a + CHUNK))))
        out.extend(hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in block)
    return out


def keep_rows(x, test, labeled) -> tuple[np.ndarray, int, int]:
    """(rows of `x` to keep, dropped as test copies, dropped as duplicates)."""
    test_set, known = set(_digests(test)), set(_digests(labeled))
    keep, leaked, dupes = [], 0, 0
    for i, d in enumerate(_digests(x)):
        if d in test_set:
            leaked += 1
        elif d in known:
            dupes += 1
        else:
            known.add(d)
            keep.append(i)
    return np.asarray(keep, np.int64), leaked, dupes


def load(folders, ds, limit: int | None, seed: int) -> Unlabeled | None:
    """The unlabeled photos of `folders` at `ds`'s size and policy, guarded
    against its test and training images; None without folders."""
    if not folders:
        return None
    walked = walk(folders)
    drawn = _drawn(list(walked.files), limit, seed + 7)  # not the labeled photos' draw
    if len(drawn) < len(walked.files):
        print(f"[distill] {len(drawn)} of the {len(walked.files)} unlabeled photos drawn at "
              "random (the preset's limit)", flush=True)
    _, h, w, c = ds.x_train.shape
    x = photos.decode(drawn, (h, w), "L" if c == 1 else "RGB", ds.resize, "unlabeled",
                      ds.store_dir)
    keep, leaked, dupes = keep_rows(x, ds.x_test, ds.x_train)
    if len(keep) < len(x):
        x = store.subset(x, keep)
    if not len(keep):
        raise EdgekdError(f"--unlabeled: all {len(drawn)} photos are copies of the data's own "
                          f"images ({leaked} of test images, {dupes} of training ones)")
    result = Unlabeled(x, len(walked.files), len(drawn), walked.skipped, leaked, dupes)
    print(f"[distill] unlabeled: {len(keep)} photos used of {len(walked.files)} found "
          f"({walked.skipped} other files skipped; dropped: {leaked} copies of test images, "
          f"{dupes} duplicates)", flush=True)
    return result


def joined(x_labeled, y_labeled: np.ndarray, extra: Unlabeled | None, folder: Path | None):
    """(images, labels) of the distilled phases: the labeled images, then the
    unlabeled ones labeled UNLABELED."""
    if extra is None:
        return x_labeled, y_labeled
    x = store.stacked([x_labeled, extra.x], folder, "student_images.u8", CHUNK)
    y = np.concatenate([np.asarray(y_labeled, np.int64),
                        np.full(len(extra.x), UNLABELED, np.int64)])
    return x, y
