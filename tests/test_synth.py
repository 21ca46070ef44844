"""Tests of the synthetic corpus generator (localmer.synth), on tiny corpora."""

import csv
import dataclasses
import hashlib
import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml
from conftest import ANNOTATIONS, REPO

from localmer import datasets, facs, labels, synth, tasks
from localmer.landmarks import detect
from localmer.tasks.megc2019 import MEGC2019_CLASSES

TINY = {
    "seed": 7,
    "null": False,
    "image_size": [160, 180],
    "amplitude_px": [1.0, 4.0],
    "duration_s": [0.04, 0.3],
    "blink_probability": 0.35,
    "noise_sigma": 2.0,
    "parts": {
        "casme2": {"subjects": 2, "clips_per_class": 1, "extra_clips_per_subject": 1, "fps": 50},
        "samm": {"subjects": 1, "clips_per_class": 1, "extra_clips_per_subject": 1, "fps": 50},
        "smic": {"subjects": 1, "clips_per_class": 1, "extra_clips_per_subject": 1, "fps": 50},
    },
}
# The headers the synthetic sheets must carry are the real sheets' own (tests/fixtures/annotations).
CASME_HEADER = [c.value for c in openpyxl.load_workbook(ANNOTATIONS / "CASME2-coding-20140508.xlsx").active[1]]
SAMM_HEADER = [c.value for c in openpyxl.load_workbook(ANNOTATIONS / "SAMM_Micro_FACS_Codes_v2.xlsx")["MICRO_ONLY"][14]]


def with_changes(params: dict, **changes) -> dict:
    return {**params, **changes}


def file_digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def read_truth(root: Path) -> list[dict]:
    with (root / "synth_clips.tsv").open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def read_frame(root: Path, row: dict, number: int) -> np.ndarray:
    name = synth.frame_name(row["part"], row["subject"], number, row["image_format"])
    frame = cv2.imread(str(root / row["frame_dir"] / name), cv2.IMREAD_UNCHANGED)
    assert frame is not None, name
    return frame.astype(np.float64)


def frame_numbers(folder: Path) -> list[int]:
    return sorted(int(re.search(r"(\d+)\.\w+$", p.name).group(1)) for p in folder.iterdir())


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "corpus"
    synth.write_corpus(out, TINY)
    return out


def test_same_seed_gives_identical_bytes_and_another_seed_different_frames(tiny_corpus, tmp_path):
    again = tmp_path / "again"
    summary = synth.write_corpus(again, TINY, workers=2)  # any worker count writes the same corpus
    assert summary["seed"] == 7 and summary["null"] is False
    assert file_digests(again) == file_digests(tiny_corpus)

    other = tmp_path / "other"
    synth.write_corpus(other, with_changes(TINY, seed=8))

    def frame_digests(root):
        return {digest for path, digest in file_digests(root).items() if path.endswith((".jpg", ".bmp"))}

    assert frame_digests(other) and not frame_digests(other) & frame_digests(tiny_corpus)


def test_rerun_replaces_an_earlier_corpus_but_not_foreign_folders(tiny_corpus, tmp_path):
    out = tmp_path / "corpus"
    synth.write_corpus(out, with_changes(TINY, seed=3))
    synth.write_corpus(out, TINY)  # replaces the seed-3 frames instead of mixing with them
    assert file_digests(out) == file_digests(tiny_corpus)

    foreign = tmp_path / "foreign"
    (foreign / "casme2").mkdir(parents=True)
    (foreign / "casme2" / "mine.txt").write_text("not synthetic")
    with pytest.raises(FileExistsError):
        synth.write_corpus(foreign, TINY)


