"""No test clip reaches a fit, a normalisation or a class weight: proven by perturbation.

The provenance files (tests/test_training.py) list the clips each fit was given, copied from the very
list the code hands on, so a statistic computed over every sample would still pass them. Here the test
subject's inputs (its patches, its features) and labels are changed and the fold's fits rerun: the
spatial model's weights and class weights, and the temporal model's weights, normalisation statistics and
class weights must come out bit-identical. As a control, the same change to a training subject changes
every one of them (so the comparison can fail, and the runs are deterministic enough to compare).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import CLASSES, REPO, tiny_training_settings

from localmer import labels, tfsetup, training

REGION = "mouth"  # one spatial model is enough: every region is trained by the same function


def relabelled(samples, subject: str):
    """Every clip of ``subject`` labelled negative: its class counts change (one clip per class before)."""
    changed = samples.copy()
    changed.loc[changed.subject == subject, "label"] = CLASSES[0]
    return changed


def with_inverted_patches(patch_files: dict[str, str], subject: str, folder: Path) -> dict[str, str]:
    """The patch files with a copy of ``subject``'s in which every patch pixel is inverted."""
    copy = folder / "inverted.h5"
    shutil.copy(patch_files[subject], copy)
    with h5py.File(copy, "r+") as h5:
        for clip in h5["clips"].values():
            for region in clip["patches"].values():
                region[...] = 255 - region[()]
    return {**patch_files, subject: str(copy)}


def with_changed_features(features: Path, sample_ids, folder: Path) -> Path:
    """A copy of a features file in which the given clips' features are scaled and shifted."""
    copy = folder / "features.h5"
    shutil.copy(features, copy)
    with h5py.File(copy, "r+") as h5:
        for sample_id in sample_ids:
            data = h5[f"clips/{sample_id}/{REGION}"]
            data[...] = 3 * data[()] + 1
    return copy


def saved_model(path: str) -> dict:
    import keras

    model = keras.saving.load_model(path)
    return {"weights": model.get_weights(), "alpha": model.loss.alpha}


def fit_spatial(samples, patch_files, fold, cfg, folder: Path) -> dict:
    tfsetup.configure_tensorflow(1, cfg["training"]["seed"])  # as every training job starts
    region_labels = labels.region_labels(samples, labels.load_au_regions(REPO / "config" / "au_regions.yaml"))
    out = {key: str(folder / f"{REGION}.{key}") for key in ("history", "provenance")}
    out.update(model=str(folder / f"{REGION}.keras"), checkpoints=str(folder / "checkpoints"))
    training.train_spatial(samples, region_labels, patch_files, fold, REGION, cfg, CLASSES, out)
    return saved_model(out["model"])


def fit_temporal(samples, features, fold, cfg, folder: Path) -> dict:
    tfsetup.configure_tensorflow(1, cfg["training"]["seed"])
    out = {key: str(folder / f"temporal.{key}") for key in ("history", "provenance", "predictions")}
    out.update(
        model=str(folder / "temporal.keras"),
        checkpoints=str(folder / "checkpoints"),
        normalisation=str(folder / "normalisation.npz"),
    )
    predictions = training.train_temporal(samples, features, fold, cfg, CLASSES, out)
    with np.load(out["normalisation"]) as statistics:
        return {
            **saved_model(out["model"]),
            "mean": statistics["mean"],
            "std": statistics["std"],
            "predictions": predictions,
        }


def same_arrays(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True)
    )


@pytest.fixture(scope="module")
def fold(tiny_preprocessed, tmp_path_factory) -> dict:
    samples = training.usable_samples(tiny_preprocessed["samples"], tiny_preprocessed["report"])
    fold = training.make_folds(samples.subject)[0]
    return {
        "samples": samples,
        "fold": fold,
        "cfg": tiny_training_settings(tiny_preprocessed),
        "changed": {"test": fold.name, "training": fold.train_subjects[0]},
    }


