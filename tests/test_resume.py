"""Exact resume and determinism of training (``localmer.training.fit_epochs``): a job interrupted by
SIGTERM (SLURM at its walltime: the process dies at once) or SIGINT (Ctrl-C: KeyboardInterrupt inside
fit) in the middle of an epoch and rerun ends with the weights, history, stop epoch and predictions of
the uninterrupted job, bit for bit on a CPU."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import CLASSES, REPO

from localmer import config, inputs, labels, tfsetup, training
from localmer.regions import REGION_NAMES

SEED = 5


def settings(tiny_preprocessed, seed: int = SEED) -> dict:
    """One validation subject per fold, and early stopping with a patience that the runs below exceed."""
    spatial = {"epochs": 12, "batch_size": 8, "learning_rate": 0.01, "patience": 2}
    temporal = {"epochs": 10, "batch_size": 1, "learning_rate": 0.01, "patience": 2, "steps": 4}
    return {
        "datasets": [],
        "task": {"name": "megc2019"},
        "preprocessing": tiny_preprocessed["params"],
        "model": config.with_defaults({}, "#/properties/model"),
        "training": config.with_defaults(
            {"seed": seed, "validation_subjects": 1, "spatial": spatial, "temporal": temporal},
            "#/properties/training",
        ),
    }


def outputs(folder: Path) -> dict:
    """The paths of one job's spatial (mouth) and temporal outputs under ``folder``."""
    spatial = {key: str(folder / f"mouth.{key}") for key in ("history", "provenance")}
    spatial.update(model=str(folder / "mouth.keras"), checkpoints=str(folder / "checkpoints" / "mouth"))
    temporal = {key: str(folder / f"temporal.{key}") for key in ("history", "provenance", "predictions")}
    temporal.update(model=str(folder / "temporal.keras"), checkpoints=str(folder / "checkpoints" / "temporal"))
    return {"spatial": spatial, "temporal": temporal}


def weights_of(path: str) -> list[np.ndarray]:
    import keras

    from localmer import models  # noqa: F401 (registers the focal loss that the saved models name)

    return keras.saving.load_model(path).get_weights()


