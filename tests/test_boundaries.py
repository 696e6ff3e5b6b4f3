"""Stages talk through the artifacts folder: no import between stage packages
except export's through distill.api (the one door), and the core imports no
stage. Every import is read from the source (function-level ones included),
so a lazy import inside a function cannot hide one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("distill", "export", "bench")
# package -> the modules of other packages it may import (besides edgekd)
DOORS = {"distill": set(), "export": {"distill.api"}, "bench": set(), "edgekd": set()}


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in `source`, a file directly inside
    `package`; relative imports resolved (a level above the package is the
    top level)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            prefix = {0: "", 1: package}.get(node.level, "")
            base = ".".join(p for p in (prefix, node.module or "") if p)
            if base in ("", *STAGES):  # `from distill import models` imports distill.models
                found += [(node.lineno, ".".join(p for p in (base, a.name) if p)) for a in node.names]
            else:
                found.append((node.lineno, base))
    return found


def crossings(package: str, source: str, where: str) -> list[str]:
    bad = []
    for line, mod in imported_modules(source, package):
        top = mod.split(".")[0]
        if top == package or top not in STAGES:
            continue
        if any(mod == d or mod.startswith(d + ".") for d in DOORS[package]):
            continue
        bad.append(f"{where}:{line} imports {mod}")
    return bad


def test_no_stage_imports_another_except_through_the_door():
    bad = []
    for package in DOORS:
        for path in sorted((ROOT / package).rglob("*.py")):
            bad += crossings(package, path.read_text(), str(path.relative_to(ROOT)))
    assert bad == [], "imports between stages (use the artifacts folder or distill.api):\n" + "\n".join(bad)


@pytest.mark.parametrize("package, source", [
    ("distill", "def f():\n    from export.run import export\n"),
    ("distill", "import bench.stats\n"),
    ("distill", "from .. import export\n"),
    ("export", "from distill import models\n"),
    ("export", "from distill.models import count_macs\n"),
    ("bench", "from distill.api import load\n"),
    ("edgekd", "from export import run\n"),
])
def test_the_check_sees_a_crossing(package, source):
    assert crossings(package, source, "x.py") != []


@pytest.mark.parametrize("package, source", [
    ("export", "from distill.api import CONVERTERS, load\n"),
    ("bench", "from edgekd.stats import summarize\nimport numpy\n"),
    ("distill", "from distill import models\nfrom .store import Store\n"),
])
def test_the_check_passes_the_door(package, source):
    assert crossings(package, source, "x.py") == []
