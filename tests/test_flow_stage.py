"""The flow stage: flow and flow-patch files (HDF5 round trip), the apex and its source per clip, the
pairs, the stage keys, the QC sheet's flow panel and the report's apex columns. DIS throughout (the
method does not matter here; tests/test_flow.py holds the methods to their fields)."""

from __future__ import annotations

import copy
import json

import cv2
import h5py
import numpy as np
import pytest
from conftest import REPO

from localmer import apex, clip_pipeline, config, flow, preprocess, qc, regions
from localmer.frames import ClipFrames

SUBJECT = "casme2/sub01"


def subject_files(tiny_preprocessed, subject=SUBJECT) -> dict:
    out = tiny_preprocessed["out"]
    return {stage: out / stage / f"{subject}.h5" for stage in ("aligned", "patches", "flow", "flowpatches")}


def test_flow_and_flow_patch_files_read_back_as_agreed(tiny_preprocessed):
    params = tiny_preprocessed["params"]
    face_width, face_height = params["alignment"]["face_size"]
    for subject in tiny_preprocessed["flow_files"]:
        files = subject_files(tiny_preprocessed, subject)
        with (
            h5py.File(files["aligned"]) as aligned,
            h5py.File(files["patches"]) as patches,
            h5py.File(files["flow"]) as flows,
            h5py.File(files["flowpatches"]) as cut,
        ):
            assert flows.attrs["format"] == preprocess.FORMAT and flows.attrs["subject"] == subject
            assert flows.attrs["stage"] == "flow" and flows.attrs["method"] == "dis"
            assert list(flows.attrs["channels"]) == list(flow.CHANNELS)
            assert json.loads(flows.attrs["params"]) == params
            assert cut.attrs["stage"] == "flowpatches" and cut.attrs["source"] == "onset_apex"
            assert list(cut.attrs["channels"]) == ["u", "v", "strain"]
            assert cut.attrs["region_sizes"] == patches.attrs["region_sizes"] and cut.attrs["patches"] == 9
            # Every aligned clip, no other (skipped clips are absent from all three).
            assert sorted(flows["clips"]) == sorted(aligned["clips"]) == sorted(cut["clips"])
            for clip in flows["clips"]:
                stored = preprocess.read_flow_clip(files["flow"], clip)
                assert stored["apex_source"] in apex.SOURCES
                assert stored["onset"] <= stored["apex"] <= stored["offset"]
                assert stored["sample_id"] == aligned["clips"][clip].attrs["sample_id"]
                np.testing.assert_array_equal(stored["frame_numbers"], aligned["clips"][clip]["frame_numbers"][()])
                assert stored["onset_apex"].shape == (face_height, face_width, 4)
                assert stored["onset_apex"].dtype == np.float32
                assert "onset_frames" not in stored and "apex_offset" not in stored  # not configured
                flow_clip = cut["clips"][clip]
                assert flow_clip.attrs["apex_source"] == stored["apex_source"]
                assert flow_clip.attrs["label"] == patches["clips"][clip].attrs["label"]
                np.testing.assert_array_equal(flow_clip["frame_numbers"][()], [stored["apex"]])
                for region in regions.REGION_NAMES:
                    grey = patches["clips"][clip]["patches"][region]
                    assert flow_clip["patches"][region].shape == (1, *grey.shape[1:], 3)
                    assert flow_clip["patches"][region].dtype == np.float32


def test_the_report_gives_each_clips_apex_and_its_source(tiny_preprocessed):
    report = tiny_preprocessed["report"].set_index("sample_id")
    samples = tiny_preprocessed["samples"].set_index("sample_id")
    assert set(preprocess.APEX_COLUMNS) <= set(report.columns)
    assert report.apex_source.isin(apex.SOURCES).all()
    for sample_id, row in report.iterrows():
        expected = apex.choose_apex(samples.loc[sample_id], tiny_preprocessed["params"]["apex"])
        assert (row.apex, row.apex_source) == expected, sample_id
    # A clip without flow (skipped) gets empty apex columns, not a guess.
    without = preprocess.preprocessing_report([tiny_preprocessed["out"] / "landmarks" / f"{SUBJECT}.h5"], []).set_index(
        "sample_id"
    )
    assert (without.apex == "").all() and (without.apex_source == "").all()


