"""edgekd's environment variables, read and checked in one place: each stage
checks all of its variables before any work, as it checks its flags, so a
typo fails in a second instead of after the teacher trained."""

from __future__ import annotations

import os
import re

from edgekd.errors import EdgekdError

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_BYTES = re.compile(r"(\d+)\s*([KMGT]?)(i?B)?", re.IGNORECASE)

CACHE_LIMIT = "EDGEKD_CACHE_LIMIT"  # bytes of cached teacher views (distill.recipe)
STORE_RAM_LIMIT = "EDGEKD_STORE_RAM_LIMIT"  # bytes of images kept in RAM (distill.store; 0: none)

MAX_IMAGE_PIXELS = "EDGEKD_MAX_IMAGE_PIXELS"  # Pillow's decompression-bomb guard
PIXEL_LIMIT = 178_956_970  # Pillow's own error threshold (2x its warning default)


def pixel_limit() -> int:
    """The largest image, in pixels, edgekd decodes (EDGEKD_MAX_IMAGE_PIXELS)."""
    return count(MAX_IMAGE_PIXELS, PIXEL_LIMIT, "pixels")


def count(name: str, default: int, what: str) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = int(raw) if raw.strip().isdigit() else 0
    if value <= 0:
        raise EdgekdError(f"environment variable {name}={raw!r} is not a positive number of "
                          f"{what}; unset it for the default, {default}")
    return value


def byte_limit(name: str, default: int, zero_ok: bool = False) -> int:
    """A byte count from `name` (e.g. 8589934592, 8G, 512MiB), or `default`;
    positive, or also 0 where `zero_ok`."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    match = _BYTES.fullmatch(raw.strip())
    value = int(match.group(1)) * _UNITS[match.group(2).upper()] if match else -1
    if value < 0 or (value == 0 and not zero_ok):
        kind = "a" if zero_ok else "a positive"
        raise EdgekdError(f"environment variable {name}={raw!r} is not {kind} number of "
                          f"bytes (e.g. {name}=8G or {name}=536870912); unset it for the "
                          f"default, {default / 2**30:g} GiB")
    return value


def check_distill() -> None:
    """Every variable distill reads, checked before any work."""
    byte_limit(CACHE_LIMIT, 1)
    byte_limit(STORE_RAM_LIMIT, 1, zero_ok=True)
    pixel_limit()
