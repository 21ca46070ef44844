"""Coding sheets (.xlsx, one row per clip, frames under root/subject/clip): the reader CASME II and SAMM share.

Each kind describes its sheet with a ``CodedSheetLayout`` (worksheet, header row, the names of its frame
columns, its emotions, its subject ids); the quirks of one sheet are commented in that kind's module,
the handling common to both here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .common import AnnotatedClip, AnnotationError, Problem, check_duplicates, join_aus

# Column titles both sheets use.
SUBJECT = "Subject"
FILENAME = "Filename"
AUS = "Action Units"
EMOTION = "Estimated Emotion"
# Apex cells that mean "not annotated" rather than a bad number (CASME II writes one apex as '/').
NOT_ANNOTATED = ("/", "-", "?", "")


@dataclass(frozen=True)
class CodedSheetLayout:
    """Where a kind's coding sheet keeps its rows, and what is particular to it."""

    kind: str
    sheet: str | None  # worksheet name; None: the first worksheet
    header_row: int  # 1-based row of the column titles
    onset: str  # column titles of the three frame numbers
    apex: str
    offset: str
    emotions: frozenset[str]  # lower case; any other emotion is an error
    subject_id: Callable[[int], str]  # canonical subject id (the frame folder's name) from its number
    subject_example: str  # a subject as the sheet writes it, for messages
    objective: str | None = None  # title of an objective-class column (SAMM's), read where the sheet has it

    @property
    def columns(self) -> list[str]:
        """The columns the reader needs, in the order missing ones are reported."""
        return [SUBJECT, FILENAME, self.onset, self.apex, self.offset, AUS, EMOTION]


def read_coded_sheet(layout: CodedSheetLayout, dataset: str, root: Path, sheet_path: Path) -> list[AnnotatedClip]:
    """The clips of one coding sheet, their frames under root/subject/clip; every bad cell is reported."""
    rows = _read_sheet(sheet_path, layout.sheet, layout.header_row, layout.columns)
    file = str(sheet_path)
    problems: list[Problem] = []
    clips = []
    for row, cells in rows:
        notes: list[str] = []
        subject = _subject_id(layout, cells[SUBJECT], file, row, problems, notes)
        clip_name = str(cells[FILENAME] or "").strip()
        if not clip_name:
            problems.append(Problem(file, row, FILENAME, "empty clip name"))
        emotion = str(cells[EMOTION] or "").strip()
        # Emotions are matched in any case (SAMM writes 'Anger', CASME II 'disgust').
        if emotion.lower() not in layout.emotions:
            problems.append(
                Problem(file, row, EMOTION, f"unknown emotion {emotion!r}; expected one of {sorted(layout.emotions)}")
            )
        onset = _int_cell(cells[layout.onset], file, row, layout.onset, problems)
        offset = _int_cell(cells[layout.offset], file, row, layout.offset, problems)
        apex_cell = cells[layout.apex]
        apex = None
        if apex_cell is None or (isinstance(apex_cell, str) and apex_cell.strip() in NOT_ANNOTATED):
            notes.append(f"apex cell {'empty' if apex_cell is None else repr(apex_cell.strip())}")
        else:
            apex = _int_cell(apex_cell, file, row, layout.apex, problems)
        aus = _aus_cell(cells[AUS], notes)
        objective = _objective_cell(cells.get(layout.objective), file, row, layout.objective, problems)
        if subject is None or not clip_name:
            continue
        clip = AnnotatedClip(
            dataset=dataset,
            kind=layout.kind,
            subject=subject,
            clip=clip_name,
            emotion=emotion,
            aus=aus,
            onset=onset,
            apex=apex,
            offset=offset,
            frame_dir=root / subject / clip_name,
            source=f"{sheet_path.name}:{row}",
            row=row,
            file=file,
            notes=notes,
            objective_class=objective,
        )
        _check_timing(clip, problems, layout.offset)
        clips.append(clip)
    check_duplicates(clips, problems)
    if problems:
        raise AnnotationError(problems)
    return clips


