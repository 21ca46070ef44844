"""Dataset adapters and the sample index.

Readers for CASME II, SAMM and SMIC-HS in their real on-disk layouts and annotation formats, a generic
manifest (CSV of frame folders or videos), and the MEGC 2019 composite task reconciled clip by clip
against the official ground-truth CSV. The result is one sample table (``samples.tsv``) whose columns
are ``SAMPLE_COLUMNS``:

- ``sample_id``   ``dataset/subject/clip``, unique
- ``dataset``     the configured dataset name (the prefix of subjects and sample ids)
- ``kind``        casme2 | samm | smic | manifest
- ``subject``     ``dataset/subject`` (LOSO folds are these), e.g. ``casme2/sub01``, ``samm/006``, ``smic/s01``
- ``clip``        clip name as the ground truth writes it (SMIC zero-padded: ``s01_ne_01``)
- ``label``, ``label_index``  task class and its index in the task's class list
- ``emotion``     the dataset's own emotion (or SMIC folder label)
- ``aus``         action units as coded (``4+L10``; empty where the dataset has none)
- ``onset``, ``apex``, ``offset``  absolute frame numbers as the frame files are numbered (videos: 0-based)
- ``fps``         frame rate
- ``frame_dir``   absolute path of the frame folder, or of the video file
- ``frames``      frame file names in natural numeric order, ``|``-separated (empty for a video)
- ``n_frames``    number of frames in the folder or video
- ``notes``       quirks met and how they were handled, ``;``-separated (empty when none)
- ``source``      where the row came from: ``file:row``, or the folder for SMIC

Everything excluded from the task is listed with its reason in the excluded table; nothing is dropped
silently. Bad input raises AnnotationError naming the file, row and field.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .frames import FrameError, frame_number, is_video, list_frames, natural_key, video_frame_count

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = [
    "sample_id",
    "dataset",
    "kind",
    "subject",
    "clip",
    "label",
    "label_index",
    "emotion",
    "aus",
    "onset",
    "apex",
    "offset",
    "fps",
    "frame_dir",
    "frames",
    "n_frames",
    "notes",
    "source",
]
EXCLUDED_COLUMNS = ["sample_id", "dataset", "subject", "clip", "emotion", "reason", "source"]
RECONCILIATION_COLUMNS = ["dataset", "subject", "clip", "status", "gt_label", "label", "detail"]

DEFAULT_FPS = {"casme2": 200.0, "samm": 200.0, "smic": 100.0}

CASME2_COLUMNS = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"]
SAMM_COLUMNS = [
    "Subject",
    "Filename",
    "Onset Frame",
    "Apex Frame",
    "Offset Frame",
    "Action Units",
    "Estimated Emotion",
]
SAMM_SHEET = "MICRO_ONLY"
SAMM_HEADER_ROW = 14  # 13 preamble rows above the header in the real sheet

# The emotions each dataset's annotations use (lower case); anything else is an error.
EMOTIONS = {
    "casme2": {"happiness", "surprise", "disgust", "repression", "fear", "sadness", "others"},
    "samm": {"anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise", "other"},
    "smic": {"negative", "positive", "surprise"},
}

# MEGC 2019 composite: per dataset kind, emotion -> class; emotions not listed are outside the task.
MEGC2019_CLASSES = ("negative", "positive", "surprise")
MEGC2019_MAPPING = {
    # CASME II negative is disgust + repression only (fear and sadness are dropped, as in the GT).
    "casme2": {"disgust": "negative", "repression": "negative", "happiness": "positive", "surprise": "surprise"},
    "samm": {
        "anger": "negative",
        "contempt": "negative",
        "disgust": "negative",
        "fear": "negative",
        "sadness": "negative",
        "happiness": "positive",
        "surprise": "surprise",
    },
    "smic": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
}
# A manifest may give a class name or any emotion the datasets use.
MEGC2019_MAPPING["manifest"] = {
    **MEGC2019_MAPPING["samm"],
    **MEGC2019_MAPPING["casme2"],
    **MEGC2019_MAPPING["smic"],
}
EMOTIONS["manifest"] = set().union(*EMOTIONS.values()) | {"others", "other"}

# Ground-truth dataset names per kind (the official CSV writes casme2, samm, smic).
GT_DATASET = {"casme2": "casme2", "samm": "samm", "smic": "smic"}


@dataclass(frozen=True)
class Problem:
    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = [f"file '{self.file}'"]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return f"{', '.join(where)}: {self.message}"


class AnnotationError(ValueError):
    """Bad dataset input; holds every problem found, each naming file, row and field."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        shown = self.problems[:25]
        more = len(self.problems) - len(shown)
        text = "\n".join(f"  {p}" for p in shown) + (f"\n  ... and {more} more" if more > 0 else "")
        super().__init__(f"{len(self.problems)} problem(s) in the dataset input:\n{text}")


