"""The sample index: every configured dataset read, its frames attached, its emotions mapped to the task.

The result is one sample table (``samples.tsv``) whose columns are ``SAMPLE_COLUMNS``:

- ``sample_id``   ``dataset/subject/clip``, unique
- ``dataset``     the configured dataset name (the prefix of subjects and sample ids)
- ``kind``        the dataset kind (``registry.DATASET_KINDS``: casme2, samm, smic, manifest)
- ``subject``     ``dataset/subject`` (LOSO folds are these), e.g. ``casme2/sub01``, ``samm/006``, ``smic/s01``
- ``clip``        clip name as the ground truth writes it (SMIC zero-padded: ``s01_ne_01``)
- ``label``, ``label_index``  task class and its index in the task's class list
- ``emotion``     the dataset's own emotion (or SMIC folder label)
- ``objective_class``  SAMM's Objective Classes cell (1-7, Davison et al. 2018); empty for other kinds
- ``aus``         action units as coded (``4+L10``; empty where the dataset has none)
- ``onset``, ``apex``, ``offset``  absolute frame numbers as the frame files are numbered (videos: 0-based)
- ``apex_source`` where ``apex`` comes from (``APEX_SOURCES``): ``annotated``, the annotation's apex, a
  number within onset..offset; ``middle``, onset + (offset - onset) // 2, where there is none (SMIC,
  an empty manifest cell, CASME II's '/') or it lies outside onset..offset (noted with the value)
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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..apex import middle_apex
from ..atomic import atomic_output
from ..frames import FrameError, frame_number, is_video, list_frames, video_frame_count
from .common import (
    EXCLUDED_COLUMNS,
    RECONCILIATION_COLUMNS,
    RECONCILIATION_DIFFERENCES,
    AnnotatedClip,
    AnnotationError,
    Problem,
    excluded_row,
)
from .registry import DatasetKind, get_dataset_kind, read_dataset

log = logging.getLogger(__name__)

# What the index's apex can be; ``localmer.apex`` chooses among these and a spotted apex later.
APEX_SOURCES = ("annotated", "middle")

SAMPLE_COLUMNS = [
    "sample_id",
    "dataset",
    "kind",
    "subject",
    "clip",
    "label",
    "label_index",
    "emotion",
    "objective_class",
    "aus",
    "onset",
    "apex",
    "apex_source",
    "offset",
    "fps",
    "frame_dir",
    "frames",
    "n_frames",
    "notes",
    "source",
]


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

    def differences(self) -> pd.DataFrame:
        """The reconciliation's differences from the ground truth (missing clips, label mismatches):
        recorded rather than raised when task.strict is false."""
        return self.reconciliation[self.reconciliation.status.isin(RECONCILIATION_DIFFERENCES)]

    def differences_line(self, reconciliation_path: str | Path) -> str | None:
        """A one-line summary of ``differences`` naming where they are listed; None when there are none."""
        differences = self.differences()
        if differences.empty:
            return None
        counts = differences.status.value_counts()
        kinds = ", ".join(f"{counts.get(status, 0)} {status}" for status in RECONCILIATION_DIFFERENCES)
        return f"{len(differences)} clip(s) differ from the ground truth ({kinds}): see {reconciliation_path}"

    def write(self, out_dir: str | Path) -> None:
        """samples.tsv, excluded.tsv, reconciliation.tsv and index_summary.tsv, each complete or absent."""
        out = Path(out_dir)
        tables = {
            "samples.tsv": self.samples,
            "excluded.tsv": self.excluded,
            "reconciliation.tsv": self.reconciliation,
            "index_summary.tsv": self.summary(),
        }
        for name, table in tables.items():
            with atomic_output(out / name) as partial:
                table.to_csv(partial, sep="\t", index=False)


def build_index(
    datasets: list[dict], task: dict | None, base_dir: str | Path = ".", *, attach_frames: bool = True
) -> SampleIndex:
    """Read every dataset, attach frames, map the clips to the task's classes, reconcile with its ground truth.

    ``task`` is the config's task block: ``name`` (a registered task, or the path of a task table file),
    ``ground_truth`` and ``strict``. None: every annotated clip, unlabelled (label empty, label_index
    -1): the clips preprocessing covers, whatever task an experiment picks among them.
    ``attach_frames`` False reads the annotations (sheets, folder names) only: no frame is listed
    (``frames`` empty, ``n_frames`` 0), a clip without onset/offset (SMIC) keeps them empty
    (``localmer index --sheets-only``).
    """
    return _read_index(datasets, task, base_dir, attach_frames=attach_frames, every_clip=False)[0]


def build_index_and_clips(
    datasets: list[dict], task: dict | None, base_dir: str | Path = "."
) -> tuple[SampleIndex, pd.DataFrame]:
    """``build_index(datasets, task)`` and the samples of ``build_index(datasets, None)`` (every annotated
    clip, unlabelled: what preprocessing covers), from one reading of the sheets and frames (rule
    build_index writes both). Every clip's frames are attached, the task's excluded ones too."""
    return _read_index(datasets, task, base_dir, attach_frames=True, every_clip=True)


def _read_index(
    datasets: list[dict], task: dict | None, base_dir: str | Path, *, attach_frames: bool, every_clip: bool
) -> tuple[SampleIndex, pd.DataFrame | None]:
    from ..tasks import resolve_task  # tasks import this package's readers; imported here, not at module load

    base_dir = Path(base_dir)
    definition = resolve_task(task, base_dir) if task is not None else None
    classes = definition.classes if definition else ()
    rows, every_row, excluded = [], [], []
    for spec in datasets:
        kind = get_dataset_kind(spec["kind"])
        clips, dataset_excluded = read_dataset(spec, base_dir)
        excluded += dataset_excluded
        fps = spec.get("fps", kind.default_fps)
        problems: list[Problem] = []
        kept = 0
        for clip in clips:
            label = ""
            if definition is not None:
                value = getattr(clip, definition.field_of(kind.name))
                label = definition.label(kind.name, value)
                if label is None:
                    excluded.append(
                        excluded_row(
                            spec["name"],
                            clip.subject,
                            clip.clip,
                            clip.emotion,
                            definition.exclusion_reason(kind.name, value),
                            clip.source,
                        )
                    )
                    if not every_clip:
                        continue
            if attach_frames:
                frames = _attach_frames(clip, kind, problems)
                if frames is None:
                    continue
                apex_source = _resolve_apex(clip, frames["numbers"])
            else:  # the sheets alone: frame counts and whole-clip defaults wait for the frames
                frames = {"frames": "", "n_frames": 0}
                apex_source = _resolve_apex(clip, None) if clip.onset is not None else ""
            row = {
                "sample_id": clip.sample_id,
                "dataset": clip.dataset,
                "kind": clip.kind,
                "subject": f"{clip.dataset}/{clip.subject}",
                "clip": clip.clip,
                "label": label or "",
                "label_index": classes.index(label) if definition and label is not None else -1,
                "emotion": clip.emotion,
                "objective_class": clip.objective_class,
                "aus": clip.aus,
                "onset": clip.onset,
                "apex": clip.apex,
                "apex_source": apex_source,
                "offset": clip.offset,
                "fps": clip.fps or fps,
                "frame_dir": str(clip.frame_dir),
                "frames": frames["frames"],
                "n_frames": frames["n_frames"],
                "notes": "; ".join(clip.notes),
                "source": clip.source,
            }
            if every_clip:
                every_row.append({**row, "label": "", "label_index": -1})
            if label is not None:
                rows.append(row)
                kept += 1
        if problems:
            raise AnnotationError(problems)
        log.info("%s (%s): %d clips read, %d in the task", spec["name"], spec["kind"], len(clips), kept)
    samples = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    excluded_table = pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS)
    reconciliation = pd.DataFrame(columns=RECONCILIATION_COLUMNS)
    if task is not None and task.get("ground_truth"):
        if definition.reconcile is None:
            raise ValueError(f"task {definition.name!r} has no ground truth to reconcile; remove task.ground_truth")
        samples, excluded_table, reconciliation = definition.reconcile(
            samples,
            excluded_table,
            datasets,
            base_dir / task["ground_truth"],
            strict=task.get("strict", True),
            gt_path=str(task["ground_truth"]),
        )
    index = SampleIndex(samples.reset_index(drop=True), excluded_table.reset_index(drop=True), reconciliation, classes)
    differences = index.differences_line("reconciliation.tsv")
    if differences:  # only with task.strict false: strict mode raised above
        log.warning("task.strict is false: %s", differences)
    return index, pd.DataFrame(every_row, columns=SAMPLE_COLUMNS) if every_clip else None


def _attach_frames(clip: AnnotatedClip, kind: DatasetKind, problems: list[Problem]) -> dict | None:
    """Frame listing of a clip, checked against its onset/offset; fills the whole-clip defaults (SMIC, manifest)."""
    path = clip.frame_dir
    where = clip.file or str(path)
    if kind.videos and is_video(path):
        frames, numbers = [], _video_frame_numbers(path, clip, problems)
    else:
        if not path.is_dir():
            problems.append(Problem(where, clip.row, kind.frames_field, f"frame folder {str(path)!r} does not exist"))
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
    return {"frames": "|".join(frames), "n_frames": len(numbers), "numbers": numbers}


def _resolve_apex(clip: AnnotatedClip, numbers: list[int] | None) -> str:
    """The clip's apex_source. An apex that is missing or outside onset..offset is replaced by the middle
    frame (a clamped one would be a guess), noted with the value that was not used. ``numbers``: the
    frame numbers present (None: not listed, the sheets alone)."""
    middle = middle_apex(clip.onset, clip.offset)
    source = "middle"
    if clip.apex is None:
        clip.notes.append(f"no apex annotation; middle frame {middle} used")
    elif not clip.onset <= clip.apex <= clip.offset:
        clip.notes.append(
            f"apex {clip.apex} outside onset..offset {clip.onset}..{clip.offset}: not used, middle frame {middle} used"
        )
    else:
        source = "annotated"
    if source == "middle":
        clip.apex = middle
    if numbers is not None and clip.apex not in numbers:
        clip.notes.append(f"apex frame {clip.apex} is not among the clip's frames")
    return source


def _video_frame_numbers(path: Path, clip: AnnotatedClip, problems: list[Problem]) -> list[int]:
    try:
        return list(range(video_frame_count(path)))
    except FrameError as err:
        problems.append(Problem(clip.file, clip.row, "path", str(err)))
        return []
