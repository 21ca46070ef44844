"""LOSO training on the tiny synthetic corpus: folds, spatial models, features, temporal model, and the
provenance records (which sample ids reached each fit, normalisation and class weights). The records
are not the proof of no leakage: tests/test_leakage.py proves it by perturbing the test subject."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import CLASSES, REPO, tiny_training_settings

from localmer import inputs, labels, tfsetup, training
from localmer.regions import REGION_NAMES


def test_folds_hold_out_one_subject_and_carve_validation_from_training():
    subjects = [f"d/s{i}" for i in range(6)]
    folds = training.make_folds(subjects, validation_subjects=2, seed=3)
    assert [f.name for f in folds] == subjects
    for fold in folds:
        assert fold.test_subjects == (fold.name,)
        assert fold.name not in fold.train_subjects + fold.validation_subjects
        assert len(fold.validation_subjects) == 2 and len(fold.train_subjects) == 3
        assert set(fold.train_subjects) | set(fold.validation_subjects) | {fold.name} == set(subjects)
    assert folds == training.make_folds(subjects, validation_subjects=2, seed=3)  # reproducible
    with pytest.raises(ValueError, match="leaves no training subject"):
        training.make_folds(subjects[:3], validation_subjects=2)


@pytest.fixture(scope="module")
def one_fold(tiny_fold):
    """Every stage of one fold, for real (1-2 epochs): the session's shared fold."""
    return tiny_fold


def test_bfloat16_spatial_models_export_float32_features(tiny_preprocessed, tmp_path):
    """training.spatial.precision: the model trains and is saved in mixed bfloat16, the process's global
    policy is left as it was, and its exported features are float32."""
    import keras

    cfg = tiny_training_settings(tiny_preprocessed)
    cfg["training"]["spatial"]["precision"] = "mixed_bfloat16"
    samples = training.usable_samples(tiny_preprocessed["samples"], tiny_preprocessed["report"])
    region_labels = labels.region_labels(samples, labels.load_au_regions(REPO / "config" / "au_regions.yaml"))
    fold = training.make_folds(samples.subject)[0]
    paths = {key: str(tmp_path / f"mouth.{key}") for key in ("history", "provenance")}
    paths.update(model=str(tmp_path / "mouth.keras"), checkpoints=str(tmp_path / "checkpoints"))
    training.train_spatial(samples, region_labels, tiny_preprocessed["patch_files"], fold, "mouth", cfg, CLASSES, paths)
    assert keras.config.dtype_policy().name == "float32"
    assert json.loads(Path(paths["provenance"]).read_text())["precision"] == "mixed_bfloat16"
    saved = keras.saving.load_model(paths["model"])
    assert saved.get_layer("fc2048").dtype_policy.name == "mixed_bfloat16"
    assert saved.get_layer("fc2048").kernel.dtype == "float32"  # float32 weights
    features = tmp_path / "features.h5"
    model_files = {"mouth": paths["model"]}
    training.export_features(samples, tiny_preprocessed["patch_files"], fold, model_files, cfg, features, "x")
    with h5py.File(features) as h5:
        exported = h5[f"clips/{samples.sample_id.iloc[0]}/mouth"]
        assert exported.dtype == np.float32 and np.isfinite(exported[()]).all()


def test_bfloat16_support_is_read_from_the_cpu_flags():
    assert tfsetup.cpu_has_bfloat16("flags\t: fpu sse avx512f avx512_bf16 amx_tile")
    assert tfsetup.cpu_has_bfloat16("flags : fpu amx_bf16")
    assert not tfsetup.cpu_has_bfloat16("flags\t: fpu sse avx2 avx512f avx512_vnni")


