"""Fill README.md's result tables from real runs (never typed by hand).

    python benchmarks/readme_tables.py --seed artifacts-seed [--default artifacts-default]
    python benchmarks/readme_tables.py --seed-xeon artifacts-seed   # the seed run of a 2nd host

Each named artifacts folder's train_report.json and bench.json are summarized
into benchmarks/results/<preset>/ (committed: raw latency samples and per-image
outputs dropped) and
rendered into README.md between `<!-- edgekd:<preset>:start -->` and
`<!-- edgekd:<preset>:end -->`. Without arguments it re-renders from
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))


def save(preset: str, folder: Path) -> None:
    """Copy a run's reports into benchmarks/results/<preset>/, without raw samples."""
    dest = RESULTS / preset
    dest.mkdir(parents=True, exist_ok=True)
    train = json.loads((folder / "train_report.json").read_text())
    (dest / "train_report.json").write_text(json.dumps(train, indent=1) + "\n")
    bench = json.loads((folder / "bench.json").read_text())
    for r in [*bench["artifacts"], *(a for t in bench.get("targets", []) for a in t["artifacts"])]:
        r.pop("predictions", None)  # per-image outputs: in the artifacts folder's bench.json
        r.pop("logits_head", None)
        for lat in r["latency"].values():
            lat.pop("samples_ns", None)
    (dest / "bench.json").write_text(json.dumps(bench, indent=1) + "\n")
    (dest / "report.md").write_text((folder / "report.md").read_text())
    pipeline = folder / "edge_model_stages.json"  # benchmarks/add_scratch.py: before re-export
    if pipeline.is_file():
        stages = json.loads(pipeline.read_text())
    else:
        manifest = json.loads((folder / "manifest.json").read_text())
        stages = {"export_seconds": manifest.get("export_seconds")}
    (dest / "stages.json").write_text(json.dumps(stages) + "\n")


def render(preset: str) -> str:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    if preset == "default":
        return render_default()
    from bench.report import table
    from seed_table import table as train_table
    train = json.loads((RESULTS / preset / "train_report.json").read_text())
    bench = json.loads((RESULTS / preset / "bench.json").read_text())
    m = bench["machine"]
    return "\n".join([
        f"Measured on {m['cpu']} ({m['cores']} cores), {bench['created']}; data: "
        f"{train['dataset']['name']}. Source: `benchmarks/results/{preset}/`.", "",
        "Training:", "", train_table(train, bench), "",
        "Every artifact (batch 1):", "", table(bench), "",
        f"Best student artifact here: **{bench['summary']['best_student']}**."])


def render_default() -> str:
    """The default preset beside the seed one (benchmarks/default_table.py)."""
    import default_table
    from bench.report import table
    bench = default_table.load("default")["bench"]
    body = default_table.write_saved().split("\n", 2)[2]  # drop the document's title
    return "\n".join([body, "Every default-preset artifact (batch 1):", "",
                      table(bench), "",
                      f"Best student artifact here: **{bench['summary']['best_student']}**."])


def splice(readme: str, preset: str, body: str) -> str:
    start, end = f"<!-- edgekd:{preset}:start -->", f"<!-- edgekd:{preset}:end -->"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no {start} ... {end} section")
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", readme)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=Path, help="artifacts folder of a seed-preset run")
    p.add_argument("--seed-xeon", type=Path, help="artifacts folder of a seed-preset run on "
                   "the Intel Xeon host (benchmarks/results/seed_xeon/)")
    p.add_argument("--default", type=Path, help="artifacts folder of a default-preset run")
    a = p.parse_args()
    for preset, folder in (("seed", a.seed), ("seed_xeon", a.seed_xeon), ("default", a.default)):
        if folder:
            save(preset, folder)
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    for preset in ("seed", "seed_xeon", "default"):
        if (RESULTS / preset / "bench.json").is_file():
            readme = splice(readme, preset, render(preset))
            print(f"README.md: {preset} table updated")
    readme_path.write_text(readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
