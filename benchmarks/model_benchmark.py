"""Training throughput of the spatial and temporal models (samples/s), against a plain reference graph.

Spatial (batch 64, 9 patches of 12 x 16, 3 classes, SE on), all trained the same way, in one run:

* ``ours, shared``: ``models.spatial_model`` — one patch CNN, the patches folded into the batch;
* ``ours, unshared``: ``models.spatial_model(share_patch_cnn=False)`` — one patch-CNN tower per patch;
* ``reference``: the plain graph — nine separate per-patch towers written out layer by layer, each on its
  patch slice, concatenated, then the same SE and head. Target: ours (shared) / reference >= 1.5;
* the shared model and the reference again under the ``mixed_bfloat16`` dtype policy
  (``training.spatial.precision: mixed_bfloat16``).

Temporal: ``models.temporal_model`` (batch 64, N = 16 steps, 6 regions x 256 features, random lengths).

Every model trains with ``model.fit`` on a cached ``tf.data`` pipeline (uint8 patches scaled to [0, 1] in
the pipeline, as in training): a warm-up fit of ``--warmup`` steps, then ``--repeats`` timed fits of
``--steps`` steps (timed from the first step's start to the last step's end), the models taking turns;
ratios use the median repeat. A benchmark, not a test: it prints
a Markdown section and appends it to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/model_benchmark.py [--steps 30] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from localmer import models  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BATCH = 64
PATCHES, PATCH_SIZE, CLASSES = 9, (12, 16), 3
STEPS, REGIONS = 16, 6
TARGET_RATIO = 1.5
OURS = "ours, shared (folded into the batch)"
REFERENCE = "reference: nine per-patch towers"
TEMPORAL = f"temporal (N = {STEPS}, {REGIONS} regions x 256)"


def reference_spatial_model(patches: int, patch_size: tuple[int, int], classes: int) -> keras.Model:
    """The plain graph: one tower of its own layers per patch slice, concatenated; then ours' SE and head."""
    region = keras.Input((patches, *patch_size, 1), name="patches")
    towers = []
    for index in range(patches):
        patch = region[:, index]
        low = layers.Conv2D(4, 5, padding="same", activation="relu")(patch)
        edges = layers.Conv2D(8, 3, padding="same", activation="relu")(low)
        branches = [layers.MaxPooling2D(2)(edges)]
        for kernel in (1, 3, 5, 7):
            branches.append(layers.MaxPooling2D(2)(layers.Conv2D(16, kernel, padding="same", activation="relu")(edges)))
        towers.append(layers.Concatenate()(branches))
    patch_features = models.squeeze_excitation(layers.Concatenate()(towers), 0.25, name="patch_se")
    hidden = layers.Dropout(0.5)(layers.Dense(2048, activation="relu")(layers.GlobalAveragePooling2D()(patch_features)))
    feature = layers.Dense(models.FEATURE_SIZE, activation="relu", name="feature")(hidden)
    probabilities = layers.Dense(classes, activation="softmax", dtype="float32")(layers.Dropout(0.5)(feature))
    return keras.Model(region, probabilities, name="reference")


def spatial_data(rng: np.random.Generator, samples: int, batch: int = BATCH) -> tf.data.Dataset:
    patches = rng.integers(0, 256, (samples, PATCHES, *PATCH_SIZE, 1), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, samples)
    dataset = tf.data.Dataset.from_tensor_slices((patches, tf.one_hot(labels, CLASSES)))
    dataset = dataset.batch(batch, drop_remainder=True).map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))
    return dataset.cache().repeat().prefetch(tf.data.AUTOTUNE)


def temporal_data(rng: np.random.Generator, samples: int, batch: int = BATCH, steps: int = STEPS) -> tf.data.Dataset:
    lengths = rng.integers(4, steps + 1, samples).astype(np.int32)
    sequences = rng.standard_normal((samples, steps, REGIONS, models.FEATURE_SIZE)).astype(np.float32)
    sequences[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0  # zero padding after each clip
    labels = rng.integers(0, CLASSES, samples)
    inputs = {"sequences": sequences, "lengths": lengths}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, tf.one_hot(labels, CLASSES)))
    return dataset.batch(batch, drop_remainder=True).cache().repeat().prefetch(tf.data.AUTOTUNE)


class StepClock(keras.callbacks.Callback):
    """First batch's start to last batch's end: the training steps, without fit's set-up and tear-down
    (ending a fit on a prefetching tf.data pipeline waits up to ~0.6 s for its threads, which would
    otherwise swamp a 2 s measurement)."""

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.end = time.perf_counter()