@dataclass
class Clip:
    """One annotated clip before frames and task labels are attached."""

    dataset: str
    kind: str
    subject: str  # local id, canonical form (sub01, 006, s01)
    clip: str  # canonical clip name
    emotion: str
    aus: str
    onset: int | None
    apex: int | None
    offset: int | None
    frame_dir: Path
    source: str
    row: int | None = None
    file: str = ""
    notes: list[str] = field(default_factory=list)
    fps: float | None = None  # per-clip frame rate (manifest); None: the dataset's

    @property
    def sample_id(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.clip}"


# --------------------------------------------------------------------------------------------- helpers


def read_table(path: str | Path) -> pd.DataFrame:
    """One of the workflow's TSV tables (samples, region labels, reports), empty cells as empty strings."""
    return pd.read_csv(path, sep="\t", keep_default_na=False)


def _int_cell(value, file: str, row: int, column: str, problems: list[Problem]) -> int | None:
    """A frame number cell as int; anything else is recorded as a problem naming the cell."""
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    shown = "an empty cell" if value is None or (isinstance(value, float) and value != value) else repr(value)
    problems.append(Problem(file, row, column, f"expected a frame number, got {shown}"))
    return None


def _aus_cell(value, notes: list[str]) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, int | float):
        # The real sheets store single AUs as numbers (12) and combinations as text (4+L10).
        notes.append(f"aus cell is a number ({value:g})")
        return f"{value:g}"
    return re.sub(r"\s*\+\s*", "+", str(value).strip())


