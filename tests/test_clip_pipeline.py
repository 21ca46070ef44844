"""Prediction cannot drift from training: for every clip of the tiny synthetic corpus, ``localmer
predict``'s in-memory patches equal, bit for bit, what the workflow's preprocessing stored, and the
scaled spatial inputs predict feeds its models equal what training's input pipeline makes of the stored
patches. Controls show the comparison catches a changed setting, a shifted onset and one changed pixel."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import CLASSES

from localmer import bundle, config, inputs, predict, preprocess, regions, training
from localmer.regions import REGION_NAMES


@pytest.fixture(scope="module")
def description(tiny_preprocessed, tmp_path_factory) -> dict:
    """bundle.json as ``localmer predict`` reads it, for the corpus's preprocessing. The model files are
    placeholders: nothing here runs a model."""
    out = tmp_path_factory.mktemp("bundle")
    placeholder = out / "placeholder.keras"
    placeholder.write_bytes(b"")
    np.savez(out / "normalisation.npz", mean=np.zeros((6, 256), np.float32), std=np.ones((6, 256), np.float32))
    settings = {
        "preprocessing": tiny_preprocessed["params"],
        "model": config.with_defaults({}, "#/properties/model"),
        "training": {"temporal": {"steps": 4}},
    }
    patch_files = tiny_preprocessed["patch_files"]
    bundle.write_bundle(
        out / "bundle",
        dict.fromkeys(REGION_NAMES, placeholder),
        placeholder,
        out / "normalisation.npz",
        settings,
        regions.load_region_table(settings["preprocessing"]["regions"]),
        bundle.region_sizes_of(patch_files.values()),
        CLASSES,
        CLASSES,
        "abc123",
        sorted(patch_files),
        "tiny",
    )
    return bundle.check_bundle(out / "bundle")


@pytest.fixture(scope="module")
def clips(tiny_preprocessed, tmp_path_factory) -> list[dict]:
    """Every usable clip: its frames in a folder of their own, as a user would give them to predict,
    with its onset and offset, and what the workflow stored for it."""
    usable = training.usable_samples(tiny_preprocessed["samples"], tiny_preprocessed["report"])
    assert len(usable) == 9
    root = tmp_path_factory.mktemp("clips")
    found = []
    for row, sample in enumerate(usable.itertuples()):
        folder = root / sample.sample_id.replace("/", "_")
        folder.mkdir()
        for name in sample.frames.split("|"):
            shutil.copy(Path(sample.frame_dir) / name, folder / name)
        (span,) = predict.clips_of([str(folder)], int(sample.onset), int(sample.offset))
        stored = preprocess.read_clip(tiny_preprocessed["patch_files"][sample.subject], sample.clip)
        found.append({"row": row, "span": span, "stored": stored})
    return found


def preprocessing_differences(prepared: dict, stored: dict) -> list[str]:
    """What of predict's in-memory preprocessing differs from the stored clip, byte by byte."""

    def same(a: np.ndarray, b: np.ndarray) -> bool:
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()

    differences = [
        f"patches/{region}"
        for region in REGION_NAMES
        if not same(prepared["patches"][region], stored["patches"][region])
    ]
    if not same(prepared["frame_numbers"], stored["frame_numbers"]):
        differences.append("frame_numbers")
    if not same(prepared["landmarks"], stored["landmarks"][0]):
        differences.append("landmarks")
    if {name: list(box) for name, box in prepared["boxes"].items()} != stored["boxes"]:
        differences.append("boxes")
    if prepared["reference_frame"] != stored["reference_frame"]:
        differences.append("reference_frame")
    return differences


def predicted_inputs(description: dict, span, prepared: dict, region: str) -> np.ndarray:
    """The scaled float tensors predict feeds a region's spatial model, as one array."""
    return np.concatenate([batch.numpy() for batch in predict.spatial_inputs(description, span, prepared, region)])


def training_inputs(tiny_preprocessed, model_settings: dict, region: str, files=None) -> dict[int, np.ndarray]:
    """Per clip (row of the usable samples), what training's feature export feeds a region's spatial
    model: every clip's stored patches (``files``, default the patches files) in one pipeline, as
    ``training.export_features`` reads them."""
    usable = training.usable_samples(tiny_preprocessed["samples"], tiny_preprocessed["report"])
    files = tiny_preprocessed["patch_files"] if files is None else files
    data = inputs.load_region(files, usable, region, model_settings["input"])
    batches = inputs.spatial_batches(data.frames, np.zeros(len(data.frames)), model_settings, 256)
    scaled = np.concatenate([x.numpy() for x, _ in batches])
    return {row: scaled[data.owner == row] for row in range(len(usable))}


# The inputs made of the grey patches (flow input: test_predicts_flow_inputs_are_what_training_fed_its_models)
GREY_INPUTS = sorted(name for name, chosen in inputs.REPRESENTATIONS.items() if chosen.source == inputs.PATCHES)


def with_model_input(description: dict, representation: str) -> dict:
    return {**description, "model": {**description["model"], "input": representation}}


def test_predict_preprocesses_a_clip_into_the_stored_patches(description, clips):
    for clip in clips:
        prepared = predict.preprocess_clip(clip["span"], description)
        assert preprocessing_differences(prepared, clip["stored"]) == [], clip["stored"]["sample_id"]