def same_weights(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def job_inputs(tiny_preprocessed, tmp_path_factory) -> dict:
    """The usable samples and, for the temporal stage, a features file of random tracks (the temporal model
    depends on the file only)."""
    folder = tmp_path_factory.mktemp("resume_inputs")
    samples = training.usable_samples(tiny_preprocessed["samples"], tiny_preprocessed["report"])
    samples.to_csv(folder / "samples.tsv", sep="\t", index=False)
    rng = np.random.default_rng(0)
    with h5py.File(folder / "features.h5", "w") as h5:
        for sample_id in samples.sample_id:
            for region in REGION_NAMES:
                h5[f"clips/{sample_id}/{region}"] = rng.random((6, 256), dtype=np.float32)
    return {
        "samples": samples,
        "samples_path": str(folder / "samples.tsv"),
        "features": str(folder / "features.h5"),
        "region_labels": labels.region_labels(samples, labels.load_au_regions(REPO / "config" / "au_regions.yaml")),
    }


# ------------------------------------------------------------------------------ interrupted and resumed


RESUMABLE_JOB = """
import json, logging, signal, sys, time
from pathlib import Path
import keras
import numpy as np
from localmer import datasets, labels, tfsetup, training

# Python's own SIGINT handler, even where the test runs in the background of a non-interactive shell
# (which starts it, and so this job, with SIGINT ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
job = json.loads(Path(sys.argv[1]).read_text())
stage = None
fit = keras.Model.fit


class PauseInEpoch(keras.callbacks.Callback):
    # Holds the job after the first batch of the chosen epoch, for the test to signal it there.
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if job["pause"] == [stage, self.epoch] and batch == 0:
            Path(job["paused"]).touch()
            time.sleep(300)


class RecordWeights(keras.callbacks.Callback):
    # Every epoch's weights, before early stopping restores the best.
    def on_epoch_end(self, epoch, logs=None):
        np.savez(f"{job['weights']}/{stage}-{epoch}.npz", *self.model.get_weights())


def fit_recording_weights(model, *args, callbacks=None, **kwargs):
    return fit(model, *args, callbacks=[*(callbacks or []), PauseInEpoch(), RecordWeights()], **kwargs)


keras.Model.fit = fit_recording_weights
training.CHECKPOINT_SECONDS = 0  # a checkpoint after every epoch: the kills below find the last one
logging.basicConfig(level=logging.INFO, format="%(relativeCreated)d %(message)s")
settings = job["settings"]
tfsetup.configure_tensorflow(1, settings["training"]["seed"])
samples = datasets.read_table(job["samples"])
fold = training.fold_by_name(samples, job["fold"], settings)
out = job["out"]
if not Path(out["spatial"]["model"]).exists():  # a rerun after the spatial stage ended goes on with the next
    stage = "spatial"
    region_labels = labels.region_labels(samples, labels.load_au_regions(job["au_regions"]))
    training.train_spatial(
        samples, region_labels, job["patch_files"], fold, "mouth", settings, job["classes"], out["spatial"]
    )
stage = "temporal"
training.train_temporal(samples, job["features"], fold, settings, job["classes"], out["temporal"])
"""


def test_a_job_killed_by_sigterm_or_sigint_mid_epoch_resumes_exactly(tiny_preprocessed, job_inputs, tmp_path):
    """One job trains a spatial model then a temporal one, both with a validation subject and early
    stopping. Uninterrupted, against: SIGTERM in the spatial model's third epoch, rerun, SIGINT in the
    temporal model's third epoch, rerun. Same weights, histories (every epoch), stop epochs and
    predictions; and the models kept are the best epochs' weights."""
    cfg = settings(tiny_preprocessed)
    fold = training.make_folds(job_inputs["samples"].subject, 1, SEED)[0].name

    def run(name: str, pause: list | None, signal_number: int | None = None) -> subprocess.CompletedProcess:
        folder = tmp_path / name
        (folder / "weights").mkdir(parents=True, exist_ok=True)
        job = {
            "samples": job_inputs["samples_path"],
            "features": job_inputs["features"],
            "au_regions": str(REPO / "config" / "au_regions.yaml"),
            "patch_files": tiny_preprocessed["patch_files"],
            "classes": CLASSES,
            "settings": cfg,
            "fold": fold,
            "out": outputs(folder),
            "pause": pause,
            "paused": str(folder / "paused"),
            "weights": str(folder / "weights"),
        }
        (folder / "job.json").write_text(json.dumps(job))
        command = [sys.executable, "-c", RESUMABLE_JOB, str(folder / "job.json")]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if pause:
            while not (folder / "paused").exists():  # not a timing assertion: the job's own progress
                assert process.poll() is None, process.communicate()[1][-3000:]
                time.sleep(0.2)
            (folder / "paused").unlink()
            process.send_signal(signal_number)
        stdout, stderr = process.communicate(timeout=600)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    reference, resumed = outputs(tmp_path / "reference"), outputs(tmp_path / "resumed")
    finished = run("reference", None)
    assert finished.returncode == 0, finished.stderr[-3000:]

    killed = run("resumed", ["spatial", 2], signal.SIGTERM)
    assert killed.returncode == -signal.SIGTERM
    assert [p.name for p in Path(resumed["spatial"]["checkpoints"]).iterdir()] == ["epoch-2"]
    assert not Path(resumed["spatial"]["model"]).exists() and not Path(resumed["spatial"]["history"]).exists()

    interrupted = run("resumed", ["temporal", 2], signal.SIGINT)
    assert interrupted.returncode != 0 and "KeyboardInterrupt" in interrupted.stderr
    assert "resuming after epoch 2" in interrupted.stderr
    assert [p.name for p in Path(resumed["temporal"]["checkpoints"]).iterdir()] == ["epoch-2"]
    assert Path(resumed["spatial"]["model"]).exists() and not Path(resumed["spatial"]["checkpoints"]).exists()

    rerun = run("resumed", None)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming after epoch 2" in rerun.stderr
    for stage in ("spatial", "temporal"):
        history = pd.read_csv(reference[stage]["history"], sep="\t")
        epochs = cfg["training"][stage]["epochs"]
        assert history.epoch.tolist() == list(range(len(history))) and len(history) < epochs, (stage, history)
        assert Path(resumed[stage]["history"]).read_text() == Path(reference[stage]["history"]).read_text()
        kept = weights_of(reference[stage]["model"])
        assert same_weights(weights_of(resumed[stage]["model"]), kept)
        # Early stopping kept the best epoch's weights, not the last epoch's.
        with np.load(tmp_path / "reference" / "weights" / f"{stage}-{history.val_loss.idxmin()}.npz") as best:
            assert same_weights([best[f"arr_{i}"] for i in range(len(best.files))], kept)
        with np.load(tmp_path / "reference" / "weights" / f"{stage}-{len(history) - 1}.npz") as last:
            assert not same_weights([last[f"arr_{i}"] for i in range(len(last.files))], kept)
        assert not Path(resumed[stage]["checkpoints"]).exists()
    predictions = Path(resumed["temporal"]["predictions"]).read_text()
    assert predictions == Path(reference["temporal"]["predictions"]).read_text() and len(predictions.splitlines()) > 1


# ------------------------------------------------------------------------------ determinism, in process


def test_training_repeats_exactly_with_its_seed_and_over_a_broken_checkpoint(
    tiny_preprocessed, job_inputs, tmp_path, monkeypatch, caplog
):
    """The same seed twice: identical spatial weights and history, also when the second run finds a
    checkpoint it cannot read (a truncated weights file; a folder left half written by a kill during a
    save), which it reports and trains over from epoch 1. Controls: another seed, and the same seed with
    epoch 1's randomness (order, dropout) reused for every epoch, differ."""
    tfsetup.configure_tensorflow(1, SEED)
    samples = job_inputs["samples"]
    fold = training.make_folds(samples.subject)[0]  # no validation subject: every epoch runs

    def train(name: str, seed: int = SEED) -> tuple[list[np.ndarray], str]:
        cfg = settings(tiny_preprocessed, seed)
        cfg["training"]["spatial"]["epochs"] = 2
        out = outputs(tmp_path / name)["spatial"]
        training.train_spatial(
            samples, job_inputs["region_labels"], tiny_preprocessed["patch_files"], fold, "mouth", cfg, CLASSES, out
        )
        return weights_of(out["model"]), Path(out["history"]).read_text()

    with monkeypatch.context() as keep:  # the first run keeps its last checkpoint, to be broken below
        keep.setattr(training, "remove_checkpoints", lambda folder: None)
        first, first_history = train("first")
    broken = tmp_path / "second" / "checkpoints" / "mouth"
    shutil.copytree(tmp_path / "first" / "checkpoints" / "mouth" / "epoch-2", broken / "epoch-1")
    weights_file = broken / "epoch-1" / "model.weights.h5"
    weights_file.write_bytes(weights_file.read_bytes()[:1000])
    (broken / "epoch-2.partial").mkdir()
    with caplog.at_level(logging.WARNING, logger="localmer.training"):
        second, second_history = train("second")
    assert "epoch-1 cannot be resumed" in caplog.text and "training starts again at epoch 1" in caplog.text
    assert same_weights(second, first) and second_history == first_history
    assert len(pd.read_csv(tmp_path / "second" / "mouth.history", sep="\t")) == 2

    other_seed, _ = train("other_seed", SEED + 1)
    assert not same_weights(other_seed, first)
    epoch_randomness = training.epoch_randomness
    monkeypatch.setattr(training, "epoch_randomness", lambda seed, epoch: epoch_randomness(seed, 0))
    repeated_randomness, _ = train("repeated_randomness")
    assert not same_weights(repeated_randomness, first)


def test_a_folds_regions_in_one_job_train_each_regions_own_model_and_resume_region_by_region(
    tiny_preprocessed, job_inputs, tmp_path, monkeypatch, caplog
):
    """Rule train_spatial trains a fold's regions in one process (training.train_spatial_regions): each
    region's model is the one it trains alone. A job interrupted in its second region, whose outputs the
    workflow then removes, resumes the first at its last checkpoint (not from epoch 1) and ends with the
    uninterrupted weights; its checkpoints go once every region is written. Control: without the kept
    checkpoint (the first region's folder removed), the first region trains again from epoch 1. A job
    interrupted in its feature export resumes every region at its last epoch, then exports the features
    that its saved models give."""
    tfsetup.configure_tensorflow(1, SEED)
    samples = job_inputs["samples"]
    fold = training.make_folds(samples.subject)[0]
    cfg = settings(tiny_preprocessed)
    cfg["training"]["spatial"]["epochs"] = 2
    first, second = REGION_NAMES[0], "mouth"
    fit = (samples, job_inputs["region_labels"], tiny_preprocessed["patch_files"], fold)

    def outs(folder: Path) -> dict:
        return {
            region: {
                "model": str(folder / f"{region}.keras"),
                "history": str(folder / f"{region}.history"),
                "provenance": str(folder / f"{region}.provenance"),
                "checkpoints": str(folder / "checkpoints" / region),
            }
            for region in (first, second)
        }

    alone = outs(tmp_path / "alone")
    for region in (second, first):  # each on its own, the other order
        training.train_spatial(*fit, region, cfg, CLASSES, alone[region])

    job = outs(tmp_path / "job")
    train_spatial = training.train_spatial

    def interrupted_in_the_second_region(*args, **kwargs):
        if args[4] == second:
            raise KeyboardInterrupt
        return train_spatial(*args, **kwargs)

    with monkeypatch.context() as interrupt:
        interrupt.setattr(training, "train_spatial", interrupted_in_the_second_region)
        with pytest.raises(KeyboardInterrupt):
            training.train_spatial_regions(*fit, cfg, CLASSES, job)
    for key in ("model", "history", "provenance"):  # what Snakemake does to an interrupted job's outputs
        Path(job[first][key]).unlink()
    assert Path(job[first]["checkpoints"], "epoch-2").is_dir()
    with caplog.at_level(logging.INFO, logger="localmer.training"):
        training.train_spatial_regions(*fit, cfg, CLASSES, job)
    assert f"fold {fold.name} spatial {first}: resuming after epoch 2" in caplog.text
    for region in (first, second):
        assert same_weights(weights_of(job[region]["model"]), weights_of(alone[region]["model"])), region
        assert Path(job[region]["history"]).read_text() == Path(alone[region]["history"]).read_text()
        assert not Path(job[region]["checkpoints"]).exists()

    control = outs(tmp_path / "control")
    with monkeypatch.context() as interrupt:
        interrupt.setattr(training, "train_spatial", interrupted_in_the_second_region)
        with pytest.raises(KeyboardInterrupt):
            training.train_spatial_regions(*fit, cfg, CLASSES, control)
    shutil.rmtree(control[first]["checkpoints"])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="localmer.training"):
        training.train_spatial_regions(*fit, cfg, CLASSES, control)
    assert f"fold {fold.name} spatial {first}: resuming" not in caplog.text

    # Interrupted in the feature export, after both regions: the rerun resumes both at their last epoch.
    exported = outs(tmp_path / "exported")
    features = tmp_path / "exported" / "features.h5"

    def interrupted_export(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as interrupt:
        interrupt.setattr(training, "write_features", interrupted_export)
        with pytest.raises(KeyboardInterrupt):
            training.train_spatial_regions(*fit, cfg, CLASSES, exported, features)
    assert all(Path(exported[region]["checkpoints"], "epoch-2").is_dir() for region in (first, second))
    assert not features.exists()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="localmer.training"):
        training.train_spatial_regions(*fit, cfg, CLASSES, exported, features)
    for region in (first, second):
        assert f"fold {fold.name} spatial {region}: resuming after epoch 2" in caplog.text
        assert same_weights(weights_of(exported[region]["model"]), weights_of(alone[region]["model"])), region
        assert not Path(exported[region]["checkpoints"]).exists()
    with h5py.File(features) as h5:
        assert json.loads(h5.attrs["model_files"]) == {region: exported[region]["model"] for region in (first, second)}
    # The job's features are those of its models as saved; control: the first region's model with its
    # feature layer's weights scaled by 1.01 gives other features of that region.
    import keras

    model_files = {region: exported[region]["model"] for region in (first, second)}
    perturbed = keras.saving.load_model(model_files[first])
    layer = perturbed.get_layer("feature")
    layer.set_weights([weights * 1.01 for weights in layer.get_weights()])
    perturbed.save(tmp_path / "perturbed.keras")
    for files, name in (
        (model_files, "saved.h5"),
        ({**model_files, first: str(tmp_path / "perturbed.keras")}, "other.h5"),
    ):
        training.export_features(samples, tiny_preprocessed["patch_files"], fold, files, cfg, tmp_path / name, "x")
    with (
        h5py.File(features) as job_h5,
        h5py.File(tmp_path / "saved.h5") as saved,
        h5py.File(tmp_path / "other.h5") as other,
    ):
        for sample_id in samples.sample_id:
            for region in (first, second):
                key = f"clips/{sample_id}/{region}"
                assert np.array_equal(job_h5[key][()], saved[key][()]), key
                assert np.array_equal(job_h5[key][()], other[key][()]) == (region == second), key


