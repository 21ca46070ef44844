"""Leave-one-subject-out training: spatial models per fold and region, feature export, temporal model
per fold, test predictions.

Leakage-free by construction: a fold is (test subject, training subjects, validation subjects carved
from the training subjects). Every step that fits a model, computes normalisation statistics or class
weights takes its sample ids from the fold's training (or validation) subjects only, and records them in
a provenance file beside its output, so that a test can prove no test clip reached any of them.

Inputs are the preprocessed patches files, or with ``model.input: flow`` the flow-patches files (one per
subject, see ``localmer.preprocess``; the caller passes the files of the representation's source), read
and scaled for the models by ``localmer.inputs`` (``onset_diff``, ``raw`` or ``flow``; ``localmer
predict`` scales its clips with the same functions). Determinism: with ``training.seed`` and one thread per job
(``localmer.tfsetup``), CPU runs repeat exactly (TensorFlow op determinism is switched on); GPU runs
repeat only approximately. Every epoch's randomness is a function of (seed, epoch), and a job killed
and rerun resumes exactly from its checkpoint (``fit_epochs``).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from . import __version__, inputs, tfsetup
from .atomic import atomic_output
from .datasets import read_table
from .labels import NOT_CONCERNED
from .regions import REGION_NAMES
from .runlog import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fold:
    name: str  # the test subject (loso: casme2/sub01), the test dataset part (lodo: casme2), or final
    test_subjects: tuple[str, ...]
    train_subjects: tuple[str, ...]  # fit, normalisation and class weights come from these only
    validation_subjects: tuple[str, ...]  # carved from the training subjects, for early stopping only

    def check(self, train: pd.DataFrame, validation: pd.DataFrame) -> None:
        """Refuse a fit whose training or validation clips include a test subject's."""
        leaked = set(self.test_subjects) & (set(train.subject) | set(validation.subject))
        if leaked:
            raise AssertionError(f"fold {self.name}: test subject(s) {sorted(leaked)} reached the training data")


FINAL = "final"  # the fold of the final models: every subject trains, none is held out
PROTOCOLS = ("loso", "lodo")  # leave one subject out; leave one dataset (part) out


def final_fold(samples: pd.DataFrame) -> Fold:
    """The fold of an experiment's final models (``localmer predict``): all subjects train, no test
    subject, no validation subject (so no early stopping: the configured epochs run)."""
    subjects = tuple(sorted(set(samples.subject)))
    if not subjects:
        raise ValueError("no usable clip to train the final models on")
    return Fold(FINAL, (), subjects, ())


def dataset_of(subject: str) -> str:
    """The dataset part of a subject id (``casme2/sub01`` -> ``casme2``)."""
    return subject.split("/", 1)[0]


def make_folds(
    subjects: Sequence[str], validation_subjects: int = 0, seed: int = 0, protocol: str = "loso"
) -> list[Fold]:
    """The protocol's folds: one per subject (loso) or per dataset part (lodo), the test group held out
    and everything else training. Validation subjects are drawn from the training subjects, reproducibly."""
    subjects = sorted(set(subjects))
    if protocol == "loso":
        groups = {subject: [subject] for subject in subjects}
    elif protocol == "lodo":
        groups = {}
        for subject in subjects:
            groups.setdefault(dataset_of(subject), []).append(subject)
    else:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {list(PROTOCOLS)}")
    if len(groups) < 2:
        what = "subjects" if protocol == "loso" else "dataset parts"
        raise ValueError(f"{protocol} needs at least 2 {what}, got {len(groups)}")
    folds = []
    for index, (name, held_out) in enumerate(groups.items()):
        others = [s for s in subjects if s not in held_out]
        if validation_subjects >= len(others):
            raise ValueError(f"validation_subjects={validation_subjects} leaves no training subject in fold {name}")
        rng = np.random.default_rng([seed, index])
        validation = (
            tuple(sorted(rng.choice(others, size=validation_subjects, replace=False))) if validation_subjects else ()
        )
        folds.append(Fold(name, tuple(held_out), tuple(s for s in others if s not in validation), validation))
    return folds


