"""report.md and report.png from a bench result (bench.json's content)."""

from __future__ import annotations

from pathlib import Path

from edgekd.atomic import atomic_path, write_text
from edgekd.environment import int8_text
from edgekd.roles import is_distilled_student

BASELINE = ("teacher", "tflite_fp32")  # speed-up and size ratios are against this
FILES = ("report.md", "report.png")  # besides bench.json, which lists them for re-export


def _p50(row: dict, threads: str) -> float:
    """p50 at a thread count; NaN where the row has none (a target that ran fewer)."""
    lat = row["latency"].get(threads)
    return lat["p50_ms"] if lat else float("nan")


def summarize_rows(result: dict) -> dict:
    """Derived numbers: ratios against the teacher float32 TFLite, accuracy
    change against the Keras model of the same role, the best student artifact."""
    rows = result["artifacts"]
    threads = [str(t) for t in result["config"]["threads"]]
    base = next((r for r in rows if (r["role"], r["format"]) == BASELINE), None)
    keras_acc = result.get("keras_accuracy", {})
    derived = {}
    for r in rows:
        d = {"accuracy_change": (r["accuracy"] - keras_acc[r["role"]]
                                 if r["role"] in keras_acc else None)}
        if base:
            d["size_ratio"] = base["bytes"] / r["bytes"]
            d["speedup"] = {t: _p50(base, t) / _p50(r, t) for t in threads}
        derived[r["name"]] = d
    budget = result["config"]["accuracy_budget"]
    # any distilled student (float, pruned, QAT) may win; the scratch baseline may not
    students = [r for r in rows if is_distilled_student(r["role"])]
    ref = keras_acc.get("student", max((r["accuracy"] for r in students), default=0.0))
    ok = [r for r in students if r["accuracy"] >= ref - budget]
    best = min(ok, key=lambda r: (_p50(r, threads[0]), r["bytes"])) if ok else None
    return {"baseline": "_".join(BASELINE) if base else None, "per_artifact": derived,
            "best_student": best["name"] if best else None,
            "best_rule": f"fastest student artifact (p50 at {threads[0]} thread(s)) with "
                         f"accuracy >= Keras float student - {100 * budget:g} points",
            "threads": threads}


def _fmt(v, spec: str, dash: str = "-") -> str:
    return dash if v is None else format(v, spec)


def engine(row: dict) -> str:
    """What actually ran the model: LiteRT, or the ORT providers the session used."""
    run = row.get("runner", {})
    if run.get("runtime") == "keras":
        return "Keras/TensorFlow (extra row)"
    if run.get("runtime") == "onnx":
        return "onnxruntime " + "+".join(p.replace("ExecutionProvider", "")
                                         for p in run.get("providers", []))
    return "LiteRT"


