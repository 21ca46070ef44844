"""CASME II: the coding sheet CASME2-coding-20140508.xlsx, frames in root/sub01/EP02_01f/img46.jpg.

Sheet quirks handled (see coded_sheet for the reader):

- the rows are on the first worksheet (Sheet1), titles on row 1, with untitled empty columns between
  the titled ones;
- subjects are written as text '01' while the frame folders are named sub01 (a copy saved with the
  number format may hold the integer 1: read the same, noted);
- one apex cell (sub04/EP12_01f) is '/', not a number: not annotated, the middle frame is used, noted;
- single action units are stored as numbers (12), combinations as text (4+L10): all become text, noted.
"""

from __future__ import annotations

from pathlib import Path

from .coded_sheet import CodedSheetLayout, read_coded_sheet
from .common import AnnotatedClip

DEFAULT_FPS = 200.0
EMOTIONS = frozenset({"happiness", "surprise", "disgust", "repression", "fear", "sadness", "others"})


def subject_id(number: int) -> str:
    """The frame folder name of a subject: sub01."""
    return f"sub{number:02d}"


LAYOUT = CodedSheetLayout(
    kind="casme2",
    sheet=None,
    header_row=1,
    onset="OnsetFrame",
    apex="ApexFrame",
    offset="OffsetFrame",
    emotions=EMOTIONS,
    subject_id=subject_id,
    subject_example="01",
)


def read_casme2(dataset: str, root: Path, annotations: Path | None) -> tuple[list[AnnotatedClip], list[dict]]:
    """The clips of the coding sheet ``annotations``; CASME II excludes nothing at reading."""
    return read_coded_sheet(LAYOUT, dataset, root, annotations), []