def test_each_epoch_has_its_own_order_from_the_seed():
    """The order of an epoch is a permutation fixed by (seed, epoch), and its batches follow it."""
    orders = [training.epoch_randomness(SEED, epoch).permutation(10) for epoch in (0, 1, 0)]
    assert sorted(orders[0]) == list(range(10)) and not np.array_equal(orders[0], orders[1])
    assert np.array_equal(orders[0], orders[2])
    frames = np.arange(10, dtype=np.int16).reshape(10, 1, 1, 1)
    model = {"input": "onset_diff", "diff_range": 10}
    batches = training.epoch_batches(np.stack(orders[:2]), 4, inputs.spatial_batch_of(frames, np.arange(10), model))
    batched = [(batch.numpy().ravel() * 10).round().astype(int) for batch, _ in batches]
    # One pipeline for two epochs: each epoch's order, in batches of 4, none across the epochs' boundary.
    assert np.concatenate(batched).tolist() == [*orders[0], *orders[1]]
    assert [len(batch) for batch in batched] == [4, 4, 2, 4, 4, 2]
    assert [target.numpy().tolist() for _, target in batches][2] == orders[0][8:].tolist()


def test_checkpoints_follow_their_interval_and_change_no_result(tmp_path, monkeypatch):
    """fit_epochs saves after an epoch once checkpoint_seconds have passed since the last save (or the
    start), and after the last epoch, on a clock that ticks 10 s a call. Whatever the interval, the
    weights and history are the same; control: another seed's differ."""
    import keras

    tfsetup.configure_tensorflow(1, SEED)
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 3), dtype=np.float32), keras.utils.to_categorical(rng.integers(0, 2, 40), 2)
    saved = []
    save = training._save_checkpoint

    def recording_save(folder, epoch, *state):
        saved.append(epoch)
        save(folder, epoch, *state)

    monkeypatch.setattr(training, "_save_checkpoint", recording_save)
    ticks = iter(range(0, 10_000, 10))
    monkeypatch.setattr(training.time, "monotonic", lambda: float(next(ticks)))

    def fit(name: str, seconds: float, seed: int = SEED) -> tuple[list[int], list[np.ndarray], pd.DataFrame]:
        saved.clear()
        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dropout(0.5), keras.layers.Dense(2)]
        )
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
        history = training.fit_epochs(
            model,
            training.gathered_batches(x, y),
            len(x),
            epochs=4,
            seed=seed,
            batch_size=8,
            validation_data=None,
            patience=None,
            checkpoint_dir=tmp_path / name,
            identity="i",
            label=name,
            checkpoint_seconds=seconds,
        )
        return list(saved), model.get_weights(), history

    every, every_weights, every_history = fit("every", 0)
    interval, interval_weights, interval_history = fit("interval", 15)
    last, last_weights, last_history = fit("last", 1000)
    assert every == [1, 2, 3, 4] and interval == [2, 4] and last == [4]
    assert same_weights(interval_weights, every_weights) and same_weights(last_weights, every_weights)
    assert interval_history.equals(every_history) and last_history.equals(every_history)
    _, other_weights, _ = fit("other_seed", 0, SEED + 1)
    assert not same_weights(other_weights, every_weights)
