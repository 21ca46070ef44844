"""Optical flow throughput: pairs/s of each method of ``localmer.flow`` at the datasets' face sizes.

Sizes (width x height): the workflow's aligned face (the default ``alignment.face_size``, what the flow
stage computes on) and the faces of the datasets' frames, CASME II ~280x340, SAMM ~400x400, SMIC ~190x230.
Each pair is a textured face-like image (an oval of band-passed noise with darker eyes and mouth, on a
plainer background) and the same image under a smooth sub-pixel deformation around the mouth corners and
brows, as a micro-expression moves a face. ``flow.flow_fields`` (flow, strain, magnitude) is timed, the
best of ``--runs`` runs of ``--pairs`` pairs, with OpenCV's default threads. A benchmark, not a test: it
prints a Markdown section and appends it to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/flow_benchmark.py [--runs 2] [--note "..."] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import preprocess_benchmark

from localmer import config, flow

REPO = Path(__file__).resolve().parent.parent
DATASET_SIZES = {"CASME II": (280, 340), "SAMM": (400, 400), "SMIC": (190, 230)}
PAIRS = {"tvl1": 3, "dis": 20, "farneback": 20}  # per run: enough for a steady time, not minutes of TV-L1


def face_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Grey uint8: band-passed noise, stronger inside a face oval, with darker eye and mouth blobs."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (height, width)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), 1.5) - cv2.GaussianBlur(noise, (0, 0), 6)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width / 2, height / 2
    oval = ((x - cx) / (0.42 * width)) ** 2 + ((y - cy) / (0.46 * height)) ** 2 < 1
    image = np.where(oval, 150 + 120 * texture, 90 + 40 * texture)
    for fx, fy, rx, ry in ((0.35, 0.4, 0.08, 0.04), (0.65, 0.4, 0.08, 0.04), (0.5, 0.72, 0.14, 0.04)):
        blob = np.exp(-(((x - fx * width) / (rx * width)) ** 2) - ((y - fy * height) / (ry * height)) ** 2)
        image -= 60 * blob
    return np.clip(image, 0, 255).astype(np.uint8)


def deformed(image: np.ndarray, peak_px: float = 0.8) -> np.ndarray:
    """The image moved by a smooth field: brows up, mouth corners out and up, up to ``peak_px``."""
    height, width = image.shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = np.zeros_like(x), np.zeros_like(y)
    for fx, fy, du, dv in ((0.35, 0.32, 0, -1), (0.65, 0.32, 0, -1), (0.36, 0.72, -0.7, -0.7), (0.64, 0.72, 0.7, -0.7)):
        weight = np.exp(-(((x - fx * width) ** 2 + (y - fy * height) ** 2) / (2 * (0.08 * width) ** 2)))
        u += peak_px * du * weight
        v += peak_px * dv * weight
    # A point at (x, y) moves to (x + u, y + v): the second image at a pixel shows where it came from.
    return cv2.remap(image, x - u, y - v, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def pairs_per_second(name: str, first: np.ndarray, second: np.ndarray, pairs: int, runs: int) -> float:
    flow.flow_fields(first, second, name)  # warm-up: first-call allocations
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(pairs):
            flow.flow_fields(first, second, name)
        best = min(best, time.perf_counter() - start)
    return pairs / best


def machine() -> str:
    """CPU model, cores and RAM, as the preprocessing benchmark records them."""
    return preprocess_benchmark.machine()["cpu"]


def commit() -> str:
    result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def append_results(title: str, conditions: str, note: str, table: str) -> None:
    """A section of RESULTS.md: ``title`` and the time now, a bullet of machine, commit and ``conditions``,
    one of ``note`` when given, then ``table``."""
    import datetime

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## {title}, {now}", "", f"- Machine: {machine()}; commit {commit()}; {conditions}"]
    if note:
        lines.append(f"- {note}")
    with open(REPO / "benchmarks" / "RESULTS.md", "a") as results:
        results.write("\n" + "\n".join(lines) + "\n\n" + table + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="timing repeats; the best counts (default: %(default)s)")
    parser.add_argument("--note", default="", help="a line on the conditions (e.g. other jobs running)")
    parser.add_argument("--no-record", action="store_true", help="print without appending to RESULTS.md")
    args = parser.parse_args()

    face_size = tuple(config.schema_defaults("preprocessing")["alignment"]["face_size"])
    sizes = {"aligned face (default)": face_size, **DATASET_SIZES}
    rows = []
    for label, (width, height) in sizes.items():
        first = face_like(width, height)
        second = deformed(first)
        speeds = {name: pairs_per_second(name, first, second, PAIRS[name], args.runs) for name in flow.METHODS}
        rows.append((label, width, height, speeds))
        print(label, width, height, {k: round(v, 2) for k, v in speeds.items()}, flush=True)

    now = datetime.datetime.now(datetime.UTC)
    lines = [
        f"## Optical flow pairs/s per method, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {machine()}; Python {platform.python_version()}, OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads)",
        f"- Command: `python benchmarks/flow_benchmark.py --runs {args.runs}` at {commit()}; `flow.flow_fields` "
        f"(flow + strain + magnitude) with each method's default parameters, best of {args.runs} runs of "
        + ", ".join(f"{n} {name}" for name, n in PAIRS.items())
        + " pairs; textured face-like images, the second deformed by up to 0.8 px",
    ]
    if args.note:
        lines.append(f"- Conditions: {args.note}")
    lines += [
        "",
        "| face | width x height | " + " | ".join(f"{name} pairs/s" for name in flow.METHODS) + " |",
        "|---|---|" + "---:|" * len(flow.METHODS),
    ]
    for label, width, height, speeds in rows:
        lines.append(
            f"| {label} | {width} x {height} | " + " | ".join(f"{speeds[name]:.2f}" for name in flow.METHODS) + " |"
        )
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_record:
        with open(REPO / "benchmarks" / "RESULTS.md", "a") as results:
            results.write("\n" + section)


if __name__ == "__main__":
    main()
