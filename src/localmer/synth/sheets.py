"""The annotation files of the synthetic corpus: CASME II and SAMM workbooks, the MEGC 2019 ground truth
in the real files' layouts, and the generator's own truth table (synth_clips.tsv).

Workbooks are written with fixed dates, so that equal sheets are equal bytes.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
from openpyxl.writer.excel import ExcelWriter

from .. import datasets
from ..frames import natural_key
from ..tasks.megc2019 import MEGC2019_CLASSES
from .classes import SAMM_OBJECTIVE_CLASSES
from .plan import ClipPlan, SubjectPlan

BASE_TIMESTAMP = datetime(2019, 1, 1)  # fixed workbook dates, so that sheets are byte-identical


def _au_cell(code: str) -> int | str:
    """A single plain AU is a number cell (12), anything else text ('4+L10'), as in the real sheets."""
    return int(code) if code.isdigit() else code


def _save_workbook(workbook: openpyxl.Workbook, path: Path) -> None:
    """Save with fixed document dates and zip entry times, so that equal sheets are equal bytes."""
    workbook.properties.creator = "localmer.synth"
    workbook.properties.created = BASE_TIMESTAMP
    workbook.properties.modified = BASE_TIMESTAMP
    buffer = io.BytesIO()
    # ExcelWriter directly: openpyxl's save() stamps `modified` with the current time.
    ExcelWriter(workbook, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED)).save()
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=BASE_TIMESTAMP.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info.filename))
    path.write_bytes(out.getvalue())


def write_casme2_sheet(clips: list[ClipPlan], path: Path) -> None:
    """CASME2-coding-20140508.xlsx layout: Sheet1 (+ empty Sheet2, Sheet3), header row 1."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Sheet1"
    workbook.create_sheet("Sheet2")
    workbook.create_sheet("Sheet3")
    header = [
        "Subject",
        "Filename",
        None,
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        None,
        "Action Units",
        "Estimated Emotion",
    ]
    sheet.append(header)
    for clip in sorted(clips, key=lambda c: (c.subject, natural_key(c.name))):
        sheet.append(
            [
                clip.subject[3:],
                clip.name,
                None,
                clip.onset,
                clip.apex,
                clip.offset,
                None,
                _au_cell(clip.aus),
                clip.emotion,
            ]
        )
        sheet.cell(sheet.max_row, 1).number_format = "@"  # '01' is text, as in the real sheet
    _save_workbook(workbook, path)


SAMM_PREAMBLE = {
    "A1": "SAMM Dataset - Master FACS Codes (synthetic stand-in written by localmer.synth)",
    "E1": "(Note to the users: these clips are synthetic. If you use the real SAMM, please cite: Davison, A. K., "
    "Lansley, C., Costen, N., Tan, K., & Yap, M. H. (2016). SAMM: A spontaneous micro-facial movement "
    "dataset. IEEE Transactions on Affective Computing.)",
    "A3": "Emotional and Objective Classes as in the real sheet. For details please refer to: ",
    "I3": "arXiv preprint arXiv:1708.07549.",
    "E4": "(Note to the users: if you use the emotional or objective classes of the real SAMM, please cite: "
    "Davison, A. K., Merghani, W., & Yap, M. H. (2017). Objective Classes for Micro-Facial Expression "
    "Recognition. arXiv preprint arXiv:1708.07549.)",
    "A6": "Symbol Key:",
    "A7": '"/" = or',
    "A8": '"?" = some AU\'s continue for a while and have unclear offset',
    "A10": "AU Help:",
    "A11": '"L2 or R2" = Unilateral AU 2 on left side of face / right side of face',
    "A12": '"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side',
}


