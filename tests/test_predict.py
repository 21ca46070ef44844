"""Model bundles and ``localmer predict``: final models trained on two subjects of the tiny synthetic
corpus (1-2 epochs), bundled, checked and applied to the held-out subject's clip as a frame folder and
as a video; a face that is absent or leaves is a skipped row, not a prediction; windows cover the whole
clip; a video with no face, a corrupted bundle, wrong inputs and arguments give clear errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import CLASSES, write_video
from test_frames import header_frame_count, overstate_avi_frame_count

from localmer import bundle, frames, predict, regions, stages, training
from localmer.cli import main as cli
from localmer.regions import REGION_NAMES


def frame_paths(sample) -> list[Path]:
    return [Path(sample.frame_dir) / name for name in sample.frames.split("|")]


@pytest.fixture(scope="module")
def trained_bundle(tiny_fold, tiny_preprocessed, tmp_path_factory) -> dict:
    """The shared fold's models (two subjects; the third, its test subject, is held out for
    prediction), bundled."""
    fold, settings = tiny_fold["fold"], tiny_fold["settings"]
    out = tmp_path_factory.mktemp("bundle")
    patch_files = {s: tiny_preprocessed["patch_files"][s] for s in fold.train_subjects}
    description = bundle.write_bundle(
        out / "bundle",
        tiny_fold["models"],
        tiny_fold["temporal"]["model"],
        tiny_fold["temporal"]["normalisation"],
        stages.stage_settings(settings, "temporal"),
        regions.load_region_table(settings["preprocessing"]["regions"]),
        bundle.region_sizes_of(patch_files.values()),
        CLASSES,
        training.region_classes(CLASSES, settings["model"]["region_labels"]),
        "abc123",
        list(fold.train_subjects),
        "tiny",
    )
    samples = tiny_fold["samples"]
    test = samples[samples.subject == fold.name].reset_index(drop=True)
    return {"path": out / "bundle", "description": description, "test": test, "held_out": fold.name}


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


def tampered_copy(source: Path, target: Path, edit=None, *, redigest: bool = False, links: dict | None = None) -> Path:
    """A copy of bundle ``source`` whose files are links to the original's (151 MB not copied), its
    bundle.json passed through ``edit`` (description -> new content); ``redigest`` recomputes the digest
    as a forger would; ``links`` points bundle files at other originals (name -> original's name)."""
    description = json.loads((source / "bundle.json").read_text())
    for name in description["files"]:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).symlink_to(source / (links or {}).get(name, name))
    content = edit(description) if edit else description
    if redigest:
        content["digest"] = bundle.description_digest(content)
    (target / "bundle.json").write_text(content if isinstance(content, str) else json.dumps(content))
    return target


def edited(**changes):
    return lambda description: {**description, **changes}


def without(field):
    return lambda description: {k: v for k, v in description.items() if k != field}


def mouth_size(size):
    return lambda description: {**description, "region_sizes": {**description["region_sizes"], "mouth": size}}