@pytest.mark.parametrize("representation", GREY_INPUTS)
def test_predicts_spatial_inputs_are_what_training_fed_its_models(
    description, clips, tiny_preprocessed, representation
):
    description = with_model_input(description, representation)
    prepared = [predict.preprocess_clip(clip["span"], description) for clip in clips]
    for region in REGION_NAMES:
        trained = training_inputs(tiny_preprocessed, description["model"], region)
        for clip, clip_prepared in zip(clips, prepared, strict=True):
            given = predicted_inputs(description, clip["span"], clip_prepared, region)
            expected = trained[clip["row"]]
            assert given.dtype == expected.dtype == np.float32
            assert given.shape == expected.shape and given.tobytes() == expected.tobytes(), (region, clip["row"])
            if representation == "onset_diff":
                assert given.min() >= -1 and given.max() <= 1 and given.any()


def test_the_comparison_catches_a_changed_setting_a_shifted_onset_and_one_pixel(description, clips, tiny_preprocessed):
    clip = clips[0]
    span, stored = clip["span"], clip["stored"]
    params = description["preprocessing"]
    other_count = {**description, "preprocessing": {**params, "n_frames": params["n_frames"] - 1}}
    assert "frame_numbers" in preprocessing_differences(predict.preprocess_clip(span, other_count), stored)
    shifted = predict.ClipSpan(span.source, span.frames, span.onset + 1, span.offset)
    assert "frame_numbers" in preprocessing_differences(predict.preprocess_clip(shifted, description), stored)

    prepared = predict.preprocess_clip(span, description)
    assert preprocessing_differences(prepared, stored) == []
    patches = prepared["patches"]["mouth"].copy()
    onset_value, value = patches[0, 0, 0, 0], patches[1, 0, 0, 0]
    # One grey level that moves the onset difference inside +-diff_range, so that clipping cannot hide it.
    patches[1, 0, 0, 0] = onset_value if value != onset_value else onset_value ^ 1
    changed = {**prepared, "patches": {**prepared["patches"], "mouth": patches}}
    assert preprocessing_differences(changed, stored) == ["patches/mouth"]
    for representation in GREY_INPUTS:
        setting = with_model_input(description, representation)
        expected = training_inputs(tiny_preprocessed, setting["model"], "mouth")[clip["row"]]
        assert predicted_inputs(setting, span, prepared, "mouth").tobytes() == expected.tobytes()
        assert predicted_inputs(setting, span, changed, "mouth").tobytes() != expected.tobytes(), representation


@pytest.fixture(scope="module")
def flow_bundle(description, tiny_preprocessed, tmp_path_factory) -> dict:
    """A flow bundle's description (the corpus's preprocessing with DIS flow from the onset to every kept
    frame) and the flow-patches files the workflow's flow stages write with those settings."""
    params = copy.deepcopy(tiny_preprocessed["params"])
    params["flow"].update(method="dis", pairs=["onset_apex", "onset_frames"])
    flow_description = {
        **with_model_input(description, "flow"),
        "preprocessing": {**description["preprocessing"], "flow": params["flow"]},
    }
    out = tmp_path_factory.mktemp("flow")
    files = {}
    for subject, patches in tiny_preprocessed["patch_files"].items():
        name = subject.replace("/", "_")
        flow_path, files[subject] = out / f"{name}.flow.h5", str(out / f"{name}.flowpatches.h5")
        aligned = tiny_preprocessed["out"] / "aligned" / f"{subject}.h5"
        preprocess.flow_subject(tiny_preprocessed["samples"], subject, aligned, flow_path, params)
        preprocess.crop_flow_subject(flow_path, patches, files[subject], params)
    return {"description": flow_description, "files": files}


def test_predicts_flow_inputs_are_what_training_fed_its_models(flow_bundle, clips, tiny_preprocessed):
    """A flow bundle: predict computes each clip's flow in memory; scaled, its inputs equal bit for bit
    what training makes of the flow stage's files. Control: another flow method gives other inputs."""
    description, files = flow_bundle["description"], flow_bundle["files"]
    prepared = [predict.preprocess_clip(clip["span"], description) for clip in clips]
    for region in REGION_NAMES:
        trained = training_inputs(tiny_preprocessed, description["model"], region, files)
        for clip, clip_prepared in zip(clips, prepared, strict=True):
            given = predicted_inputs(description, clip["span"], clip_prepared, region)
            expected = trained[clip["row"]]
            assert given.dtype == expected.dtype == np.float32 and given.shape[-1] == 3
            assert given.shape == expected.shape and given.tobytes() == expected.tobytes(), (region, clip["row"])
            assert given.min() >= -1 and given.max() <= 1 and given[1:].any()  # motion after the onset
            assert not given[0].any()  # the onset's own frame: no motion
    flow = description["preprocessing"]["flow"]
    farneback = {
        **description,
        "preprocessing": {**description["preprocessing"], "flow": {**flow, "method": "farneback", "farneback": {}}},
    }
    clip = clips[0]
    other = predicted_inputs(farneback, clip["span"], predict.preprocess_clip(clip["span"], farneback), "mouth")
    expected = training_inputs(tiny_preprocessed, description["model"], "mouth", files)[clip["row"]]
    assert other.shape == expected.shape and other.tobytes() != expected.tobytes()
