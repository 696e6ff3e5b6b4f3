"""Silence what native libraries print on stderr (TF-free)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def native_stderr_muted() -> Iterator[None]:
    """Mute file descriptor 2 for the block: the lines TensorFlow and LiteRT
    print from C++ while loading (CUDA probing, "Created TensorFlow Lite XNNPACK
    delegate") are noise to a user. Python exceptions still propagate.
    TF_CPP_MIN_LOG_LEVEL below 3 (asking for those logs) leaves stderr alone."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") != "3":
        yield
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
