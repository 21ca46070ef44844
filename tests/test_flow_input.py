"""``model.input: flow``: the flow frames' scaling, their reading from the flow-patches files, and a spatial
model of 3 channels trained and exported on them. The flow-patches files here are written by the test
(``write_flow_patches``) in the flow stage's format, with known values, from the tiny corpus's patches
files; that the workflow's flow stage writes that format is the flow stage's tests' business."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import CLASSES, REPO, tiny_training_settings

from localmer import inputs, labels, training
from localmer.regions import REGION_NAMES


def scaled(frames: np.ndarray, model: dict) -> np.ndarray:
    (batch, _), *_ = list(inputs.spatial_batches(frames, np.zeros(len(frames)), model, len(frames)))
    return batch.numpy()


def test_flow_frames_are_scaled_as_documented():
    model = {"input": "flow", "flow_range": 2.0, "strain_range": 0.5}
    u = np.array([-5, -2, -1, 0, 1, 2, 5], dtype=np.float32)
    strain = np.array([0, 0.1, 0.25, 0.5, 0.75, 2, 0], dtype=np.float32)
    frames = np.stack([u, -u, strain], axis=-1).reshape(7, 1, 1, 1, 3)
    batch = scaled(frames, model)
    assert batch.shape == (7, 1, 1, 1, 3) and batch.dtype == np.float32  # no channel axis added
    assert batch[..., 0].ravel().tolist() == [-1, -1, -0.5, 0, 0.5, 1, 1]  # u / flow_range, clipped
    assert batch[..., 1].ravel().tolist() == [1, 1, 0.5, 0, -0.5, -1, -1]  # v likewise, its sign kept
    assert batch[..., 2].ravel().tolist() == pytest.approx([0, 0.2, 0.5, 1, 1, 1, 0])  # strain / strain_range
    assert not scaled(np.zeros((2, 1, 2, 2, 3), np.float32), model).any()  # no motion stays 0
    # Control: the scale follows the settings (a wider range halves the values).
    wider = scaled(frames, {**model, "flow_range": 4.0, "strain_range": 1.0})
    assert wider[2, ..., 0].item() == -0.25 and wider[2, ..., 2].item() == 0.25
    # The one-channel inputs still get their channel axis.
    grey = np.zeros((2, 1, 2, 2), np.uint8)
    assert scaled(grey, {"input": "raw"}).shape == (2, 1, 2, 2, 1)


def flow_value(frame: int, region: int) -> np.ndarray:
    """The (u, v, strain) a test flow-patches file holds at every pixel of a frame's region."""
    return np.array([frame + 0.5, -frame, 0.01 * region], dtype=np.float32)


def write_flow_patches(patches_path: str, out_path: Path) -> None:
    """A flow-patches file in the flow stage's format (``preprocess.crop_flow_subject``), from a patches
    file: its clips, frames, regions and sizes, each region's pixels holding ``flow_value``."""
    with h5py.File(patches_path, "r") as source, h5py.File(out_path, "w") as h5:
        h5.attrs.update({key: source.attrs[key] for key in ("format", "subject", "regions", "patches", "region_sizes")})
        h5.attrs.update(stage="flowpatches", channels=["u", "v", "strain"], source="onset_frames")
        for clip, group in source["clips"].items():
            target = h5.create_group(f"clips/{clip}")
            target.attrs.update({key: group.attrs[key] for key in ("sample_id", "label", "onset", "apex", "offset")})
            target.attrs["apex_source"] = "annotated"
            target.create_dataset("frame_numbers", data=group["frame_numbers"][()])
            for index, region in enumerate(source.attrs["regions"]):
                shape = group["patches"][region].shape
                values = np.stack(
                    [np.broadcast_to(flow_value(frame, index), (*shape[1:], 3)) for frame in range(shape[0])]
                )
                target.create_dataset(f"patches/{region}", data=values)


@pytest.fixture(scope="module")
def flow_files(tiny_preprocessed, tmp_path_factory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("flowpatches")
    files = {}
    for subject, path in tiny_preprocessed["patch_files"].items():
        files[subject] = str(out / f"{subject.replace('/', '_')}.h5")
        write_flow_patches(path, Path(files[subject]))
    return files


def test_load_region_reads_the_flow_patches_files(tiny_preprocessed, flow_files):
    samples = training.usable_samples(tiny_preprocessed["samples"], tiny_preprocessed["report"])
    region = "mouth"
    data = inputs.load_region(flow_files, samples, region, "flow")
    grey = inputs.load_region(tiny_preprocessed["patch_files"], samples, region, "raw")
    assert data.frames.shape == (*grey.frames.shape, 3) and data.frames.dtype == np.float32
    assert (data.owner == grey.owner).all() and np.array_equal(data.phase, grey.phase)
    region_index = list(REGION_NAMES).index(region)
    for row in range(len(samples)):
        mine = data.frames[data.owner == row]
        expected = np.stack([flow_value(frame, region_index) for frame in range(len(mine))])
        assert np.array_equal(mine[:, 0, 0, 0], expected)
    # Control: each representation reads its own files only, with an error naming the file.
    some = next(iter(tiny_preprocessed["patch_files"].values()))
    with pytest.raises(ValueError, match=rf"{some}: a 'patches' file, but model.input 'flow' reads 'flowpatches'"):
        inputs.load_region(tiny_preprocessed["patch_files"], samples, region, "flow")
    with pytest.raises(ValueError, match="model.input 'onset_diff' reads 'patches' files"):
        inputs.load_region(flow_files, samples, region, "onset_diff")


def test_a_spatial_model_trains_and_exports_features_on_flow(tiny_preprocessed, flow_files, tmp_path):
    import keras

    settings = tiny_training_settings(tiny_preprocessed, input="flow")
    samples = training.usable_samples(tiny_preprocessed["samples"], tiny_preprocessed["report"])
    region_labels = labels.region_labels(samples, labels.load_au_regions(REPO / "config" / "au_regions.yaml"))
    fold = training.make_folds(samples.subject)[0]
    paths = {key: str(tmp_path / f"mouth.{key}") for key in ("history", "provenance")}
    paths.update(model=str(tmp_path / "mouth.keras"), checkpoints=str(tmp_path / "checkpoints"))
    training.train_spatial(samples, region_labels, flow_files, fold, "mouth", settings, CLASSES, paths)
    assert json.loads(Path(paths["provenance"]).read_text())["input"] == "flow"
    model = keras.saving.load_model(paths["model"])
    assert model.input.shape[-1] == 3 and model.get_layer("patch_cnn").get_layer("conv4_5x5").kernel.shape[2] == 3
    features = tmp_path / "features.h5"
    training.export_features(samples, flow_files, fold, {"mouth": paths["model"]}, settings, features, "x")
    with h5py.File(features) as h5:
        for sample in samples.itertuples():
            exported = h5[f"clips/{sample.sample_id}/mouth"][()]
            assert exported.shape == (tiny_preprocessed["params"]["n_frames"], 256) and np.isfinite(exported).all()