def fold_names(subjects: Sequence[str], protocol: str) -> list[str]:
    """The names of a protocol's folds over ``subjects`` (what the workflow's fold wildcard takes)."""
    return sorted(set(subjects)) if protocol == "loso" else sorted({dataset_of(s) for s in subjects})


def fold_by_name(samples: pd.DataFrame, name: str, settings: dict, skipped_subjects: Sequence[str] = ()) -> Fold:
    """A fold of the experiment's protocol by name (its test subject or dataset part), or the final fold
    (``final``). The workflow makes a fold of every indexed subject (dataset); a fold whose test subject had
    every clip skipped by preprocessing (in ``skipped_subjects``) keeps its fold, trained as it would be
    with clips, and predicts nothing."""
    if name == FINAL:
        return final_fold(samples)
    training = settings["training"]
    # The named fold's own skipped subjects only: the others take no part in any fold's draws.
    held_out = {s for s in skipped_subjects if name in (s, dataset_of(s))}
    subjects = set(samples.subject) | held_out
    for fold in make_folds(subjects, training["validation_subjects"], training["seed"], training["protocol"]):
        if fold.name == name:
            return fold
    raise ValueError(f"no {training['protocol']} fold {name!r}: folds are {fold_names(subjects, training['protocol'])}")


def usable_samples(samples: pd.DataFrame, report: pd.DataFrame) -> pd.DataFrame:
    """The indexed clips that preprocessing kept (status ok); skipped ones are in the report."""
    kept = set(report.loc[report.status == "ok", "sample_id"])
    return samples[samples.sample_id.isin(kept)].reset_index(drop=True)


def patch_files_of(paths: Sequence[str]) -> dict[str, str]:
    """subject -> patches (or flow-patches) file, from the files' own subject attribute."""
    files = {}
    for path in paths:
        with h5py.File(path, "r") as h5:
            files[str(h5.attrs["subject"])] = str(path)
    return files


def prepare_fold_job(
    samples_path: str, report_path: str, fold_name: str, settings: dict, threads: int, *, tensorflow: bool = True
):
    """What every per-fold job starts with: TensorFlow set up (unless the job fits no Keras model), the
    usable samples, the fold."""
    if tensorflow:
        tfsetup.configure_tensorflow(threads, settings["training"]["seed"])
    indexed = read_table(samples_path)
    samples = usable_samples(indexed, read_table(report_path))
    skipped_subjects = sorted(set(indexed.subject) - set(samples.subject))
    return samples, fold_by_name(samples, fold_name, settings, skipped_subjects)


def config_hash(settings: dict) -> str:
    """Digest of the settings a fold's models depend on (recorded in the feature files)."""
    import hashlib

    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def task_classes(settings: dict) -> list[str]:
    """The task's classes, in label_index order."""
    from .tasks import resolve_task

    return list(resolve_task(settings["task"]).classes)


def region_classes(classes: Sequence[str], mode: str) -> list[str]:
    """The spatial model's classes: the task's, plus not_concerned with ROI labels."""
    return [*classes, NOT_CONCERNED] if mode == "roi" else list(classes)


# --------------------------------------------------------------------------------------------- data


def _clip_path(sample_id: str) -> str:
    return f"clips/{sample_id}"


def apex_window(data: inputs.RegionFrames, window: float | None) -> np.ndarray:
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


def write_json(path: str | Path, data: dict) -> None:
    """A provenance (or other) record as sorted, indented JSON; its folder is created."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True))


# --------------------------------------------------------------------------------------------- epochs

CHECKPOINT = re.compile(r"epoch-(\d+)")  # a checkpoint folder: the state at the end of that epoch (1-based)
# The seed's stages save a checkpoint after an epoch once this long has passed since the last save (and
# after the last epoch): an interrupted job repeats at most about this much training, and short epochs
# (the demo's, a GPU's) are not dominated by writing the weights and the optimizer's state.
CHECKPOINT_SECONDS = 60.0


def epoch_randomness(seed: int, epoch: int) -> np.random.Generator:
    """Where all of an epoch's randomness comes from: first its sample order, then its dropout seeds."""
    return np.random.default_rng([seed, epoch])


def _seed_states(model) -> list:
    """The state variables of the model's random seed generators (those of its dropout layers): Keras
    saves none of them with the weights."""
    return [variable for variable in model.non_trainable_variables if variable.name == "seed_generator_state"]


