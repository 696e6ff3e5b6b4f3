"""python -m bench.predict: run an exported artifact on image files and print
each file's top classes with probabilities. TF-free: what a board runs.

    python -m bench.predict artifacts photo1.jpg photo2.png [--artifact student_tflite_int8]

Without --artifact it runs the file bench chose for this machine (bench.json),
else the full-int8 TFLite student. Images get the training preprocessing that
manifest.json records: converted to its channels, brought to its size by its
resize policy (crop, pad or stretch; edgekd.preprocess.fit_image, the code
distill used), then `x * scale + offset`. The models
output logits; probabilities are their softmax.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgekd import manifest as mf
from edgekd.errors import EdgekdError, OneLineParser, run_cli
from edgekd.files import inside
from edgekd.preprocess import Preprocessing, load_image
from edgekd.stats import softmax

FALLBACK = "student_tflite_int8"


@dataclass(frozen=True)
class Deployable:
    """The file to deploy and what using it needs."""
    name: str
    path: Path
    why: str
    labels: tuple[str, ...]
    pre: Preprocessing


def chosen(folder: Path, name: str | None = None) -> Deployable:
    """The named artifact, else bench's choice for this machine, else the int8 student."""
    manifest = mf.load(folder)
    arts = {a["name"]: a for a in manifest["artifacts"]}
    why = "named with --artifact"
    if not name:
        bench = inside(folder, "bench.json", "deploy")
        best = (json.loads(bench.read_text()).get("summary", {}).get("best_student")
                if bench.is_file() else None)
        if isinstance(best, str) and best in arts:
            name, why = best, ("bench's choice on this machine: the fastest student artifact "
                               "within the accuracy budget (report.md)")
        else:
            name, why = FALLBACK, "not benched on this machine: the full-int8 TFLite student"
    if name not in arts:
        raise EdgekdError(f"no artifact {name!r} in {folder}/manifest.json; artifacts: "
                          f"{', '.join(arts)}")
    path = mf.verify_file(folder, arts[name], name)
    return Deployable(name, path, why, tuple(manifest["dataset"]["labels"]),
                      Preprocessing.from_dict(manifest["preprocessing"]))


def predict(dep: Deployable, images: Sequence[Path], threads: int = 1) -> np.ndarray:
    """Class probabilities (N, classes) of the image files."""
    from edgekd.runtime import open_runner
    runtime = "onnx" if dep.path.suffix == ".onnx" else "tflite"
    x = np.stack([load_image(Path(p), dep.pre) for p in images])
    return softmax(open_runner(dep.path, runtime, threads).predict(dep.pre.apply(x)))


def parser() -> OneLineParser:
    p = OneLineParser(prog="python -m bench.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="artifacts folder with manifest.json")
    p.add_argument("images", nargs="+", help="image files (.jpg, .png, ...)")
    p.add_argument("--artifact", help="artifact name from manifest.json (default: bench's choice)")
    p.add_argument("--top", type=int, default=3, help="classes to print per image (default 3)")
    p.add_argument("--threads", type=int, default=1)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    if a.top < 1 or a.threads < 1:
        raise EdgekdError("--top and --threads must be >= 1")
    folder = Path(a.folder).resolve()
    dep = chosen(folder, a.artifact)
    for image in a.images:
        if not Path(image).is_file():
            raise EdgekdError(f"image {image} not found")
    probs = predict(dep, [Path(i) for i in a.images], a.threads)
    print(f"[predict] {dep.path.name} ({dep.why})")
    for image, p in zip(a.images, probs):
        top = np.argsort(-p)[:a.top]
        print(f"{image}: " + ", ".join(f"{dep.labels[i]} {100 * p[i]:.1f} %" for i in top))
    return 0


POLICY_WORDS = {"crop": "shorter side scaled to fit, centre crop",
                "pad": "longer side scaled to fit, black borders", "stretch": "stretched"}


def deploy_summary(folder: Path) -> str:
    """What `make edge-model` ends with: the file to deploy, why, and how to feed it."""
    dep = chosen(Path(folder).resolve())
    pre = dep.pre
    labels = inside(Path(folder), "labels.txt", "deploy")
    return "\n".join([
        f"Deploy: {dep.path} ({dep.why}).",
        f"Input: {pre.height}x{pre.width}x{pre.channels} {'RGB' if pre.channels == 3 else 'gray'}"
        f" images ({POLICY_WORDS[pre.resize]}, bilinear), as float32 x * {pre.scale:.6g} + "
        f"{pre.offset:g}; output: "
        f"{len(dep.labels)} logits, in the order of {labels}.",
        f"Try it: python -m bench.predict {folder} IMAGE.jpg"])


if __name__ == "__main__":
    raise SystemExit(run_cli(main, "python -m bench.predict"))
