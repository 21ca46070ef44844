"""The megc2019 corpus preset: the synthetic corpus in the MEGC 2019 composite's real shape.

The shape is checked against the real ground truth (tests/fixtures/annotations/combined_3class_gt.csv),
read here with the csv module, independently of the generator and the index.
"""

import copy
import csv
import hashlib
import re
from collections import Counter
from pathlib import Path

import cv2
import pytest
import yaml
from conftest import ANNOTATIONS, REPO, synthetic_datasets

from localmer import config, datasets, synth
from localmer.cli import main as cli
from localmer.synth import presets
from localmer.tasks.megc2019 import MEGC2019_CLASSES

PARTS = ("casme2", "samm", "smic")
# Small frames and 3 frames a clip: the whole composite (68 subjects, 442 clips) written in seconds.
SMALL = {"preset": "megc2019", "preset_frame_scale": 0.1, "preset_max_frames": 3}


def read_gt(path: Path) -> list[tuple[str, str, str, str]]:
    """Rows (dataset, subject, clip, label) of a MEGC 2019 ground-truth file."""
    with path.open(newline="") as handle:
        return [tuple(row) for row in csv.reader(handle) if row]


REAL_GT = read_gt(ANNOTATIONS / "combined_3class_gt.csv")


def gt_subject(part: str, folder: str) -> str:
    """A synthetic subject's folder as the ground truth writes the subject: sub01, 6, s01."""
    if part == "samm":
        return str(int(folder))
    if part == "smic":
        return f"s{int(folder[1:]):02d}"
    return folder


def real_counts() -> Counter:
    """Clips per (dataset, subject, label) in the real ground truth."""
    return Counter((dataset, subject, label) for dataset, subject, _, label in REAL_GT)


def plan_counts(subjects: list) -> Counter:
    return Counter(
        (clip.part, gt_subject(clip.part, clip.subject), str(MEGC2019_CLASSES.index(clip.label)))
        for subject in subjects
        for clip in subject.clips
        if clip.label in MEGC2019_CLASSES
    )


def file_digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def full_plan() -> list:
    return synth.plan_corpus({"preset": "megc2019"})


def test_the_shipped_shape_is_the_one_the_real_annotation_files_give():
    shipped = (REPO / "src" / "localmer" / "synth" / presets.PRESETS["megc2019"].shape_file).read_text()
    assert presets.dump_shape(presets.derive_megc2019(ANNOTATIONS)) == shipped


def test_the_plan_has_the_ground_truths_subjects_and_clips_per_subject_and_class(full_plan):
    assert len(full_plan) == len({(d, s) for d, s, _, _ in REAL_GT}) == 68
    assert plan_counts(full_plan) == real_counts()  # per part, subject and class
    per_part_class = Counter((part, label) for part, _, label in plan_counts(full_plan).elements())
    assert [per_part_class[(part, label)] for part in PARTS for label in "012"] == [
        *(88, 32, 25),  # CASME II
        *(92, 26, 15),  # SAMM
        *(70, 51, 43),  # SMIC-HS
    ]
    looks = {part: (s.image_size, s.fps, s.color, s.image_format) for s in full_plan for part in [s.part]}
    assert looks == {
        "casme2": ((640, 480), 200, True, "jpg"),
        "samm": ((2040, 1088), 200, False, "jpg"),
        "smic": ((640, 480), 100, True, "bmp"),
    }
    # Clip lengths are real onset..offset lengths: CASME II's and SAMM's own, CASME II's halved at 100 fps.
    shape = presets.get_preset("megc2019")
    assert shape["smic"].spans == shape["casme2"].spans
    for subject in full_plan:
        part = shape[subject.part]
        allowed = {round((n - 1) * subject.fps / part.span_fps) + 1 for n in part.spans}
        for clip in subject.clips:
            assert clip.offset - clip.onset + 1 in allowed, (subject.name, clip.name)
            if subject.part == "smic":  # a SMIC-HS folder holds onset..offset; the others frames either side
                assert (clip.first_frame, clip.last_frame) == (clip.onset, clip.offset)
            else:
                assert clip.first_frame < clip.onset and clip.offset < clip.last_frame
    # The other clips (EXTRA_CLASS) follow the parts' extra_clips_per_subject, 1 by default.
    assert {sum(c.label == synth.EXTRA_CLASS for c in s.clips) for s in full_plan} == {1}


def test_a_scaled_preset_keeps_each_kept_subject_as_in_the_full_one(full_plan):
    def timing(subjects):
        return {
            (s.part, s.name): [
                (c.name, c.label, c.emotion, c.aus, c.first_frame, c.onset, c.apex, c.offset) for c in s.clips
            ]
            for s in subjects
        }

    quarter = synth.plan_corpus({"preset": "megc2019", "preset_subjects": 0.25, "preset_frame_scale": 0.5})
    full = timing(full_plan)
    assert Counter(s.part for s in quarter) == {"casme2": 6, "samm": 7, "smic": 4}  # every 4th of 24, 28, 16
    for part in PARTS:
        names = [s.name for s in full_plan if s.part == part]
        assert [s.name for s in quarter if s.part == part] == names[::4]
    assert timing(quarter) == {key: full[key] for key in timing(quarter)}  # same clips, classes and timing
    assert plan_counts(quarter) <= real_counts()
    assert {s.image_size for s in quarter} == {(320, 240), (1020, 544)}

    capped = synth.plan_corpus({"preset": "megc2019", "preset_subjects": 0.25, "preset_max_frames": 20})
    assert timing(capped).keys() == timing(quarter).keys()
    for clip in (c for s in capped for c in s.clips):
        assert clip.n_frames <= 20 and clip.first_frame <= clip.onset < clip.apex < clip.offset <= clip.last_frame
    assert [c.label for s in capped for c in s.clips] == [c.label for s in quarter for c in s.clips]


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("preset") / "corpus"
    synth.write_corpus(out, SMALL)
    return out


