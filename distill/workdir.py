"""`<out>.partial`: where a distill run writes until it is complete (TF-free).

A run resumes from it when started again with the same configuration. A
folder from a run that failed before any work was saved (a bad --teacher,
a typo in a flag) is replaced by the corrected command; one that holds
finished results (killed while being moved into place) is moved on rerun. A
refusal names the folder and the command that deletes it. Folders without
edgekd's marker are never deleted.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

from edgekd.atomic import swap_into_place, write_text
from edgekd.errors import EdgekdError
from edgekd.files import is_ours, write_marker

COMPLETE = "train_report.json"  # written last: its presence means the results are whole


def _has_progress(work: Path) -> bool:
    """Whether the folder holds anything worth resuming: a saved model or an
    epoch log with at least one completed epoch."""
    if any(work.glob("*.keras")) or any(work.glob("*.h5")):
        return True
    for log in (work / "_checkpoints").glob("*_epochs.json"):
        try:
            if json.loads(log.read_text()):
                return True
        except (OSError, ValueError):
            continue
    return False


def saved_config(out: Path, suffix: str = ".partial") -> dict | None:
    """The configuration an interrupted run of `out` was started with, if any."""
    try:
        saved = json.loads((out.parent / f"{out.name}{suffix}" / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def _changed(saved: dict, wanted: dict) -> str:
    keys = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    return ", ".join(f"{k} {saved.get(k)!r} -> {wanted.get(k)!r}" for k in keys[:4])


def open_work(out: Path, config_json: str, chief: bool = True, suffix: str = ".partial") -> Path:
    """The work folder for `out`, resumed, replaced or created (on the chief)."""
    work = out.parent / f"{out.name}{suffix}"
    if work.exists() and (not work.is_dir() or (any(work.iterdir()) and not is_ours(work))):
        raise EdgekdError(f"{work} exists and was not made by edgekd: move it away or pass "
                          "another --out")
    saved_file = work / "config.json"
    if saved_file.is_file():
        saved, wanted = json.loads(saved_file.read_text()), json.loads(config_json)
        if saved == wanted:
            print(f"[distill] resuming the interrupted run in {work}", flush=True)
            return work
        if _has_progress(work):
            raise EdgekdError(
                f"{work} holds an interrupted run with another configuration "
                f"({_changed(saved, wanted)}): re-run with the same options to resume, or "
                f"delete it with: rm -rf {shlex.quote(str(work))}")
        print(f"[distill] replacing {work}: its run stopped before any saved work", flush=True)
    if chief:
        if work.exists():
            shutil.rmtree(work)
        # Made aside and renamed into place: other workers, checking the folder at the
        # same moment, see no folder or a marked one, never one half made.
        work.parent.mkdir(parents=True, exist_ok=True)
        fresh = work.parent / f".{work.name}-{os.getpid()}"  # mkdir's usual permissions
        if fresh.is_dir() and is_ours(fresh):
            shutil.rmtree(fresh)
        fresh.mkdir()
        write_marker(fresh, "artifacts")
        write_text(fresh / "config.json", config_json)
        os.rename(fresh, work)
    return work


def finish_complete(out: Path, config_json: str) -> bool:
    """Move a complete run of this configuration from `<out>.partial` into
    place (its move was interrupted); False when there is none."""
    work = out.parent / f"{out.name}.partial"
    if not (is_ours(work) and (work / COMPLETE).is_file() and (work / "config.json").is_file()):
        return False
    if json.loads((work / "config.json").read_text()) != json.loads(config_json):
        return False
    swap_into_place(work, out)
    print(f"[distill] moved the completed run from {work} into {out}", flush=True)
    return True


def discard_if_empty(work: Path) -> None:
    """Remove a work folder of ours that holds no saved work (only its config)."""
    if is_ours(work) and not _has_progress(work):
        shutil.rmtree(work, ignore_errors=True)


def damaged(work: Path, what: str) -> EdgekdError:
    """The error for a file of an interrupted run that cannot be read: every
    rerun would fail on it the same way, so say what to delete."""
    return EdgekdError(f"{what}: the interrupted run in {work} left it damaged (killed while "
                       f"saving, or a full disk?); delete that run with: rm -rf "
                       f"{shlex.quote(str(work))}")