def write_samm_sheet(clips: list[ClipPlan], path: Path) -> None:
    """SAMM_Micro_FACS_Codes_v2.xlsx layout: sheet MICRO_ONLY, 13 preamble rows, header on row 14."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "MICRO_ONLY"
    for cell, text in SAMM_PREAMBLE.items():
        sheet[cell] = text
    header = [
        "Subject",
        "Filename",
        "Inducement Code",
        "Onset Frame",
        "Apex Frame",
        "Offset Frame",
        "Duration",
        "Micro",
        "Action Units",
        "Estimated Emotion",
        "Objective Classes",
        "Notes",
    ]
    for column, title in enumerate(header, start=1):
        sheet.cell(datasets.SAMM_HEADER_ROW, column, title)
    ordered = sorted(clips, key=lambda c: (c.subject, c.inducement, natural_key(c.name)))
    for row, clip in enumerate(ordered, start=datasets.SAMM_HEADER_ROW + 1):
        blinks = clip.blink_frames()
        note = "Blinks" if blinks and blinks[0] <= clip.offset and blinks[1] >= clip.onset else None
        values = [
            clip.subject,
            clip.name,
            clip.inducement,
            clip.onset,
            clip.apex,
            clip.offset,
            f"=SUM(F{row}-D{row})+1",
            "Micro - 1/2",
            _au_cell(clip.aus),
            clip.emotion,
            SAMM_OBJECTIVE_CLASSES[clip.emotion],
            note,
        ]
        for column, value in enumerate(values, start=1):
            sheet.cell(row, column, value)
        sheet.cell(row, 1).number_format = "@"  # '006' is text, as in the real sheet
    _save_workbook(workbook, path)


def _megc_row(clip: ClipPlan) -> str:
    """A row of the MEGC 2019 ground truth: subjects sub01 / 6 / s01, SMIC names zero-padded."""
    label = MEGC2019_CLASSES.index(clip.label)
    if clip.part == "casme2":
        return f"casme2,{clip.subject},{clip.name},{label}"
    if clip.part == "samm":
        return f"samm,{int(clip.subject)},{clip.name},{label}"
    number = int(clip.subject[1:])
    padded = f"s{number:02d}" + clip.name[len(clip.subject) :]
    return f"smic,s{number:02d},{padded},{label}"


def write_megc_ground_truth(clips: list[ClipPlan], path: Path) -> None:
    """No header, CRLF; parts in the official file's order (casme2, smic, samm); MEGC classes only."""
    order = {"casme2": 0, "smic": 1, "samm": 2}
    ordered = sorted(clips, key=lambda c: (order[c.part], natural_key(c.subject), natural_key(c.name)))
    rows = [_megc_row(c) for c in ordered if c.label in MEGC2019_CLASSES]
    path.write_bytes("".join(f"{row}\r\n" for row in rows).encode("ascii"))


TRUTH_COLUMNS = [
    "part",
    "subject",
    "clip",
    "class",
    "emotion",
    "aus",
    "onset",
    "apex",
    "offset",
    "first_frame",
    "last_frame",
    "fps",
    "amplitude_px",
    "action_gain",
    "peak_px",
    "iod_px",
    "blink",
    "frame_dir",
    "photo",
    "image_format",
    "jpeg_quality",
    "drift_px",
    "roll_deg",
]


def write_truth(subjects: list[SubjectPlan], iods: list[float], path: Path) -> None:
    """synth_clips.tsv: the generator's own truth, one row per clip; iods: each subject's IOD, frame px."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(TRUTH_COLUMNS)
        for subject, iod in zip(subjects, iods, strict=True):
            for clip in subject.clips:
                blinks = clip.blink_frames()
                writer.writerow(
                    [
                        clip.part,
                        clip.subject,
                        clip.name,
                        clip.label,
                        clip.emotion,
                        clip.aus,
                        clip.onset,
                        clip.apex,
                        clip.offset,
                        clip.first_frame,
                        clip.last_frame,
                        f"{subject.fps:g}",
                        f"{clip.amplitude_px:.4f}",
                        f"{clip.action_gain:g}",
                        f"{clip.amplitude_px * clip.action_gain * iod / 100:.4f}",
                        f"{iod:.3f}",
                        f"{blinks[0]}-{blinks[1]}" if blinks else "",
                        clip.frame_dir,
                        subject.photo,
                        subject.image_format,
                        subject.jpeg_quality if subject.image_format == "jpg" else "",
                        f"{clip.drift_px:.3f}",
                        f"{clip.roll_deg:.3f}",
                    ]
                )
