"""The dataset kinds: what the index and the config validation know of each, in one table.

A new kind is one module (its reader, emotions, default fps, layout quirks) plus one entry in
``DATASET_KINDS``; the config schema's ``kind`` values and its annotation-file check are read from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import casme2, manifest, samm, smic
from .common import AnnotatedClip

# (dataset name, root folder, annotation file or None) -> (clips, excluded rows)
Reader = Callable[[str, Path, Path | None], tuple[list[AnnotatedClip], list[dict]]]


@dataclass(frozen=True)
class DatasetKind:
    """One on-disk layout and annotation format."""

    name: str
    read: Reader
    emotions: frozenset[str]  # lower case; the readers reject any other
    default_fps: float | None  # None: the dataset's fps key or a per-clip fps
    annotations: str | None  # the annotation file the kind needs, as messages name it; None: it takes none
    frames_field: str  # the annotation field named when a clip's frames are missing
    videos: bool = False  # whether a clip may be a video file rather than a frame folder
    gt_dataset: str | None = None  # its name in the MEGC 2019 ground truth, where it has one
    subject_id: Callable[[int], str] | None = None  # canonical subject id from a subject number


DATASET_KINDS: dict[str, DatasetKind] = {
    kind.name: kind
    for kind in (
        DatasetKind(
            name="casme2",
            read=casme2.read_casme2,
            emotions=casme2.EMOTIONS,
            default_fps=casme2.DEFAULT_FPS,
            annotations="the coding sheet (.xlsx)",
            frames_field="Filename",
            gt_dataset="casme2",
            subject_id=casme2.subject_id,
        ),
        DatasetKind(
            name="samm",
            read=samm.read_samm,
            emotions=samm.EMOTIONS,
            default_fps=samm.DEFAULT_FPS,
            annotations="the coding sheet (.xlsx)",
            frames_field="Filename",
            gt_dataset="samm",
            subject_id=samm.subject_id,
        ),
        DatasetKind(
            name="smic",
            read=smic.read_smic,
            emotions=smic.EMOTIONS,
            default_fps=smic.DEFAULT_FPS,
            annotations=None,
            frames_field="path",
            gt_dataset="smic",
            subject_id=smic.subject_id,
        ),
        DatasetKind(
            name="manifest",
            read=manifest.read_manifest,
            emotions=manifest.EMOTIONS,
            default_fps=manifest.DEFAULT_FPS,
            annotations="the manifest CSV",
            frames_field="path",
            videos=True,
        ),
    )
}


def get_dataset_kind(name: str) -> DatasetKind:
    if name not in DATASET_KINDS:
        raise ValueError(f"unknown dataset kind {name!r}; registered kinds: {', '.join(map(repr, DATASET_KINDS))}")
    return DATASET_KINDS[name]


def read_dataset(spec: dict, base_dir: Path = Path(".")) -> tuple[list[AnnotatedClip], list[dict]]:
    """Clips of one configured dataset (``{name, kind, root, annotations?}``) and its excluded rows."""
    kind = get_dataset_kind(spec["kind"])
    root = (base_dir / spec["root"]).resolve()
    annotations = (base_dir / spec["annotations"]).resolve() if kind.annotations else None
    return kind.read(spec["name"], root, annotations)