def test_sheets_ground_truth_and_folders_have_the_real_layout(tiny_corpus):
    truth = {(r["part"], r["clip"]): r for r in read_truth(tiny_corpus)}

    casme_book = openpyxl.load_workbook(tiny_corpus / "casme2" / "CASME2-coding-20140508.xlsx")
    assert casme_book.sheetnames == ["Sheet1", "Sheet2", "Sheet3"]
    casme_sheet = casme_book["Sheet1"]
    assert [c.value for c in casme_sheet[1]] == CASME_HEADER
    assert {c.data_type for c in casme_sheet["A"][1:]} == {"s"}  # '01' is text
    casme = pd.read_excel(tiny_corpus / "casme2" / "CASME2-coding-20140508.xlsx")
    assert casme.columns.tolist() == [
        "Subject",
        "Filename",
        "Unnamed: 2",
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        "Unnamed: 6",
        "Action Units",
        "Estimated Emotion",
    ]
    assert sorted(casme["Subject"].unique()) == [1, 2]
    assert set(casme["Estimated Emotion"]) <= {"happiness", "surprise", "disgust", "repression", "others"}
    for value in casme["Action Units"]:  # a single plain AU is a number, anything else text
        assert isinstance(value, int) or not str(value).isdigit()

    samm_book = openpyxl.load_workbook(tiny_corpus / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx")
    assert samm_book.sheetnames == ["MICRO_ONLY"]
    samm_sheet = samm_book["MICRO_ONLY"]
    assert [c.value for c in samm_sheet[14]] == SAMM_HEADER
    assert samm_sheet["A15"].value == "006" and samm_sheet["A15"].data_type == "s"
    assert samm_sheet["G15"].value == "=SUM(F15-D15)+1"
    samm = pd.read_excel(tiny_corpus / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx", sheet_name="MICRO_ONLY", skiprows=13)
    assert samm.columns.tolist() == SAMM_HEADER
    assert set(samm["Subject"]) == {6} and set(samm["Micro"]) == {"Micro - 1/2"}

    sheet_rows = [
        ("casme2", f"sub{r.Subject:02d}", r.Filename, r.OnsetFrame, r.ApexFrame, r.OffsetFrame, r._9)
        for r in casme.itertuples()
    ]
    sheet_rows += [("samm", f"{r.Subject:03d}", r.Filename, r._4, r._5, r._6, r._10) for r in samm.itertuples()]
    assert len(sheet_rows) == sum(r["part"] != "smic" for r in truth.values())
    objective = synth.classes.SAMM_OBJECTIVE_CLASSES
    assert [objective[e] for e in samm["Estimated Emotion"]] == samm["Objective Classes"].tolist()
    for part, subject, clip, onset, apex, offset, emotion in sheet_rows:
        row = truth[(part, clip)]
        assert row["subject"] == subject and row["frame_dir"] == f"{part}/{subject}/{clip}"
        assert row["emotion"] == emotion  # the truth table writes the emotion as the sheet does
        assert (int(row["onset"]), int(row["apex"]), int(row["offset"])) == (onset, apex, offset)
        assert onset < apex < offset
        numbers = frame_numbers(tiny_corpus / row["frame_dir"])
        assert numbers == list(range(numbers[0], numbers[-1] + 1))  # contiguous
        assert numbers[0] < onset and offset < numbers[-1]  # a few frames either side
    for row in truth.values():
        if row["part"] == "smic":  # a SMIC folder holds exactly onset..offset
            numbers = frame_numbers(tiny_corpus / row["frame_dir"])
            assert numbers == list(range(int(row["onset"]), int(row["offset"]) + 1))
            assert all(
                p.name.startswith("image") and len(p.stem) == 11 for p in (tiny_corpus / row["frame_dir"]).iterdir()
            )

    raw = (tiny_corpus / "megc2019_gt.csv").read_bytes()
    assert raw.endswith(b"\r\n") and raw.count(b"\r\n") == raw.count(b"\n")
    gt = pd.read_csv(
        tiny_corpus / "megc2019_gt.csv", header=None, names=["dataset", "subject", "filename", "label"], dtype=str
    )
    assert gt["dataset"].tolist() == ["casme2"] * 6 + ["smic"] * 3 + ["samm"] * 3
    labels = dict(zip(MEGC2019_CLASSES, "012", strict=True))
    for r in gt.itertuples():
        clip = r.filename
        if r.dataset == "smic":
            assert r.subject == "s01" and re.fullmatch(r"s01_(ne|po|sur)_\d\d", clip)
            clip = "s1" + clip[3:]
        row = truth[(r.dataset, clip)]
        assert r.label == labels[row["class"]]
        assert r.subject == {"casme2": row["subject"], "samm": "6", "smic": "s01"}[r.dataset]
    smic_dirs = sorted(row["frame_dir"] for row in truth.values() if row["part"] == "smic")
    assert [re.sub(r"_\d\d$", "", d) for d in smic_dirs] == [
        "smic/HS/s1/micro/negative/s1_ne",
        "smic/HS/s1/micro/positive/s1_po",
        "smic/HS/s1/micro/surprise/s1_sur",
        "smic/HS/s1/non_micro/s1_nm",
    ]
    samm_frame = next((tiny_corpus / "samm" / "006").rglob("*.jpg"))
    assert re.fullmatch(r"006_\d{5}\.jpg", samm_frame.name)
    assert cv2.imread(str(samm_frame), cv2.IMREAD_UNCHANGED).ndim == 2  # SAMM is grey


def action_box(motion: synth.ClipMotion, apex_index: int) -> np.ndarray:
    """Mask of the landmarks that the action moves most at the apex."""
    shift = np.linalg.norm(motion.landmarks[apex_index], axis=1)
    assert shift.max() > 0
    return shift >= 0.5 * shift.max()


def test_null_mode_changes_nothing_but_the_facial_action(tmp_path):
    params = with_changes(
        TINY,
        amplitude_px=[3.0, 4.0],
        blink_probability=0.0,
        parts={"casme2": {"subjects": 2, "clips_per_class": 1, "extra_clips_per_subject": 0, "fps": 50}},
    )
    action, null = tmp_path / "action", tmp_path / "null"
    synth.write_corpus(action, params)
    synth.write_corpus(null, with_changes(params, null=True))

    action_files, null_files = file_digests(action), file_digests(null)
    assert action_files.keys() == null_files.keys()
    for name in ("casme2/CASME2-coding-20140508.xlsx", "megc2019_gt.csv"):
        assert action_files[name] == null_files[name]
    timing = ["part", "subject", "clip", "class", "aus", "onset", "apex", "offset", "first_frame", "last_frame"]
    null_truth = read_truth(null)
    assert [[r[k] for k in timing] for r in read_truth(action)] == [[r[k] for k in timing] for r in null_truth]
    # Frames outside onset..offset carry no action: they are the very same bytes.
    for row in null_truth:
        name = synth.frame_name("casme2", row["subject"], int(row["first_frame"]), "jpg")
        path = f"{row['frame_dir']}/{name}"
        assert action_files[path] == null_files[path]

    subjects = synth.plan_corpus(params)
    action_change, null_change, nuisance_change = [], [], []
    for subject in subjects:
        geometry = synth.subject_geometry(subject)
        for clip in subject.clips:
            motion = synth.clip_motion(subject, clip, geometry)
            moved = geometry.landmarks[action_box(motion, clip.apex - clip.first_frame)]
            margin = 0.1 * geometry.iod
            x0, y0 = np.maximum(np.floor(moved.min(0) - margin).astype(int), 0)
            x1, y1 = np.ceil(moved.max(0) + margin).astype(int)
            box = (slice(y0, y1), slice(x0, x1))
            row = {"part": "casme2", "subject": subject.name, "frame_dir": clip.frame_dir, "image_format": "jpg"}

            def change(root, a, b, row=row, box=box):
                return np.abs(read_frame(root, row, a)[box] - read_frame(root, row, b)[box]).mean()

            action_change.append(change(action, clip.apex, clip.onset))
            null_change.append(change(null, clip.apex, clip.onset))
            nuisance_change.append(change(null, clip.onset, clip.first_frame))
    action_change, null_change, nuisance_change = map(np.array, (action_change, null_change, nuisance_change))
    # Null mode still changes (noise, drift, flicker), but clearly less than the action does.
    assert np.all(action_change > null_change), (action_change, null_change)
    assert action_change.mean() > 2 * null_change.mean(), (action_change, null_change)
    ratio = null_change.mean() / nuisance_change.mean()
    assert 1 / 3 < ratio < 3, (null_change, nuisance_change)


def test_peak_displacement_is_micro_sized():
    subjects = synth.plan_corpus(TINY)
    low, high = TINY["amplitude_px"]
    for subject in subjects:
        geometry = synth.subject_geometry(subject)
        assert abs(geometry.iod - 0.4 * TINY["image_size"][0]) < 0.15 * 0.4 * TINY["image_size"][0]
        for clip in subject.clips:
            motion = synth.clip_motion(subject, clip, geometry)
            apex = clip.apex - clip.first_frame
            assert motion.profile[apex] == 1.0
            assert motion.profile[clip.onset - clip.first_frame] == 0.0
            assert motion.profile[clip.offset - clip.first_frame] == 0.0
            peak_at_iod_100 = motion.peak_px * 100 / motion.iod
            assert low <= peak_at_iod_100 <= high
            assert peak_at_iod_100 == pytest.approx(clip.amplitude_px)
            landmark_peak = np.linalg.norm(motion.landmarks, axis=2).max(axis=1)
            assert landmark_peak.argmax() == apex
            # The dense field peaks at amplitude; the landmarks it moves most move nearly that much.
            assert 0.5 * motion.peak_px <= landmark_peak[apex] <= motion.peak_px + 1e-6


def test_every_emotion_pattern_is_a_code_of_action_units_the_generator_moves_and_the_regions_list():
    classes = synth.classes
    au_regions = labels.load_au_regions(REPO / "config" / "au_regions.yaml")
    shown = {*classes.CLASS_EMOTIONS.values(), *(e for part in classes.NEGATIVE_EMOTIONS.values() for e in part)}
    assert shown == classes.EMOTION_PATTERNS.keys()  # every emotion is shown, none lacks patterns
    for code in (code for patterns in classes.EMOTION_PATTERNS.values() for code in patterns):
        units = facs.parse_aus(code)
        assert "+".join(f"{u.side}{u.number}{u.intensity}" for u in units) == code  # no item dropped
        assert all(u.number in synth.AU_VECTORS and u.intensity in synth.INTENSITY_WEIGHTS for u in units), code
        assert all(u.number in au_regions for u in units), code


# A loose check that SAMM's Objective Classes cell fits the AUs the generator draws: the facial action
# each class is about, after Davison et al. (2018)'s grouping (I lip corners, II brows up / mouth open,
# III brows down / lids, IV nose, V lip corners down, VI fear, VII the rest); not their full table.
OBJECTIVE_CLASS_AUS = {
    1: [{6}, {12}],
    2: [{1, 2}, {5}, {25}, {26}],
    3: [{4}, {7}, {23}],
    4: [{9}, {10}],
    5: [{15}, {1, 4}],
    6: [{20}, {1, 2, 4}],
    7: [{14}, {18}, {24}],  # contempt and the others
}
SAMM_NAMES = {written: emotion for emotion, written in synth.classes.SAMM_EMOTIONS.items()}
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["synthetic"]


@pytest.fixture(scope="module")
def demo_plan() -> list:
    """The plan of the demo corpus (config/config.yaml), no pixels."""
    return synth.plan_corpus(DEMO)


def clips_of(subjects: list) -> list:
    return [clip for subject in subjects for clip in subject.clips]


def foreign_patterns(clips: list) -> list[tuple[str, str, str]]:
    """(part, emotion, aus) of every clip whose AUs are not among its emotion's own patterns."""
    classes = synth.classes
    found = []
    for clip in clips:
        if clip.part == "smic":  # the folder names the class; a negative shows one of SMIC's negatives
            emotions = classes.NEGATIVE_EMOTIONS["smic"] if clip.label == "negative" else []
            emotions = emotions or [classes.CLASS_EMOTIONS[clip.label]]
        else:
            emotions = [clip.emotion if clip.part == "casme2" else SAMM_NAMES[clip.emotion]]
        if not any(clip.aus in classes.EMOTION_PATTERNS[e] for e in emotions):
            found.append((clip.part, clip.emotion, clip.aus))
    return found


def task_value(task, clip) -> str:
    """What the task labels a planned clip from, as the index reads it: SMIC's folder, SAMM's Objective
    Classes cell, or the emotion the sheet writes."""
    if clip.part == "smic":
        return clip.label
    if task.field_of(clip.part) == "objective_class":
        return str(synth.classes.SAMM_OBJECTIVE_CLASSES[clip.emotion])
    return clip.emotion


def missing_task_classes(clips: list) -> list[tuple[str, str, str]]:
    """(task, part, class) of every registered task's class with no clip of a part the task maps."""
    missing = []
    for task in tasks.TASKS.values():
        for part, mapping in task.mapping.items():
            if part not in {"casme2", "samm", "smic"}:
                continue
            present = {task.label(part, task_value(task, clip)) for clip in clips if clip.part == part}
            missing += [(task.name, part, c) for c in task.classes if c in mapping.values() and c not in present]
    return missing


def test_each_emotion_shows_its_own_action_units_and_no_two_emotions_share_a_pattern(demo_plan):
    patterns = synth.classes.EMOTION_PATTERNS
    owners = {}
    for emotion, codes in patterns.items():
        for code in codes:
            assert owners.setdefault(code, emotion) == emotion, (code, owners[code], emotion)
    clips = clips_of(demo_plan)
    assert foreign_patterns(clips) == []
    # Control: a clip showing another emotion's pattern is caught, also where only the AUs tell (SMIC).
    smic_negative = next(c for c in clips if c.part == "smic" and c.label == "negative")
    swapped = [dataclasses.replace(smic_negative, aus=patterns["repression"][0])]
    assert foreign_patterns(swapped) == [("smic", "negative", patterns["repression"][0])]
    # SAMM's Objective Classes cell agrees with the AUs the clip shows.
    for clip in (c for c in clips if c.part == "samm"):
        numbers = {u.number for u in facs.parse_aus(clip.aus)}
        objective = synth.classes.SAMM_OBJECTIVE_CLASSES[clip.emotion]
        assert any(units <= numbers for units in OBJECTIVE_CLASS_AUS[objective]), (clip.emotion, clip.aus)


def test_the_demo_corpus_has_every_class_of_every_task_and_the_megc_counts_per_subject(demo_plan):
    clips = clips_of(demo_plan)
    assert missing_task_classes(clips) == []
    casme, samm = datasets.casme2.EMOTIONS, datasets.samm.EMOTIONS
    for clip in clips:  # the real sheets' spellings
        if clip.part == "casme2":
            assert clip.emotion in casme, clip.emotion
        elif clip.part == "samm":
            assert clip.emotion.lower() in samm and clip.emotion == clip.emotion.capitalize(), clip.emotion
    # Negative emotions as balanced as the counts allow: 9 negatives of a part differ by at most one.
    for part, emotions in synth.classes.NEGATIVE_EMOTIONS.items():
        if part != "smic":
            counts = Counter(c.emotion for c in clips if c.part == part and c.label == "negative")
            assert len(counts) == len(emotions) and max(counts.values()) - min(counts.values()) <= 1, counts
    for subject in demo_plan:
        part = DEMO["parts"][subject.part]
        per_class, extra = part["clips_per_class"], part["extra_clips_per_subject"]
        expected = {**dict.fromkeys(MEGC2019_CLASSES, per_class), synth.EXTRA_CLASS: extra}
        assert Counter(c.label for c in subject.clips) == expected, subject.name
    # Control: one SAMM subject has only three negatives, so sadness (Objective Class V) and fear are absent;
    # samm_5class still has its classes (anger and contempt come first in the rotation).
    one_subject = with_changes(DEMO, parts={**DEMO["parts"], "samm": {**DEMO["parts"]["samm"], "subjects": 1}})
    assert missing_task_classes(clips_of(synth.plan_corpus(one_subject))) == [("objective_classes", "samm", "V")]


def test_null_mode_draws_the_same_emotions_and_action_units(demo_plan):
    null = clips_of(synth.plan_corpus(with_changes(DEMO, null=True)))
    fields = [(c.part, c.name, c.label, c.emotion, c.aus, c.amplitude_px) for c in clips_of(demo_plan)]
    assert [(c.part, c.name, c.label, c.emotion, c.aus, c.amplitude_px) for c in null] == fields
    assert {c.action_gain for c in null} == {0.0}


@pytest.mark.parametrize(
    ("code", "point", "still", "direction"),
    [
        # L/R = the subject's side: L moves image-right points (54), R image-left ones (48).
        ("L12", 54, 48, (1, -1)),  # lip corner up and out
        ("R12", 48, 54, (-1, -1)),
        ("L14", 54, 48, (-1, 0)),  # lip corner in
        ("15", 48, None, (0, 1)),  # lip corners down
        ("R1+R2", 21, 22, (0, -1)),  # brow up
        ("4", 21, None, (1, 1)),  # inner brow down and towards the other brow
        ("26", 8, None, (0, 1)),  # jaw down
        ("5", 37, 41, (0, -1)),  # upper lid up, lower lid still
    ],
)
def test_action_units_move_the_named_side_in_the_facs_direction(code, point, still, direction):
    right_side, left_side = synth.RIGHT_SIDE, {int(synth.MIRROR[i]) for i in synth.RIGHT_SIDE}
    assert not right_side & left_side
    assert len(right_side | left_side | synth.CENTRE_POINTS) == synth.N_CONTROLS
    subject = synth.plan_corpus(TINY)[0]
    geometry = synth.subject_geometry(subject)
    assert geometry.landmarks[54, 0] > geometry.landmarks[48, 0]  # subject's left is image-right
    clip = dataclasses.replace(subject.clips[0], aus=code, action_gain=1.0)
    motion = synth.clip_motion(subject, clip, geometry)
    shift = motion.landmarks[clip.apex - clip.first_frame]
    along_u, along_v = shift[point] @ geometry.u_axis, shift[point] @ geometry.v_axis
    for component, sign in zip((along_u, along_v), direction, strict=True):
        if sign:
            assert np.sign(component) == sign and abs(component) > 0.05 * motion.peak_px, (component, shift[point])
    if still is not None:
        assert np.linalg.norm(shift[still]) < 0.05 * np.linalg.norm(shift[point])


def test_blinks_occur_in_clips_of_several_classes(tmp_path):
    params = with_changes(
        TINY,
        image_size=[64, 72],
        duration_s=[0.04, 0.1],
        parts={"casme2": {"subjects": 6, "clips_per_class": 2, "extra_clips_per_subject": 1, "fps": 25}},
    )
    synth.write_corpus(tmp_path, params)
    truth = read_truth(tmp_path)
    blinking = {row["class"] for row in truth if row["blink"]}
    assert len(blinking) >= 2
    assert 0.1 < sum(bool(row["blink"]) for row in truth) / len(truth) < 0.7


@pytest.mark.parametrize("photo", synth.BASE_PHOTOS)
def test_dlib_finds_the_face_on_an_onset_frame(tiny_corpus, photo):
    row = next(r for r in read_truth(tiny_corpus) if r["photo"] == photo and r["part"] == "casme2")
    frame = read_frame(tiny_corpus, row, int(row["onset"])).astype(np.uint8)
    detection = detect(frame)
    assert detection is not None and detection.landmarks.shape == (68, 2)
    landmarks = detection.landmarks
    right_eye, left_eye = landmarks[36:42].mean(0), landmarks[42:48].mean(0)
    assert np.linalg.norm(left_eye - right_eye) == pytest.approx(0.4 * TINY["image_size"][0], rel=0.2)


def test_a_smaller_face_fraction_makes_valid_casme2_sized_frames(tmp_path):
    # 640x480 frames with a CASME II-like face (inter-ocular distance ~109 px): the face lies inside the
    # frame and the detector finds it on every clip's onset frame without upsampling.
    params = with_changes(
        TINY,
        image_size=[640, 480],
        iod_fraction=0.17,
        duration_s=[0.04, 0.08],
        parts={
            "casme2": {"subjects": 2, "clips_per_class": 1, "extra_clips_per_subject": 0, "fps": 25},
            "smic": {"subjects": 1, "clips_per_class": 1, "extra_clips_per_subject": 0, "fps": 25},
        },
    )
    synth.write_corpus(tmp_path, params)
    truth = read_truth(tmp_path)
    assert {row["photo"] for row in truth} == set(synth.BASE_PHOTOS)
    for subject in synth.plan_corpus(params):
        points = synth.subject_geometry(subject).landmarks
        assert (points.min(axis=0) > 40).all() and (points.max(axis=0) < [600, 440]).all(), subject.name
    for row in truth:
        assert float(row["iod_px"]) == pytest.approx(0.17 * 640, rel=0.12)
        frame = read_frame(tmp_path, row, int(row["onset"])).astype(np.uint8)
        detection = detect(frame, upsample=0, detect_width=320)
        assert detection is not None and detection.faces == 1, row["clip"]
        right_eye, left_eye = detection.landmarks[36:42].mean(0), detection.landmarks[42:48].mean(0)
        assert np.linalg.norm(left_eye - right_eye) == pytest.approx(float(row["iod_px"]), rel=0.1), row["clip"]


def test_a_failed_rerun_leaves_the_earlier_corpus_whole(tiny_corpus, tmp_path, monkeypatch):
    """A rerun interrupted after rendering one subject neither mixes its frames into the earlier corpus
    nor leaves a partial folder (a rerun that completes replaces it: the test above)."""
    import shutil

    from localmer.synth import corpus

    out = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, out)
    render, rendered = corpus.render_subject, []

    def render_then_interrupt(subject, out_dir):
        if rendered:
            raise KeyboardInterrupt
        rendered.append(subject)
        return render(subject, out_dir)

    monkeypatch.setattr(corpus, "render_subject", render_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        synth.write_corpus(out, with_changes(TINY, seed=3))
    assert rendered and file_digests(out) == file_digests(tiny_corpus)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in tiny_corpus.iterdir())