def test_the_written_corpus_reconciles_with_its_ground_truth_in_the_real_shape(small_corpus):
    written = read_gt(small_corpus / "megc2019_gt.csv")
    assert Counter((d, s, label) for d, s, _, label in written) == real_counts()
    assert [d for d, *_ in written] == [d for d, *_ in REAL_GT]  # parts in the official file's order
    specs = synthetic_datasets(small_corpus)
    task = {"name": "megc2019", "ground_truth": str(small_corpus / "megc2019_gt.csv"), "strict": True}
    index = datasets.build_index(specs, task)
    assert set(index.reconciliation["status"]) == {"match"} and len(index.samples) == len(REAL_GT) == 442
    assert index.samples["subject"].nunique() == 68  # the LOSO folds
    assert (index.samples["n_frames"] == 3).all()
    sizes = {
        part: cv2.imread(str(next((small_corpus / part).rglob(f"*.{ext}"))), cv2.IMREAD_UNCHANGED).shape
        for part, ext in (("casme2", "jpg"), ("samm", "jpg"), ("smic", "bmp"))
    }
    assert sizes == {"casme2": (48, 64, 3), "samm": (109, 204), "smic": (48, 64, 3)}


def test_a_preset_corpus_is_the_same_bytes_for_a_seed_and_any_worker_count(tmp_path):
    params = {**SMALL, "preset_subjects": 0.1}
    synth.write_corpus(tmp_path / "one", params)
    synth.write_corpus(tmp_path / "two", params, workers=2)
    assert file_digests(tmp_path / "one") == file_digests(tmp_path / "two")


def test_bad_preset_keys_are_one_line_errors_naming_the_key(tmp_path, capsys):
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cases = {
        "preset: megc2018": "config key 'synthetic.preset': 'megc2018' is not allowed; allowed: 'megc2019', null",
        "preset_subjects: 0": "config key 'synthetic.preset_subjects': 0 is less than or equal to the minimum of 0",
        "preset_subjects: 1.5": "config key 'synthetic.preset_subjects': 1.5 is greater than the maximum of 1",
        "preset_frame_scale: 0.05": "config key 'synthetic.preset_frame_scale': 0.05 is less than the minimum of 0.1",
        "preset_max_frames: 2": "config key 'synthetic.preset_max_frames': 2 is less than the minimum of 3",
    }
    for setting, expected in cases.items():
        cfg = copy.deepcopy(base)
        cfg["synthetic"].update({"preset": "megc2019", **yaml.safe_load(setting)})
        with pytest.raises(config.ConfigError) as err:
            config.validate(cfg, base_dir=REPO)
        assert str(err.value).splitlines() == ["invalid configuration:", f"  {expected}"], setting
    # A scaling key without a preset: at workflow start, and from the generator itself.
    cfg = copy.deepcopy(base)
    cfg["synthetic"]["preset_subjects"] = 0.5
    needs_preset = "config key 'synthetic.preset_subjects': applies to a preset only; set synthetic.preset or remove"
    with pytest.raises(config.ConfigError, match=re.escape(needs_preset)):
        config.validate(cfg, base_dir=REPO)
    with pytest.raises(config.ConfigError, match=re.escape(needs_preset)):
        synth.plan_corpus({"preset_subjects": 0.5})
    # The CLI: the same messages, and the flags a preset would ignore refused.
    assert cli(["synth", "--out", str(tmp_path), "--preset", "megc2018"]) == 2
    assert "config key 'synthetic.preset': 'megc2018' is not allowed" in capsys.readouterr().err
    assert cli(["synth", "--out", str(tmp_path), "--preset", "megc2019", "--preset-frame-scale", "2"]) == 2
    assert "config key 'synthetic.preset_frame_scale': 2.0 is greater than the maximum of 1" in capsys.readouterr().err
    assert cli(["synth", "--out", str(tmp_path), "--preset", "megc2019", "--subjects", "2"]) == 2
    assert "--subjects: the preset 'megc2019' fixes subjects" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_the_schema_lists_the_registered_presets():
    allowed = config.schema()["properties"]["synthetic"]["properties"]["preset"]["enum"]
    assert [name for name in allowed if name is not None] == list(presets.PRESETS)


def test_the_docs_give_the_full_presets_frame_counts(full_plan):
    frames = Counter()
    for subject in full_plan:
        frames[subject.part] += sum(clip.n_frames for clip in subject.clips)
    no_extra = synth.plan_corpus({"preset": "megc2019", "parts": {p: {"extra_clips_per_subject": 0} for p in PARTS}})
    text = " ".join((REPO / "docs" / "datasets-and-tasks.md").read_text().split())
    stated = f"{sum(frames.values()):,} frames (CASME II {frames['casme2']:,}, SAMM {frames['samm']:,}, "
    stated += f"SMIC-HS {frames['smic']:,}) — {sum(c.n_frames for s in no_extra for c in s.clips):,} without"
    assert stated in text
