"""A manifest CSV of one's own clips: path (frame folder or video), subject, label [, clip, onset, apex, offset,
aus, fps].

Quirks handled:

- column titles are matched in any case and without surrounding spaces; an unknown column is an error
  (a misspelt 'onset' would otherwise be ignored);
- relative paths start at the dataset's root; a path ending in a video suffix is a video, whose frame
  numbers are 0-based frame indices;
- the clip name defaults to the folder's name or the video's stem;
- onset, apex, offset and fps may be empty: the whole clip is used (apex: the middle frame, as for an
  apex outside onset..offset; ``apex_source`` says which), and the dataset's fps applies, filled when
  the frames are attached.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..frames import is_video
from . import casme2, samm, smic
from .common import AnnotatedClip, AnnotationError, Problem, check_duplicates, join_aus

DEFAULT_FPS = None  # a manifest gives its own (the dataset's fps key, or a per-clip fps column)
# A manifest may give a class name or any emotion the datasets use.
EMOTIONS = casme2.EMOTIONS | samm.EMOTIONS | smic.EMOTIONS
MANIFEST_REQUIRED = ["path", "subject", "label"]
MANIFEST_OPTIONAL = ["clip", "onset", "apex", "offset", "aus", "fps"]


def read_manifest(dataset: str, root: Path, manifest: Path) -> tuple[list[AnnotatedClip], list[dict]]:
    """The clips the manifest CSV lists, relative paths starting at ``root``; a manifest excludes nothing."""
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
        if label.lower() not in EMOTIONS:
            problems.append(
                Problem(
                    file,
                    row,
                    "label",
                    f"unknown label {label!r}; expected a class or emotion such as {sorted(EMOTIONS)}",
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
            AnnotatedClip(
                dataset=dataset,
                kind="manifest",
                subject=subject,
                clip=clip_name,
                emotion=label,
                aus=join_aus(record.get("aus", "")),
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
    check_duplicates(clips, problems)
    if problems:
        raise AnnotationError(problems)
    return clips, []
