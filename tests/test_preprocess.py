"""Preprocessing on the synthetic corpus: landmarks, alignment, regions, patches, HDF5, failures, inspect."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import cv2
import h5py
import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, preprocessing_params, write_video

from localmer import clip_pipeline, frames, landmarks, preprocess, qc, regions
from localmer.cli import main as cli
from localmer.frames import frame_number

TABLE = regions.load_region_table(REPO / "config" / "regions.yaml")


@pytest.fixture(scope="module")
def preprocessed(tiny_indexed_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("preprocessed")
    params = preprocessing_params()
    report = preprocess.preprocess_all(tiny_indexed_corpus["samples"], params, out)
    return {"out": out, "report": report, "params": params, "samples": tiny_indexed_corpus["samples"]}


def frame_paths(sample) -> list[Path]:
    return [Path(sample["frame_dir"]) / name for name in sample["frames"].split("|")]


def test_every_clip_gets_landmarks(preprocessed):
    report, samples = preprocessed["report"], preprocessed["samples"]
    assert sorted(report.sample_id) == sorted(samples.sample_id)
    assert (report.status == "ok").all(), report[report.status != "ok"]
    assert (report.faces == 1).all()
    # The reference is the onset frame whenever the face is found there.
    onsets = samples.set_index("sample_id").onset
    assert (report.set_index("sample_id").reference_frame == onsets.loc[report.sample_id].values).all()


def test_region_boxes_contain_their_landmark_groups(preprocessed):
    for path in (preprocessed["out"] / "patches").rglob("*.h5"):
        with h5py.File(path) as h5:
            for group in h5["clips"].values():
                boxes = json.loads(group.attrs["boxes"])
                reference = group["landmarks"][0]
                for name, spec in TABLE.items():
                    x0, y0, x1, y1 = boxes[name]
                    points = reference[spec["landmarks"]]
                    assert (points[:, 0] >= x0).all() and (points[:, 0] < x1).all(), (path, name)
                    assert (points[:, 1] >= y0).all() and (points[:, 1] < y1).all(), (path, name)
                # Subject's left eye (dlib 42-47) lies on the image right of the subject's right eye.
                assert boxes["left_eye"][0] > boxes["right_eye"][0]
                assert boxes["left_cheek"][0] > boxes["right_cheek"][0]


def test_aligned_faces_are_level_with_the_configured_eye_distance(preprocessed):
    alignment = preprocessed["params"]["alignment"]
    for path in (preprocessed["out"] / "aligned").rglob("*.h5"):
        with h5py.File(path) as h5:
            for group in h5["clips"].values():
                points = group["landmarks"][0]
                assert abs(regions.roll_degrees(points)) < 1e-3
                assert regions.inter_ocular_distance(points) == pytest.approx(alignment["iod"], rel=1e-4)
                assert group["faces"].shape[1:] == (alignment["face_size"][1], alignment["face_size"][0])
                assert group["faces"].dtype == np.uint8


def aligned_face(image: np.ndarray) -> np.ndarray:
    params = preprocessing_params()["alignment"]
    found = landmarks.detect(image)
    matrix = regions.alignment_matrix(found.landmarks, params["iod"], params["face_size"], params["eye_position"])
    return regions.align(image, matrix, params["face_size"])


@pytest.mark.parametrize("degrees", [10, -10])
def test_a_face_rolled_by_10_degrees_comes_back_level(degrees):
    # A real photograph (matplotlib's Grace Hopper): aligned as it is, and aligned after a 10 degree roll.
    photo = cv2.imread(
        os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"), cv2.IMREAD_GRAYSCALE
    )
    height, width = photo.shape
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    rolled = cv2.warpAffine(photo, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    level, realigned = aligned_face(photo), aligned_face(rolled)
    # The rotation left between the two aligned faces, measured by image registration (ECC, rigid):
    # landmark noise aside, alignment must undo the roll.
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    _, warp = cv2.findTransformECC(
        level.astype(np.float32),
        realigned.astype(np.float32),
        np.eye(2, 3, dtype=np.float32),
        cv2.MOTION_EUCLIDEAN,
        criteria,
        None,
        5,
    )
    residual = np.degrees(np.arctan2(warp[1, 0], warp[0, 0]))
    assert abs(residual) < 1.0
    assert abs(np.linalg.norm(warp[:, 2])) < 3.0  # and it lands in the same place, within a few px


@pytest.mark.parametrize("patches", [1, 4, 9, 16])
def test_patches_have_the_configured_shapes(preprocessed, tmp_path, patches):
    params = preprocessing_params(patches=patches)
    side = int(np.sqrt(patches))
    aligned = next((preprocessed["out"] / "aligned").rglob("*.h5"))
    out = tmp_path / "patches.h5"
    assert preprocess.crop_subject(aligned, out, preprocessed["samples"], params) == 3
    with h5py.File(out) as h5:
        assert h5.attrs["patches"] == patches
        for group in h5["clips"].values():
            frames = len(group["frame_numbers"])
            for name, spec in TABLE.items():
                width, height = spec["size"]
                assert group["patches"][name].shape == (frames, patches, height // side, width // side)
                assert group["patches"][name].dtype == np.uint8


def test_patch_grid_reassembles_the_region():
    region = np.arange(2 * 36 * 48, dtype=np.uint8).reshape(2, 36, 48)
    tiles = regions.cut_patches(region, 9)
    assert tiles.shape == (2, 9, 12, 16)
    assert (tiles[:, 0] == region[:, :12, :16]).all()  # top-left first
    assert (tiles[:, 1] == region[:, :12, 16:32]).all()  # then along the top row
    assert (tiles[:, 3] == region[:, 12:24, :16]).all()  # then the next row
    with pytest.raises(ValueError, match="patches must be one of"):
        regions.cut_patches(region, 8)


def test_hdf5_round_trips(preprocessed):
    samples = preprocessed["samples"].set_index("sample_id")
    path = preprocessed["out"] / "patches" / "casme2" / "sub01.h5"
    with h5py.File(path) as h5:
        assert h5.attrs["subject"] == "casme2/sub01"
        assert list(h5.attrs["regions"]) == list(regions.REGION_NAMES)
        assert json.loads(h5.attrs["params"]) == preprocessed["params"]
        clips = list(h5["clips"])
    for clip in clips:
        data = preprocess.read_clip(path, clip)
        sample = samples.loc[data["sample_id"]]
        numbers = [frame_number(name) for name in sample["frames"].split("|")]
        kept = [n for n in numbers if sample.onset <= n <= sample.offset]
        assert data["frame_numbers"].tolist() == kept
        assert (data["label"], data["onset"], data["offset"]) == (sample.label, sample.onset, sample.offset)
        assert data["transforms"].shape == (len(kept), 2, 3) and data["landmarks"].shape == (len(kept), 68, 2)
        assert all(p.shape[0] == len(kept) for p in data["patches"].values())


def test_resampling_keeps_n_frames_from_onset_to_offset():
    numbers = list(range(10, 31))
    assert clip_pipeline.select_frames(numbers, 12, 20, "onset_offset", 0) == list(range(12, 21))
    assert clip_pipeline.select_frames(numbers, 12, 20, "all", 0) == numbers
    picked = clip_pipeline.select_frames(numbers, 12, 20, "resample", 5)
    assert picked == [12, 14, 16, 18, 20]
    assert clip_pipeline.select_frames(numbers, 12, 14, "resample", 5) == [12, 12, 13, 14, 14]


def copy_clip(sample, folder: Path, change) -> dict:
    """A copy of a clip whose frames from the onset on are ``change(k, image)``, k = 0 at the onset."""
    shutil.copytree(sample["frame_dir"], folder)
    names = sample["frames"].split("|")
    kept = [n for n in names if frame_number(n) >= sample["onset"]]
    for k, name in enumerate(kept):
        image = frames.read_image(folder / name)
        changed = change(k, image)
        if changed is not image:  # the others keep their bytes
            cv2.imwrite(str(folder / name), changed)
    return {**sample, "frame_dir": str(folder)}


def copy_clip_with_blank_frames(sample, folder: Path, blank: int) -> dict:
    """A copy of a clip whose first ``blank`` frames from the onset on show no face (flat grey)."""
    return copy_clip(sample, folder, lambda k, image: np.full_like(image, 128) if k < blank else image)


def test_clip_without_a_face_in_its_first_frames(tiny_indexed_corpus, tmp_path):
    samples = tiny_indexed_corpus["samples"]
    casme = samples[samples.dataset == "casme2"].to_dict("records")
    late_face = copy_clip_with_blank_frames(casme[0], tmp_path / "late", blank=2)
    no_face = copy_clip_with_blank_frames(casme[1], tmp_path / "none", blank=100)
    table = pd.DataFrame([late_face, no_face, casme[2]])
    # The face check off: this is about the search for a reference face (the check is tested below).
    search = {**preprocessing_params()["landmarks"], "search_frames": 3, "upsample": [0], "presence_frames": 0}
    params = preprocessing_params(landmarks=search)
    report = preprocess.detect_subject(table, "casme2/sub01", tmp_path / "landmarks.h5", params).set_index("sample_id")
    # A face two frames after the onset is found by searching on; the reference is that frame.
    assert report.loc[late_face["sample_id"], "status"] == "ok"
    assert report.loc[late_face["sample_id"], "reference_frame"] == late_face["onset"] + 2
    # No face on any searched frame: skipped, with the reason, and left out of the aligned faces.
    assert report.loc[no_face["sample_id"], "status"] == "skipped"
    assert report.loc[no_face["sample_id"], "reason"].startswith(f"no face on frames {no_face['onset']}..")
    saved = preprocess.landmark_report([tmp_path / "landmarks.h5"]).set_index("sample_id")
    assert (
        saved.loc[no_face["sample_id"], "status"] == "skipped"
        and "no face" in saved.loc[no_face["sample_id"], "reason"]
    )
    preprocess.align_subject(table, "casme2/sub01", tmp_path / "landmarks.h5", tmp_path / "aligned.h5", params)
    with h5py.File(tmp_path / "aligned.h5") as h5:
        assert sorted(h5["clips"]) == sorted([late_face["clip"], casme[2]["clip"]])
    with pytest.raises(preprocess.PreprocessError, match="no face on frames"):
        preprocess.detect_subject(table, "casme2/sub01", tmp_path / "strict.h5", {**params, "strict": True})


def on_canvas(image: np.ndarray, left: int, scale: float = 1.0) -> np.ndarray:
    """The frame on a grey canvas twice its width, ``left`` px from the canvas's left, resized by ``scale``
    about its own centre."""
    height, width = image.shape
    canvas = np.full((height, 2 * width), 128, np.uint8)
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    top, inset = (height - small.shape[0]) // 2, left + (width - small.shape[1]) // 2
    canvas[top : top + small.shape[0], inset : inset + small.shape[1]] = small
    return canvas


def test_landmark_stage_skips_a_clip_whose_face_leaves_or_moves(tiny_indexed_corpus, tmp_path):
    """The face check on the kept frames (first, middle, last): a face that is absent from the onset on
    (the reference found later), gone halfway, moved by 120 px (about 1.7 inter-ocular distances) or
    shrunk to 0.6 halfway is recorded as skipped with the reason; the same clip unchanged passes."""
    samples = tiny_indexed_corpus["samples"]
    sample = samples[samples.dataset == "casme2"].iloc[0].to_dict()
    half = len([n for n in sample["frames"].split("|") if sample["onset"] <= frame_number(n) <= sample["offset"]]) // 2
    changes = {
        "still": lambda k, image: on_canvas(image, 0),
        "late": lambda k, image: np.full_like(image, 128) if k < 2 else image,
        "gone": lambda k, image: np.full_like(image, 128) if k >= half else image,
        "moved": lambda k, image: on_canvas(image, 120 if k >= half else 0),
        "shrunk": lambda k, image: on_canvas(image, 0, 0.6 if k >= half else 1.0),
    }
    clips = [{**copy_clip(sample, tmp_path / name, change), "clip": name} for name, change in changes.items()]
    table = pd.DataFrame([{**clip, "sample_id": f"casme2/sub01/{clip['clip']}"} for clip in clips])
    params = preprocessing_params()
    report = preprocess.detect_subject(table, "casme2/sub01", tmp_path / "lm.h5", params).set_index("sample_id")
    report.index = [name.rsplit("/", 1)[1] for name in report.index]
    onset, offset = sample["onset"], sample["offset"]
    assert report.loc["still", "status"] == "ok", report.loc["still", "reason"]
    assert (report.drop(index="still").status == "skipped").all()
    reasons = report.reason
    assert re.search(rf"reference frame {onset + 2} .*: no face on frames {onset}$", reasons["late"])
    assert re.search(rf"no face on frames [\d, ]*\b{offset}$", reasons["gone"])
    assert f"frame {offset}: the face is" in reasons["moved"] and "inter-ocular distances away" in reasons["moved"]
    assert f"frame {offset}: the face is 0." in reasons["shrunk"] and "times as wide" in reasons["shrunk"]
    # The landmark file records it as the report does: skipped, with the reason, and nothing to align.
    saved = preprocess.landmark_report([tmp_path / "lm.h5"])
    assert dict(zip(saved.sample_id, saved.reason, strict=True)) == dict(zip(table.sample_id, reasons, strict=True))
    # Control: with the check off, the same clips are taken as they are.
    off = preprocessing_params(landmarks={**params["landmarks"], "presence_frames": 0})
    unchecked = preprocess.detect_subject(table, "casme2/sub01", tmp_path / "off.h5", off)
    assert (unchecked.status == "ok").all()


def test_corrupt_frame_is_an_error_naming_the_file(tiny_indexed_corpus, tmp_path):
    sample = tiny_indexed_corpus["samples"].iloc[0].to_dict()
    folder = tmp_path / "clip"
    shutil.copytree(sample["frame_dir"], folder)
    inside = [n for n in sample["frames"].split("|") if sample["onset"] < frame_number(n) <= sample["offset"]]
    broken = folder / inside[len(inside) // 2]
    broken.write_bytes(broken.read_bytes()[:40])
    table = pd.DataFrame([{**sample, "frame_dir": str(folder)}])
    params = preprocessing_params()
    with pytest.raises(frames.FrameError, match=f"frame file '{broken}' cannot be decoded"):
        preprocess.detect_subject(table, sample["subject"], tmp_path / "lm.h5", params)
        preprocess.align_subject(table, sample["subject"], tmp_path / "lm.h5", tmp_path / "al.h5", params)
    # Beyond the frames landmark detection reads (one searched, no face check), alignment meets it and
    # names it too.
    search = {**params["landmarks"], "search_frames": 1, "presence_frames": 0}
    preprocess.detect_subject(table, sample["subject"], tmp_path / "lm.h5", {**params, "landmarks": search})
    with pytest.raises(frames.FrameError, match=f"frame file '{broken}' cannot be decoded"):
        preprocess.align_subject(table, sample["subject"], tmp_path / "lm.h5", tmp_path / "al.h5", params)


def test_inspect_writes_its_files_for_an_image_and_a_video(tiny_indexed_corpus, tmp_path, capsys):
    sample = tiny_indexed_corpus["samples"].iloc[0]
    paths = frame_paths(sample)
    expected = {"landmarks.csv", "aligned.png", "overlay.png", "inspect.json"} | {
        f"{n}.png" for n in regions.REGION_NAMES
    }
    config = str(REPO / "config" / "config.yaml")
    assert (
        cli(["inspect", str(paths[0]), "--out", str(tmp_path / "image"), "--config", config, "--base-dir", str(REPO)])
        == 0
    )
    assert {p.name for p in (tmp_path / "image").iterdir()} == expected
    image_info = json.loads((tmp_path / "image" / "inspect.json").read_text())
    assert image_info["faces"] == 1  # control of the next test
    assert image_info["flow"] == {"computed": False, "reason": "a single frame has no onset->apex pair"}
    video = tmp_path / "clip.avi"
    write_video([frames.read_image(p) for p in paths[:5]], video)
    assert (
        cli(["inspect", str(video), "--out", str(tmp_path / "video"), "--config", config, "--base-dir", str(REPO)]) == 0
    )
    # A clip: its onset->apex flow too (first frame = onset, no annotation: the middle frame).
    assert {p.name for p in (tmp_path / "video").iterdir()} == expected | {"flow.png", "strain.png"}
    info = json.loads((tmp_path / "video" / "inspect.json").read_text())
    assert info["frame"] == 0 and set(info["boxes"]) == set(regions.REGION_NAMES)
    assert info["flow"] == {
        "computed": True,
        "onset": 0,
        "apex": 2,
        "apex_source": "middle",
        "offset": 4,
        "method": "tvl1",
    }
    # The overlay holds the flow and strain beside the face (wider than the image's).
    image_overlay, video_overlay = (cv2.imread(str(tmp_path / d / "overlay.png")) for d in ("image", "video"))
    assert video_overlay.shape[1] > 2 * image_overlay.shape[1]
    assert cv2.imread(str(tmp_path / "video" / "mouth.png")).shape[:2] == (36, 60)
    # A video without a face: a clear error, exit code 2.
    write_video([np.full((180, 160), 90, np.uint8)] * 4, tmp_path / "empty.avi")
    capsys.readouterr()
    assert (
        cli(
            [
                "inspect",
                str(tmp_path / "empty.avi"),
                "--out",
                str(tmp_path / "e"),
                "--config",
                config,
                "--base-dir",
                str(REPO),
            ]
        )
        == 2
    )
    assert "no face on frames 0..3" in capsys.readouterr().err


def test_contact_sheet_draws_every_clip(preprocessed, tmp_path):
    out = preprocessed["out"]
    drawn = qc.contact_sheet(
        out / "aligned" / "smic" / "s01.h5",
        out / "patches" / "smic" / "s01.h5",
        out / "flow" / "smic" / "s01.h5",
        tmp_path / "s.png",
    )
    assert drawn == 3 and cv2.imread(str(tmp_path / "s.png")) is not None


def test_several_faces_choose_the_largest():
    photo = cv2.imread(
        os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"), cv2.IMREAD_GRAYSCALE
    )
    small = cv2.resize(photo, None, fx=0.6, fy=0.6)
    canvas = np.full((photo.shape[0], photo.shape[1] + small.shape[1]), 128, np.uint8)
    canvas[: small.shape[0], : small.shape[1]] = small
    canvas[:, small.shape[1] :] = photo
    found = landmarks.detect(canvas)
    assert found.faces == 2
    assert found.box[0] >= small.shape[1] - 10  # the full-size face, on the right


def test_inspect_of_two_faces_says_it_used_the_larger(tiny_indexed_corpus, tmp_path, capsys):
    face = frames.read_image(frame_paths(tiny_indexed_corpus["samples"].iloc[0])[0])
    small = cv2.resize(face, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    canvas = np.full((face.shape[0], small.shape[1] + face.shape[1]), 128, np.uint8)
    canvas[: small.shape[0], : small.shape[1]] = small
    canvas[:, small.shape[1] :] = face
    cv2.imwrite(str(tmp_path / "two.png"), canvas)
    config = str(REPO / "config" / "config.yaml")
    capsys.readouterr()
    command = ["inspect", str(tmp_path / "two.png"), "--out", str(tmp_path / "out"), "--config", config]
    assert cli([*command, "--base-dir", str(REPO)]) == 0
    printed = json.loads(capsys.readouterr().out)
    for info in (printed, json.loads((tmp_path / "out" / "inspect.json").read_text())):
        assert info["faces"] == 2 and info["face_used"]["choice"] == "largest"
        assert info["face_used"]["box"][0] >= small.shape[1] - 10  # the full-size face, on the right


def test_per_frame_strategy_gives_a_smoothed_track(tiny_indexed_corpus, tmp_path):
    samples = tiny_indexed_corpus["samples"]
    subject = samples.subject.iloc[0]
    settings = preprocessing_params()
    params = {**settings, "landmarks": {**settings["landmarks"], "strategy": "per_frame", "smoothing_frames": 3}}
    preprocess.detect_subject(samples, subject, tmp_path / "lm.h5", params)
    with h5py.File(tmp_path / "lm.h5") as h5:
        for group in h5["clips"].values():
            track = group["landmarks"][()]
            assert track.shape == (len(group["frame_numbers"]), 68, 2)
            # Micro-sized motion and smoothing: the typical landmark moves a few px at most over a clip
            # (blinks move eyelid points more; that jitter is why `reference` is the default).
            assert np.median(np.abs(track - track[0]).max(axis=0)) < 3
    preprocess.align_subject(samples, subject, tmp_path / "lm.h5", tmp_path / "al.h5", params)
    with h5py.File(tmp_path / "al.h5") as h5:
        transforms = next(iter(h5["clips"].values()))["transforms"][()]
        assert len({t.tobytes() for t in transforms}) > 1  # one transform per frame


def test_auto_region_sizes_are_dataset_means_in_multiples_of_12(preprocessed, tmp_path):
    table = {name: {**spec, "size": "auto"} for name, spec in TABLE.items()}
    aligned = sorted((preprocessed["out"] / "aligned").rglob("*.h5"))
    sizes = preprocess.region_sizes(aligned, table, preprocessed["params"]["alignment"]["iod"])
    assert set(sizes) == {"casme2", "samm", "smic"}
    for dataset_sizes in sizes.values():
        assert set(dataset_sizes) == set(regions.REGION_NAMES)
        assert all(v % regions.SIZE_MULTIPLE == 0 and v > 0 for size in dataset_sizes.values() for v in size)
    # The eyes' boxes are about 1.2 x 0.8 inter-ocular distances (64 px): 72 x 48 after rounding.
    assert sizes["casme2"]["left_eye"][0] > sizes["casme2"]["left_eye"][1]


def test_detection_widths_double_up_to_full_resolution():
    assert landmarks.detection_widths(640, 320, 0) == [320, None]
    assert landmarks.detection_widths(2040, 320, 0) == [320, 640, 1280, None]
    assert landmarks.detection_widths(256, 320, 0) == [None]  # frames no wider are searched as they are
    assert landmarks.detection_widths(640, None, 0) == [None]
    assert landmarks.detection_widths(640, 320, 1) == [None]  # upsampling runs at full resolution


def test_detection_on_a_smaller_copy_fits_the_points_at_full_resolution():
    photo = cv2.imread(
        os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"), cv2.IMREAD_GRAYSCALE
    )
    full = landmarks.detect(photo, upsample=0)
    iod = regions.inter_ocular_distance(full.landmarks)
    for width in (256, 64):
        found = landmarks.detect(photo, upsample=0, detect_width=width)
        assert found is not None and found.upsample == 0, width
        # Box and points in the frame's px, as close to the full-resolution fit as the detector's own
        # box quantisation allows (a shift of the frame by a few px moves the points by as much).
        assert np.abs(np.subtract(found.box, full.box)).max() < 0.3 * iod, width
        assert np.abs(found.landmarks - full.landmarks).mean() < 0.06 * iod, width
    # At 64 px the face is too small for the detector: the 64 px result came from a wider copy.
    tiny = cv2.resize(photo, (64, round(photo.shape[0] * 64 / photo.shape[1])), interpolation=cv2.INTER_AREA)
    assert landmarks.detect(tiny, upsample=0) is None


def test_a_failed_preprocess_leaves_no_partial_file(tiny_indexed_corpus, tmp_path, capsys):
    """`localmer preprocess` meets a corrupt frame in a subject's second clip: it fails, and writes no
    landmarks file holding only the first clip, nor leaves its partial file. Control: the same run on
    intact frames writes the file with every clip."""
    samples = tiny_indexed_corpus["samples"]
    subject = samples[samples.subject == "casme2/sub01"].copy()
    assert len(subject) >= 2
    subject["frame_dir"] = [str(shutil.copytree(d, tmp_path / "frames" / Path(d).name)) for d in subject.frame_dir]
    subject.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    command = ["preprocess", "--samples", str(tmp_path / "samples.tsv"), "--subjects", "casme2/sub01"]
    command += ["--config", str(REPO / "config" / "config.yaml"), "--base-dir", str(REPO)]
    landmarks_file = Path("landmarks") / "casme2" / "sub01.h5"

    assert cli([*command, "--out", str(tmp_path / "intact")]) == 0
    with h5py.File(tmp_path / "intact" / landmarks_file) as h5:
        assert sorted(h5["clips"]) == sorted(subject["clip"])

    second = subject.iloc[1]
    onset_frame = next(n for n in second.frames.split("|") if frame_number(n) == second.onset)
    (Path(second.frame_dir) / onset_frame).write_bytes(b"not an image")
    capsys.readouterr()
    assert cli([*command, "--out", str(tmp_path / "broken")]) == 2
    assert "cannot be decoded" in capsys.readouterr().err
    assert not (tmp_path / "broken" / landmarks_file).exists()
    assert not [p for p in (tmp_path / "broken").rglob("*") if p.is_file()]  # no partial file either