def _read_sheet(path: Path, sheet: str | None, header_row: int, required: list[str]) -> list[tuple[int, dict]]:
    """Rows of an annotation sheet as (excel row number, {column: raw cell value}).

    Read with openpyxl rather than pandas so that cell types are seen as written (pandas turns the
    text subject '01' into the integer 1 and NaN-fills blanks).
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


def _check_timing(clip: Clip, problems: list[Problem], fields: tuple[str, str, str]) -> None:
    """Onset <= offset is required; apex problems are handled and noted."""
    onset_f, apex_f, offset_f = fields
    if clip.onset is None or clip.offset is None:
        return
    if clip.offset < clip.onset:
        problems.append(Problem(clip.file, clip.row, offset_f, f"offset {clip.offset} is before onset {clip.onset}"))
        return
    middle = (clip.onset + clip.offset) // 2
    if clip.apex is None:
        clip.notes.append(f"apex not annotated; middle frame {middle} used")
        clip.apex = middle
    elif not clip.onset <= clip.apex <= clip.offset:
        clip.notes.append(f"apex {clip.apex} outside onset..offset; clamped")
        clip.apex = min(max(clip.apex, clip.onset), clip.offset)
    elif clip.apex == clip.onset:
        clip.notes.append("apex equals onset")
    elif clip.apex == clip.offset:
        clip.notes.append("apex equals offset")


def _check_duplicates(clips: list[Clip], problems: list[Problem]) -> None:
    first_seen: dict[str, Clip] = {}
    for clip in clips:
        if clip.sample_id in first_seen:
            other = first_seen[clip.sample_id]
            problems.append(
                Problem(
                    clip.file, clip.row, "Filename", f"duplicate clip {clip.subject}/{clip.clip} (also row {other.row})"
                )
            )
        else:
            first_seen[clip.sample_id] = clip


# --------------------------------------------------------------------------------------------- readers


def _read_coded_sheet(dataset: str, kind: str, root: Path, sheet_path: Path) -> list[Clip]:
    """CASME II and SAMM: a coding sheet with one row per clip, frames under root/subject/clip."""
    if kind == "casme2":
        rows = _read_sheet(sheet_path, None, 1, CASME2_COLUMNS)
        onset_f, apex_f, offset_f = "OnsetFrame", "ApexFrame", "OffsetFrame"
    else:
        rows = _read_sheet(sheet_path, SAMM_SHEET, SAMM_HEADER_ROW, SAMM_COLUMNS)
        onset_f, apex_f, offset_f = "Onset Frame", "Apex Frame", "Offset Frame"
    file = str(sheet_path)
    problems: list[Problem] = []
    clips = []
    for row, cells in rows:
        notes: list[str] = []
        subject_cell = cells["Subject"]
        subject = _subject_id(kind, subject_cell, file, row, problems, notes)
        clip_name = str(cells["Filename"] or "").strip()
        if not clip_name:
            problems.append(Problem(file, row, "Filename", "empty clip name"))
        emotion = str(cells["Estimated Emotion"] or "").strip()
        if emotion.lower() not in EMOTIONS[kind]:
            problems.append(
                Problem(
                    file,
                    row,
                    "Estimated Emotion",
                    f"unknown emotion {emotion!r}; expected one of {sorted(EMOTIONS[kind])}",
                )
            )
        onset = _int_cell(cells[onset_f], file, row, onset_f, problems)
        offset = _int_cell(cells[offset_f], file, row, offset_f, problems)
        apex_cell = cells[apex_f]
        apex = None
        if apex_cell is None or (isinstance(apex_cell, str) and apex_cell.strip() in ("/", "-", "?", "")):
            # The real CASME II sheet has one apex written '/': not annotated, not an error.
            notes.append(f"apex cell {'empty' if apex_cell is None else repr(apex_cell.strip())}")
        else:
            apex = _int_cell(apex_cell, file, row, apex_f, problems)
        aus = _aus_cell(cells["Action Units"], notes)
        if subject is None or not clip_name:
            continue
        clip = Clip(
            dataset=dataset,
            kind=kind,
            subject=subject,
            clip=clip_name,
            emotion=emotion,
            aus=aus,
            # Canonical subject ids are the folder names (sub01, 006).
            onset=onset,
            apex=apex,
            offset=offset,
            frame_dir=root / subject / clip_name,
            source=f"{sheet_path.name}:{row}",
            row=row,
            file=file,
            notes=notes,
        )
        _check_timing(clip, problems, (onset_f, apex_f, offset_f))
        clips.append(clip)
    _check_duplicates(clips, problems)
    if problems:
        raise AnnotationError(problems)
    return clips


def _subject_id(kind: str, cell, file: str, row: int, problems: list[Problem], notes: list[str]) -> str | None:
    """Canonical subject id from a sheet cell: CASME II '01' / 1 -> sub01, SAMM '006' / 6 -> 006."""
    if isinstance(cell, int | float) and not isinstance(cell, bool) and float(cell).is_integer():
        notes.append(f"subject cell is a number ({int(cell)})")
        number = int(cell)
    else:
        text = str(cell or "").strip()
        match = re.fullmatch(r"(?:sub)?0*(\d+)", text, flags=re.IGNORECASE)
        if match is None:
            problems.append(
                Problem(
                    file,
                    row,
                    "Subject",
                    f"expected a subject number such as {'01' if kind == 'casme2' else '006'}, got {cell!r}",
                )
            )
            return None
        number = int(match.group(1))
    return f"sub{number:02d}" if kind == "casme2" else f"{number:03d}"


_SMIC_CLIP = re.compile(r"s0*(\d+)_(ne|po|sur)_(\d+)", re.IGNORECASE)
_SMIC_LABEL_CODE = {"negative": "ne", "positive": "po", "surprise": "sur"}


def read_smic(dataset: str, root: Path) -> tuple[list[Clip], list[dict]]:
    """SMIC-HS: root/s1/micro/{negative,positive,surprise}/s1_ne_01/image*.bmp; the label is the folder.

    Returns the micro clips and the excluded ones (non_micro folders). Subjects and clips are written
    zero-padded (s01, s01_ne_01) as in the MEGC ground truth; frame_dir keeps the real folder.
    """
    if not root.is_dir():
        raise AnnotationError([Problem(str(root), None, None, "SMIC-HS root folder does not exist")])
    problems: list[Problem] = []
    clips, excluded = [], []
    subject_dirs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))
    for subject_dir in subject_dirs:
        match = re.fullmatch(r"s0*(\d+)", subject_dir.name, flags=re.IGNORECASE)
        if match is None:
            problems.append(
                Problem(str(subject_dir), None, None, "expected a subject folder named s<number> (s1, s2, ...)")
            )
            continue
        subject = f"s{int(match.group(1)):02d}"
        for non_micro in sorted((subject_dir / "non_micro").glob("*")) if (subject_dir / "non_micro").is_dir() else []:
            if non_micro.is_dir():
                excluded.append(
                    _excluded_row(
                        dataset,
                        subject,
                        non_micro.name,
                        "non_micro",
                        "non-micro clip (SMIC non_micro folder)",
                        str(non_micro),
                    )
                )
        micro = subject_dir / "micro"
        if not micro.is_dir():
            problems.append(Problem(str(subject_dir), None, None, "no 'micro' folder"))
            continue
        for label_dir in sorted(p for p in micro.iterdir() if p.is_dir()):
            label = label_dir.name.lower()
            if label not in EMOTIONS["smic"]:
                problems.append(
                    Problem(
                        str(label_dir), None, None, f"unknown label folder; expected one of {sorted(EMOTIONS['smic'])}"
                    )
                )
                continue
            for clip_dir in sorted((p for p in label_dir.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
                clip_match = _SMIC_CLIP.fullmatch(clip_dir.name)
                notes = []
                if clip_match is None:
                    clip_name = clip_dir.name
                    notes.append("clip folder name does not follow s<n>_<ne|po|sur>_<nn>")
                else:
                    number, code, index = clip_match.groups()
                    if int(number) != int(match.group(1)):
                        problems.append(
                            Problem(
                                str(clip_dir),
                                None,
                                None,
                                f"clip folder belongs to subject s{number}, not {subject_dir.name}",
                            )
                        )
                        continue
                    if code.lower() != _SMIC_LABEL_CODE[label]:
                        problems.append(
                            Problem(
                                str(clip_dir), None, None, f"clip code {code!r} contradicts its label folder {label!r}"
                            )
                        )
                        continue
                    clip_name = f"{subject}_{code.lower()}_{int(index):02d}"
                clips.append(
                    Clip(
                        dataset=dataset,
                        kind="smic",
                        subject=subject,
                        clip=clip_name,
                        emotion=label,
                        aus="",
                        onset=None,
                        apex=None,
                        offset=None,
                        frame_dir=clip_dir,
                        source=str(clip_dir.relative_to(root)),
                        file=str(clip_dir),
                        notes=notes,
                    )
                )
    _check_duplicates(clips, problems)
    if problems:
        raise AnnotationError(problems)
    return clips, excluded


MANIFEST_REQUIRED = ["path", "subject", "label"]
MANIFEST_OPTIONAL = ["clip", "onset", "apex", "offset", "aus", "fps"]


def read_manifest(dataset: str, manifest: Path, root: Path) -> list[Clip]:
    """Generic manifest CSV: path (frame folder or video), subject, label [, clip, onset, apex, offset, aus, fps].

    Relative paths start at ``root``. Frame numbers of a video are 0-based frame indices.
    """
    if not manifest.exists():
        raise AnnotationError([Problem(str(manifest), None, None, "manifest does not exist")])
    try:
        table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except Exception as err:
        raise AnnotationError([Problem(str(manifest), None, None, f"not a readable CSV ({err})")]) from None
    table.columns = [c.strip().lower() for c in table.columns]
    missing = [c for c in MANIFEST_REQUIRED if c not in table.columns]
    if missing:
        raise AnnotationError(
            [Problem(str(manifest), 1, c, f"missing column (header has: {list(table.columns)})") for c in missing]
        )
    unknown = [c for c in table.columns if c not in MANIFEST_REQUIRED + MANIFEST_OPTIONAL]
    if unknown:
        raise AnnotationError(
            [
                Problem(str(manifest), 1, c, f"unknown column; allowed: {MANIFEST_REQUIRED + MANIFEST_OPTIONAL}")
                for c in unknown
            ]
        )
    problems: list[Problem] = []
    clips = []
    file = str(manifest)
    for index, record in table.iterrows():
        row = int(index) + 2  # 1-based, after the header line
        path_text = record["path"].strip()
        subject = record["subject"].strip()
        if not path_text:
            problems.append(Problem(file, row, "path", "empty path"))
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", subject):
            problems.append(
                Problem(
                    file, row, "subject", f"expected a subject id of letters, digits, '_', '.', '-', got {subject!r}"
                )
            )
            continue
        label = record["label"].strip()
        if label.lower() not in EMOTIONS["manifest"]:
            problems.append(
                Problem(
                    file,
                    row,
                    "label",
                    f"unknown label {label!r}; expected a class or emotion such as {sorted(EMOTIONS['manifest'])}",
                )
            )
        path = Path(path_text)
        path = path if path.is_absolute() else root / path
        video = is_video(path)
        clip_name = record.get("clip", "").strip() or (path.stem if video else path.name)
        numbers = {}
        for column in ("onset", "apex", "offset"):
            text = record.get(column, "").strip()
            if text:
                if not text.isdigit():
                    problems.append(Problem(file, row, column, f"expected a frame number, got {text!r}"))
                numbers[column] = int(text) if text.isdigit() else None
            else:
                numbers[column] = None
        fps = None
        fps_text = record.get("fps", "").strip()
        if fps_text:
            try:
                fps = float(fps_text)
            except ValueError:
                problems.append(Problem(file, row, "fps", f"expected a number, got {fps_text!r}"))
        clips.append(
            Clip(
                dataset=dataset,
                kind="manifest",
                subject=subject,
                clip=clip_name,
                emotion=label,
                aus=re.sub(r"\s*\+\s*", "+", record.get("aus", "").strip()),
                onset=numbers["onset"],
                apex=numbers["apex"],
                offset=numbers["offset"],
                frame_dir=path,
                source=f"{manifest.name}:{row}",
                row=row,
                file=file,
                fps=fps,
            )
        )
    _check_duplicates(clips, problems)
    if problems:
        raise AnnotationError(problems)
    return clips


# --------------------------------------------------------------------------------------------- frames


def _attach_frames(clip: Clip, problems: list[Problem]) -> dict | None:
    """Frame listing of a clip, checked against its onset/offset; fills SMIC and manifest defaults."""
    path = clip.frame_dir
    where = clip.file or str(path)
    if clip.kind == "manifest" and is_video(path):
        frames, numbers = [], _video_frame_numbers(path, clip, problems)
    else:
        if not path.is_dir():
            problems.append(
                Problem(
                    where,
                    clip.row,
                    "Filename" if clip.row and clip.kind != "manifest" else "path",
                    f"frame folder {str(path)!r} does not exist",
                )
            )
            return None
        try:
            frames = list_frames(path)
        except FrameError as err:
            problems.append(Problem(str(path), None, None, str(err)))
            return None
        numbers = [frame_number(name) for name in frames]
    if not numbers:
        if not problems or problems[-1].file != str(path):
            problems.append(Problem(where, clip.row, None, f"no frames in {str(path)!r}"))
        return None
    if clip.onset is None:
        clip.onset = numbers[0]
    if clip.offset is None:
        clip.offset = numbers[-1]
    if clip.apex is None:
        middle = (
            numbers[(numbers.index(clip.onset) + numbers.index(clip.offset)) // 2]
            if clip.onset in numbers and clip.offset in numbers
            else (clip.onset + clip.offset) // 2
        )
        clip.notes.append(f"no apex annotation; middle frame {middle} used")
        clip.apex = middle
    if clip.offset < clip.onset:
        problems.append(Problem(where, clip.row, "offset", f"offset {clip.offset} is before onset {clip.onset}"))
        return None
    if numbers[0] > clip.onset or numbers[-1] < clip.offset:
        problems.append(
            Problem(
                where,
                clip.row,
                "offset" if numbers[-1] < clip.offset else "onset",
                f"frames in {str(path)!r} run {numbers[0]}..{numbers[-1]} ({len(numbers)} frames), "
                f"which does not cover onset..offset {clip.onset}..{clip.offset}",
            )
        )
        return None
    present = set(numbers)
    gaps = [n for n in range(clip.onset, clip.offset + 1) if n not in present]
    if gaps:
        clip.notes.append(f"{len(gaps)} frame number(s) missing in onset..offset (first {gaps[0]})")
    return {"frames": "|".join(frames), "n_frames": len(numbers)}


def _video_frame_numbers(path: Path, clip: Clip, problems: list[Problem]) -> list[int]:
    try:
        return list(range(video_frame_count(path)))
    except FrameError as err:
        problems.append(Problem(clip.file, clip.row, "path", str(err)))
        return []


# --------------------------------------------------------------------------------------------- task


def _excluded_row(dataset: str, subject: str, clip: str, emotion: str, reason: str, source: str) -> dict:
    return {
        "sample_id": f"{dataset}/{subject}/{clip}",
        "dataset": dataset,
        "subject": f"{dataset}/{subject}",
        "clip": clip,
        "emotion": emotion,
        "reason": reason,
        "source": source,
    }


def read_ground_truth(path: Path) -> pd.DataFrame:
    """The MEGC 2019 ground truth: no header, rows dataset,subject,filename,label (0 neg, 1 pos, 2 sur)."""
    if not path.exists():
        raise AnnotationError([Problem(str(path), None, None, "ground-truth CSV does not exist")])
    problems = []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            problems.append(
                Problem(str(path), number, None, f"expected 4 fields dataset,subject,filename,label, got {len(parts)}")
            )
            continue
        dataset, subject, clip, label = parts
        if dataset not in GT_DATASET.values():
            problems.append(
                Problem(
                    str(path),
                    number,
                    "dataset",
                    f"unknown dataset {dataset!r}; expected one of {sorted(GT_DATASET.values())}",
                )
            )
            continue
        if label not in ("0", "1", "2"):
            problems.append(
                Problem(
                    str(path), number, "label", f"expected 0 (negative), 1 (positive) or 2 (surprise), got {label!r}"
                )
            )
            continue
        canonical = _gt_subject(dataset, subject)
        if canonical is None:
            problems.append(Problem(str(path), number, "subject", f"cannot read subject {subject!r} for {dataset}"))
            continue
        rows.append(
            {
                "gt_dataset": dataset,
                "subject": canonical,
                "clip": clip,
                "gt_label": MEGC2019_CLASSES[int(label)],
                "line": number,
            }
        )
    if problems:
        raise AnnotationError(problems)
    table = pd.DataFrame(rows, columns=["gt_dataset", "subject", "clip", "gt_label", "line"])
    duplicated = table[table.duplicated(["gt_dataset", "subject", "clip"], keep=False)]
    if len(duplicated):
        raise AnnotationError(
            Problem(str(path), int(r.line), "filename", f"duplicate clip {r.gt_dataset}/{r.subject}/{r.clip}")
            for r in duplicated.itertuples()
        )
    return table


def _gt_subject(dataset: str, subject: str) -> str | None:
    """GT subjects are written sub01 (CASME II), 6 (SAMM), s01 (SMIC); return our canonical ids."""
    match = re.fullmatch(r"(?:sub|s)?0*(\d+)", subject, flags=re.IGNORECASE)
    if match is None:
        return None
    number = int(match.group(1))
    return {"casme2": f"sub{number:02d}", "samm": f"{number:03d}", "smic": f"s{number:02d}"}[dataset]


@dataclass
class SampleIndex:
    samples: pd.DataFrame
    excluded: pd.DataFrame
    reconciliation: pd.DataFrame
    classes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:
        """Clips per dataset and class (and FULL), plus excluded counts per dataset."""
        counts = self.samples.groupby(["dataset", "label"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=list(self.classes), fill_value=0)
        counts.loc["FULL"] = counts.sum()
        counts["total"] = counts[list(self.classes)].sum(axis=1)
        subjects = self.samples.groupby("dataset")["subject"].nunique()
        counts["subjects"] = subjects.reindex(counts.index).fillna(0).astype(int)
        counts.loc["FULL", "subjects"] = self.samples["subject"].nunique()
        excluded = self.excluded.groupby("dataset").size() if len(self.excluded) else pd.Series(dtype=int)
        counts["excluded"] = excluded.reindex(counts.index).fillna(0).astype(int)
        counts.loc["FULL", "excluded"] = len(self.excluded)
        counts.index.name = "dataset"
        return counts.reset_index()

    def write(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.samples.to_csv(out / "samples.tsv", sep="\t", index=False)
        self.excluded.to_csv(out / "excluded.tsv", sep="\t", index=False)
        self.reconciliation.to_csv(out / "reconciliation.tsv", sep="\t", index=False)
        self.summary().to_csv(out / "index_summary.tsv", sep="\t", index=False)


def read_dataset(spec: dict, base_dir: Path = Path(".")) -> tuple[list[Clip], list[dict]]:
    """Clips of one configured dataset (``{name, kind, root, annotations?}``) and its excluded rows."""
    name, kind = spec["name"], spec["kind"]
    root = (base_dir / spec["root"]).resolve()
    if kind in ("casme2", "samm"):
        return _read_coded_sheet(name, kind, root, (base_dir / spec["annotations"]).resolve()), []
    if kind == "smic":
        return read_smic(name, root)
    if kind == "manifest":
        return read_manifest(name, (base_dir / spec["annotations"]).resolve(), root), []
    raise ValueError(f"unknown dataset kind {kind!r}")


def build_index(datasets: list[dict], task: dict, base_dir: str | Path = ".") -> SampleIndex:
    """Read every dataset, attach frames, map emotions to the task's classes, reconcile with the GT."""
    base_dir = Path(base_dir)
    if task["name"] != "megc2019":
        raise ValueError(f"unknown task {task['name']!r}")
    classes = MEGC2019_CLASSES
    rows, excluded = [], []
    for spec in datasets:
        clips, dataset_excluded = read_dataset(spec, base_dir)
        excluded += dataset_excluded
        fps = spec.get("fps", DEFAULT_FPS.get(spec["kind"]))
        problems: list[Problem] = []
        kept = 0
        for clip in clips:
            mapping = MEGC2019_MAPPING[spec["kind"]]
            label = mapping.get(clip.emotion.lower())
            if label is None:
                excluded.append(
                    _excluded_row(
                        spec["name"],
                        clip.subject,
                        clip.clip,
                        clip.emotion,
                        f"emotion {clip.emotion!r} is outside the megc2019 classes",
                        clip.source,
                    )
                )
                continue
            frames = _attach_frames(clip, problems)
            if frames is None:
                continue
            rows.append(
                {
                    "sample_id": clip.sample_id,
                    "dataset": clip.dataset,
                    "kind": clip.kind,
                    "subject": f"{clip.dataset}/{clip.subject}",
                    "clip": clip.clip,
                    "label": label,
                    "label_index": classes.index(label),
                    "emotion": clip.emotion,
                    "aus": clip.aus,
                    "onset": clip.onset,
                    "apex": clip.apex,
                    "offset": clip.offset,
                    "fps": clip.fps or fps,
                    "frame_dir": str(clip.frame_dir),
                    **frames,
                    "notes": "; ".join(clip.notes),
                    "source": clip.source,
                }
            )
            kept += 1
        if problems:
            raise AnnotationError(problems)
        log.info("%s (%s): %d clips read, %d in the task", spec["name"], spec["kind"], len(clips), kept)
    samples = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    excluded_table = pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS)
    reconciliation = pd.DataFrame(columns=RECONCILIATION_COLUMNS)
    if task.get("ground_truth"):
        samples, excluded_table, reconciliation = reconcile(
            samples,
            excluded_table,
            datasets,
            read_ground_truth(base_dir / task["ground_truth"]),
            strict=task.get("strict", True),
            gt_path=str(task["ground_truth"]),
        )
    return SampleIndex(samples.reset_index(drop=True), excluded_table.reset_index(drop=True), reconciliation, classes)