def test_tensorflow_is_imported_with_the_collector_off_then_frozen_once(tmp_path):
    """configure_tensorflow, importing TensorFlow first in the process, imports it with the garbage
    collector off, turns the collector back on and freezes what the import made. Control: with
    TensorFlow imported before, the collector is left as it is and nothing is frozen. Stand-in packages
    record the collector's state while they are imported."""
    stand_in = (
        "import gc\ncollector_on_at_import = gc.isenabled()\n"
        "class _Anything:\n"
        "    def __getattr__(self, name):\n        return self\n"
        "    def __call__(self, *args, **kwargs):\n        return []\n"
    )
    for name, attributes in (("tensorflow", "config = _Anything()\n"), ("keras", "utils = _Anything()\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(stand_in + attributes)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "src")])}

    def collector(import_first: bool) -> list[str]:
        code = (
            f"import gc\n{'import tensorflow' if import_first else ''}\nfrom localmer import tfsetup\n"
            "tfsetup.configure_tensorflow(1, 0)\nimport tensorflow, keras\n"
            "print(tensorflow.collector_on_at_import, keras.collector_on_at_import, gc.isenabled(), "
            "gc.get_freeze_count() > 0)"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert collector(import_first=False) == ["False", "False", "True", "True"]
    assert collector(import_first=True) == ["True", "True", "True", "False"]


def test_keras_is_imported_without_its_optional_integrations_which_stay_importable():
    """configure_tensorflow imports the real Keras without scikit-learn and matplotlib's pyplot (Keras
    imports them for wrappers and a plot localmer does not use); both import afterwards, and Keras
    trains. Control: a plain Keras import loads both, so the check can fail."""

    def loaded(code: str) -> list[str]:
        code += "\nprint('sklearn' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.split()

    configured = loaded(
        "import sys\nfrom localmer import tfsetup\ntfsetup.configure_tensorflow(1, 0)\nimport keras, numpy\n"
        "model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])\nmodel.compile('sgd', 'mse')\n"
        "model.fit(numpy.ones((4, 2)), numpy.ones(4), verbose=0)\n"
        "import sklearn.svm, matplotlib.pyplot"
    )
    assert configured == ["True", "True"]  # imported after the set-up, on request
    hidden = loaded("import sys\nfrom localmer import tfsetup\ntfsetup.configure_tensorflow(1, 0)")
    assert hidden == ["False", "False"]
    assert loaded("import sys, keras") == ["True", "True"]


def test_no_test_clip_reaches_any_fit_normalisation_or_class_weight(one_fold):
    test_ids = set(one_fold["samples"].loc[one_fold["samples"].subject == one_fold["fold"].name, "sample_id"])
    assert test_ids
    provenance_files = sorted(one_fold["out"].glob("*.provenance"))
    assert len(provenance_files) == len(REGION_NAMES) + 1
    for path in provenance_files:
        record = json.loads(path.read_text())
        assert record["test_subjects"] == [one_fold["fold"].name]
        for key in ("fit_sample_ids", "class_weight_sample_ids", "validation_sample_ids", "normalisation_sample_ids"):
            assert not test_ids & set(record.get(key, [])), (path.name, key)
        assert set(record["fit_sample_ids"]) == set(
            one_fold["samples"].loc[one_fold["samples"].subject.isin(one_fold["fold"].train_subjects), "sample_id"]
        )
    temporal = json.loads((one_fold["out"] / "temporal.provenance").read_text())
    assert set(temporal["predicted_sample_ids"]) == test_ids


def test_features_cover_every_frame_of_every_clip(one_fold):
    """The spatial job's features (train_spatial_regions with a features path): every frame of every clip,
    from the fold's saved models, under the settings' digest; the job's checkpoints are gone."""
    with h5py.File(one_fold["features"]) as h5:
        assert json.loads(h5.attrs["test_subjects"]) == [one_fold["fold"].name]
        assert h5.attrs["config_hash"] == training.config_hash(one_fold["settings"])
        assert json.loads(h5.attrs["model_files"]) == one_fold["models"]
        for sample_id in one_fold["samples"].sample_id:
            for region in REGION_NAMES:
                features = h5[f"clips/{sample_id}/{region}"][()]
                assert features.shape == (6, 256) and (features >= 0).all()
    assert not list((one_fold["out"] / "checkpoints").glob("*/epoch-*"))


def test_predictions_are_the_test_subjects_clips(one_fold):
    predictions = one_fold["predictions"]
    saved = pd.read_csv(one_fold["out"] / "temporal.predictions", sep="\t")
    assert list(saved.columns) == [
        "sample_id",
        "dataset",
        "subject",
        "true",
        "predicted",
        *[f"prob_{c}" for c in CLASSES],
    ]
    assert set(predictions.subject) == {one_fold["fold"].name}
    assert np.allclose(saved[[f"prob_{c}" for c in CLASSES]].sum(axis=1), 1, atol=1e-4)
    assert set(saved.predicted) <= set(CLASSES)


def test_sequences_are_padded_or_resampled_to_n():
    tracks = [np.ones((3, 6, 4)), np.arange(10 * 6 * 4, dtype=float).reshape(10, 6, 4)]
    batch = inputs.batch_sequences(tracks, 5)
    assert batch["sequences"].shape == (2, 5, 6, 4)
    assert batch["lengths"].tolist() == [3, 5]
    assert (batch["sequences"][0, 3:] == 0).all()
    assert batch["sequences"][1, -1, 0, 0] == tracks[1][-1, 0, 0]  # resampling keeps the last frame


def test_temporal_phase_runs_from_onset_through_apex_to_offset():
    phase = inputs.temporal_phase(np.arange(10, 21), onset=10, apex=14, offset=20)
    assert phase[0] == 0 and phase[4] == 1 and phase[-1] == 2
    assert np.all(np.diff(phase) > 0)


def test_apex_window_keeps_frames_near_the_apex_and_at_least_one_per_clip():
    phase = np.array([0, 0.5, 1, 1.5, 2, 0, 0.2, 0.3])  # clip 1 never comes near its apex
    data = inputs.RegionFrames(np.zeros((8, 1, 2, 2)), np.array([0] * 5 + [1] * 3), phase)
    assert training.apex_window(data, None).all()
    assert training.apex_window(data, 0.5).tolist() == [False, True, True, True, False, False, False, True]


def test_onset_differences_are_centred_and_clipped():
    model = {"input": "onset_diff", "diff_range": 8}
    frames = np.array([-20, -4, 0, 4, 20], dtype=np.int16).reshape(5, 1, 1, 1)
    (batch, _), *_ = list(inputs.spatial_batches(frames, np.zeros(5), model, 5))
    assert batch.numpy().ravel().tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