def fit_identity(description: dict, *arrays: np.ndarray) -> str:
    """Digest of what a fit depends on (settings, fold, the data arrays): a checkpoint is resumed only by
    a job of the same identity."""
    import hashlib

    digest = hashlib.sha1(json.dumps(description, sort_keys=True).encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()


def gathered_batches(x, y) -> Callable:
    """The ``batch_of`` of ``fit_epochs`` for arrays ``x`` (one, or a dict of them by model input) and
    ``y``: the batch is their rows at the given indices. Converted to tensors once: an epoch's batches
    are taken by index, no copy of the data per epoch."""
    import tensorflow as tf

    x, y = tf.nest.map_structure(tf.convert_to_tensor, x), tf.convert_to_tensor(y)
    return lambda index: (tf.nest.map_structure(lambda values: tf.gather(values, index), x), tf.gather(y, index))


def epoch_batches(orders: np.ndarray, batch_size: int, batch_of: Callable):
    """One tf.data pipeline of the batches of several epochs, one epoch after the other: each row of
    ``orders`` is an epoch's sample order, cut into batches of ``batch_size`` indices (an epoch's last
    batch may be smaller: none spans two epochs) that ``batch_of`` turns into the batch's ``x, y``."""
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices(orders)
        .flat_map(lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))
        .map(batch_of, num_parallel_calls=1)
        .prefetch(2)
    )