class ReconciliationError(ValueError):
    """The datasets and the MEGC ground truth disagree (strict mode)."""


def reconcile(
    samples: pd.DataFrame, excluded: pd.DataFrame, datasets: list[dict], gt: pd.DataFrame, *, strict: bool, gt_path: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Keep exactly the ground truth's clips; report every difference by clip.

    - in the datasets, not in the GT: excluded with reason (e.g. CASME II sub04/EP12_01f, apex '/')
    - in the GT, not among the task's clips: 'missing' (absent, or excluded by the emotion mapping)
    - in both with different labels: 'label_mismatch'
    Strict mode raises ReconciliationError on missing clips and label mismatches.
    """
    report = []
    kind_of = {d["name"]: d["kind"] for d in datasets}
    gt_names = {name: GT_DATASET[kind] for name, kind in kind_of.items() if kind in GT_DATASET}
    gt_keys = {(r.gt_dataset, r.subject, r.clip): r.gt_label for r in gt.itertuples()}
    keep = []
    new_excluded = []
    for row in samples.itertuples():
        gt_dataset = gt_names.get(row.dataset)
        if gt_dataset is None:
            keep.append(True)  # not a MEGC part (e.g. a manifest dataset): nothing to check against
            continue
        local_subject = row.subject.split("/", 1)[1]
        gt_label = gt_keys.get((gt_dataset, local_subject, row.clip))
        if gt_label is None:
            keep.append(False)
            detail = "not in the MEGC 2019 ground truth" + (f" (notes: {row.notes})" if row.notes else "")
            new_excluded.append(_excluded_row(row.dataset, local_subject, row.clip, row.emotion, detail, row.source))
            report.append(
                {
                    "dataset": row.dataset,
                    "subject": row.subject,
                    "clip": row.clip,
                    "status": "excluded_not_in_gt",
                    "gt_label": "",
                    "label": row.label,
                    "detail": detail,
                }
            )
            continue
        keep.append(True)
        status = "match" if gt_label == row.label else "label_mismatch"
        detail = "" if status == "match" else f"emotion {row.emotion!r} maps to {row.label!r}; the GT says {gt_label!r}"
        report.append(
            {
                "dataset": row.dataset,
                "subject": row.subject,
                "clip": row.clip,
                "status": status,
                "gt_label": gt_label,
                "label": row.label,
                "detail": detail,
            }
        )
    samples = samples[keep]
    present = {
        (gt_names[r.dataset], r.subject.split("/", 1)[1], r.clip) for r in samples.itertuples() if r.dataset in gt_names
    }
    excluded_by_mapping = {
        (gt_names.get(r.dataset), r.subject.split("/", 1)[1], r.clip): r.reason for r in excluded.itertuples()
    }
    name_of = {gt: name for name, gt in gt_names.items()}
    for key, gt_label in gt_keys.items():
        if key[0] not in name_of or key in present:
            continue
        name = name_of[key[0]]
        detail = excluded_by_mapping.get(key, f"clip not found in dataset {name!r}")
        report.append(
            {
                "dataset": name,
                "subject": f"{name}/{key[1]}",
                "clip": key[2],
                "status": "missing",
                "gt_label": gt_label,
                "label": "",
                "detail": detail,
            }
        )
    report_table = pd.DataFrame(report, columns=RECONCILIATION_COLUMNS).sort_values(
        ["dataset", "subject", "clip"], kind="stable"
    )
    excluded = pd.concat([excluded, pd.DataFrame(new_excluded, columns=EXCLUDED_COLUMNS)], ignore_index=True)
    mismatches = report_table[report_table.status.isin(["missing", "label_mismatch"])]
    if strict and len(mismatches):
        listed = "\n".join(
            f"  {r.status}: {r.subject}/{r.clip} (GT {r.gt_label or '-'}, ours {r.label or '-'}) {r.detail}"
            for r in mismatches.head(30).itertuples()
        )
        more = f"\n  ... and {len(mismatches) - 30} more" if len(mismatches) > 30 else ""
        raise ReconciliationError(
            f"{len(mismatches)} clip(s) differ between the datasets and the ground truth {gt_path!r}:\n{listed}{more}\n"
            "Fix the dataset paths, or set task.strict: false to record the differences and go on."
        )
    return samples, excluded, report_table.reset_index(drop=True)
