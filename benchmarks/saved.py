"""Where saved runs live and how they are read: the one loader every table uses."""

from __future__ import annotations

import json
from pathlib import Path

from edgekd import train_report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs" / "results"
SHARED = ROOT.parent / "shared" / "data"  # the data sets and weights beside the checkout
MOBILENET_WEIGHTS = SHARED / "pretrained" / "mobilenet_1_0_224_tf_no_top.h5"  # the teachers'


def load(name: str) -> dict:
    """A saved pipeline run: {"train": train_report, "bench": bench, "stages": {...}}."""
    d = RESULTS / name
    out = {"train": train_report.load(d),
           "bench": json.loads((d / "bench.json").read_text())}
    stages = d / "stages.json"
    out["stages"] = json.loads(stages.read_text()) if stages.is_file() else {}
    return out


def table_path(name: str) -> Path:
    """The markdown a measuring script records for `make report` to publish."""
    return RESULTS / name / "table.md"


def write_table(name: str, text: str) -> Path:
    path = table_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# The pretrained teacher's fine-tuning before top layers at 1e-4 became the default: pages
# recorded under it pass these flags, so a rerun reproduces what they say.
EARLIER_RECIPE = ("--teacher-fine-tune", "all", "--teacher-fine-tune-lr", "3e-4")


def publish(name: str, text: str) -> int:
    """Print a measuring script's table and record it for `make report`."""
    print(text)
    write_table(name, text)
    return 0


def machine_line() -> str:
    """The sentence every recorded page ends its description with."""
    from edgekd.environment import machine, versions
    m, v = machine(), versions()
    return f"Machine: {m['cpu']}, {m['cores']} cores; tensorflow {v.get('tensorflow')}."
