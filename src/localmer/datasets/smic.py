"""SMIC-HS: no sheet; root/s1/micro/{negative,positive,surprise}/s1_ne_01/image100230.bmp.

Layout quirks handled:

- the label is the folder the clip sits in (micro/negative, ...); a clip's own code (ne, po, sur)
  must agree with it, and its subject number with its subject folder;
- subject and clip folders are unpadded (s1, s1_ne_1) while the MEGC ground truth writes s01 and
  s01_ne_01: subjects and clips are named zero-padded, frame_dir keeps the real folder;
- a clip folder not named s<n>_<ne|po|sur>_<nn> keeps its name, noted;
- non_micro folders hold clips that are not micro-expressions: listed as excluded;
- clips carry no onset, apex or offset: the whole clip is used (first and last frame, middle frame as
  apex), filled when the frames are attached.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..frames import natural_key
from .common import AnnotatedClip, AnnotationError, Problem, check_duplicates, excluded_row

DEFAULT_FPS = 100.0
EMOTIONS = frozenset({"negative", "positive", "surprise"})
_SMIC_CLIP = re.compile(r"s0*(\d+)_(ne|po|sur)_(\d+)", re.IGNORECASE)
_SMIC_LABEL_CODE = {"negative": "ne", "positive": "po", "surprise": "sur"}


def subject_id(number: int) -> str:
    """A subject as the ground truth writes it: s01."""
    return f"s{number:02d}"


def read_smic(dataset: str, root: Path, annotations: Path | None = None) -> tuple[list[AnnotatedClip], list[dict]]:
    """The micro clips under ``root`` (the HS folder) and the excluded ones (non_micro folders).

    SMIC-HS has no annotation file (``annotations`` is not used).
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
        subject = subject_id(int(match.group(1)))
        for non_micro in sorted((subject_dir / "non_micro").glob("*")) if (subject_dir / "non_micro").is_dir() else []:
            if non_micro.is_dir():
                excluded.append(
                    excluded_row(
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
            if label not in EMOTIONS:
                problems.append(
                    Problem(str(label_dir), None, None, f"unknown label folder; expected one of {sorted(EMOTIONS)}")
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
                    AnnotatedClip(
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
    check_duplicates(clips, problems)
    if problems:
        raise AnnotationError(problems)
    return clips, excluded
