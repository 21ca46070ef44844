"""GPU readiness: training throughput at the paper's shapes and batch sizes, and one MEGC fold's spatial job.

On a machine with an NVIDIA GPU and the project's `cuda` extra (`pip install -e ".[cuda]"`), in under
5 minutes:

* spatial samples/s at the paper's batch (64; 9 patches of 12 x 16, 3 classes, SE on), our folded model
  (`models.spatial_model`) against the nine-tower reference graph (`model_benchmark.reference_spatial_model`),
  each in float32, mixed_float16 and mixed_bfloat16 (Keras dtype policies; mixed precision runs on the
  GPU's tensor cores, bfloat16 from compute capability 8.0 on);
* temporal samples/s at the 2019 slides' batch (244; N = 32 steps, 6 regions x 256 features), float32;
* one MEGC 2019 fold's spatial job at the paper's settings (100 epochs, every frame onset..offset): its
  training frames (the composite less one subject, from the `megc2019` synthetic preset's plan, whose
  clip lengths are the real sheets' spans) x 6 regions x 100 epochs / the measured float32 rate, and the
  same for mixed precision; with the 68 folds, the protocol's spatial training time on one GPU.

`--allow-cpu` runs it without a GPU (to check the script; the figures are then the CPU's). A benchmark, not a
test: it prints a Markdown section and, with `--record`, appends it to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/gpu_benchmark.py --record
"""

from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time

import keras
import model_benchmark as mb
import numpy as np
import tensorflow as tf
from flow_benchmark import REPO, commit

from localmer import models

SPATIAL_BATCH, TEMPORAL_BATCH, TEMPORAL_STEPS = 64, 244, 32
SPATIAL_EPOCHS, REGIONS, FOLDS = 100, 6, 68
POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def gpu_description() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "no GPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    smi = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{len(gpus)} GPU(s): {smi or details.get('device_name', '?')}, compute {details.get('compute_capability')}"


def megc_fold_frames() -> tuple[int, int]:
    """(frames onset..offset of the largest LOSO training set, of the whole composite) in the megc2019
    preset's plan: its clips of the three classes (not the clips outside the task)."""
    from localmer.synth import EXTRA_CLASS, plan_corpus

    per_subject = {
        (subject.part, subject.name): sum(c.offset - c.onset + 1 for c in subject.clips if c.label != EXTRA_CLASS)
        for subject in plan_corpus({"preset": "megc2019"})
    }
    total = sum(per_subject.values())
    return total - min(per_subject.values()), total


def rate(build, data, warmup: int, steps: int, repeats: int, batch: int) -> float:
    """Median samples/s of ``repeats`` timed fits after a warm-up fit."""
    model = build()
    model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0)
    return float(np.median([mb.timed_fit(model, data, steps, batch) for _ in range(repeats)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps per timed fit (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (figures are the CPU's)")
    parser.add_argument("--record", action="store_true", help="append the section to RESULTS.md")
    args = parser.parse_args()
    device = gpu_description()
    if device == "no GPU" and not args.allow_cpu:
        sys.exit(
            "gpu_benchmark: TensorFlow sees no GPU (install the cuda extra: pip install -e '.[cuda]'), "
            "or pass --allow-cpu"
        )
    start = time.perf_counter()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    alpha = [1 / mb.CLASSES] * mb.CLASSES
    spatial = mb.spatial_data(rng, 16 * SPATIAL_BATCH, SPATIAL_BATCH)
    builders = {
        "ours (folded)": lambda: models.spatial_model(mb.PATCHES, mb.PATCH_SIZE, mb.CLASSES),
        "reference (nine towers)": lambda: mb.reference_spatial_model(mb.PATCHES, mb.PATCH_SIZE, mb.CLASSES),
    }
    rates: dict[tuple[str, str], float] = {}
    for policy in POLICIES:
        for label, build in builders.items():

            def compiled(build=build, policy=policy):
                with models.dtype_policy(policy):
                    return models.compile_spatial(build(), alpha)

            rates[(label, policy)] = rate(compiled, spatial, args.warmup, args.steps, args.repeats, SPATIAL_BATCH)
            print(f"spatial {label} {policy}: {rates[(label, policy)]:.0f} samples/s", flush=True)
    temporal_data = mb.temporal_data(rng, 4 * TEMPORAL_BATCH, TEMPORAL_BATCH, TEMPORAL_STEPS)
    temporal = rate(
        lambda: models.compile_temporal(
            models.temporal_model(mb.REGIONS, TEMPORAL_STEPS, models.FEATURE_SIZE, mb.CLASSES), alpha
        ),
        temporal_data,
        args.warmup,
        args.steps,
        args.repeats,
        TEMPORAL_BATCH,
    )
    print(f"temporal: {temporal:.0f} samples/s", flush=True)
    fold_frames, total_frames = megc_fold_frames()
    rows = [
        f"| {label} | {policy} | {value:.0f} | {value / rates[('reference (nine towers)', policy)]:.2f} |"
        for (label, policy), value in rates.items()
    ]
    job = {policy: REGIONS * SPATIAL_EPOCHS * fold_frames / rates[("ours (folded)", policy)] for policy in POLICIES}
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = "\n".join(
        [
            f"## GPU benchmark ({now}, commit {commit()})",
            "",
            f"- device: {device}; host: {mb.cpu_info()}",
            f"- versions: Python {platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}",
            f"- spatial batch {SPATIAL_BATCH}, {mb.PATCHES} patches of {mb.PATCH_SIZE[0]}x{mb.PATCH_SIZE[1]}; "
            f"{args.warmup} warm-up steps, median of {args.repeats} fits of {args.steps} steps",
            "",
            "| spatial model | dtype policy | samples/s | / reference, same policy |",
            "| --- | --- | ---: | ---: |",
            *rows,
            "",
            f"- temporal (batch {TEMPORAL_BATCH}, N = {TEMPORAL_STEPS}, {mb.REGIONS} regions x 256): "
            f"{temporal:.0f} samples/s",
            f"- MEGC 2019 preset: {total_frames:,} frames onset..offset; a LOSO fold trains on up to "
            f"{fold_frames:,}. One fold's spatial job at {SPATIAL_EPOCHS} epochs x {REGIONS} regions, from the "
            "rates above: "
            + ", ".join(f"{policy} {seconds / 60:.0f} min" for policy, seconds in job.items())
            + f"; the {FOLDS} folds on this device: "
            + ", ".join(f"{policy} {FOLDS * seconds / 3600:.1f} h" for policy, seconds in job.items()),
            f"- this benchmark took {time.perf_counter() - start:.0f} s",
            "",
        ]
    )
    print(report)
    if args.record:
        with open(REPO / "benchmarks" / "RESULTS.md", "a") as results:
            results.write("\n" + report)


if __name__ == "__main__":
    main()