def timed_fit(model: keras.Model, data: tf.data.Dataset, steps: int, batch: int = BATCH) -> float:
    """Samples/s of one fit of ``steps`` steps of ``batch`` samples."""
    clock = StepClock()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
    return steps * batch / (clock.end - clock.start)


def cpu_info() -> str:
    lscpu = dict(
        line.split(":", 1) for line in subprocess.check_output(["lscpu"], text=True).splitlines() if ":" in line
    )
    fields = ("Model name", "Thread(s) per core", "Core(s) per socket", "Hypervisor vendor")
    described = ", ".join(f"{field}: {lscpu[field].strip()}" for field in fields if field in lscpu)
    return f"{described}; {os.cpu_count()} CPUs visible; {platform.system()} {platform.release()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    spatial = spatial_data(rng, 8 * BATCH)
    alpha = [1 / CLASSES] * CLASSES

    builders = {
        OURS: lambda: models.spatial_model(PATCHES, PATCH_SIZE, CLASSES),
        "ours, unshared (one tower per patch)": lambda: models.spatial_model(
            PATCHES, PATCH_SIZE, CLASSES, share_patch_cnn=False
        ),
        REFERENCE: lambda: reference_spatial_model(PATCHES, PATCH_SIZE, CLASSES),
    }
    runs = {label: (models.compile_spatial(build(), alpha), spatial) for label, build in builders.items()}
    for label in (OURS, REFERENCE):
        with models.dtype_policy("mixed_bfloat16"):
            runs[f"{label}, bfloat16"] = (models.compile_spatial(builders[label](), alpha), spatial)
    temporal = models.compile_temporal(models.temporal_model(REGIONS, STEPS, models.FEATURE_SIZE, CLASSES), alpha)
    runs[TEMPORAL] = (temporal, temporal_data(rng, 8 * BATCH))

    for label, (model, data) in runs.items():
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=args.warmup, epochs=1, verbose=0)
        print(f"warm-up {label}: {time.perf_counter() - start:.1f} s", flush=True)
    rates = {label: [] for label in runs}
    for _ in range(args.repeats):
        for label, (model, data) in runs.items():
            rates[label].append(timed_fit(model, data, args.steps))
    median = {label: float(np.median(values)) for label, values in rates.items()}

    def ratio(label: str) -> str:
        if label == TEMPORAL:
            return ""
        reference = median[f"{REFERENCE}, bfloat16" if label.endswith("bfloat16") else REFERENCE]
        return f"{median[label] / reference:.2f}"

    rows = [
        f"| {label} | {runs[label][0].count_params():,} | {median[label]:.0f} | "
        f"{', '.join(f'{rate:.0f}' for rate in rates[label])} | {ratio(label)} |"
        for label in runs
    ]
    headlines = [
        (dtype, median[f"{OURS}{suffix}"] / median[f"{REFERENCE}{suffix}"])
        for dtype, suffix in (("float32", ""), ("mixed_bfloat16", ", bfloat16"))
    ]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = "\n".join(
        [
            "## Model training throughput",
            "",
            f"- date: {now}",
            f"- machine: {cpu_info()}",
            f"- versions: Python {platform.python_version()}, TensorFlow {tf.__version__}, "
            f"Keras {keras.__version__}, NumPy {np.__version__}",
            f"- spatial: batch {BATCH}, {PATCHES} patches of {PATCH_SIZE[0]}x{PATCH_SIZE[1]}, {CLASSES} classes, "
            f"SE on; temporal: batch {BATCH}, N = {STEPS}, {REGIONS} regions x {models.FEATURE_SIZE}",
            f"- `model.fit` on a cached tf.data pipeline; {args.warmup} warm-up steps, then {args.repeats} timed "
            f"fits of {args.steps} steps each (first step's start to last step's end), models taking turns; "
            "ratios of the median repeats",
            "",
            "| model | parameters | samples/s (median) | samples/s (each repeat) | / reference (same dtype) |",
            "| --- | ---: | ---: | --- | ---: |",
            *rows,
            "",
            *[
                f"- ours (shared) / reference, both {dtype}: **{ratio:.2f}x** "
                f"(target >= {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})."
                for dtype, ratio in headlines
            ],
            "",
        ]
    )
    print(report)
    with args.output.open("a") as results:  # one dated section per run, newest last
        results.write("\n" + report)


if __name__ == "__main__":
    main()
