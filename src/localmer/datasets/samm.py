"""SAMM: the coding sheet SAMM_Micro_FACS_Codes_v2.xlsx, frames in root/006/006_1_2/006_05562.jpg.

Sheet quirks handled (see coded_sheet for the reader):

- the rows are on worksheet MICRO_ONLY below 13 preamble rows (title, symbol key, AU help): the
  titles are on row 14;
- subjects are written as text '006', as the frame folders are named (a copy saved with the number
  format may hold the integer 6: read the same, noted);
- emotions are capitalised ('Anger', 'Other'): matched in any case, written as the sheet has them;
- single action units are stored as numbers (12), combinations as text (4+7): all become text, noted;
- the `Objective Classes` column (1-7, Davison et al. 2018) is read where the sheet has it (the
  objective_classes task labels from it); a copy without the column reads with it empty.
"""

from __future__ import annotations

from pathlib import Path

from .coded_sheet import CodedSheetLayout, read_coded_sheet
from .common import AnnotatedClip

DEFAULT_FPS = 200.0
EMOTIONS = frozenset({"anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other"})
SAMM_SHEET = "MICRO_ONLY"
SAMM_HEADER_ROW = 14  # 13 preamble rows above the header in the real sheet


def subject_id(number: int) -> str:
    """The frame folder name of a subject: 006."""
    return f"{number:03d}"


LAYOUT = CodedSheetLayout(
    kind="samm",
    sheet=SAMM_SHEET,
    header_row=SAMM_HEADER_ROW,
    onset="Onset Frame",
    apex="Apex Frame",
    offset="Offset Frame",
    emotions=EMOTIONS,
    subject_id=subject_id,
    subject_example="006",
    objective="Objective Classes",
)


def read_samm(dataset: str, root: Path, annotations: Path | None) -> tuple[list[AnnotatedClip], list[dict]]:
    """The clips of the coding sheet ``annotations``; SAMM excludes nothing at reading."""
    return read_coded_sheet(LAYOUT, dataset, root, annotations), []