def table(result: dict) -> str:
    s, threads = result["summary"], result["summary"]["threads"]
    head = ["artifact", "size KB", "gzip KB", "params", "MMACs", "top-1 %", "Δ vs Keras",
            "agree student %", "agree teacher %"]
    for t in threads:
        head += [f"p50 ms ({t}t)", f"p90 ms ({t}t)", f"speed-up ({t}t)"]
    head += ["size ratio", "cold ms", "peak RSS MB", "engine"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["artifacts"]:
        d = s["per_artifact"][r["name"]]
        chg = d["accuracy_change"]
        cells = [r["name"] + (" **best**" if r["name"] == s["best_student"] else ""),
                 f"{r['bytes'] / 1024:.1f}",
                 _fmt(r["gzip_bytes"] / 1024 if r.get("gzip_bytes") else None, ".1f"),
                 f"{r['params']:,}", f"{r['macs'] / 1e6:.1f}",
                 f"{100 * r['accuracy']:.2f}", _fmt(None if chg is None else 100 * chg, "+.2f"),
                 _fmt(100 * r["agreement_student"] if "agreement_student" in r else None, ".2f"),
                 _fmt(100 * r["agreement_teacher"] if "agreement_teacher" in r else None, ".2f")]
        for t in threads:
            lat = r["latency"][t]
            cells += [f"{lat['p50_ms']:.3f}", f"{lat['p90_ms']:.3f}",
                      _fmt(d.get("speedup", {}).get(t), ".2f")]
        cells += [_fmt(d.get("size_ratio"), ".2f"), f"{r['cold_start_ms']:.1f}",
                  f"{r['rss_peak_mb']:.0f}", engine(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(result: dict) -> str:
    m, v, s = result["machine"], result["versions"], result["summary"]
    emulated = " **(emulated: latency is meaningless)**" if m.get("emulated") else ""
    cfg = result["config"]
    return "\n".join([
        f"# edgekd benchmark: {result['dataset']['name']}", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['arch']}, {m['os']}{emulated}; "
        f"int8 features {int8_text(m) or 'n/a'}; "
        f"governor {m.get('governor') or 'n/a'}, temperature "
        f"{m.get('temperature_c') or 'n/a'} C.",
        f"Versions: python {v.get('python')}, numpy {v.get('numpy')}, onnxruntime "
        f"{v.get('onnxruntime')}, ai-edge-litert {v.get('ai-edge-litert')}, edgekd {v.get('edgekd')}.",
        f"Batch 1; >= {cfg['runs']} timed runs and >= {cfg['seconds']} s per thread count after "
        f">= {cfg['warmup_runs']} runs / {cfg['warmup_seconds']} s warm-up. Accuracy on all "
        f"{result['dataset'].get('n_eval', '')} eval images. Speed-up and size ratio against "
        f"{s['baseline'] or 'n/a'}. Created {result['created']}.", "",
        *_images_seen(result["dataset"]),
        table(result), "",
        f"Best student artifact for this machine: **{s['best_student'] or 'none'}** "
        f"({s['best_rule']}).", ""])


def _images_seen(dataset: dict) -> list[str]:
    """A line on what each model trained on, when unlabeled photos taught the student."""
    seen = dataset.get("images_seen") or {}
    if not any(c.get("unlabeled") for c in seen.values()):
        return []
    def part(role: str, c: dict) -> str:
        text = f"{role} {c['labeled']:,} labeled"
        if c.get("unlabeled"):
            text += f" + {c['unlabeled']:,} unlabeled" + (
                " (pseudo-labeled)" if c.get("pseudo_labels") else "")
        return text
    parts = [part(role, c) for role, c in seen.items()]
    return [f"Training images: {'; '.join(parts)}.", ""]


CONFUSION_MAX_CLASSES = 20  # larger matrices stay in bench.json (and the plot)


def class_rows(result: dict) -> list[dict]:
    """The rows per-class results are shown for: the teacher's and the
    student's float32 and int8 TFLite files (what ships), and the best student."""
    best = result["summary"]["best_student"]
    return [r for r in result["artifacts"] if "per_class_accuracy" in r and (
        (r["role"] in ("teacher", "student") and r["format"] in ("tflite_fp32", "tflite_int8"))
        or r["name"] == best)]


def per_class(result: dict) -> str:
    """Top-1 per class (recall) for class_rows, and the best student's confusion
    matrix: with unbalanced classes, the first thing to look at."""
    rows, labels = class_rows(result), result["dataset"]["labels"]
    if not rows:
        return ""
    support = [sum(c) for c in rows[0]["confusion"]]
    lines = ["## Per class", "", "Top-1 % of each class's eval images (recall).", "",
             "| class | eval images | " + " | ".join(r["name"] for r in rows) + " |",
             "|---|---:|" + "---:|" * len(rows)]
    for k, label in enumerate(labels):
        cells = [_fmt(None if r["per_class_accuracy"][k] is None
                      else 100 * r["per_class_accuracy"][k], ".1f") for r in rows]
        lines.append(f"| {label} | {support[k]} | " + " | ".join(cells) + " |")
    best = next((r for r in rows if r["name"] == result["summary"]["best_student"]), rows[-1])
    lines += ["", f"Confusion matrix of {best['name']} (rows: true class, columns: predicted):",
              ""]
    if len(labels) > CONFUSION_MAX_CLASSES:
        return "\n".join(lines + [f"{len(labels)} classes: see `confusion` in bench.json "
                                  "and report.png.", ""])
    lines += ["| true \\ predicted | " + " | ".join(labels) + " |",
              "|---|" + "---:|" * len(labels)]
    lines += [f"| {label} | " + " | ".join(str(v) for v in best["confusion"][k]) + " |"
              for k, label in enumerate(labels)]
    return "\n".join(lines + [""])


def _compare(local: dict, other: dict) -> tuple[float | None, float | None]:
    """Top-1 agreement and max |output diff| (first images) of two runs of one artifact."""
    import numpy as np
    if not other or "predictions" not in local or "predictions" not in other:
        return None, None
    n = min(len(local["predictions"]), len(other["predictions"]))
    agree = float(np.mean(np.asarray(local["predictions"][:n])
                          == np.asarray(other["predictions"][:n])))
    a, b = np.asarray(local.get("logits_head", [])), np.asarray(other.get("logits_head", []))
    k = min(len(a), len(b))
    return agree, (float(np.max(np.abs(a[:k] - b[:k]))) if k else None)


def _machine_line(label: str, result: dict) -> str:
    m = result["machine"]
    emu = " - EMULATED, latency meaningless" if m.get("emulated") else ""
    isa = f" ({int8_text(m)})" if int8_text(m) else ""
    return f"- **{label}**: {m['cpu']}{isa}, {m['cores']} cores, {m['arch']}, {m['os']}{emu}"


def targets_table(result: dict) -> str:
    """One row per artifact, one column group per target, and the agreement of
    each target's outputs with this machine's."""
    runs = [("local", result)] + [(r["target"], r) for r in result.get("targets", [])]
    head = ["artifact"]
    for label, r in runs:
        t = r["summary"]["threads"]
        head += [f"{label} top-1 %", f"{label} p50 ms ({t[0]}t)", f"{label} p50 ms ({t[-1]}t)"]
        if label != "local":
            head += [f"{label} agree %", f"{label} max|diff|"]
    lines = [_machine_line(label, r) for label, r in runs] + [""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in result["artifacts"]:
        cells = [row["name"]]
        for label, r in runs:
            other = next((x for x in r["artifacts"] if x["name"] == row["name"]), None)
            t = r["summary"]["threads"]
            if other is None:
                cells += ["-"] * (3 if label == "local" else 5)
                continue
            cells += [f"{100 * other['accuracy']:.2f}",
                      f"{other['latency'][t[0]]['p50_ms']:.3f}",
                      f"{other['latency'][t[-1]]['p50_ms']:.3f}"]
            if label != "local":
                agree, diff = _compare(row, other)
                cells += [_fmt(None if agree is None else 100 * agree, ".2f"), _fmt(diff, ".1e")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(path: Path, result: dict) -> bool:
    """Accuracy against p50 latency, marker area by file size. False when
    matplotlib (the `plot` extra) is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    t = result["summary"]["threads"][0]
    rows = class_rows(result)
    fig, axes = plt.subplots(1, 2 if rows else 1, figsize=(15 if rows else 8, 5.5),
                             squeeze=False)
    ax = axes[0][0]
    colors = {"teacher": "tab:red", "student": "tab:blue", "student_scratch": "tab:gray"}
    biggest = max(r["bytes"] for r in result["artifacts"])
    for r in result["artifacts"]:
        x, y = r["latency"][t]["p50_ms"], 100 * r["accuracy"]
        ax.scatter(x, y, s=40 + 800 * r["bytes"] / biggest, alpha=0.6,
                   color=colors.get(r["role"], "k"), edgecolors="k")
        ax.annotate(r["name"], (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"p50 latency, batch 1, {t} thread(s) [ms, log]")
    ax.set_ylabel("top-1 accuracy [%]")
    ax.set_title(f"{result['dataset']['name']}: accuracy vs latency (marker area ~ file size)")
    ax.grid(True, alpha=0.3)
    if rows:
        _confusion_plot(axes[0][1], result, rows)
    fig.tight_layout()
    with atomic_path(path) as tmp:  # never through a symlink at `path`
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return True


def _confusion_plot(ax, result: dict, rows: list[dict]) -> None:
    """The best student's confusion matrix, each row as fractions of its class."""
    import numpy as np
    best = next((r for r in rows if r["name"] == result["summary"]["best_student"]), rows[-1])
    m = np.asarray(best["confusion"], dtype=float)
    m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    labels = result["dataset"]["labels"]
    if len(labels) <= CONFUSION_MAX_CLASSES:
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{best['name']}: confusion (row fractions)")


def write(folder: Path, result: dict) -> None:
    text = markdown(result) + "\n" + per_class(result)
    if result.get("targets"):
        text += "\n## All targets\n\n" + targets_table(result) + "\n"
    write_text(folder / "report.md", text)
    plot(folder / "report.png", result)