TAMPERED = {
    # A relabelling: caught by bundle.json's own digest (the files' digests do not cover it).
    "classes reordered": (edited(classes=CLASSES[::-1]), {}, r"bundle\.json has been edited or corrupted"),
    "not an object": (lambda d: [d], {}, "expected a JSON object, found a list"),
    "truncated": (lambda d: json.dumps(d)[: len(json.dumps(d)) // 2], {}, r"bundle\.json: corrupted \("),
    "classes missing": (without("classes"), {"redigest": True}, "field 'classes' is missing"),
    "duplicate class": (edited(classes=["negative"] * 3), {"redigest": True}, "field 'classes' should be"),
    "region size not a pair": (mouth_size([60]), {"redigest": True}, "field 'region_sizes' should be"),
    "model file swapped": (
        None,
        {"links": {"spatial/mouth.keras": "spatial/nose.keras"}},
        r"mouth\.keras' is corrupted",
    ),
    "flow input without its flow settings": (
        lambda d: {**d, "model": {**d["model"], "input": "flow", "flow_range": 2.0, "strain_range": 0.5}},
        {"redigest": True},
        r"field 'preprocessing' should hold, for model.input flow, flow: a method .* pairs including 'onset_frames'",
    ),
    # A consistent description (digest recomputed) that the loaded models contradict (more cases below):
    "one class more": (
        edited(classes=[*CLASSES, "other"]),
        {"redigest": True},
        "3 outputs, bundle.json lists 4 classes",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_tampered_bundle_is_a_one_line_error(case, trained_bundle, tmp_path, capsys):
    edit, options, message = TAMPERED[case]
    copy = tampered_copy(trained_bundle["path"], tmp_path / "bundle", edit, **options)
    capsys.readouterr()
    assert cli(["predict", str(copy), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_the_digest_is_what_catches_a_relabelling(trained_bundle, tmp_path):
    """Control for "classes reordered": the same reorder with the digest recomputed is self-consistent,
    so no check can tell it from a bundle trained with that class order; the digest guards against edits
    and corruption, not against someone who recomputes it. An untampered copy passes too."""
    assert bundle.check_bundle(tampered_copy(trained_bundle["path"], tmp_path / "same"))["classes"] == CLASSES
    forged = tampered_copy(trained_bundle["path"], tmp_path / "forged", edited(classes=CLASSES[::-1]), redigest=True)
    assert bundle.check_bundle(forged)["classes"] == CLASSES[::-1]
    # An old bundle (format 1, no digest) is refused by its version, before the digest is looked at.
    old = tampered_copy(
        trained_bundle["path"], tmp_path / "old", lambda d: {**without("digest")(d), "format_version": 1}
    )
    with pytest.raises(bundle.BundleError, match="format version 1 .* reads version 2"):
        bundle.check_bundle(old)


def test_models_that_contradict_the_description_are_refused(trained_bundle, loaded):
    """check_models on the loaded models (loaded once here, not per case as predict would)."""
    import keras

    root = trained_bundle["path"]
    classifiers = {r: keras.saving.load_model(root / bundle.spatial_file(r)) for r in REGION_NAMES}
    description = trained_bundle["description"]
    rest = (loaded.temporal, loaded.mean, loaded.std, root)
    bundle.check_models(description, classifiers, *rest)  # control: the bundle as written fits its models
    with pytest.raises(bundle.BundleError, match=r"mouth\.keras: input \(9, 12, 20, 1\), .* 72x36 .* \(9, 12, 24, 1\)"):
        bundle.check_models(mouth_size([72, 36])(description), classifiers, *rest)
    with pytest.raises(bundle.BundleError, match=r"mouth\.keras: input \(9, 16, 12, 1\)"):
        bundle.check_models(description, {**classifiers, "mouth": classifiers["nose"]}, *rest)
    flow = {**description, "model": {**description["model"], "input": "flow"}}
    with pytest.raises(
        bundle.BundleError, match=r"left_eye\.keras: input \(9, 12, 16, 1\), .* model.input flow gives \(9, 12, 16, 3\)"
    ):
        bundle.check_models(flow, classifiers, *rest)  # one-channel models, a description of flow input
    with pytest.raises(bundle.BundleError, match="4 outputs, bundle.json lists 3 region classes"):
        bundle.check_models(edited(region_classes=CLASSES)(description), classifiers, *rest)
    with pytest.raises(bundle.BundleError, match=r"statistics of shape \(5, 256\)"):
        bundle.check_models(description, classifiers, loaded.temporal, loaded.mean[:5], loaded.std, root)


@pytest.fixture(scope="module")
def loaded(trained_bundle):
    return bundle.read_bundle(trained_bundle["path"])


COLUMNS = ["input", "window", "onset", "offset", "frames", "reference_frame", "status", "reason", "notes", "predicted"]


def check_table(table: pd.DataFrame, rows: int | None = None) -> None:
    """Columns in order; predicted rows' probabilities sum to 1 and name the class; skipped rows have a
    reason and neither class nor probabilities."""
    assert list(table.columns) == COLUMNS + [f"prob_{c}" for c in CLASSES]
    assert set(table.status) <= {"ok", "skipped"}
    ok, skipped = table[table.status == "ok"], table[table.status == "skipped"]
    probabilities = ok[[f"prob_{c}" for c in CLASSES]].to_numpy(dtype=float)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert (ok.predicted == [CLASSES[i] for i in probabilities.argmax(axis=1)]).all()
    assert (ok.reason == "").all() and ok.reference_frame.notna().all()
    assert (skipped.reason != "").all() and skipped[[f"prob_{c}" for c in CLASSES]].isna().all().all()
    assert (skipped.predicted == "").all()
    if rows is not None:
        assert len(table) == rows


def test_predict_a_held_out_clip_as_a_folder_and_as_a_video(trained_bundle, loaded, tmp_path, capsys):
    """Then, in one manifest: the clip as a folder and as videos, one with a header over-stating its
    frames (a note), and the folder with no face on its first two frames from the onset on (the
    reference is found later, but the face check finds the face missing on a kept frame: skipped)."""
    sample = trained_bundle["test"].iloc[0]
    onset, offset = int(sample.onset), int(sample.offset)
    folder, late = tmp_path / "clip", tmp_path / "late"
    for copy in (folder, late):
        copy.mkdir()
        for path in frame_paths(sample):
            shutil.copy(path, copy / path.name)
    table = predict.predict(loaded, [str(folder)], onset, offset, qc_dir=tmp_path / "qc")
    check_table(table, 1)
    assert table.frames[0] == trained_bundle["description"]["preprocessing"]["n_frames"]
    assert table.status[0] == "ok" and table.reference_frame[0] == onset  # the face is on the onset frame
    assert len(list((tmp_path / "qc").glob("*.png"))) == 1
    # The same clip as a video (0-based frame numbers), the whole clip, through the command line.
    images = [frames.read_image(p) for p in frame_paths(sample)]
    video = tmp_path / "clip.avi"
    write_video(images, video)
    out = tmp_path / "predictions.csv"
    assert cli(["predict", str(trained_bundle["path"]), str(video), "--out", str(out)]) == 0
    check_table(pd.read_csv(out, keep_default_na=False), 1)
    # A manifest CSV, paths relative to its folder.
    write_video(images, tmp_path / "header.avi")
    overstate_avi_frame_count(tmp_path / "header.avi", len(images) + 3)
    assert header_frame_count(tmp_path / "header.avi") == len(images) + 3
    inside = [p for p in frame_paths(sample) if onset <= frames.frame_number(p.name) <= offset]
    for path in inside[:2]:
        cv2.imwrite(str(late / path.name), np.full((180, 160), 128, np.uint8))
    manifest = tmp_path / "clips.csv"
    pd.DataFrame(
        {
            "path": ["clip", "clip.avi", "header.avi", "late"],
            "onset": [onset, "", "", onset],
            "offset": [offset, "", "", offset],
        }
    ).to_csv(manifest, index=False)
    capsys.readouterr()
    assert cli(["predict", str(trained_bundle["path"]), str(manifest), "--out", str(tmp_path / "p.json")]) == 0
    assert "1 of 4 rows not predicted" in capsys.readouterr().err
    records = json.loads((tmp_path / "p.json").read_text())
    assert records[3]["prob_negative"] is None and records[3]["predicted"] == ""  # valid JSON: null, not NaN
    table = pd.DataFrame(records)
    check_table(table, 4)
    assert list(table.status) == ["ok", "ok", "ok", "skipped"] and table.offset[2] == len(images) - 1
    assert list(table.notes) == [
        "",
        "",
        f"header says {len(images) + 3} frames, {len(images)} decode: using {len(images)}",
        "",
    ]
    assert table.reference_frame[0] == onset and table.reference_frame[3] > onset  # control: the clean folder
    assert f"reference frame {table.reference_frame[3]} " in table.reason[3]
    assert f"no face on frames {onset}" in table.reason[3]


def test_window_over_a_long_video_gives_one_row_per_window(trained_bundle, loaded, tmp_path):
    images = [frames.read_image(p) for p in frame_paths(trained_bundle["test"].iloc[0])]
    video = tmp_path / "long.avi"
    write_video(images + images[::-1] + images, video)
    count = len(images) * 3
    starts = list(range(0, count - 6 + 1, 4))
    if starts[-1] + 6 < count:  # the strides miss the last frames: a last window ends on the last frame
        starts.append(count - 6)
    table = predict.predict(loaded, [str(video)], window=6, stride=4)
    check_table(table, len(starts))
    assert len(starts) >= 2 and (table.status == "ok").all()
    assert list(table.onset) == starts and list(table.offset) == [s + 5 for s in starts]
    assert table.offset.iloc[-1] == count - 1


def test_a_video_whose_face_leaves_is_reported_window_by_window(trained_bundle, loaded, tmp_path):
    """The first window is predicted; the one whose face leaves halfway through and the one with no
    face at all are skipped, each saying why."""
    images = [frames.read_image(p) for p in frame_paths(trained_bundle["test"].iloc[0])]
    video = tmp_path / "leaves.avi"
    write_video(images + [np.full((180, 160), 128, np.uint8)] * len(images), video)
    n = len(images)
    table = predict.predict(loaded, [str(video)], window=n, stride=n // 2)
    check_table(table)
    assert list(table.status) == ["ok"] + ["skipped"] * (len(table) - 1) and len(table) >= 3
    assert table.reference_frame[1] == n // 2 and "is not on every kept frame checked" in table.reason[1]
    assert re.search(rf"no face on frames [\d, ]*\b{n // 2 + n - 1}$", table.reason[1])
    assert table.reason.iloc[-1].startswith(f"no face on frames {table.onset.iloc[-1]}..")
    assert pd.isna(table.reference_frame.iloc[-1])


def test_bad_inputs_give_clear_errors(trained_bundle, loaded, tmp_path, capsys):
    write_video([np.full((180, 160), 90, np.uint8)] * 6, tmp_path / "empty.avi")
    # No face at all: a skipped row; through the command line, nothing predicted is an error.
    (row,) = predict.predict(loaded, [str(tmp_path / "empty.avi")]).to_dict("records")
    assert row["status"] == "skipped" and re.fullmatch(r"no face on frames 0\.\.5 .*", row["reason"])
    # --offset alone: the onset defaults to the first frame (and --onset alone below to the last).
    (row,) = predict.predict(loaded, [str(tmp_path / "empty.avi")], offset=3).to_dict("records")
    assert (row["onset"], row["offset"]) == (0, 3)
    capsys.readouterr()
    assert cli(["predict", str(trained_bundle["path"]), str(tmp_path / "empty.avi"), "--onset", "1"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("localmer predict: error: nothing was predicted: all 1 rows skipped")
    assert "no face on frames 1..5" in error
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    with pytest.raises(predict.PredictError, match="cannot be read by OpenCV"):
        predict.predict(loaded, [str(tmp_path / "broken.mp4")])
    write_video([np.full((20, 24), 90, np.uint8)] * 4, tmp_path / "tiny.avi")
    with pytest.raises(predict.PredictError, match="too small"):
        predict.predict(loaded, [str(tmp_path / "tiny.avi")])
    with pytest.raises(predict.PredictError, match="onset 5 and offset 2"):
        predict.predict(loaded, [str(tmp_path / "empty.avi")], onset=5, offset=2)
    with pytest.raises(predict.PredictError, match=r"empty\.avi: --window 7 is longer than the clip's 6 frames"):
        predict.predict(loaded, [str(tmp_path / "empty.avi")], window=7)
    capsys.readouterr()
    assert cli(["predict", str(tmp_path), str(tmp_path / "empty.avi")]) == 2
    assert "is not a model bundle" in capsys.readouterr().err
    (tmp_path / "m.csv").write_text("file\nx\n")
    with pytest.raises(predict.PredictError, match="needs a column 'path'"):
        predict.predict(loaded, [str(tmp_path / "m.csv")])


def test_windows_cover_every_frame_and_window_lengths_are_checked(tmp_path):
    span = predict.ClipSpan("clip", frames.ClipFrames(tmp_path, None, range(10, 20)), 10, 19)
    bounds = lambda w, s: [(part.onset, part.offset) for part in predict.windows(span, w, s)]  # noqa: E731
    assert bounds(4, 3) == [(10, 13), (13, 16), (16, 19)]  # the strides end on the last frame
    assert bounds(4, 4) == [(10, 13), (14, 17), (16, 19)]  # they do not: a last window ends there
    assert bounds(10, 5) == [(10, 19)]
    assert bounds(2, 9) == [(10, 11), (18, 19)]
    with pytest.raises(predict.PredictError, match="--window 11 is longer than the clip's 10 frames"):
        predict.windows(span, 11, 1)
    for bad, message in [(1, "--window must be at least 2"), (0, "--window must be at least 2")]:
        with pytest.raises(predict.PredictError, match=message):
            predict.windows(span, bad, 1)
    with pytest.raises(predict.PredictError, match="--stride must be at least 1"):
        predict.windows(span, 4, 0)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--window", "1"], "--window must be at least 2 frames"),
        (["--window", "0"], "--window must be at least 2 frames"),
        (["--window", "4", "--stride", "0"], "--stride must be at least 1 frame, not 0"),
        (["--stride", "2"], "--stride needs --window"),
        (["--out", "p.txt"], "--out 'p.txt': expected a file name ending in .csv or .json"),
    ],
)
def test_bad_arguments_are_one_line_errors_before_any_work(tmp_path, capsys, arguments, message):
    # The bundle does not exist: the argument is refused before the bundle is read.
    assert cli(["predict", str(tmp_path / "no-bundle"), str(tmp_path / "clip.avi"), *arguments]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"localmer predict: error: {message}")
    # Control: with a good argument the same command gets as far as the bundle.
    assert cli(["predict", str(tmp_path / "no-bundle"), str(tmp_path / "clip.avi")]) == 2
    assert "is not a model bundle" in capsys.readouterr().err


def test_library_notices_only_with_verbose(trained_bundle, tmp_path):
    """`localmer predict` in a fresh process: TensorFlow's C++ notices, absl's, tf.data's E0000 line and
    tf.function's retracing warning stay out of stderr by default; with --verbose (the control: they are
    printed in this run) they are shown. Errors reaching stderr: test_ffmpeg_messages_... in test_cli."""
    sample = trained_bundle["test"].iloc[0]
    command = [sys.executable, "-m", "localmer", "predict", str(trained_bundle["path"]), sample.frame_dir]
    # Without the variables an in-process cli() call of an earlier test has set (they would win).
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "OPENCV_FFMPEG_LOGLEVEL")}
    # Both at once: each is a single-threaded process, mostly importing TensorFlow and loading models.
    runs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for c in (command, [*command[:3], "--verbose", *command[3:]])
    ]
    (quiet_out, quiet_err), (_, verbose_err) = (run.communicate(timeout=600) for run in runs)
    assert [run.returncode for run in runs] == [0, 0] and "prob_negative" in quiet_out, quiet_err + verbose_err
    noise = ("E0000", "I0000", "absl::InitializeLog", "tf.function retracing", "oneDNN", "cpu_feature_guard")
    assert not [line for line in quiet_err.splitlines() if any(n in line for n in noise)], quiet_err
    assert "tf.function retracing" in verbose_err and "E0000" in verbose_err, verbose_err
