"""Per-region labels from FACS action units."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import ANNOTATIONS, REPO

from localmer import datasets, facs, labels
from localmer.labels import NOT_CONCERNED

TABLE = labels.load_au_regions(REPO / "config" / "au_regions.yaml")


@pytest.mark.parametrize(
    ("code", "touched"),
    [
        ("12", {"left_cheek", "right_cheek", "mouth"}),
        ("L12", {"left_cheek", "mouth"}),  # L = the subject's left
        ("R6+R12", {"right_eye", "right_cheek", "mouth"}),
        ("1+2", {"left_eye", "right_eye"}),
        ("4+L10", {"left_eye", "right_eye", "nose", "mouth"}),  # nose and mouth are central: no side
        ("9", {"nose"}),
        ("6A+12", {"left_eye", "right_eye", "left_cheek", "right_cheek", "mouth"}),  # intensity letters
        ("A2", {"left_eye", "right_eye"}),  # SAMM's asymmetric AU: both sides
        ("(R6 or R12) + R15", {"right_eye", "right_cheek", "mouth"}),
        ("ref(7B)+43", {"left_eye", "right_eye"}),
        ("?", set()),
        ("61", set()),  # eye movement: no region
        ("", set()),
    ],
)
def test_touched_regions_follow_the_au_table_and_laterality(code, touched):
    assert labels.touched_regions(code, TABLE) == touched


def test_region_labels_roi_face_and_fallback():
    samples = pd.DataFrame(
        [
            {"sample_id": "a", "aus": "L12", "label": "positive"},
            {"sample_id": "b", "aus": "", "label": "surprise"},  # SMIC: no AUs
            {"sample_id": "c", "aus": "61", "label": "negative"},  # AUs that touch no region
        ]
    )
    roi = labels.region_labels(samples, TABLE).set_index("sample_id")
    assert roi.loc["a"].to_dict() == {
        "left_eye": NOT_CONCERNED,
        "right_eye": NOT_CONCERNED,
        "nose": NOT_CONCERNED,
        "left_cheek": "positive",
        "right_cheek": NOT_CONCERNED,
        "mouth": "positive",
    }
    assert set(roi.loc["b"]) == {"surprise"} and set(roi.loc["c"]) == {"negative"}
    face = labels.region_labels(samples, TABLE, mode="face").set_index("sample_id")
    assert set(face.loc["a"]) == {"positive"}


def test_every_real_sheet_au_code_parses(tmp_path):
    # All AU cells of the real CASME II and SAMM sheets: each micro-expression touches some region,
    # apart from codes with no AU at all ('?').
    for spec in (
        {
            "name": "casme2",
            "kind": "casme2",
            "root": str(tmp_path),
            "annotations": str(ANNOTATIONS / "CASME2-coding-20140508.xlsx"),
        },
        {
            "name": "samm",
            "kind": "samm",
            "root": str(tmp_path),
            "annotations": str(ANNOTATIONS / "SAMM_Micro_FACS_Codes_v2.xlsx"),
        },
    ):
        clips, _ = datasets.read_dataset(spec)
        untouched = [c.aus for c in clips if not labels.touched_regions(c.aus, TABLE)]
        assert all(not facs.parse_aus(code) or code.strip() in {"?"} for code in untouched), untouched


def test_bad_au_table_is_named(tmp_path):
    path = tmp_path / "au.yaml"
    path.write_text("12: [lips]\n")
    with pytest.raises(
        labels.AuTableError, match=r"AU 12: expected a list of areas from \['cheek', 'eye', 'mouth', 'nose'\]"
    ):
        labels.load_au_regions(path)
