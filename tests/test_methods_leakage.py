"""Every peer method is leak-free on its folds, proven by perturbation, and its per-clip input cache and
fold job work on inputs the test makes itself.

For each method, one LOSO fold is fitted three times on inputs computed (by the method's own
``clip_input``) from source files this test writes: as made; with the test subject's source data and
labels changed; with a training subject's changed. Everything the method fitted (``Fitted.arrays``:
weights, mean image, feature scaling, class weights) must be bit-identical in the first two and differ in
the third (the control: the comparison can fail, and the fits are deterministic enough to compare).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from localmer import config, tfsetup, training
from localmer.methods import fold as method_fold
from localmer.methods import inputs
from localmer.methods.registry import METHODS, PEERS

CLASSES = ["negative", "positive", "surprise"]
SUBJECTS = ["casme2/s1", "casme2/s2", "samm/s3", "samm/s4"]
FACE = (48, 40)  # (height, width) of the made-up aligned faces and flow fields: small, as fast as can be
FRAMES = 6
# A few epochs: enough for every weight to move, as little time as possible.
FEW_EPOCHS = {"ststnet": {"epochs": 3, "batch_size": 4}, "off_apexnet": {"epochs": 3, "batch_size": 4}}


def samples_table() -> pd.DataFrame:
    rows = [
        {
            "sample_id": f"{subject}/c{k}",
            "dataset": subject.split("/")[0],
            "subject": subject,
            "clip": f"c{k}",
            "label": label,
        }
        for subject in SUBJECTS
        for k, label in enumerate(CLASSES)
    ]
    return pd.DataFrame(rows)


def source_clip(source: str, rng: np.random.Generator, label: int) -> dict[str, np.ndarray]:
    """A clip's datasets in the source stage's layout, with a class-dependent pattern and noise."""
    height, width = FACE
    if source == "flow":
        field = rng.normal(0, 0.3, (height, width, 4)).astype(np.float32)
        field[: height // 2, :, label % 2] += 1.0 + label
        field[..., 2] = np.abs(field[..., 2])
        field[..., 3] = np.hypot(field[..., 0], field[..., 1])
        return {"frame_numbers": np.arange(FRAMES), "onset_apex": field}
    faces = rng.integers(0, 255, (FRAMES, height, width)).astype(np.uint8)
    faces[:, : height // 2] //= 1 + label
    return {"frame_numbers": np.arange(FRAMES), "faces": faces, "landmarks": np.zeros((FRAMES, 68, 2), np.float32)}


def write_source(folder, method, samples: pd.DataFrame, changed: str | None = None) -> dict[str, str]:
    """Per subject a source file (flow or aligned stage) and its method inputs file; ``changed``: the
    subject whose source data are drawn afresh (other values)."""
    source = METHODS[method].source
    files = {}
    for subject in SUBJECTS:
        seed = 1000 + SUBJECTS.index(subject) + (500 if subject == changed else 0)
        rng = np.random.default_rng(seed)
        path = folder / f"{source}-{subject.replace('/', '_')}.h5"
        with h5py.File(path, "w") as h5:
            h5.attrs.update(stage=source, subject=subject)
            for sample in samples[samples.subject == subject].itertuples():
                group = h5.create_group(f"clips/{sample.clip}")
                group.attrs.update(sample_id=sample.sample_id, onset=0, apex=FRAMES // 2, offset=FRAMES - 1)
                for name, value in source_clip(source, rng, CLASSES.index(sample.label)).items():
                    group.create_dataset(name, data=value)
        out = folder / f"{method}-{subject.replace('/', '_')}.h5"
        inputs.compute_subject_inputs(method, settings_of(method)["methods"][method], path, out)
        files[subject] = str(out)
    return files


def settings_of(method: str) -> dict:
    return {
        "method": method,
        "methods": {
            method: config.with_defaults(FEW_EPOCHS.get(method, {}), f"#/properties/methods/properties/{method}")
        },
        "training": {"seed": 7, "validation_subjects": 0},
        "task": {"name": "megc2019"},
        "datasets": [],
    }


def fit_fold(folder, method, samples, files):
    settings = settings_of(method)
    if METHODS[method].deep:
        tfsetup.configure_tensorflow(1, settings["training"]["seed"])
    fold = training.make_folds(SUBJECTS)[0]  # tests casme2/s1
    out = {
        name: str(folder / f"{name}{suffix}")
        for name, suffix in (
            ("model", METHODS[method].model_suffix),
            ("predictions", ".tsv"),
            ("provenance", ".json"),
            ("history", ".tsv"),
        )
    }
    out["checkpoints"] = str(folder / "checkpoints")
    if not METHODS[method].deep:
        del out["history"]
    predictions, fitted = method_fold.train_fold(samples, files, fold, settings, CLASSES, out)
    return {"fold": fold, "predictions": predictions, "arrays": fitted.arrays(), "out": out}


@pytest.fixture(scope="module", params=PEERS)
def runs(request, tmp_path_factory) -> dict:
    method = request.param
    folder = tmp_path_factory.mktemp(method)
    samples = samples_table()
    test_subject, training_subject = SUBJECTS[0], SUBJECTS[2]
    relabel = lambda subject: samples.assign(  # noqa: E731
        label=np.where(samples.subject == subject, CLASSES[0], samples.label)
    )
    results = {}
    for name, subject in (("as made", None), ("test changed", test_subject), ("training changed", training_subject)):
        run_folder = folder / name.replace(" ", "_")
        run_folder.mkdir()
        table = samples if subject is None else relabel(subject)
        results[name] = fit_fold(run_folder, method, table, write_source(run_folder, method, samples, subject))
    return {"method": method, **results}


def identical(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_the_test_subjects_inputs_and_labels_change_nothing_the_method_fitted(runs):
    assert runs["as made"]["arrays"], runs["method"]
    assert identical(runs["as made"]["arrays"], runs["test changed"]["arrays"]), runs["method"]


def test_control_a_training_subjects_inputs_and_labels_change_what_it_fitted(runs):
    changed = runs["training changed"]["arrays"]
    assert not identical(runs["as made"]["arrays"], changed), runs["method"]


def test_the_fold_predicts_every_test_clip_in_the_shared_format(runs):
    made = runs["as made"]
    predictions = made["predictions"]
    assert predictions.sample_id.tolist() == [f"{SUBJECTS[0]}/c{k}" for k in range(3)]
    assert set(predictions.predicted) <= set(CLASSES)
    probabilities = predictions[[f"prob_{c}" for c in CLASSES]].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    written = pd.read_csv(made["out"]["predictions"], sep="\t")
    assert written.columns.tolist() == ["sample_id", "dataset", "subject", "true", "predicted"] + [
        f"prob_{c}" for c in CLASSES
    ]
    provenance = json.loads(Path(made["out"]["provenance"]).read_text())
    assert provenance["test_subjects"] == [SUBJECTS[0]]
    assert not any(s.startswith(SUBJECTS[0] + "/") for s in provenance["fit_sample_ids"])
    assert provenance["predicted_sample_ids"] == predictions.sample_id.tolist()
    assert provenance["fitted"] == sorted(made["arrays"])


def test_the_input_cache_refuses_a_file_of_another_stage_or_method(tmp_path):
    samples = samples_table()
    files = write_source(tmp_path, "bi_woof", samples)
    with pytest.raises(ValueError, match=r"holds 'bi_woof' 'method_inputs' data, expected method 'lbptop_svm'"):
        inputs.load_inputs(files, samples, "lbptop_svm")
    with pytest.raises(ValueError, match=r"no clip 'c9'"):
        inputs.load_inputs(files, samples.assign(clip="c9"), "bi_woof")
    (tmp_path / "lbptop").mkdir()
    write_source(tmp_path / "lbptop", "lbptop_svm", samples)
    aligned = tmp_path / "lbptop" / "aligned-casme2_s1.h5"
    with pytest.raises(ValueError, match=r"a 'aligned' file, but method 'bi_woof' reads 'flow' files"):
        inputs.compute_subject_inputs(
            "bi_woof", settings_of("bi_woof")["methods"]["bi_woof"], aligned, tmp_path / "x.h5"
        )
    with pytest.raises(ValueError, match=r"method 'localmer' has no per-clip inputs"):
        inputs.compute_subject_inputs("localmer", {}, aligned, tmp_path / "y.h5")
    assert not (tmp_path / "x.h5").exists()