def _read_sheet(path: Path, sheet: str | None, header_row: int, required: list[str]) -> list[tuple[int, dict]]:
    """Rows of an annotation sheet as (excel row number, {column: raw cell value}).

    Read with openpyxl rather than pandas so that cell types are seen as written (pandas turns the
    text subject '01' into the integer 1 and NaN-fills blanks). Untitled columns and blank rows are
    skipped (the CASME II sheet has empty columns between its titled ones).
    """
    import openpyxl

    if not path.exists():
        raise AnnotationError([Problem(str(path), None, None, "annotation sheet does not exist")])
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises several unrelated types for a non-xlsx file
        raise AnnotationError([Problem(str(path), None, None, f"not a readable .xlsx workbook ({err})")]) from None
    try:
        if sheet is None:
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            raise AnnotationError(
                [Problem(str(path), None, None, f"no sheet {sheet!r}; sheets: {workbook.sheetnames}")]
            )
        rows = list(worksheet.iter_rows(min_row=header_row, values_only=True))
    finally:
        workbook.close()
    if not rows:
        raise AnnotationError([Problem(str(path), header_row, None, "no header row")])
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise AnnotationError(
            [
                Problem(str(path), header_row, c, f"missing column (header row has: {[h for h in header if h]})")
                for c in missing
            ]
        )
    records = []
    for offset, values in enumerate(rows[1:], start=1):
        if values is None or all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        records.append((header_row + offset, {h: v for h, v in zip(header, values, strict=False) if h}))
    return records


def _int_cell(value, file: str, row: int, column: str, problems: list[Problem]) -> int | None:
    """A frame number cell as int; anything else is recorded as a problem naming the cell."""
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    shown = "an empty cell" if value is None or (isinstance(value, float) and value != value) else repr(value)
    problems.append(Problem(file, row, column, f"expected a frame number, got {shown}"))
    return None


def _objective_cell(value, file: str, row: int, column: str, problems: list[Problem]) -> str:
    """An objective class cell (1-7, Davison et al. 2018) as text; empty when blank or the column is absent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    text = f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value).strip()
    if text not in {str(n) for n in range(1, 8)}:
        problems.append(Problem(file, row, column, f"expected an objective class 1-7, got {value!r}"))
        return ""
    return text


def _aus_cell(value, notes: list[str]) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, int | float):
        # The real sheets store single AUs as numbers (12) and combinations as text (4+L10).
        notes.append(f"aus cell is a number ({value:g})")
        return f"{value:g}"
    return join_aus(str(value))


def _subject_id(
    layout: CodedSheetLayout, cell, file: str, row: int, problems: list[Problem], notes: list[str]
) -> str | None:
    """Canonical subject id from a sheet cell: text '01' / '006', or a number where a copy lost the text format."""
    if isinstance(cell, int | float) and not isinstance(cell, bool) and float(cell).is_integer():
        notes.append(f"subject cell is a number ({int(cell)})")
        number = int(cell)
    else:
        text = str(cell or "").strip()
        match = re.fullmatch(r"(?:sub)?0*(\d+)", text, flags=re.IGNORECASE)
        if match is None:
            problems.append(
                Problem(file, row, SUBJECT, f"expected a subject number such as {layout.subject_example}, got {cell!r}")
            )
            return None
        number = int(match.group(1))
    return layout.subject_id(number)


def _check_timing(clip: AnnotatedClip, problems: list[Problem], offset_column: str) -> None:
    """Onset <= offset is required; an apex at either end is noted. A missing apex, or one outside
    onset..offset, is left as the sheet has it: the index falls back to the middle frame (``apex_source``)."""
    if clip.onset is None or clip.offset is None:
        return
    if clip.offset < clip.onset:
        problems.append(
            Problem(clip.file, clip.row, offset_column, f"offset {clip.offset} is before onset {clip.onset}")
        )
        return
    if clip.apex == clip.onset:
        clip.notes.append("apex equals onset")
    elif clip.apex == clip.offset:
        clip.notes.append("apex equals offset")