@pytest.fixture(scope="module")
def spatial_runs(fold, tiny_preprocessed, tmp_path_factory) -> dict:
    """The fold's mouth model as it is, with the test subject's patches and labels changed, and with a
    training subject's changed."""
    runs = {}
    patch_files = tiny_preprocessed["patch_files"]
    runs["as is"] = fit_spatial(
        fold["samples"], patch_files, fold["fold"], fold["cfg"], tmp_path_factory.mktemp("as_is")
    )
    for role, subject in fold["changed"].items():
        folder = tmp_path_factory.mktemp(f"spatial_{role}")
        changed = with_inverted_patches(patch_files, subject, folder)
        runs[role] = fit_spatial(relabelled(fold["samples"], subject), changed, fold["fold"], fold["cfg"], folder)
    return runs


@pytest.fixture(scope="module")
def temporal_runs(fold, tmp_path_factory) -> dict:
    """The fold's temporal model on a features file as it is, with the test subject's features and labels
    changed, and with a training subject's changed. The features are random: only where they come from
    matters here, not what a spatial model would make of the patches. One region's track, not six: the
    model's region loop is the same code for any number, and tracing six LSTMs makes every fit many
    times slower."""
    samples = fold["samples"]
    features = tmp_path_factory.mktemp("features") / "features.h5"
    rng = np.random.default_rng(0)
    with h5py.File(features, "w") as h5:
        for sample_id in samples.sample_id:
            h5.create_dataset(f"clips/{sample_id}/{REGION}", data=rng.random((6, 256), dtype=np.float32))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "REGION_NAMES", (REGION,))
        as_is = tmp_path_factory.mktemp("as_is")
        runs = {"as is": fit_temporal(samples, features, fold["fold"], fold["cfg"], as_is)}
        for role, subject in fold["changed"].items():
            folder = tmp_path_factory.mktemp(f"temporal_{role}")
            changed = with_changed_features(features, samples.sample_id[samples.subject == subject], folder)
            runs[role] = fit_temporal(relabelled(samples, subject), changed, fold["fold"], fold["cfg"], folder)
    return runs


def test_the_test_subjects_patches_and_labels_change_no_spatial_weight_or_class_weight(spatial_runs):
    as_is, test_changed = spatial_runs["as is"], spatial_runs["test"]
    assert same_arrays(test_changed["weights"], as_is["weights"])
    assert test_changed["alpha"] == as_is["alpha"]


def test_control_a_training_subjects_patches_and_labels_change_the_spatial_model(spatial_runs):
    as_is, training_changed = spatial_runs["as is"], spatial_runs["training"]
    assert not same_arrays(training_changed["weights"], as_is["weights"])
    assert training_changed["alpha"] != as_is["alpha"]


def test_the_test_subjects_features_and_labels_change_no_temporal_weight_statistic_or_class_weight(temporal_runs):
    as_is, test_changed = temporal_runs["as is"], temporal_runs["test"]
    assert same_arrays(test_changed["weights"], as_is["weights"])
    assert same_arrays([test_changed["mean"], test_changed["std"]], [as_is["mean"], as_is["std"]])
    assert test_changed["alpha"] == as_is["alpha"]
    # The change did reach the run: the test subject's clips are predicted from the changed features.
    columns = [f"prob_{c}" for c in CLASSES]
    assert not np.array_equal(test_changed["predictions"][columns], as_is["predictions"][columns])
    assert set(test_changed["predictions"].true) == {CLASSES[0]}


def test_control_a_training_subjects_features_and_labels_change_the_temporal_model(temporal_runs):
    as_is, training_changed = temporal_runs["as is"], temporal_runs["training"]
    assert not same_arrays(training_changed["weights"], as_is["weights"])
    assert not np.array_equal(training_changed["mean"], as_is["mean"])
    assert not np.array_equal(training_changed["std"], as_is["std"])
    assert training_changed["alpha"] != as_is["alpha"]