@pytest.fixture(scope="module")
def every_pair(tiny_preprocessed, tmp_path_factory) -> dict:
    """One subject's flow with every pair, and its flow patches from onset_frames, each stage given only
    its own settings (``stage_settings``, as the workflow's jobs are)."""
    out = tmp_path_factory.mktemp("every_pair")
    params = copy.deepcopy(tiny_preprocessed["params"])
    params["flow"]["pairs"] = list(clip_pipeline.FLOW_PAIRS)
    files = subject_files(tiny_preprocessed)
    preprocess.flow_subject(
        tiny_preprocessed["samples"],
        SUBJECT,
        files["aligned"],
        out / "flow.h5",
        preprocess.stage_settings(params, "flow"),
    )
    preprocess.crop_flow_subject(
        out / "flow.h5", files["patches"], out / "flowpatches.h5", preprocess.stage_settings(params, "flowpatches")
    )
    return {"flow": out / "flow.h5", "flowpatches": out / "flowpatches.h5", "files": files, "params": params}


def test_onset_frames_start_at_zero_and_give_a_row_per_kept_frame(every_pair):
    with h5py.File(every_pair["flow"]) as h5:
        clips = list(h5["clips"])
    for clip in clips:
        stored = preprocess.read_flow_clip(every_pair["flow"], clip)
        numbers = list(stored["frame_numbers"])
        rows = stored["onset_frames"]
        assert rows.shape == (len(numbers), *stored["onset_apex"].shape)
        assert stored["apex_offset"].shape == stored["onset_apex"].shape
        onset_row = numbers.index(stored["onset"])
        assert not rows[onset_row].any()  # exactly zero
        # Control: the other rows are not (the face moves after the onset).
        assert all(np.abs(row[..., 3]).max() > 0.05 for i, row in enumerate(rows) if numbers[i] != stored["onset"])
        if stored["apex"] in numbers:  # the same pair, the same flow
            np.testing.assert_array_equal(rows[numbers.index(stored["apex"])], stored["onset_apex"])
    with h5py.File(every_pair["flowpatches"]) as h5:
        assert h5.attrs["source"] == "onset_frames"
        group = h5["clips"][clips[0]]
        np.testing.assert_array_equal(
            group["frame_numbers"][()], preprocess.read_flow_clip(every_pair["flow"], clips[0])["frame_numbers"]
        )
        assert group["patches"]["mouth"].shape[0] == len(group["frame_numbers"])


def test_an_apex_the_selection_dropped_is_read_and_aligned_like_the_kept_frames(tiny_preprocessed):
    """With frames: resample the apex can fall between kept frames: its own face is warped, not the
    nearest kept one's (control: that one gives another flow)."""
    samples = tiny_preprocessed["samples"].set_index("clip")
    face_size = tiny_preprocessed["params"]["alignment"]["face_size"]
    checked = 0
    for subject in tiny_preprocessed["flow_files"]:
        files = subject_files(tiny_preprocessed, subject)
        with h5py.File(files["aligned"]) as aligned:
            for clip, group in aligned["clips"].items():
                stored = preprocess.read_flow_clip(files["flow"], clip)
                numbers = group["frame_numbers"][()]
                if stored["apex"] in numbers:
                    continue
                faces, transforms = group["faces"][()], group["transforms"][()]
                sample = samples.loc[clip].to_dict() | {"clip": clip}
                (apex_face,) = clip_pipeline.unkept_faces(
                    ClipFrames.from_sample(sample), [stored["apex"]], numbers, transforms, face_size
                ).values()
                onset_face = faces[list(numbers).index(stored["onset"])]
                expected = flow.flow_fields(onset_face, apex_face, "dis")
                np.testing.assert_array_equal(stored["onset_apex"], expected)
                nearest = faces[int(np.argmin(np.abs(numbers - stored["apex"])))]
                assert not np.array_equal(flow.flow_fields(onset_face, nearest, "dis"), expected)
                checked += 1
    assert checked, "no clip of the corpus has its apex between kept frames"


def test_flow_patches_are_in_pixels_of_the_resized_region():
    """A uniform flow of (2, -1) px on the face, a region box 30 x 20 px resized to 60 x 10: u doubles,
    v halves; strain is left as it is."""
    fields = np.zeros((1, 40, 50, 4), np.float32)
    fields[..., 0], fields[..., 1], fields[..., 2] = 2.0, -1.0, 0.25
    boxes = dict.fromkeys(regions.REGION_NAMES, (5, 5, 35, 25))
    sizes = dict.fromkeys(regions.REGION_NAMES, (60, 10))
    cut = clip_pipeline.clip_flow_patches(fields, boxes, sizes, 4)
    assert cut["mouth"].shape == (1, 4, 5, 30, 3)
    np.testing.assert_allclose(cut["mouth"][..., 0], 4.0)
    np.testing.assert_allclose(cut["mouth"][..., 1], -0.5)
    np.testing.assert_allclose(cut["mouth"][..., 2], 0.25)
    # The grey faces of the same box cut the same way: patch k of the flow covers patch k of the face.
    face = np.arange(40 * 50, dtype=np.float32).reshape(1, 40, 50)
    grey = clip_pipeline.clip_patches(face, boxes, sizes, 4)["mouth"]
    fields[..., 2] = face
    np.testing.assert_array_equal(clip_pipeline.clip_flow_patches(fields, boxes, sizes, 4)["mouth"][..., 2], grey)


