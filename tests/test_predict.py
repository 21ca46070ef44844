"""Model bundles and ``localmer predict``: final models trained on two subjects of the tiny synthetic
corpus (1-2 epochs), bundled, checked and applied to the held-out subject's clip as a frame folder and
as a video; a video with no face, a corrupted bundle and a wrong input give clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from localmer import bundle, config, frames, labels, predict, regions, stages, tfsetup, training
from localmer.cli import main as cli
from localmer.regions import REGION_NAMES

CLASSES = ["negative", "positive", "surprise"]


def write_video(frames: list[np.ndarray], path: Path) -> None:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()


def frame_paths(sample) -> list[Path]:
    return [Path(sample.frame_dir) / name for name in sample.frames.split("|")]


@pytest.fixture(scope="module")
def trained_bundle(tiny_preprocessed, tmp_path_factory) -> dict:
    """Final models of two subjects (the third is held out for prediction), bundled."""
    out = tmp_path_factory.mktemp("final")
    cfg = {
        "datasets": [],
        "task": {"name": "megc2019"},
        "preprocessing": tiny_preprocessed["params"],
        "model": config.with_defaults({}, "#/properties/model"),
        "training": config.with_defaults(
            {"spatial": {"epochs": 1, "batch_size": 16}, "temporal": {"epochs": 2, "batch_size": 4, "steps": 4}},
            "#/properties/training",
        ),
    }
    tfsetup.configure_tensorflow(1, cfg["training"]["seed"])
    usable = training.usable_samples(tiny_preprocessed["samples"], tiny_preprocessed["report"])
    held_out = sorted(usable.subject.unique())[-1]
    samples = usable[usable.subject != held_out].reset_index(drop=True)
    fold = training.final_fold(samples)
    assert fold.name == training.FINAL and not fold.test_subject and not fold.validation_subjects
    region_labels = labels.region_labels(samples, labels.load_au_regions(REPO / "config" / "au_regions.yaml"))
    patch_files = {s: tiny_preprocessed["patch_files"][s] for s in fold.train_subjects}
    models = {}
    for region in REGION_NAMES:
        paths = {key: str(out / f"{region}.{key}") for key in ("history", "provenance")}
        paths.update(model=str(out / f"{region}.keras"), checkpoints=str(out / "checkpoints" / region))
        training.train_spatial(samples, region_labels, patch_files, fold, region, cfg, CLASSES, paths)
        models[region] = paths["model"]
    features = out / "features.h5"
    training.export_features(samples, patch_files, fold, models, cfg, features, "abc123")
    temporal = {key: str(out / f"temporal.{key}") for key in ("history", "provenance", "predictions")}
    temporal.update(
        model=str(out / "temporal.keras"),
        checkpoints=str(out / "checkpoints" / "temporal"),
        normalisation=str(out / "normalisation.npz"),
    )
    predictions = training.train_temporal(samples, features, fold, cfg, CLASSES, temporal)
    assert predictions.empty  # the final fold has no test subject
    description = bundle.write_bundle(
        out / "bundle",
        models,
        temporal["model"],
        temporal["normalisation"],
        stages.stage_settings(cfg, "temporal"),
        regions.load_region_table(cfg["preprocessing"]["regions"]),
        bundle.region_sizes_of(patch_files.values()),
        CLASSES,
        training.region_classes(CLASSES, cfg["model"]["region_labels"]),
        "abc123",
        list(fold.train_subjects),
        "tiny",
    )
    test = usable[usable.subject == held_out].reset_index(drop=True)
    return {"path": out / "bundle", "description": description, "test": test, "held_out": held_out}


def test_bundle_round_trips_and_describes_itself(trained_bundle):
    path = trained_bundle["path"]
    description = json.loads((path / "bundle.json").read_text())
    assert description == trained_bundle["description"]
    assert description["format"] == bundle.FORMAT and description["format_version"] == bundle.FORMAT_VERSION
    assert description["classes"] == CLASSES and description["config_hash"] == "abc123"
    assert trained_bundle["held_out"] not in description["trained_on_subjects"]
    assert set(description["region_table"]) == set(REGION_NAMES) == set(description["region_sizes"])
    assert "regions" not in description["preprocessing"]  # a path of the training machine; the table is inline
    assert set(description["files"]) == {f"spatial/{r}.keras" for r in REGION_NAMES} | {
        "temporal.keras",
        "normalisation.npz",
    }
    loaded = bundle.read_bundle(path)
    assert loaded.mean.shape == loaded.std.shape == (len(REGION_NAMES), 256)
    assert set(loaded.spatial) == set(REGION_NAMES) and loaded.classes == CLASSES


def test_corrupted_or_incompatible_bundle_is_refused_before_loading(trained_bundle, tmp_path, monkeypatch):
    import keras

    copy = tmp_path / "bundle"
    shutil.copytree(trained_bundle["path"], copy)
    target = copy / "spatial" / "mouth.keras"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the bundle was checked")

    monkeypatch.setattr(keras.saving, "load_model", no_loading)
    with pytest.raises(bundle.BundleError, match=r"mouth\.keras.*corrupted: sha256"):
        bundle.read_bundle(copy)
    description = json.loads((copy / "bundle.json").read_text())
    (copy / "bundle.json").write_text(json.dumps({**description, "format_version": 99}))
    with pytest.raises(bundle.BundleError, match="format version 99"):
        bundle.read_bundle(copy)
    (copy / "bundle.json").write_text("{not json")
    with pytest.raises(bundle.BundleError, match="corrupted"):
        bundle.read_bundle(copy)
    with pytest.raises(bundle.BundleError, match="not a model bundle"):
        bundle.read_bundle(tmp_path / "nowhere")


@pytest.fixture(scope="module")
def loaded(trained_bundle):
    return bundle.read_bundle(trained_bundle["path"])


def check_table(table: pd.DataFrame, rows: int | None = None) -> None:
    probabilities = table[[f"prob_{c}" for c in CLASSES]].to_numpy()
    assert list(table.columns) == ["input", "window", "onset", "offset", "frames", "predicted"] + [
        f"prob_{c}" for c in CLASSES
    ]
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert (table.predicted == [CLASSES[i] for i in probabilities.argmax(axis=1)]).all()
    if rows is not None:
        assert len(table) == rows


def test_predict_a_held_out_clip_as_a_folder_and_as_a_video(trained_bundle, loaded, tmp_path):
    sample = trained_bundle["test"].iloc[0]
    folder = tmp_path / "clip"
    folder.mkdir()
    for path in frame_paths(sample):
        shutil.copy(path, folder / path.name)
    table = predict.predict(loaded, [str(folder)], int(sample.onset), int(sample.offset), qc_dir=tmp_path / "qc")
    check_table(table, 1)
    assert table.frames[0] == trained_bundle["description"]["preprocessing"]["n_frames"]
    assert len(list((tmp_path / "qc").glob("*.png"))) == 1
    # The same clip as a video (0-based frame numbers), the whole clip, through the command line.
    video = tmp_path / "clip.avi"
    write_video([frames.read_image(p) for p in frame_paths(sample)], video)
    out = tmp_path / "predictions.json"
    assert cli(["predict", str(trained_bundle["path"]), str(video), "--out", str(out)]) == 0
    check_table(pd.DataFrame(json.loads(out.read_text())), 1)
    # A manifest CSV naming both, relative to its folder.
    manifest = tmp_path / "clips.csv"
    pd.DataFrame(
        {"path": ["clip", "clip.avi"], "onset": [int(sample.onset), ""], "offset": [int(sample.offset), ""]}
    ).to_csv(manifest, index=False)
    assert cli(["predict", str(trained_bundle["path"]), str(manifest), "--out", str(tmp_path / "p.csv")]) == 0
    check_table(pd.read_csv(tmp_path / "p.csv"), 2)


def test_window_over_a_long_video_gives_one_row_per_window(trained_bundle, loaded, tmp_path):
    images = [frames.read_image(p) for p in frame_paths(trained_bundle["test"].iloc[0])]
    video = tmp_path / "long.avi"
    write_video(images + images[::-1] + images, video)
    table = predict.predict(loaded, [str(video)], window=6, stride=4)
    count = len(images) * 3
    assert len(table) == len(range(0, count - 6 + 1, 4)) >= 2
    check_table(table)
    assert list(table.onset) == list(range(0, count - 6 + 1, 4))


def test_bad_inputs_give_clear_errors(trained_bundle, loaded, tmp_path, capsys):
    write_video([np.full((180, 160), 90, np.uint8)] * 6, tmp_path / "empty.avi")
    with pytest.raises(predict.PredictError, match=r"no face on frames 0\.\.\d"):
        predict.predict(loaded, [str(tmp_path / "empty.avi")])
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    capsys.readouterr()
    assert cli(["predict", str(trained_bundle["path"]), str(tmp_path / "broken.mp4")]) == 2
    assert "cannot be read by OpenCV" in capsys.readouterr().err
    write_video([np.full((20, 24), 90, np.uint8)] * 4, tmp_path / "tiny.avi")
    with pytest.raises(predict.PredictError, match="too small"):
        predict.predict(loaded, [str(tmp_path / "tiny.avi")])
    with pytest.raises(predict.PredictError, match="onset 5 and offset 2"):
        predict.predict(loaded, [str(tmp_path / "empty.avi")], onset=5, offset=2)
    capsys.readouterr()
    assert cli(["predict", str(trained_bundle["path"]), str(tmp_path / "empty.avi"), "--onset", "1"]) == 2
    assert "--onset and --offset go together" in capsys.readouterr().err
    assert cli(["predict", str(tmp_path), str(tmp_path / "empty.avi")]) == 2
    assert "is not a model bundle" in capsys.readouterr().err
    (tmp_path / "m.csv").write_text("file\nx\n")
    with pytest.raises(predict.PredictError, match="needs a column 'path'"):
        predict.predict(loaded, [str(tmp_path / "m.csv")])
