"""The input contract edgekd writes into its own `.keras` files: how pixels
become the model's input (size, channels, scale, offset, resize policy), the
classes, and the accuracy it measured. A model handed back to edgekd (a
teacher re-used for another student) is then read exactly, not guessed from
its first layer. Stored as one extra JSON entry of the `.keras` zip, which
Keras' loaders ignore; TF-free, so bench and users' scripts can read it."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from edgekd.atomic import atomic_path

ENTRY = "edgekd.json"
KEYS = ("height", "width", "channels", "scale", "offset")


def write_contract(model_file: Path, contract: dict) -> None:
    """Add (or replace) the contract entry of a `.keras` zip, atomically."""
    model_file = Path(model_file)
    with atomic_path(model_file) as tmp:
        with zipfile.ZipFile(model_file) as src, zipfile.ZipFile(tmp, "w") as dst:
            for item in src.infolist():
                if item.filename != ENTRY:
                    with src.open(item) as a, dst.open(item, "w") as b:
                        shutil.copyfileobj(a, b)
            dst.writestr(ENTRY, json.dumps(contract, indent=1))


def read_contract(model_file: Path) -> dict | None:
    """The contract of an edgekd `.keras` file; None for any other file, or an
    entry that does not hold every key of the input."""
    try:
        with zipfile.ZipFile(model_file) as z:
            data = json.loads(z.read(ENTRY))
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return None
    inp = data.get("input") if isinstance(data, dict) else None
    if not isinstance(inp, dict) or not all(isinstance(inp.get(k), (int, float)) for k in KEYS):
        return None
    return data