def test_the_flow_of_a_missing_frame_is_an_error_naming_it():
    faces = np.zeros((2, 16, 16), np.uint8)
    settings = {"method": "dis", "pairs": ["onset_apex"]}
    with pytest.raises(flow.FlowError, match="frame 7 is neither a kept frame nor among the other faces given"):
        clip_pipeline.clip_flow(faces, [3, 5], 3, 7, settings)
    assert not clip_pipeline.clip_flow(faces, [3, 5], 3, 3, settings)["onset_apex"].any()


def experiment_with(**preprocessing) -> dict:
    cfg = config.load(REPO / "config" / "config.yaml", base_dir=REPO, check_paths=False)
    cfg = config.deep_merge(cfg, {"preprocessing": preprocessing})
    return config.experiment(cfg, "full", base_dir=REPO, check_paths=False)


def test_flow_settings_change_the_flow_keys_only():
    base = preprocess.stage_keys(experiment_with(), REPO)
    assert set(base) == {"landmarks", "aligned", "patches", "flow", "flowpatches"}

    def changed(**preprocessing) -> set[str]:
        keys = preprocess.stage_keys(experiment_with(**preprocessing), REPO)
        return {stage for stage in keys if keys[stage] != base[stage]}

    assert changed(flow={"method": "dis"}) == {"flow", "flowpatches"}
    assert changed(flow={"pairs": ["onset_apex", "onset_frames"]}) == {"flow", "flowpatches"}
    assert changed(flow={"tvl1": {"warps": 3}}) == {"flow", "flowpatches"}
    assert changed(flow={"dis": {"preset": "fast"}}) == set()  # a method not in use
    assert changed(patches=4) == {"patches", "flowpatches"}
    assert changed(alignment={"iod": 60}) == {"aligned", "patches", "flow", "flowpatches"}
    # Each stage's job settings: a flow setting is not the landmark stage's.
    full = experiment_with(flow={"method": "dis"})["preprocessing"]
    assert "flow" not in preprocess.stage_settings(full, "landmarks")
    assert preprocess.stage_settings(full, "flow")["flow"] == {
        "method": "dis",
        "pairs": ["onset_apex"],
        "dis": {"preset": "medium"},
    }


def test_a_flow_pair_list_without_onset_apex_is_named():
    cfg = config.load(REPO / "config" / "config.yaml", base_dir=REPO, check_paths=False)
    cfg["preprocessing"]["flow"]["pairs"] = ["onset_frames"]
    with pytest.raises(
        config.ConfigError, match=r"'preprocessing.flow.pairs': \['onset_frames'\] must include 'onset_apex'"
    ):
        config.validate(cfg, base_dir=REPO)


def test_the_schemas_flow_defaults_are_the_methods():
    defaults = config.schema_defaults("preprocessing")["flow"]
    assert defaults["method"] == "tvl1" and defaults["pairs"] == ["onset_apex"]
    assert {name: defaults[name] for name in flow.METHODS} == {name: m.defaults for name, m in flow.METHODS.items()}


def test_the_qc_sheet_shows_each_clips_flow_beside_its_boxes(tiny_preprocessed, tmp_path):
    files = subject_files(tiny_preprocessed)
    assert qc.contact_sheet(files["aligned"], files["patches"], files["flow"], tmp_path / "s.png", columns=1) == 3
    sheet = cv2.imread(str(tmp_path / "s.png"))
    with (
        h5py.File(files["aligned"]) as aligned,
        h5py.File(files["patches"]) as patches,
        h5py.File(files["flow"]) as flows,
    ):
        clips = list(patches["clips"])
        face_width = aligned["clips"][clips[0]]["faces"].shape[2] * 2
        top = 0
        for clip in clips:
            boxes = json.loads(patches["clips"][clip].attrs["boxes"])
            panel, _ = qc.flow_panel(flows["clips"][clip]["onset_apex"][()], boxes, 2)
            shown = sheet[top : top + panel.shape[0], face_width : face_width + panel.shape[1]]
            np.testing.assert_array_equal(shown, panel)
            other = qc.flow_panel(flows["clips"][clips[(clips.index(clip) + 1) % 3]]["onset_apex"][()], boxes, 2)[0]
            assert not np.array_equal(shown, other)  # control: another clip's flow is not what is shown
            top += (sheet.shape[0]) // 3
