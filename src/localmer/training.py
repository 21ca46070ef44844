"""Leave-one-subject-out training: spatial models per fold and region, feature export, temporal model
per fold, test predictions.

Leakage-free by construction: a fold is (test subject, training subjects, validation subjects carved
from the training subjects). Every step that fits a model, computes normalisation statistics or class
weights takes its sample ids from the fold's training (or validation) subjects only, and records them in
a provenance file beside its output, so that a test can prove no test clip reached any of them.

Inputs are the preprocessed patches files (one per subject, see ``localmer.preprocess``). The spatial
input is ``onset_diff`` (each frame minus the clip's onset frame, in [-1, 1]) or
``raw`` (grey / 255). Determinism: with ``training.seed`` and one thread per job, CPU runs repeat exactly
(TensorFlow op determinism is switched on); GPU runs repeat only approximately.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from . import __version__
from .datasets import read_table
from .labels import NOT_CONCERNED
from .regions import REGION_NAMES
from .runlog import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    test_subject: str
    train_subjects: tuple[str, ...]  # fit, normalisation and class weights come from these only
    validation_subjects: tuple[str, ...]  # carved from the training subjects, for early stopping only

    @property
    def name(self) -> str:
        return self.test_subject or FINAL


FINAL = "final"  # the fold of the final models: every subject trains, none is held out


def final_fold(samples: pd.DataFrame) -> Fold:
    """The fold of an experiment's final models (``localmer predict``): all subjects train, no test
    subject, no validation subject (so no early stopping: the configured epochs run)."""
    subjects = tuple(sorted(set(samples.subject)))
    if not subjects:
        raise ValueError("no usable clip to train the final models on")
    return Fold("", subjects, ())


def make_folds(subjects: Sequence[str], validation_subjects: int = 0, seed: int = 0) -> list[Fold]:
    """One fold per subject. Validation subjects are drawn from the other subjects, reproducibly."""
    subjects = sorted(set(subjects))
    if len(subjects) < 2:
        raise ValueError(f"leave-one-subject-out needs at least 2 subjects, got {len(subjects)}")
    folds = []
    for index, test_subject in enumerate(subjects):
        others = [s for s in subjects if s != test_subject]
        if validation_subjects >= len(others):
            raise ValueError(
                f"validation_subjects={validation_subjects} leaves no training subject in fold {test_subject}"
            )
        rng = np.random.default_rng([seed, index])
        validation = (
            tuple(sorted(rng.choice(others, size=validation_subjects, replace=False))) if validation_subjects else ()
        )
        folds.append(Fold(test_subject, tuple(s for s in others if s not in validation), validation))
    return folds


def fold_by_name(samples: pd.DataFrame, name: str, settings: dict) -> Fold:
    """A LOSO fold by its test subject, or the final fold (``final``)."""
    if name == FINAL:
        return final_fold(samples)
    training = settings["training"]
    for fold in make_folds(samples.subject, training["validation_subjects"], training["seed"]):
        if fold.name == name:
            return fold
    raise ValueError(f"no fold {name!r}: subjects are {sorted(samples.subject.unique())}")


def usable_samples(samples: pd.DataFrame, report: pd.DataFrame) -> pd.DataFrame:
    """The indexed clips that preprocessing kept (status ok); skipped ones are in the report."""
    kept = set(report.loc[report.status == "ok", "sample_id"])
    return samples[samples.sample_id.isin(kept)].reset_index(drop=True)


def patch_files_of(paths: Sequence[str]) -> dict[str, str]:
    """subject -> patches file, from the files' own subject attribute."""
    files = {}
    for path in paths:
        with h5py.File(path, "r") as h5:
            files[str(h5.attrs["subject"])] = str(path)
    return files


def prepare_fold_job(samples_path: str, report_path: str, fold_name: str, settings: dict, threads: int):
    """What every per-fold job starts with: TensorFlow set up, the usable samples, the fold."""
    configure_tensorflow(threads, settings["training"]["seed"])
    samples = usable_samples(read_table(samples_path), read_table(report_path))
    return samples, fold_by_name(samples, fold_name, settings)


def config_hash(settings: dict) -> str:
    """Digest of the settings a fold's models depend on (recorded in the feature files)."""
    import hashlib

    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def task_classes(settings: dict) -> list[str]:
    """The task's classes, in label_index order."""
    from .datasets import MEGC2019_CLASSES

    if settings["task"]["name"] != "megc2019":
        raise ValueError(f"unknown task {settings['task']['name']!r}")
    return list(MEGC2019_CLASSES)


