"""Add the from-scratch baseline to a finished `make edge-model` run:

    python -m benchmarks.add_scratch ARTIFACTS_DIR

The default preset skips the baseline (it is a comparison, not a deployable),
so the pipeline users run is timed without it. This script first records that
pipeline's stage times (distill, export, bench) in ARTIFACTS_DIR/edge_model_stages.json,
then trains the same student from the same init with the same recipe and no
teacher (distill.run.add_scratch). Re-export and re-bench the folder with
`--roles teacher,student,student_scratch` afterwards (`make bench-default` does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from edgekd.atomic import write_json
from edgekd.errors import EdgekdError, run_cli


def pipeline_stages(folder: Path) -> dict:
    """Seconds of each stage of the run as the pipeline left it (before re-export)."""
    def read(name: str) -> dict:
        path = folder / name
        if not path.is_file():
            raise EdgekdError(f"{path} is missing: run make edge-model (distill, export, bench) "
                              "on this folder first")
        return json.loads(path.read_text())
    manifest, bench = read("manifest.json"), read("bench.json")
    return {"distill_seconds": read("train_report.json")["total_seconds"],
            "export_seconds": manifest.get("export_seconds"),
            "bench_seconds": bench.get("seconds"),
            "roles": sorted({a["role"] for a in bench["artifacts"]})}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="artifacts folder of a finished make edge-model")
    a = p.parse_args(argv)
    stages_file = a.folder / "edge_model_stages.json"
    if not stages_file.is_file():  # a second call (resume) keeps the first record
        write_json(stages_file, pipeline_stages(a.folder))
    from distill.run import add_scratch  # imports TensorFlow
    report = add_scratch(a.folder)
    m = report["models"]["student_scratch"]
    print(f"[add_scratch] scratch student {100 * m['accuracy']:.2f} % in "
          f"{report['scratch_seconds'] / 60:.1f} min; distillation gain "
          f"{100 * report['distillation_gain']:+.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, "add_scratch"))