def fit_epochs(
    model,
    batch_of: Callable,
    samples: int,
    *,
    epochs: int,
    seed: int,
    batch_size: int,
    validation_data,
    patience: int | None,
    checkpoint_dir: str | Path,
    identity: str,
    label: str,
    checkpoint_every: int = 1,
    checkpoint_seconds: float = 0.0,
) -> pd.DataFrame:
    """Train ``model`` for ``epochs`` epochs so that a job killed at any moment (SIGTERM at a SLURM
    walltime, Ctrl-C) and rerun ends with the weights, history and stop epoch of an uninterrupted job,
    bit for bit on a CPU. Returns the history: epoch (0-based) and the logged losses and metrics.

    - Every epoch's randomness is a function of (``seed``, epoch) alone (``epoch_randomness``), never of
      the state of a random generator that a restart would lose: the epoch's sample order, a
      permutation of range(``samples``), cut into batches of ``batch_size`` indices that
      ``batch_of(indices)`` (traced by tf.data) turns into the batch's ``x, y``, and the states of the
      model's dropout seed generators, set when the epoch begins. Keras' ``BackupAndRestore`` restores
      weights and the epoch counter only: the tf.data shuffle and the dropout masks of a resumed job
      differed from the uninterrupted job's.
    - One ``model.fit`` call for all the epochs to run (a call per epoch cost more than a short epoch),
      over one pipeline of their batches one epoch after the other; ``EpochControl`` does the work of
      each epoch's start and end. After every ``checkpoint_every``-th epoch at least
      ``checkpoint_seconds`` after the last save (or the start), and after the last epoch, the whole
      state goes to ``checkpoint_dir/epoch-N``: model and optimizer weights, the history so far, the
      early-stopping state (and the best epoch's weights). A rerun repeats the epochs after the newest
      checkpoint exactly (their randomness is a function of the epoch), so when checkpoints are taken
      changes no result; saving less often is for runs of many short epochs, whose time the saves
      would dominate. The folder is written under a
      partial name (``localmer.atomic``) and renamed when complete, then the older checkpoint is
      removed: a kill during the save leaves the previous checkpoint. The history lives in the
      checkpoint, not in an output that a workflow manager deletes as incomplete.
    - A rerun restores the newest checkpoint and goes on with the next epoch. One it cannot read, or
      one of another job (``identity``: see ``fit_identity``), is logged and training starts again at
      epoch 1.
    - With ``patience`` (``validation_data`` needed), Keras' ``EarlyStopping(monitor="val_loss",
      restore_best_weights=True)`` decides, its state kept in the checkpoint: training stops after
      ``patience`` epochs without a better validation loss, and the model ends with the weights of its
      best epoch.

    The caller removes ``checkpoint_dir`` (``remove_checkpoints``) once its outputs are written.
    """
    import keras

    if not (isinstance(checkpoint_every, int) and checkpoint_every >= 1):
        raise ValueError(f"checkpoint_every: expected a whole number >= 1, got {checkpoint_every!r}")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its variables exist for a checkpoint to restore
    stopper = None
    if patience:
        stopper = keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)
        stopper.set_model(model)
        stopper.on_train_begin()
    folder = Path(checkpoint_dir)
    first_epoch, history, stopped = _restore_checkpoint(folder, model, stopper, identity, label)
    last_save = time.monotonic()

    class EpochControl(keras.callbacks.Callback):
        """The work of each epoch of the one ``model.fit``: at its start the dropout seed states from
        the epoch's randomness (after its sample order, drawn when the batches were laid out); at its end
        the history, early stopping, a checkpoint when due, and the log line."""

        def on_epoch_begin(self, epoch, logs=None):
            for state in _seed_states(model):
                state.assign([int(randomness[epoch - first_epoch].integers(2**31)), 0])

        def on_epoch_end(self, epoch, logs=None):
            nonlocal last_save
            record = {"epoch": epoch, **dict(sorted(logs.items()))}
            history.append(record)
            stopped = False
            if stopper is not None:
                stopper.on_epoch_end(epoch, record)
                stopped = bool(model.stop_training)
            done = epoch + 1
            due = done % checkpoint_every == 0 and time.monotonic() - last_save >= checkpoint_seconds
            if due or done == epochs or stopped:
                state = {"identity": identity, "history": history, "stopped": stopped}
                _save_checkpoint(folder, done, model, stopper, state)
                last_save = time.monotonic()
            log.info(
                "%s epoch %d/%d: %s%s",
                label,
                done,
                epochs,
                ", ".join(f"{name} {value:.4f}" for name, value in record.items() if name != "epoch"),
                "; early stopping" if stopped else "",
            )

    if first_epoch < epochs and not stopped:
        randomness = [epoch_randomness(seed, epoch) for epoch in range(first_epoch, epochs)]
        orders = np.stack([generator.permutation(samples) for generator in randomness])
        model.fit(
            epoch_batches(orders, batch_size, batch_of),
            initial_epoch=first_epoch,
            epochs=epochs,
            steps_per_epoch=-(-samples // batch_size),
            validation_data=validation_data,
            validation_batch_size=batch_size,
            callbacks=[EpochControl()],
            shuffle=False,  # the order is each epoch's own, above
            verbose=0,
        )
    if stopper is not None and stopper.best_weights is not None:
        stopper.on_train_end()
        log.info(
            "%s: the weights of epoch %d (best val_loss %.4f) are kept", label, stopper.best_epoch + 1, stopper.best
        )
    return pd.DataFrame(history)


EARLY_STOPPING_STATE = ("wait", "best", "best_epoch", "stopped_epoch")


def _save_checkpoint(folder: Path, epoch: int, model, stopper, progress: dict) -> None:
    """The state after ``epoch`` epochs as folder ``epoch-<epoch>``, complete or absent."""
    name = f"epoch-{epoch}"
    with atomic_output(folder / name) as partial:
        partial.mkdir()
        model.save_weights(partial / "model.weights.h5")  # the optimizer's state included
        if stopper is not None:
            progress["early_stopping"] = {key: getattr(stopper, key) for key in EARLY_STOPPING_STATE}
            if stopper.best_weights is not None:
                np.savez(partial / "best_weights.npz", *stopper.best_weights)
        (partial / "progress.json").write_text(json.dumps(progress))
    for older in folder.iterdir():
        if older.name != name:
            shutil.rmtree(older)


def _restore_checkpoint(folder: Path, model, stopper, identity: str, label: str) -> tuple[int, list[dict], bool]:
    """(epochs done, history, stopped early) from the newest checkpoint in ``folder`` into ``model`` and
    ``stopper``; (0, [], False) with the folder cleared when there is none it can resume."""
    found = {int(m.group(1)): path for path in folder.glob("epoch-*") if (m := CHECKPOINT.fullmatch(path.name))}
    if not found:
        if folder.exists():
            log.warning("%s: %s holds no complete checkpoint; training starts at epoch 1", label, folder)
            shutil.rmtree(folder)
        return 0, [], False
    epoch, path = max(found.items())
    weights = [variable.numpy() for variable in model.weights + model.optimizer.variables]
    try:
        progress = json.loads((path / "progress.json").read_text())
        if progress["identity"] != identity:
            raise ValueError("it was written by a job with other settings or data")
        best_weights = None
        if stopper is not None and (path / "best_weights.npz").exists():
            with np.load(path / "best_weights.npz") as saved:
                best_weights = [saved[f"arr_{index}"] for index in range(len(saved.files))]
        model.load_weights(path / "model.weights.h5")
        if stopper is not None:
            for key in EARLY_STOPPING_STATE:
                setattr(stopper, key, progress["early_stopping"][key])
            stopper.best_weights = best_weights
    except (OSError, ValueError, KeyError) as error:  # json.JSONDecodeError is a ValueError
        for variable, value in zip(model.weights + model.optimizer.variables, weights, strict=True):
            variable.assign(value)  # a load that failed half way leaves no trace
        log.warning("%s: checkpoint %s cannot be resumed (%s); training starts again at epoch 1", label, path, error)
        shutil.rmtree(folder)
        return 0, [], False
    log.info("%s: resuming after epoch %d from %s", label, epoch, path)
    return epoch, progress["history"], progress["stopped"]


def remove_checkpoints(checkpoint_dir: str | Path) -> None:
    """A job's checkpoints, once its outputs are written."""
    shutil.rmtree(checkpoint_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------- spatial


class SpatialTrainer:
    """The model that a job's spatial regions train on, one after another: ``spatial_model`` for patches
    of any size, built and compiled once (at the first ``start``), so that TensorFlow traces its training
    and feature steps once for all the regions instead of once each. ``start`` puts it back in the state
    of a model built from the seed (every region's initial weights are the same: the architecture is, the
    seed is) with a fresh optimizer and the region's focal-loss weights; ``region_model`` gives the
    trained weights to the region's own model (the size of its patches) for saving; ``features`` is its
    256-d feature layer."""

    def __init__(self, settings: dict, classes: int):
        self.settings, self.classes = settings, classes
        self.patches = self.model = self.features = None
        self.initial_state = []

    def start(self, alpha: np.ndarray, patches: int):
        """The model, reset for a region of ``patches`` patches whose focal loss weighs its classes by
        ``alpha``."""
        import keras

        from . import models

        if self.model is None:
            self.patches = patches
            keras.utils.set_random_seed(self.settings["training"]["seed"])  # initial weights from the seed
            self.model = self._compiled(None, alpha, settable_alpha=True)
            self.initial_state = [variable.numpy() for variable in self._state(self.model)]
            self.features = models.feature_extractor(self.model)
        elif patches != self.patches:
            raise ValueError(f"a region of {patches} patches, but this trainer's model takes {self.patches}")
        for variable, value in zip(self._state(self.model), self.initial_state, strict=True):
            variable.assign(value)
        self.model.loss.set_alpha(alpha)
        return self.model

    def _compiled(self, patch_size: tuple[int, int] | None, alpha: np.ndarray, *, settable_alpha: bool = False):
        """A spatial model of the settings for patches of ``patch_size`` (None: any), compiled, its
        optimizer's variables built."""
        from . import models

        model_settings, training = self.settings["model"], self.settings["training"]
        with models.dtype_policy(training["spatial"]["precision"]):
            model = models.spatial_model(
                self.patches,
                patch_size,
                self.classes,
                se_ratio=model_settings["se_ratio"],
                spatial_se=model_settings["spatial_se"],
                share_patch_cnn=model_settings["share_patch_cnn"],
                channels=inputs.representation(model_settings["input"]).channels,
            )
        models.compile_spatial(
            model,
            alpha,
            training["spatial"]["learning_rate"],
            gamma=training["focal_gamma"],
            settable_alpha=settable_alpha,
        )
        model.optimizer.build(model.trainable_variables)
        return model

    @staticmethod
    def _state(model) -> list:
        return model.weights + model.optimizer.variables

    def region_model(self, patch_size: tuple[int, int], alpha: np.ndarray):
        """A model for patches of ``patch_size`` with the trained weights and optimizer state, compiled
        as ``train_spatial`` compiles a region's model (``FocalLoss`` of ``alpha``)."""
        model = self._compiled(patch_size, alpha)
        for variable, trained in zip(self._state(model), self._state(self.model), strict=True):
            variable.assign(trained)
        return model


def train_spatial(
    samples: pd.DataFrame,
    region_labels: pd.DataFrame,
    patch_files: dict[str, str],
    fold: Fold,
    region: str,
    settings: dict,
    classes: Sequence[str],
    out: dict[str, str],
    *,
    keep_checkpoints: bool = False,
    trainer: SpatialTrainer | None = None,
) -> dict:
    """Train the spatial model of one region on the fold's training subjects.

    ``out`` holds paths: model (.keras), history (TSV), provenance (JSON), checkpoints (a folder kept
    outside the workflow's declared outputs so that a rerun after SIGTERM or Ctrl-C resumes from it,
    ``fit_epochs``; removed once the outputs are written, unless ``keep_checkpoints``). The model
    trains on ``trainer`` (a new one when None: a job's regions share one, ``train_spatial_regions``);
    the trained model is ``trainer.model`` until its next ``start``.
    """
    import keras

    from . import models

    model_settings, training = settings["model"], settings["training"]
    representation = model_settings["input"]
    labels_of = region_labels.set_index("sample_id")[region]
    names = region_classes(classes, model_settings["region_labels"])
    train = samples[samples.subject.isin(fold.train_subjects)].reset_index(drop=True)
    validation = samples[samples.subject.isin(fold.validation_subjects)].reset_index(drop=True)
    fold.check(train, validation)

    spatial = training["spatial"]
    data = inputs.load_region(patch_files, train, region, representation)
    fitted = apex_window(data, spatial["apex_window"])
    frames = data.frames[fitted]
    targets = np.array([names.index(labels_of[sid]) for sid in train.sample_id])[data.owner[fitted]]
    alpha = models.inverse_frequency_alpha(targets, len(names))
    patches, height, width = frames.shape[1:4]
    if spatial["precision"] == "mixed_bfloat16" and not tfsetup.native_bfloat16():
        log.warning(
            "training.spatial.precision is mixed_bfloat16 but this machine has no native bfloat16 "
            "(no GPU of compute capability >= 8.0, no AVX512-BF16/AMX CPU flag): expect it slower than float32"
        )
    if trainer is None:
        trainer = SpatialTrainer(settings, len(names))
    elif (trainer.settings, trainer.classes) != (settings, len(names)):
        raise ValueError(f"fold {fold.name} {region}: the trainer was made for other settings or classes")
    model = trainer.start(alpha, patches)
    validation_data = None
    validation_arrays = ()
    if len(validation):
        val_data = inputs.load_region(patch_files, validation, region, representation)
        val_fitted = apex_window(val_data, spatial["apex_window"])
        val_targets = np.array([names.index(labels_of[sid]) for sid in validation.sample_id])[
            val_data.owner[val_fitted]
        ]
        validation_arrays = (val_data.frames[val_fitted], val_targets)
        validation_data = inputs.spatial_batches(
            validation_arrays[0],
            keras.utils.to_categorical(val_targets, len(names)),
            model_settings,
            spatial["batch_size"],
        )
    history = fit_epochs(
        model,
        inputs.spatial_batch_of(frames, keras.utils.to_categorical(targets, len(names)), model_settings),
        len(targets),
        epochs=spatial["epochs"],
        seed=training["seed"],
        batch_size=spatial["batch_size"],
        validation_data=validation_data,
        patience=spatial["patience"] if len(validation) else None,
        checkpoint_dir=out["checkpoints"],
        identity=fit_identity(
            {"stage": "spatial", "fold": fold.name, "region": region, "settings": settings},
            frames,
            targets,
            *validation_arrays,
        ),
        label=f"fold {fold.name} spatial {region}",
        checkpoint_seconds=CHECKPOINT_SECONDS,
    )
    Path(out["history"]).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(out["history"], sep="\t", index=False)
    Path(out["model"]).parent.mkdir(parents=True, exist_ok=True)
    trainer.region_model((height, width), alpha).save(out["model"])
    provenance = {
        "stage": "spatial",
        "fold": fold.name,
        "region": region,
        "test_subjects": list(fold.test_subjects),
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
    write_json(out["provenance"], provenance)
    if not keep_checkpoints:
        remove_checkpoints(out["checkpoints"])
    return provenance


def train_spatial_regions(
    samples: pd.DataFrame,
    region_labels: pd.DataFrame,
    patch_files: dict[str, str],
    fold: Fold,
    settings: dict,
    classes: Sequence[str],
    out_of_region: Mapping[str, dict[str, str]],
    features_path: str | Path | None = None,
) -> dict[str, dict]:
    """The spatial models of a fold's regions (the keys of ``out_of_region``, each region's ``out`` of
    ``train_spatial``), one after another on one ``SpatialTrainer``, and with ``features_path`` the
    fold's features of every frame from each region's trained model (``write_features``): a job trains a
    fold, and pays its fixed cost (interpreter, TensorFlow, data set-up, tracing the training and feature
    steps) once, not per region and again for the export. Each region's model is the one
    ``train_spatial`` alone gives (the trainer starts each region from the seed's state). Every
    region's last checkpoint stays until all outputs are written, so that a job interrupted in its
    fourth region (or in the export) resumes the first three at their last epoch (their outputs are
    gone: the workflow removes an interrupted job's outputs) instead of training them again."""
    trainer = SpatialTrainer(settings, len(region_classes(classes, settings["model"]["region_labels"])))
    provenances, features = {}, {}
    for region, out in out_of_region.items():
        provenances[region] = train_spatial(
            samples,
            region_labels,
            patch_files,
            fold,
            region,
            settings,
            classes,
            out,
            keep_checkpoints=True,
            trainer=trainer,
        )
        if features_path is not None:
            features[region] = region_features(trainer.features, patch_files, samples, region, settings)
    if features_path is not None:
        model_files = {region: out["model"] for region, out in out_of_region.items()}
        write_features(features_path, samples, fold, features, model_files, config_hash(settings))
    for out in out_of_region.values():
        remove_checkpoints(out["checkpoints"])
    return provenances


# --------------------------------------------------------------------------------------------- features


def region_features(
    extractor, patch_files: dict[str, str], samples: pd.DataFrame, region: str, settings: dict, batch_size: int = 256
) -> list[np.ndarray]:
    """The 256-d features (F, 256) float32 of every frame of each sample's clip in ``region``, from a
    ``models.feature_extractor``, in sample order."""
    data = inputs.load_region(patch_files, samples, region, settings["model"]["input"])
    frame_features = extractor.predict(
        inputs.spatial_batches(data.frames, np.zeros(len(data.frames)), settings["model"], batch_size).map(
            lambda x, y: x
        ),
        verbose=0,
    )
    return [frame_features[data.owner == row].astype(np.float32) for row in range(len(samples))]


def write_features(
    out_path: str | Path,
    samples: pd.DataFrame,
    fold: Fold,
    features: Mapping[str, list[np.ndarray]],
    model_files: dict[str, str],
    config_hash: str,
) -> int:
    """A fold's features file: /clips/<sample_id>/<region> (F, 256) float32 for every region of
    ``features`` (region -> ``region_features``); attrs fold, test_subjects, train_subjects,
    validation_subjects, model_files (JSON), config_hash. Returns the number of clips written."""
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(out_path, "w") as h5:
        h5.attrs.update(
            fold=fold.name,
            test_subjects=json.dumps(list(fold.test_subjects)),
            train_subjects=json.dumps(list(fold.train_subjects)),
            validation_subjects=json.dumps(list(fold.validation_subjects)),
            model_files=json.dumps(model_files),
            config_hash=config_hash,
            localmer_version=__version__,
        )
        for region, clip_features in features.items():
            for sample_id, values in zip(samples.sample_id, clip_features, strict=True):
                h5.create_dataset(f"{_clip_path(sample_id)}/{region}", data=values)
    return len(samples)


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
    """The 256-d spatial features of every frame of every clip (train and test) from this fold's saved
    models (region -> .keras file), as ``write_features`` lays them out. Returns the number of clips."""
    import keras

    from . import models

    features = {}
    for region in progress(model_files, len(model_files), f"fold {fold.name} features"):
        extractor = models.feature_extractor(keras.saving.load_model(model_files[region], safe_mode=True))
        features[region] = region_features(extractor, patch_files, samples, region, settings, batch_size)
    return write_features(out_path, samples, fold, features, model_files, config_hash)


# --------------------------------------------------------------------------------------------- temporal


def predictions_table(test: pd.DataFrame, probabilities: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """A fold's test predictions, every method's format: sample_id, dataset, subject, true, predicted (the
    most probable class) and prob_<class> per class, rounded to 6 digits."""
    return pd.DataFrame(
        {
            "sample_id": test.sample_id,
            "dataset": test.dataset,
            "subject": test.subject,
            "true": test.label,
            "predicted": [classes[i] for i in np.asarray(probabilities).argmax(axis=1)],
            **{f"prob_{name}": np.round(probabilities[:, i], 6) for i, name in enumerate(classes)},
        }
    )


def load_sequences(features_path: str | Path, sample_ids: Sequence[str]) -> list[np.ndarray]:
    """Per clip, its (F, regions, 256) feature track."""
    with h5py.File(features_path, "r") as h5:
        return [
            np.stack([h5[f"{_clip_path(sid)}/{region}"][()] for region in REGION_NAMES], axis=1) for sid in sample_ids
        ]


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
    test = samples[samples.subject.isin(fold.test_subjects)].reset_index(drop=True)
    fold.check(train, validation)

    train_tracks = load_sequences(features_path, train.sample_id)
    mean, std = inputs.normalisation(train_tracks)  # training split only
    if out.get("normalisation"):
        Path(out["normalisation"]).parent.mkdir(parents=True, exist_ok=True)
        with open(out["normalisation"], "wb") as handle:  # np.savez would add .npz to another suffix
            np.savez(handle, mean=mean.astype(np.float32), std=std.astype(np.float32))
    steps = temporal["steps"]

    def sequences_of(table: pd.DataFrame) -> dict[str, np.ndarray]:
        return inputs.batch_sequences(
            inputs.standardise(load_sequences(features_path, table.sample_id), mean, std), steps
        )

    targets = np.array([list(classes).index(label) for label in train.label])
    alpha = models.inverse_frequency_alpha(targets, len(classes))
    keras.utils.set_random_seed(training["seed"])  # initial weights from the seed, whatever ran before
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
        validation_data = (sequences_of(validation), keras.utils.to_categorical(val_targets, len(classes)))
    train_inputs = sequences_of(train)
    one_hot = keras.utils.to_categorical(targets, len(classes))
    history = fit_epochs(
        model,
        gathered_batches(train_inputs, one_hot),
        len(targets),
        epochs=temporal["epochs"],
        seed=training["seed"],
        batch_size=temporal["batch_size"],
        validation_data=validation_data,
        patience=temporal["patience"] if len(validation) else None,
        checkpoint_dir=out["checkpoints"],
        identity=fit_identity(
            {"stage": "temporal", "fold": fold.name, "settings": settings},
            *train_inputs.values(),
            targets,
            *(validation_data[0].values() if validation_data else ()),
            *(validation_data[1:] if validation_data else ()),
        ),
        label=f"fold {fold.name} temporal",
        checkpoint_seconds=CHECKPOINT_SECONDS,
    )
    Path(out["history"]).parent.mkdir(parents=True, exist_ok=True)
    history.to_csv(out["history"], sep="\t", index=False)
    Path(out["model"]).parent.mkdir(parents=True, exist_ok=True)
    model.save(out["model"])
    # A test subject whose every clip preprocessing skipped has nothing to predict (the report lists why).
    probabilities = model.predict(sequences_of(test), verbose=0) if len(test) else np.zeros((0, len(classes)))
    predictions = predictions_table(test, probabilities, classes)
    predictions.to_csv(out["predictions"], sep="\t", index=False)
    write_json(
        out["provenance"],
        {
            "stage": "temporal",
            "fold": fold.name,
            "test_subjects": list(fold.test_subjects),
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
    remove_checkpoints(out["checkpoints"])
    return predictions