def region_classes(classes: Sequence[str], mode: str) -> list[str]:
    """The spatial model's classes: the task's, plus not_concerned with ROI labels."""
    return [*classes, NOT_CONCERNED] if mode == "roi" else list(classes)


# --------------------------------------------------------------------------------------------- data


def _clip_path(sample_id: str) -> str:
    return f"clips/{sample_id}"


@dataclass(frozen=True)
class RegionFrames:
    """Every kept frame of one region for a list of clips."""

    frames: np.ndarray  # (N, m, h, w): uint8 grey (raw) or int16 frame minus onset frame (onset_diff)
    owner: np.ndarray  # (N,) the row of the samples table each frame belongs to
    phase: np.ndarray  # (N,) where the frame lies in its clip: 0 at onset, 1 at apex, 2 at offset


def temporal_phase(numbers: np.ndarray, onset: int, apex: int, offset: int) -> np.ndarray:
    """0 at the onset, rising linearly to 1 at the apex, then to 2 at the offset."""
    numbers = np.asarray(numbers, dtype=np.float64)
    rising = (numbers - onset) / max(1, apex - onset)
    falling = 1.0 + (numbers - apex) / max(1, offset - apex)
    return np.where(numbers <= apex, rising, falling)


def onset_difference(frames: np.ndarray, numbers: np.ndarray, onset: int) -> np.ndarray:
    """Each frame minus the clip's onset frame (its first kept frame when the onset was not kept), int16."""
    found = np.flatnonzero(numbers == onset)
    reference = frames[found[0] if len(found) else 0]
    return frames.astype(np.int16) - reference.astype(np.int16)


def load_region(patch_files: dict[str, str], samples: pd.DataFrame, region: str, representation: str) -> RegionFrames:
    """Frames of ``region`` for the given samples, in sample order."""
    blocks, owners, phases = [], [], []
    for row, sample in enumerate(samples.itertuples()):
        with h5py.File(patch_files[sample.subject], "r") as h5:
            group = h5["clips"][sample.clip]
            frames = group["patches"][region][()]
            numbers = group["frame_numbers"][()]
            if representation == "onset_diff":
                frames = onset_difference(frames, numbers, sample.onset)
        blocks.append(frames)
        owners.append(np.full(len(frames), row))
        phases.append(temporal_phase(numbers, sample.onset, sample.apex, sample.offset))
    return RegionFrames(np.concatenate(blocks), np.concatenate(owners), np.concatenate(phases))


def apex_window(data: RegionFrames, window: float | None) -> np.ndarray:
    """Which frames fit a spatial model: all (``window`` None, the paper's choice), or those within
    ``window`` of the apex in temporal phase (0.5: the second half of the rise and the first half of
    the fall), at least the frame nearest the apex of every clip. In onset_diff input the frames near
    the onset are nearly blank whatever the class; fitting them costs time and teaches little."""
    if window is None:
        return np.ones(len(data.owner), dtype=bool)
    distance = np.abs(data.phase - 1.0)
    chosen = distance <= window
    for row in np.unique(data.owner):
        mine = np.flatnonzero(data.owner == row)
        chosen[mine[np.argmin(distance[mine])]] = True
    return chosen


def spatial_batches(frames, targets, model_settings: dict, batch_size: int, shuffle_seed: int | None):
    """Batches with a channel axis. ``raw``: grey / 255 in [0, 1] (the paper's). ``onset_diff``: the
    difference clipped to +-diff_range grey levels and mapped to [-1, 1], 0 = no change. A
    micro-expression changes a frame by a few grey levels, which a +-255 scale would squeeze into +-0.01;
    and centred on 0, an unchanged pixel adds nothing to a ReLU unit (mapped to [0, 1] with 0.5 = no
    change, the spatial model stayed at chance for 8 epochs on the demo where centred it learned)."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((frames, targets))
    if shuffle_seed is not None:
        data = data.shuffle(len(targets), seed=shuffle_seed, reshuffle_each_iteration=True)
    if model_settings["input"] == "onset_diff":
        limit = float(model_settings["diff_range"])

        def scale(x):
            return tf.clip_by_value(tf.cast(x, tf.float32), -limit, limit) / limit
    else:

        def scale(x):
            return tf.cast(x, tf.float32) / 255.0

    return data.batch(batch_size).map(lambda x, y: (scale(x)[..., None], y), num_parallel_calls=1).prefetch(2)


def configure_tensorflow(threads: int, seed: int) -> None:
    """One-job-per-core threading, repeatable CPU runs, and GPU memory growth when a GPU is present."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        log.info("TensorFlow was already initialised in this process; its threading is kept")
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def cpu_has_bfloat16(cpuinfo: str) -> bool:
    """Whether CPU flags (the text of ``/proc/cpuinfo``) include AVX512-BF16 or AMX-BF16."""
    return bool(set(cpuinfo.split()) & {"avx512_bf16", "amx_bf16"})


