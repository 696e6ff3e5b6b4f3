"""The one generator of published numbers (`make report`):

    python -m benchmarks.report                       # re-render from benchmarks/results/
    python -m benchmarks.report --default artifacts-default   # save a run, then render
    python -m benchmarks.report --check               # exit 1 if a page is out of date

Named artifacts folders are first saved into benchmarks/results/<name>/
(train_report.json, bench.json without raw samples, report.md, stages.json).
Then every page of docs/results/ is rendered from benchmarks/results/, and
README.md's presets table between `<!-- edgekd:presets:start -->` and its end
marker. Nothing else writes README.md or docs/results/.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from bench.report import table as artifact_table
from benchmarks import default_ablation, default_table, seed_table
from benchmarks.saved import DOCS, RESULTS, ROOT, load, table_path

RUNS = ("seed", "seed_xeon", "default", "latency")  # saved pipeline runs, by name
# Tables recorded by a measuring script (benchmarks/results/<name>/table.md), published as is
RECORDED = ("zoo_throughput", "multiworker", "harness_overhead", "latency_vs_seed_epyc",
            "latency_vs_seed_xeon", "optimize_table", "sign_digits", "photo_memory", "photos",
            "subsets", "stems", "fine_tune", "latency_budget", "quick_photos",
            "photo_command", "teacher_memory", "loss_variants", "pretrained_students",
            "unlabeled", "gap_levers", "photo_schedule", "photo_levers")
README = ROOT / "README.md"


def save(name: str, folder: Path) -> None:
    """Copy a run's reports into benchmarks/results/<name>/, without raw samples."""
    dest = RESULTS / name
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


def run_page(name: str, title: str) -> str:
    """A saved pipeline run: its training table and every artifact."""
    run = load(name)
    train, bench = run["train"], run["bench"]
    m = bench["machine"]
    return "\n".join([
        f"# {title}", "",
        f"Measured on {m['cpu']} ({m['cores']} cores), {bench['created']}; data: "
        f"{train['dataset']['name']}. Source: `benchmarks/results/{name}/`.", "",
        "Training:", "", seed_table.table(train, bench), "",
        "Every artifact (batch 1):", "", artifact_table(bench), "",
        f"Best student artifact here: **{bench['summary']['best_student']}**.", ""])


def default_page() -> str:
    """The default preset beside the seed one, then its every artifact."""
    bench = load("default")["bench"]
    return "\n".join([default_table.write_saved(), "Every default-preset artifact (batch 1):",
                      "", artifact_table(bench), "",
                      f"Best student artifact here: **{bench['summary']['best_student']}**.", ""])


def _tflite(run: dict, role: str, fmt: str) -> dict | None:
    return next((r for r in run["bench"]["artifacts"] if (r["role"], r["format"]) == (role, fmt)),
                None)


def presets_table() -> str:
    """README's table: one row per preset, from the runs on one machine."""
    rows = ["| preset | teacher top-1 | student params | student MACs | student top-1 float "
            "| int8 (TFLite) | int8 p50 ms (1 thread) | distill time |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for preset, name in (("seed", "seed_xeon"), ("default", "default"), ("latency", "latency")):
        run = load(name)
        t, s = run["train"]["models"]["teacher"], run["train"]["models"]["student"]
        i8 = _tflite(run, "student", "tflite_int8")
        supplied = "" if t.get("trained", True) else " (default's, supplied)"
        minutes = run["stages"].get("distill_seconds", run["train"]["total_seconds"]) / 60
        rows.append(f"| `{preset}` | {100 * t['accuracy']:.2f} %{supplied} | {s['params']:,} "
                    f"| {s['macs'] / 1e6:.2f} M | {100 * s['accuracy']:.2f} % "
                    f"| {100 * i8['accuracy']:.2f} % | {i8['latency']['1']['p50_ms']:.3f} "
                    f"| {minutes:.0f} min |")
    m = load("default")["bench"]["machine"]
    return "\n".join([*rows, "", f"CIFAR-10 (JPEG copy), {m['cpu']}, {m['cores']} cores. "
                      "Every run, table and how the recipe was found: [docs/](docs/README.md)."])


def pages() -> dict[Path, str]:
    """Every generated file and its content."""
    out = {DOCS / "seed.md": run_page("seed", "Seed preset on the AMD EPYC host"),
           DOCS / "seed_xeon.md": run_page("seed_xeon", "Seed preset on the Intel Xeon host"),
           DOCS / "latency.md": run_page("latency", "Latency preset (teacher supplied)"),
           DOCS / "default.md": default_page(),
           DOCS / "ablation.md": default_ablation.document(
               json.loads((RESULTS / "ablation" / "ablation.json").read_text()))}
    for name in RECORDED:
        out[DOCS / f"{name}.md"] = table_path(name).read_text()
    out[README] = splice(README.read_text(), "presets", presets_table())
    return out


def splice(readme: str, block: str, body: str) -> str:
    start, end = f"<!-- edgekd:{block}:start -->", f"<!-- edgekd:{block}:end -->"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no {start} ... {end} section")
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", readme)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in RUNS:
        p.add_argument(f"--{name.replace('_', '-')}", type=Path, dest=name,
                       help=f"artifacts folder of a run to save as results/{name}/")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when stale")
    a = p.parse_args(argv)
    for name in RUNS:
        if getattr(a, name):
            save(name, getattr(a, name))
    stale = []
    for path, text in pages().items():
        if not path.is_file() or path.read_text() != text:
            stale.append(path.relative_to(ROOT))
            if not a.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    verb = "out of date" if a.check else "written"
    print("\n".join(f"{p}: {verb}" for p in stale) or "every page is up to date")
    return 1 if a.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
