"""Preprocessing throughput against the decode bound, and peak memory against corpus size.

On a synthetic corpus (``localmer.synth``), indexed as the workflow does (``localmer.datasets``):

1. decode bound: one read-only pass decoding, grey, exactly the frames preprocessing keeps (frames/s);
2. preprocessing: ``detect_subject`` -> ``align_subject`` -> ``crop_subject`` for every subject, with the
   default ``preprocessing`` settings (frames/s, time per stage, and how much of it is frame decoding and
   face detection); target: at least 0.8 x the decode bound;
3. peak RSS of the preprocessing for nested subsets of subjects (1x, 2x, 4x clips); target: flat.

Every measurement runs single-process in a fresh interpreter, after a pass that reads every frame file
so that both find the files in the OS cache; timings are the best of ``--runs``. A benchmark, not a test:
it prints a Markdown section and appends it to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/preprocess_benchmark.py [--out DIR] [--subjects 4] [--image-size 256 288]
        [--iod-fraction 0.4]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import dlib
import h5py
import numpy as np
import pandas as pd

import localmer
from localmer import clip_pipeline, config, datasets, frames, landmarks, preprocess, synth

REPO = Path(__file__).resolve().parent.parent
STAGES = ("landmarks", "aligned", "patches")
MIN_FRAMES = 2000
TARGET_RATIO = 0.8
# Peak RSS counts as flat when the largest corpus needs at most this much more than the smallest.
RSS_TOLERANCE = 0.10


# ---------------------------------------------------------------------------------- measured processes


def kept_frame_paths(samples: pd.DataFrame, params: dict) -> dict[str, list[str]]:
    """Per clip, the frame files preprocessing decodes: the kept frames, each distinct frame once."""
    paths = {}
    for sample in samples.to_dict("records"):
        clip_frames = frames.ClipFrames.from_sample(sample)
        selected = clip_pipeline.select_frames(
            clip_frames.numbers, sample["onset"], sample["offset"], params["frames"], params["n_frames"]
        )
        paths[sample["sample_id"]] = [clip_frames.path(number) for number in sorted(set(selected))]
    return paths


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_decode(samples: pd.DataFrame, params: dict, work: Path) -> dict:
    """The decode bound; ``work`` is unused (the measurements share one signature)."""
    paths = [path for clip in kept_frame_paths(samples, params).values() for path in clip]
    cpu, start = cpu_seconds(), time.perf_counter()
    for path in paths:
        frames.read_image(path)
    return {"frames": len(paths), "seconds": time.perf_counter() - start, "cpu_seconds": cpu_seconds() - cpu}


class StageClock:
    """Wall time per preprocessing stage, and the calls and time of instrumented functions per stage."""

    def __init__(self, functions: list[str]):
        self.current = STAGES[0]
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.calls = {stage: {name: [0, 0.0] for name in functions} for stage in STAGES}

    @contextlib.contextmanager
    def stage(self, name: str):
        self.current = name
        start = time.perf_counter()
        yield
        self.seconds[name] += time.perf_counter() - start

    def instrument(self, module, name: str) -> None:
        """Replace ``module.name`` by a timing wrapper (about a microsecond per call)."""
        function = getattr(module, name)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                entry = self.calls[self.current][name]
                entry[0] += 1
                entry[1] += time.perf_counter() - start

        setattr(module, name, wrapper)


def measure_preprocess(samples: pd.DataFrame, params: dict, work: Path) -> dict:
    start = time.perf_counter()
    # Load the dlib models now (once per process), so the stages time steady-state work only.
    landmarks.detect(np.zeros((64, 64), np.uint8), upsample=0, model=params["landmarks"]["model"])
    model_load = time.perf_counter() - start
    baseline_rss = peak_rss_mib()

    # The stages reach frame decoding and face detection through these module attributes.
    clock = StageClock(["read_image", "detect"])
    clock.instrument(frames, "read_image")
    clock.instrument(landmarks, "detect")
    written = skipped = 0
    cpu = cpu_seconds()
    for subject in samples["subject"].unique():
        paths = {name: work / name / f"{subject}.h5" for name in STAGES}
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        with clock.stage("landmarks"):
            found = preprocess.detect_subject(samples, subject, paths["landmarks"], params)
        skipped += int((found["status"] != "ok").sum())
        with clock.stage("aligned"):
            written += preprocess.align_subject(samples, subject, paths["landmarks"], paths["aligned"], params)
        with clock.stage("patches"):
            preprocess.crop_subject(paths["aligned"], paths["patches"], samples, params)
    return {
        "frames": written,
        "skipped_clips": skipped,
        "seconds": sum(clock.seconds.values()),
        "cpu_seconds": cpu_seconds() - cpu,
        "stages": clock.seconds,
        "calls": clock.calls,
        "model_load_seconds": model_load,
        "baseline_rss_mib": baseline_rss,
        "peak_rss_mib": peak_rss_mib(),
    }


MEASUREMENTS = {"decode": measure_decode, "preprocess": measure_preprocess}


def worker(argv: list[str]) -> None:
    """Entry point of a measured process: one measurement, its result as JSON on stdout."""
    parser = argparse.ArgumentParser(prog="preprocess_benchmark.py worker")
    parser.add_argument("measurement", choices=sorted(MEASUREMENTS))
    parser.add_argument("samples", type=Path)
    parser.add_argument("params", type=Path)
    parser.add_argument("work", type=Path)
    args = parser.parse_args(argv)
    samples = pd.read_csv(args.samples, sep="\t", keep_default_na=False)  # as the workflow scripts read it
    params = json.loads(args.params.read_text())
    print(json.dumps(MEASUREMENTS[args.measurement](samples, params, args.work)))


# ---------------------------------------------------------------------------------- orchestration


def build_corpus(corpus: Path, args: argparse.Namespace) -> dict:
    """Write the synthetic corpus, unless ``corpus`` already holds one made with the same settings."""
    params = config.schema_defaults("synthetic")
    params.update(seed=args.seed, image_size=list(args.image_size), iod_fraction=args.iod_fraction)
    for part in params["parts"]:
        params["parts"][part].update(subjects=args.subjects, clips_per_class=args.clips_per_class)
    previous = corpus / "corpus.json"
    wanted = json.loads(json.dumps(synth.resolve_params(params)))
    if previous.is_file() and json.loads(previous.read_text())["params"] == wanted:
        print(f"reusing the corpus in {corpus}", file=sys.stderr)
    else:
        start = time.perf_counter()
        synth.write_corpus(corpus, params, workers=os.cpu_count() or 1)
        print(f"corpus written in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return json.loads(previous.read_text())


def index_corpus(corpus: Path) -> pd.DataFrame:
    specs = [
        {
            "name": "casme2",
            "kind": "casme2",
            "root": f"{corpus}/casme2",
            "annotations": f"{corpus}/casme2/CASME2-coding-20140508.xlsx",
        },
        {
            "name": "samm",
            "kind": "samm",
            "root": f"{corpus}/samm",
            "annotations": f"{corpus}/samm/SAMM_Micro_FACS_Codes_v2.xlsx",
        },
        {"name": "smic", "kind": "smic", "root": f"{corpus}/smic/HS"},
    ]
    task = {"name": "megc2019", "ground_truth": f"{corpus}/megc2019_gt.csv", "strict": True}
    return datasets.build_index(specs, task).samples


def warm_file_cache(samples: pd.DataFrame) -> None:
    """Read every frame file of the indexed clips once, so that no measurement waits for the disk."""
    for sample in samples.to_dict("records"):
        clip_frames = frames.ClipFrames.from_sample(sample)
        for number in clip_frames.numbers:
            Path(clip_frames.path(number)).read_bytes()


def run_worker(measurement: str, samples_path: Path, params_path: Path, work: Path) -> dict:
    command = [sys.executable, __file__, "worker", measurement, str(samples_path), str(params_path), str(work)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{measurement} worker failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "")
    meminfo = Path("/proc/meminfo").read_text().split()
    ram_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    # Changes to tracked files only: new modules elsewhere in src/ do not touch preprocessing.
    status = [*git, "status", "--porcelain", "--untracked-files=no", "src"]
    changed = subprocess.run(status, capture_output=True, text=True).stdout.strip()
    return {
        "cpu": f"{model or platform.processor()}, {os.cpu_count()} cores, {ram_gib:.0f} GiB RAM",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": (
            f"python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}, "
            f"dlib {dlib.__version__}, h5py {h5py.__version__} (HDF5 {h5py.version.hdf5_version}), "
            f"localmer {localmer.__version__} at {commit or '?'}{' + uncommitted changes in src/' if changed else ''}"
        ),
    }


def rss_subsets(samples: pd.DataFrame, params: dict) -> list[list[str]]:
    """Nested subject subsets of about 1/4, 1/2 and all the clips. Subjects are taken longest clip first,
    so every subset holds the corpus's longest clip: the per-clip buffers are the same in each, and only
    the number of clips grows."""
    kept = kept_frame_paths(samples, params)
    longest = samples.assign(kept=samples["sample_id"].map(lambda s: len(kept[s]))).groupby("subject")["kept"].max()
    order = sorted(longest.index, key=lambda subject: (-longest[subject], subject))
    counts = sorted({max(1, len(order) // 4), max(1, len(order) // 2), len(order)})
    return [order[:count] for count in counts]


def report(info: dict, corpus: dict, decode: dict, runs: dict, rss: list[dict], args: argparse.Namespace) -> str:
    best = min(runs["preprocess"], key=lambda run: run["seconds"])
    decode_fps = decode["frames"] / decode["seconds"]
    fps = best["frames"] / best["seconds"]
    ratio = fps / decode_fps
    width, height = args.image_size
    lines = [
        f"## {info['date']} — synthetic {width}x{height}, {corpus['kept_frames']} frames",
        "",
        f"- Machine: {info['cpu']}",
        f"- Versions: {info['versions']}",
        f"- Corpus: `localmer.synth` seed {args.seed}, inter-ocular distance {args.iod_fraction:g} x width, "
        f"{args.subjects} subjects per part (casme2, samm, smic), "
        f"{args.clips_per_class} clips per class; {corpus['clips']} clips of {corpus['subjects']} subjects in the "
        f"megc2019 task, {corpus['frames_on_disk']} frame files; preprocessing keeps {corpus['kept_frames']} frames "
        "(onset..offset, default `preprocessing` settings)",
        f"- Protocol: single process, fresh interpreter per measurement, OS file cache warm; best of {args.runs}",
        "",
        "| measurement | frames | wall s | CPU s | frames/s |",
        "|---|---:|---:|---:|---:|",
        f"| decode bound (read_image, grey) | {decode['frames']} | {decode['seconds']:.2f} | "
        f"{decode['cpu_seconds']:.2f} | {decode_fps:.0f} |",
        f"| preprocessing (3 stages) | {best['frames']} | {best['seconds']:.2f} | {best['cpu_seconds']:.2f} | "
        f"{fps:.0f} |",
        "",
        f"**Ratio preprocessing / decode: {ratio:.2f}x** (target >= {TARGET_RATIO}x: "
        f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}). Not counted: loading the dlib models, "
        f"{best['model_load_seconds']:.2f} s once per process (the workflow pays it per subject)."
        + (
            f" {best['skipped_clips']} clips were skipped (no face found), so preprocessing wrote fewer frames "
            "than the decode pass read."
            if best["skipped_clips"]
            else ""
        ),
        "",
        "| stage | wall s | share | of which decoding (frames) | of which face detection (calls) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in STAGES:
        seconds = best["stages"][name]
        decoded, detected = best["calls"][name]["read_image"], best["calls"][name]["detect"]
        lines.append(
            f"| {name} | {seconds:.2f} | {seconds / best['seconds']:.0%} | {decoded[1]:.2f} ({decoded[0]}) | "
            f"{detected[1]:.2f} ({detected[0]}) |"
        )
    peaks = [entry["peak_rss_mib"] for entry in rss]
    growth = peaks[-1] / peaks[0] - 1
    lines += [
        "",
        "| subjects | clips | kept frames | longest clip | RSS after setup MiB | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {e['subjects']} | {e['clips']} | {e['frames']} | {e['longest']} | {e['baseline_rss_mib']:.0f} | "
            f"{e['peak_rss_mib']:.0f} |"
            for e in rss
        ),
        "",
        f"**Peak RSS, {rss[-1]['clips']} vs {rss[0]['clips']} clips: {growth:+.1%}** (target: flat, within "
        f"{RSS_TOLERANCE:.0%}: {'met' if growth <= RSS_TOLERANCE else 'NOT met'}). Setup = imports, sample "
        "table and dlib models.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="scratch folder (corpus, preprocessed files); default a temp dir")
    parser.add_argument("--subjects", type=int, default=4, help="subjects per dataset part (default 4)")
    parser.add_argument("--clips-per-class", type=int, default=2, help="clips per subject and class (default 2)")
    parser.add_argument(
        "--image-size", type=int, nargs=2, default=[256, 288], metavar=("W", "H"), help="frame size (default 256 288)"
    )
    parser.add_argument(
        "--iod-fraction",
        type=float,
        default=0.4,
        help="synthetic inter-ocular distance / frame width (default 0.4; 0.17 for 640 480, CASME II-like)",
    )
    parser.add_argument("--seed", type=int, default=2019, help="synthetic corpus seed (default 2019)")
    parser.add_argument("--runs", type=int, default=3, help="timing runs; the best counts (default 3)")
    parser.add_argument(
        "--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md", help="Markdown file to append to"
    )
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to --results")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        out = args.out or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="localmer-bench-")))
        out.mkdir(parents=True, exist_ok=True)
        written = build_corpus(out / "corpus", args)
        samples = index_corpus(out / "corpus")
        params = config.schema_defaults("preprocessing")
        params["regions"] = str(REPO / "config" / "regions.yaml")
        params_path = out / "preprocessing.json"
        params_path.write_text(json.dumps(params))
        samples_path = out / "samples.tsv"
        samples.to_csv(samples_path, sep="\t", index=False)
        kept = sum(len(paths) for paths in kept_frame_paths(samples, params).values())
        if kept < MIN_FRAMES:
            raise SystemExit(f"the corpus keeps {kept} frames (< {MIN_FRAMES}): raise --subjects or --clips-per-class")
        corpus = {
            "clips": len(samples),
            "subjects": samples["subject"].nunique(),
            "frames_on_disk": written["frames"],
            "kept_frames": kept,
        }

        runs: dict[str, list[dict]] = {"decode": [], "preprocess": []}
        for run in range(args.runs):
            for measurement in runs:  # interleaved, so that drifts in machine load hit both alike
                warm_file_cache(samples)
                result = run_worker(measurement, samples_path, params_path, out / "preprocess" / "timing")
                runs[measurement].append(result)
                fps = result["frames"] / result["seconds"]
                print(f"run {run + 1} {measurement}: {fps:.0f} frames/s", file=sys.stderr)

        rss = []
        for subjects in rss_subsets(samples, params):
            subset = samples[samples["subject"].isin(subjects)]
            subset_path = out / f"samples-{len(subjects)}.tsv"
            subset.to_csv(subset_path, sep="\t", index=False)
            warm_file_cache(subset)
            result = run_worker("preprocess", subset_path, params_path, out / "preprocess" / f"rss-{len(subjects)}")
            lengths = [len(paths) for paths in kept_frame_paths(subset, params).values()]
            rss.append(
                {"subjects": len(subjects), "clips": len(subset), "frames": sum(lengths), "longest": max(lengths)}
                | result
            )
            print(f"RSS {len(subset)} clips: {result['peak_rss_mib']:.0f} MiB", file=sys.stderr)

        decode = min(runs["decode"], key=lambda run: run["seconds"])
        section = report(machine(), corpus, decode, runs, rss, args)
    print(section)
    if not args.no_record:
        if not args.results.exists():
            args.results.write_text(
                "# Benchmark results\n\nSections appended by the scripts in this folder, newest last "
                "(see README.md).\n\n"
            )
        with args.results.open("a") as results:
            results.write(section + "\n")
        print(f"appended to {args.results}", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2:])
    else:
        main(sys.argv[1:])