def native_bfloat16() -> bool:
    """Whether bfloat16 arithmetic runs natively here: an NVIDIA GPU of compute capability >= 8.0 (Ampere
    on), or a CPU with bfloat16 instructions. Elsewhere it is emulated, slower than float32."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        if tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) >= (8, 0):
            return True
    try:
        return cpu_has_bfloat16(Path("/proc/cpuinfo").read_text())
    except OSError:  # not Linux: unknown, say so
        return False


def _write_json(path: str | Path, data: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True))


def _callbacks(checkpoint_dir: str | Path, history_path: str | Path, patience: int | None):
    """Resume from checkpoint_dir after an interruption; log history; early stopping on validation loss."""
    import keras

    Path(history_path).parent.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(checkpoint_dir), delete_checkpoint=True),
        keras.callbacks.CSVLogger(str(history_path), separator="\t", append=True),
    ]
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True))
    return callbacks


# --------------------------------------------------------------------------------------------- spatial


def train_spatial(
    samples: pd.DataFrame,
    region_labels: pd.DataFrame,
    patch_files: dict[str, str],
    fold: Fold,
    region: str,
    settings: dict,
    classes: Sequence[str],
    out: dict[str, str],
) -> dict:
    """Train the spatial model of one region on the fold's training subjects.

    ``out`` holds paths: model (.keras), history (TSV), provenance (JSON), checkpoints (a folder kept
    outside the workflow's declared outputs so that a rerun after SIGTERM resumes from it).
    """
    import keras

    from . import models

    model_settings, training = settings["model"], settings["training"]
    representation = model_settings["input"]
    labels_of = region_labels.set_index("sample_id")[region]
    names = region_classes(classes, model_settings["region_labels"])
    train = samples[samples.subject.isin(fold.train_subjects)].reset_index(drop=True)
    validation = samples[samples.subject.isin(fold.validation_subjects)].reset_index(drop=True)
    if fold.test_subject in set(train.subject) | set(validation.subject):
        raise AssertionError(f"fold {fold.name}: the test subject reached the training data")

    spatial = training["spatial"]
    data = load_region(patch_files, train, region, representation)
    fitted = apex_window(data, spatial["apex_window"])
    frames = data.frames[fitted]
    targets = np.array([names.index(labels_of[sid]) for sid in train.sample_id])[data.owner[fitted]]
    alpha = models.inverse_frequency_alpha(targets, len(names))
    patches, height, width = frames.shape[1:]
    if spatial["precision"] == "mixed_bfloat16" and not native_bfloat16():
        log.warning(
            "training.spatial.precision is mixed_bfloat16 but this machine has no native bfloat16 "
            "(no GPU of compute capability >= 8.0, no AVX512-BF16/AMX CPU flag): expect it slower than float32"
        )
    with models.dtype_policy(spatial["precision"]):
        model = models.spatial_model(
            patches,
            (height, width),
            len(names),
            se_ratio=model_settings["se_ratio"],
            spatial_se=model_settings["spatial_se"],
            share_patch_cnn=model_settings["share_patch_cnn"],
        )
    models.compile_spatial(model, alpha, spatial["learning_rate"], gamma=training["focal_gamma"])
    validation_data = None
    if len(validation):
        val_data = load_region(patch_files, validation, region, representation)
        val_fitted = apex_window(val_data, spatial["apex_window"])
        val_targets = np.array([names.index(labels_of[sid]) for sid in validation.sample_id])[
            val_data.owner[val_fitted]
        ]
        validation_data = spatial_batches(
            val_data.frames[val_fitted],
            keras.utils.to_categorical(val_targets, len(names)),
            model_settings,
            spatial["batch_size"],
            None,
        )
    model.fit(
        spatial_batches(
            frames,
            keras.utils.to_categorical(targets, len(names)),
            model_settings,
            spatial["batch_size"],
            training["seed"],
        ),
        epochs=spatial["epochs"],
        validation_data=validation_data,
        verbose=2,
        callbacks=_callbacks(out["checkpoints"], out["history"], spatial["patience"] if len(validation) else None),
    )
    Path(out["model"]).parent.mkdir(parents=True, exist_ok=True)
    model.save(out["model"])
    provenance = {
        "stage": "spatial",
        "fold": fold.name,
        "region": region,
        "test_subject": fold.test_subject,
        "fit_sample_ids": sorted(train.sample_id),
        "class_weight_sample_ids": sorted(train.sample_id),
        "validation_sample_ids": sorted(validation.sample_id),
        "classes": names,
        "alpha": np.round(alpha, 6).tolist(),
        "frames": int(len(targets)),
        "apex_window": spatial["apex_window"],
        "precision": spatial["precision"],
        "input": representation,
        "localmer_version": __version__,
    }
    _write_json(out["provenance"], provenance)
    return provenance


# --------------------------------------------------------------------------------------------- features


def export_features(
    samples: pd.DataFrame,
    patch_files: dict[str, str],
    fold: Fold,
    model_files: dict[str, str],
    settings: dict,
    out_path: str | Path,
    config_hash: str,
    batch_size: int = 256,
) -> int:
    """The 256-d spatial features of every frame of every clip (train and test) from this fold's models.

    Layout: /clips/<sample_id>/<region> (F, 256) float32; attrs fold, test_subject, train_subjects,
    validation_subjects, model_files (JSON), config_hash. Returns the number of clips written.
    """
    import keras

    from . import models

    representation = settings["model"]["input"]
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(out_path, "w") as h5:
        h5.attrs.update(
            fold=fold.name,
            test_subject=fold.test_subject,
            train_subjects=json.dumps(list(fold.train_subjects)),
            validation_subjects=json.dumps(list(fold.validation_subjects)),
            model_files=json.dumps(model_files),
            config_hash=config_hash,
            localmer_version=__version__,
        )
        for region in progress(REGION_NAMES, len(REGION_NAMES), f"fold {fold.name} features"):
            extractor = models.feature_extractor(keras.saving.load_model(model_files[region], safe_mode=True))
            data = load_region(patch_files, samples, region, representation)
            features = extractor.predict(
                spatial_batches(data.frames, np.zeros(len(data.frames)), settings["model"], batch_size, None).map(
                    lambda x, y: x
                ),
                verbose=0,
            )
            for row, sample_id in enumerate(samples.sample_id):
                h5.create_dataset(
                    f"{_clip_path(sample_id)}/{region}", data=features[data.owner == row].astype(np.float32)
                )
    return len(samples)


# --------------------------------------------------------------------------------------------- temporal


def _sequence(track: np.ndarray, steps: int) -> tuple[np.ndarray, int]:
    """(F, ...) -> (steps, ...) and the number of real steps: zero-padded, or resampled evenly if longer."""
    if len(track) > steps:
        return track[np.round(np.linspace(0, len(track) - 1, steps)).astype(int)], steps
    padded = np.zeros((steps, *track.shape[1:]), dtype=np.float32)
    padded[: len(track)] = track
    return padded, len(track)


def load_sequences(features_path: str | Path, sample_ids: Sequence[str]) -> list[np.ndarray]:
    """Per clip, its (F, regions, 256) feature track."""
    with h5py.File(features_path, "r") as h5:
        return [
            np.stack([h5[f"{_clip_path(sid)}/{region}"][()] for region in REGION_NAMES], axis=1) for sid in sample_ids
        ]


def standardise(tracks: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> list[np.ndarray]:
    return [(track - mean) / std for track in tracks]


def normalisation(tracks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per region and feature mean and std over all frames of the given (training) tracks."""
    frames = np.concatenate(tracks)
    std = frames.std(axis=0)
    return frames.mean(axis=0), np.where(std > 1e-6, std, 1.0)


def batch_sequences(tracks: list[np.ndarray], steps: int) -> dict[str, np.ndarray]:
    """The temporal model's inputs: ``sequences`` (clips, steps, regions, 256) zero-padded (or resampled
    when longer than ``steps``) and ``lengths`` (clips,) the real steps of each."""
    sequences, lengths = zip(*(_sequence(track, steps) for track in tracks), strict=True)
    return {"sequences": np.stack(sequences).astype(np.float32), "lengths": np.asarray(lengths, dtype=np.int32)}


def train_temporal(
    samples: pd.DataFrame,
    features_path: str | Path,
    fold: Fold,
    settings: dict,
    classes: Sequence[str],
    out: dict[str, str],
) -> pd.DataFrame:
    """Train the fold's temporal model on its training subjects, predict its test subject.

    ``out``: model, history, provenance, checkpoints, predictions, and optionally normalisation (an
    .npz of the training split's feature ``mean`` and ``std``, which a model bundle needs). Returns the
    predictions table (empty for the final fold, which has no test subject).
    """
    import keras

    from . import models

    model_settings, training = settings["model"], settings["training"]
    temporal = training["temporal"]
    train = samples[samples.subject.isin(fold.train_subjects)].reset_index(drop=True)
    validation = samples[samples.subject.isin(fold.validation_subjects)].reset_index(drop=True)
    test = samples[samples.subject == fold.test_subject].reset_index(drop=True)
    if fold.test_subject in set(train.subject) | set(validation.subject):
        raise AssertionError(f"fold {fold.name}: the test subject reached the training data")

    train_tracks = load_sequences(features_path, train.sample_id)
    mean, std = normalisation(train_tracks)  # training split only
    if out.get("normalisation"):
        Path(out["normalisation"]).parent.mkdir(parents=True, exist_ok=True)
        with open(out["normalisation"], "wb") as handle:  # np.savez would add .npz to another suffix
            np.savez(handle, mean=mean.astype(np.float32), std=std.astype(np.float32))
    steps = temporal["steps"]

    def inputs(table: pd.DataFrame) -> dict[str, np.ndarray]:
        return batch_sequences(standardise(load_sequences(features_path, table.sample_id), mean, std), steps)

    targets = np.array([list(classes).index(label) for label in train.label])
    alpha = models.inverse_frequency_alpha(targets, len(classes))
    model = models.temporal_model(
        len(REGION_NAMES),
        steps,
        train_tracks[0].shape[-1],
        len(classes),
        temporal_se=model_settings["temporal_se"],
        se_ratio=model_settings["se_ratio"],
    )
    models.compile_temporal(model, alpha, temporal["learning_rate"], gamma=training["focal_gamma"])
    validation_data = None
    if len(validation):
        val_targets = np.array([list(classes).index(label) for label in validation.label])
        validation_data = (inputs(validation), keras.utils.to_categorical(val_targets, len(classes)))
    model.fit(
        inputs(train),
        keras.utils.to_categorical(targets, len(classes)),
        batch_size=temporal["batch_size"],
        epochs=temporal["epochs"],
        validation_data=validation_data,
        shuffle=True,
        verbose=2,
        callbacks=_callbacks(out["checkpoints"], out["history"], temporal["patience"] if len(validation) else None),
    )
    Path(out["model"]).parent.mkdir(parents=True, exist_ok=True)
    model.save(out["model"])
    # A test subject whose every clip preprocessing skipped has nothing to predict (the report lists why).
    probabilities = model.predict(inputs(test), verbose=0) if len(test) else np.zeros((0, len(classes)))
    predictions = pd.DataFrame(
        {
            "sample_id": test.sample_id,
            "dataset": test.dataset,
            "subject": test.subject,
            "true": test.label,
            "predicted": [classes[i] for i in probabilities.argmax(axis=1)],
            **{f"prob_{name}": probabilities[:, i].round(6) for i, name in enumerate(classes)},
        }
    )
    predictions.to_csv(out["predictions"], sep="\t", index=False)
    _write_json(
        out["provenance"],
        {
            "stage": "temporal",
            "fold": fold.name,
            "test_subject": fold.test_subject,
            "fit_sample_ids": sorted(train.sample_id),
            "normalisation_sample_ids": sorted(train.sample_id),
            "class_weight_sample_ids": sorted(train.sample_id),
            "validation_sample_ids": sorted(validation.sample_id),
            "predicted_sample_ids": sorted(test.sample_id),
            "alpha": np.round(alpha, 6).tolist(),
            "classes": list(classes),
            "steps": steps,
            "localmer_version": __version__,
        },
    )
    return predictions
