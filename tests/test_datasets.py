"""Dataset adapters against the real annotation sheets and the official MEGC 2019 ground truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from conftest import ANNOTATIONS, touch_frames, write_video

from localmer import datasets, frames, tasks
from localmer.datasets import AnnotationError, ReconciliationError
from localmer.datasets.registry import DATASET_KINDS, DatasetKind
from localmer.tasks import megc2019

MEGC = {"name": "megc2019", "ground_truth": None, "strict": True}


def megc_task(layout, **changes):
    return {**MEGC, "ground_truth": str(layout["gt"]), **changes}


def copy_layout_dataset(layout, name, tmp_path):
    """A writable copy of one dataset spec whose sheet can be edited."""
    spec = dict(next(d for d in layout["datasets"] if d["name"] == name))
    if "annotations" in spec:
        sheet = tmp_path / Path(spec["annotations"]).name
        shutil.copy(spec["annotations"], sheet)
        spec["annotations"] = str(sheet)
    return spec


def edit_cells(path, sheet, edits):
    """Set cells {(excel_row, header_name): value} in an .xlsx file in place."""
    workbook = openpyxl.load_workbook(path)
    worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
    header_row = 14 if sheet == "MICRO_ONLY" else 1
    header = [c.value for c in worksheet[header_row]]
    for (row, column), value in edits.items():
        worksheet.cell(row=row, column=header.index(column) + 1, value=value)
    workbook.save(path)


# ------------------------------------------------------------------------------------------ real sheets


def test_real_casme2_sheet_parses_to_255_rows(real_layout):
    clips, excluded = datasets.read_dataset(real_layout["datasets"][0])
    assert len(clips) == 255 and excluded == []
    assert {c.subject for c in clips} >= {"sub01", "sub26"}
    first = clips[0]
    assert (first.sample_id, first.onset, first.apex, first.offset, first.aus, first.emotion) == (
        "casme2/sub01/EP02_01f",
        46,
        59,
        86,
        "12",
        "happiness",
    )
    assert first.source == "CASME2-coding-20140508.xlsx:2"


def test_real_samm_sheet_parses_to_159_rows(real_layout):
    clips, _ = datasets.read_dataset(real_layout["datasets"][1])
    assert len(clips) == 159
    first = clips[0]
    # Header on row 14 below 13 preamble rows; subject '006' kept as the folder name.
    assert (first.sample_id, first.onset, first.apex, first.offset, first.aus) == (
        "samm/006/006_1_2",
        5562,
        5588,
        5632,
        "4+7",
    )
    assert first.source == "SAMM_Micro_FACS_Codes_v2.xlsx:15"


def test_megc2019_reconciles_to_the_ground_truth_442(real_layout):
    index = datasets.build_index(real_layout["datasets"], megc_task(real_layout))
    samples = index.samples
    assert len(samples) == 442
    assert samples.sample_id.is_unique
    counts = samples.groupby(["dataset", "label"]).size().unstack()[["negative", "positive", "surprise"]]
    assert counts.loc["smic"].tolist() == [70, 51, 43]
    assert counts.loc["casme2"].tolist() == [88, 32, 25]
    assert counts.loc["samm"].tolist() == [92, 26, 15]
    assert samples.groupby("dataset").subject.nunique().to_dict() == {"casme2": 24, "samm": 28, "smic": 16}
    assert samples.subject.nunique() == 68

    # Exactly the GT's (dataset, subject, clip, label) rows, compared in the GT's own spelling.
    gt = pd.read_csv(real_layout["gt"], header=None, names=["dataset", "subject", "clip", "label"], dtype=str)
    spelled = {
        "casme2": lambda s: s,  # sub01
        "samm": lambda s: str(int(s)),  # 006 -> 6
        "smic": lambda s: s,  # s01
    }
    ours = {
        (r.dataset, spelled[r.dataset](r.subject.split("/")[1]), r.clip, str(r.label_index))
        for r in samples.itertuples()
    }
    assert ours == set(gt.itertuples(index=False, name=None))

    # The sheet maps 147 CASME II clips; the two the GT drops are reported by clip with their quirks.
    dropped = index.excluded[index.excluded.reason.str.contains("ground truth")]
    assert sorted(dropped.sample_id) == ["casme2/sub04/EP12_01f", "casme2/sub05/EP09_05f"]
    assert "apex cell '/'" in dropped.set_index("sample_id").loc["casme2/sub04/EP12_01f", "reason"]
    assert "apex equals onset" in dropped.set_index("sample_id").loc["casme2/sub05/EP09_05f", "reason"]
    assert index.reconciliation.status.value_counts().to_dict() == {"match": 442, "excluded_not_in_gt": 2}

    # Nothing is dropped silently: every sheet row and SMIC folder is either a sample or excluded.
    assert len(samples) + len(index.excluded) == 255 + 159 + 164 + 1
    summary = index.summary().set_index("dataset")
    assert summary.loc["FULL", ["negative", "positive", "surprise", "total"]].tolist() == [250, 109, 83, 442]


def test_sample_table_columns_and_frames(real_layout):
    index = datasets.build_index(real_layout["datasets"], megc_task(real_layout))
    samples = index.samples
    assert list(samples.columns) == datasets.SAMPLE_COLUMNS
    smic = samples[samples.dataset == "smic"].iloc[0]
    assert smic["subject"] == "smic/s01" and smic["clip"] == "s01_ne_01"
    assert Path(smic.frame_dir).name == "s1_ne_01"  # the real folder keeps its unpadded name
    assert (smic.onset, smic.offset) == (100230, 100261)
    assert "no apex annotation" in smic.notes
    casme = samples.set_index("sample_id").loc["casme2/sub01/EP02_01f"]
    frames = casme.frames.split("|")
    assert frames[0] == "img44.jpg" and frames[-1] == "img88.jpg" and casme.n_frames == len(frames)
    assert "aus cell is a number (12)" in casme.notes


def test_frames_are_in_natural_numeric_order(tmp_path):
    touch_frames(tmp_path, ["img10.jpg", "img2.jpg", "img1.jpg", "img100.jpg", "notes.txt"])
    assert frames.list_frames(tmp_path) == ["img1.jpg", "img2.jpg", "img10.jpg", "img100.jpg"]
    assert frames.frame_number("006_05562.jpg") == 5562
    assert frames.frame_number("image100230.bmp") == 100230


# ------------------------------------------------------------------------------------------ quirks


def test_integer_subject_and_au_cells_and_apex_outside_are_handled_and_noted(real_layout, tmp_path):
    spec = copy_layout_dataset(real_layout, "samm", tmp_path)
    # Row 15 is 006_1_2 (onset 5562, offset 5632): an integer subject cell and an apex past the offset,
    # row 16 (006_1_3) an empty apex cell.
    edit_cells(
        spec["annotations"], "MICRO_ONLY", {(15, "Subject"): 6, (15, "Apex Frame"): 5700, (16, "Apex Frame"): ""}
    )
    clips, _ = datasets.read_dataset(spec)
    clip = clips[0]
    assert clip.sample_id == "samm/006/006_1_2"
    assert "subject cell is a number (6)" in clip.notes
    assert sum(isinstance(c.aus, str) for c in clips) == 159  # ints and strings all become text
    samples = datasets.build_index([spec], MEGC).samples.set_index("sample_id")
    # An invalid apex falls back to the middle frame, not a clamped guess; the note keeps the value.
    outside = samples.loc["samm/006/006_1_2"]
    assert (outside.apex, outside.apex_source) == (5562 + (5632 - 5562) // 2, "middle")
    assert "apex 5700 outside onset..offset 5562..5632: not used, middle frame 5597 used" in outside.notes
    empty = samples.loc[clips[1].sample_id]
    assert empty.apex_source == "middle" and "no apex annotation" in empty.notes
    assert (samples.drop(index=[clip.sample_id, clips[1].sample_id]).apex_source == "annotated").all()


def test_real_sheets_invalid_apexes_are_counted(real_layout):
    # Apex cells of the real sheets that are not a number within onset..offset: CASME II's '/' only.
    invalid = {}
    for spec in real_layout["datasets"][:2]:
        clips, _ = datasets.read_dataset(spec)
        invalid[spec["name"]] = sorted(
            c.sample_id for c in clips if c.apex is None or not c.onset <= c.apex <= c.offset
        )
    assert invalid == {"casme2": ["casme2/sub04/EP12_01f"], "samm": []}
    samples = datasets.build_index(real_layout["datasets"], {**MEGC, "ground_truth": None}).samples
    sources = samples.groupby(["dataset", "apex_source"]).size().to_dict()
    # SMIC has no apex; EP12_01f (disgust) is in the task without the ground truth, which drops it.
    assert sources == {
        ("casme2", "annotated"): 146,
        ("casme2", "middle"): 1,
        ("samm", "annotated"): 133,
        ("smic", "middle"): 164,
    }
    assert samples.set_index("sample_id").loc["casme2/sub04/EP12_01f", "apex"] == 261 + (321 - 261) // 2


# ------------------------------------------------------------------------------------------ bad input


def test_missing_column_names_file_and_column(real_layout, tmp_path):
    spec = copy_layout_dataset(real_layout, "casme2", tmp_path)
    edit_cells(spec["annotations"], None, {(1, "OnsetFrame"): "Onset"})
    with pytest.raises(AnnotationError) as err:
        datasets.read_dataset(spec)
    message = str(err.value)
    assert "CASME2-coding-20140508.xlsx" in message and "row 1" in message and "field 'OnsetFrame'" in message
    assert "missing column" in message


def test_unknown_emotion_names_row_and_field(real_layout, tmp_path):
    spec = copy_layout_dataset(real_layout, "casme2", tmp_path)
    edit_cells(spec["annotations"], None, {(5, "Estimated Emotion"): "joy"})
    with pytest.raises(AnnotationError, match=r"row 5, field 'Estimated Emotion': unknown emotion 'joy'"):
        datasets.read_dataset(spec)


def test_emotion_outside_task_is_counted_as_excluded(real_layout):
    index = datasets.build_index(real_layout["datasets"][:1], {**MEGC, "ground_truth": None})
    reasons = index.excluded.reason.value_counts()
    assert reasons["emotion 'others' is outside the megc2019 classes"] == 99
    assert len(index.samples) == 147  # without the GT, the sheet's own mapping


def test_bad_frame_number_names_row_and_field(real_layout, tmp_path):
    spec = copy_layout_dataset(real_layout, "casme2", tmp_path)
    edit_cells(spec["annotations"], None, {(3, "OffsetFrame"): "end"})
    with pytest.raises(AnnotationError, match=r"row 3, field 'OffsetFrame': expected a frame number, got 'end'"):
        datasets.read_dataset(spec)


def test_duplicate_clip_names_both_rows(real_layout, tmp_path):
    spec = copy_layout_dataset(real_layout, "casme2", tmp_path)
    edit_cells(spec["annotations"], None, {(3, "Filename"): "EP02_01f"})
    with pytest.raises(AnnotationError, match=r"row 3, field 'Filename': duplicate clip sub01/EP02_01f \(also row 2\)"):
        datasets.read_dataset(spec)


def test_missing_frame_folder_names_folder_and_row(real_layout, tmp_path):
    root = tmp_path / "CASME2"
    shutil.copytree(real_layout["datasets"][0]["root"], root)
    shutil.rmtree(root / "sub01" / "EP02_01f")
    spec = {**real_layout["datasets"][0], "root": str(root)}
    with pytest.raises(AnnotationError) as err:
        datasets.build_index([spec], MEGC)
    assert "row 2" in str(err.value) and "sub01/EP02_01f' does not exist" in str(err.value)


def test_fewer_frames_than_offset_is_an_error(real_layout, tmp_path):
    root = tmp_path / "CASME2"
    shutil.copytree(real_layout["datasets"][0]["root"], root)
    for n in range(80, 89):  # EP02_01f's offset is 86
        (root / "sub01" / "EP02_01f" / f"img{n}.jpg").unlink()
    spec = {**real_layout["datasets"][0], "root": str(root)}
    with pytest.raises(
        AnnotationError, match=r"row 2, field 'offset': frames in .* run 44..79 .* onset..offset 46..86"
    ):
        datasets.build_index([spec], MEGC)


def test_ground_truth_clip_missing_from_dataset_is_reported(real_layout, tmp_path):
    root = tmp_path / "HS"
    shutil.copytree(real_layout["datasets"][2]["root"], root)
    shutil.rmtree(root / "s3" / "micro" / "positive" / "s3_po_01")
    specs = [*real_layout["datasets"][:2], {**real_layout["datasets"][2], "root": str(root)}]
    with pytest.raises(ReconciliationError, match=r"missing: smic/s03/s03_po_01 \(GT positive"):
        datasets.build_index(specs, megc_task(real_layout))
    index = datasets.build_index(specs, megc_task(real_layout, strict=False))
    assert len(index.samples) == 441
    missing = index.reconciliation[index.reconciliation.status == "missing"]
    assert missing[["subject", "clip"]].values.tolist() == [["smic/s03", "s03_po_01"]]


def test_ground_truth_label_mismatch_is_reported(real_layout, tmp_path):
    gt = tmp_path / "gt.csv"
    text = Path(real_layout["gt"]).read_bytes().replace(b"casme2,sub01,EP02_01f,1", b"casme2,sub01,EP02_01f,2")
    gt.write_bytes(text)
    with pytest.raises(
        ReconciliationError, match=r"label_mismatch: casme2/sub01/EP02_01f \(GT surprise, ours positive\)"
    ):
        datasets.build_index(real_layout["datasets"], {**MEGC, "ground_truth": str(gt)})


def test_bad_ground_truth_row_names_line(tmp_path):
    gt = tmp_path / "gt.csv"
    gt.write_bytes(b"casme2,sub01,EP02_01f,1\r\ncasme2,sub01,EP19_05f,7\r\n")
    with pytest.raises(AnnotationError, match=r"row 2, field 'label': expected 0 \(negative\), 1 \(positive\) or 2"):
        megc2019.read_ground_truth(gt)


def test_smic_label_code_must_match_folder(tmp_path):
    touch_frames(tmp_path / "HS" / "s1" / "micro" / "positive" / "s1_ne_01", ["image000001.bmp"])
    with pytest.raises(AnnotationError, match="clip code 'ne' contradicts its label folder 'positive'"):
        datasets.read_smic("smic", tmp_path / "HS")


# ------------------------------------------------------------------------------------------ manifest


def test_manifest_reads_frame_folders_and_videos(tmp_path):
    touch_frames(tmp_path / "clips" / "a", [f"frame{i}.png" for i in range(1, 13)])
    write_video([np.full((48, 64), i * 10, np.uint8) for i in range(9)], tmp_path / "clips" / "b.avi")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,subject,label,onset,apex,offset,aus\nclips/a,p1,happiness,2,11,10,6+12\nclips/b.avi,p2,negative,,,,\n"
    )
    index = datasets.build_index(
        [{"name": "mine", "kind": "manifest", "root": str(tmp_path), "annotations": str(manifest)}], MEGC
    )
    a, b = index.samples.itertuples()
    assert (a.sample_id, a.label, a.onset, a.apex, a.offset, a.aus, a.n_frames) == (
        "mine/p1/a",
        "positive",
        2,
        6,
        10,
        "6+12",
        12,
    )
    assert (b.sample_id, b.label, b.onset, b.offset, b.n_frames, b.frames) == ("mine/p2/b", "negative", 0, 8, 9, "")
    # Apex 11 lies past the offset: the middle frame, as for the video without one.
    assert (a.apex_source, b.apex_source, b.apex) == ("middle", "middle", 4)
    assert "apex 11 outside onset..offset 2..10" in a.notes


def test_manifest_bad_rows_are_named(tmp_path):
    (tmp_path / "broken.avi").write_bytes(b"not a video")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,subject,label\nbroken.avi,p1,surprise\nnowhere,p2,surprise\nbroken.avi,p3,glee\n")
    spec = {"name": "mine", "kind": "manifest", "root": str(tmp_path), "annotations": str(manifest)}
    with pytest.raises(AnnotationError, match=r"row 4, field 'label': unknown label 'glee'"):
        datasets.build_index([spec], MEGC)
    manifest.write_text("path,subject,label\nbroken.avi,p1,surprise\nnowhere,p2,surprise\n")
    with pytest.raises(AnnotationError) as err:
        datasets.build_index([spec], MEGC)
    assert "row 2, field 'path': video" in str(err.value) and "cannot be read by OpenCV" in str(err.value)
    assert "row 3, field 'path': frame folder" in str(err.value)
    manifest.write_text("path,label\nbroken.avi,surprise\n")
    with pytest.raises(AnnotationError, match=r"row 1, field 'subject': missing column"):
        datasets.build_index([spec], MEGC)


# ------------------------------------------------------------------------------------------ registries


def test_every_kind_and_task_is_in_its_registry_and_the_megc_mapping_uses_each_kinds_emotions():
    assert list(DATASET_KINDS) == ["casme2", "samm", "smic", "manifest"]
    assert tasks.get_task("megc2019").classes == ("negative", "positive", "surprise")
    for kind, emotions in megc2019.MEGC2019_MAPPING.items():
        assert set(emotions) <= DATASET_KINDS[kind].emotions, kind
    with pytest.raises(ValueError, match=r"unknown task 'megc2020'; registered tasks: 'megc2019'"):
        datasets.build_index([], {"name": "megc2020"})
    with pytest.raises(ValueError, match=r"unknown dataset kind 'casme3'; registered kinds: 'casme2', 'samm'"):
        datasets.read_dataset({"name": "x", "kind": "casme3", "root": "."})


def test_a_registered_kind_is_read_through_its_entry(monkeypatch, tmp_path):
    touch_frames(tmp_path / "p1" / "c1", [f"f{i}.png" for i in range(5)])

    def read_folders(dataset, root, annotations):
        # A sheet-less kind: one fixed clip, annotated onset 1 and offset 3, no apex.
        assert annotations is None
        clip = datasets.AnnotatedClip(
            dataset, "folders", "p1", "c1", "Happiness", "", 1, None, 3, root / "p1" / "c1", "p1/c1"
        )
        return [clip], []

    kind = DatasetKind("folders", read_folders, frozenset({"happiness"}), 30.0, None, "path")
    monkeypatch.setitem(DATASET_KINDS, "folders", kind)
    monkeypatch.setitem(megc2019.MEGC2019_MAPPING, "folders", {"happiness": "positive"})
    index = datasets.build_index([{"name": "mine", "kind": "folders", "root": str(tmp_path)}], MEGC)
    (sample,) = index.samples.itertuples()
    assert (sample.sample_id, sample.label, sample.fps, sample.apex, sample.n_frames) == (
        "mine/p1/c1",
        "positive",
        30.0,
        2,
        5,
    )


def test_a_task_excludes_kinds_it_leaves_out_and_may_have_no_ground_truth(real_layout, monkeypatch):
    surprise_only = tasks.Task("casme2_surprise", ("surprise",), {"casme2": {"surprise": "surprise"}})
    monkeypatch.setitem(tasks.TASKS, surprise_only.name, surprise_only)
    index = datasets.build_index(real_layout["datasets"][::2], {"name": "casme2_surprise"})
    assert len(index.samples) == 25 and set(index.samples.label_index) == {0}
    reasons = index.excluded.reason.value_counts()
    assert reasons["emotion 'disgust' is outside the casme2_surprise classes"] == 63
    assert reasons["dataset kind 'smic' is not part of the casme2_surprise task"] == 164
    with pytest.raises(ValueError, match="task 'casme2_surprise' has no ground truth to reconcile"):
        datasets.build_index(real_layout["datasets"][:1], {"name": "casme2_surprise", "ground_truth": "gt.csv"})
    with pytest.raises(ValueError, match=r"kind 'casme2' maps to \['positive'\], which are not among its classes"):
        tasks.Task("broken", ("surprise",), {"casme2": {"happiness": "positive"}})


def test_fixture_sheets_are_the_real_ones():
    # Guards the fixtures themselves: the copies must stay the distributed files.
    assert (ANNOTATIONS / "combined_3class_gt.csv").read_bytes().count(b"\r\n") == 442
