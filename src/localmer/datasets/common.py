"""What every dataset reader and task shares: the input errors, the annotated clip, the excluded rows."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

EXCLUDED_COLUMNS = ["sample_id", "dataset", "subject", "clip", "emotion", "reason", "source"]
RECONCILIATION_COLUMNS = ["dataset", "subject", "clip", "status", "gt_label", "label", "detail"]
# Reconciliation statuses that are differences from the ground truth: an error with task.strict true,
# recorded (and summarised) with strict false.
RECONCILIATION_DIFFERENCES = ("missing", "label_mismatch")


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


class ReconciliationError(ValueError):
    """The datasets and the task's ground truth disagree (strict mode)."""


@dataclass
class AnnotatedClip:
    """One clip as its annotation source describes it, before frames and task labels are attached."""

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
    objective_class: str = ""  # SAMM's Objective Classes cell (1-7); empty where a kind has none

    @property
    def sample_id(self) -> str:
        return f"{self.dataset}/{self.subject}/{self.clip}"


def read_table(path: str | Path) -> pd.DataFrame:
    """One of the workflow's TSV tables (samples, region labels, reports), empty cells as empty strings."""
    return pd.read_csv(path, sep="\t", keep_default_na=False)


def join_aus(text: str) -> str:
    """Action units as one token: '4 + L10' -> '4+L10'."""
    return re.sub(r"\s*\+\s*", "+", text.strip())


def check_duplicates(clips: list[AnnotatedClip], problems: list[Problem]) -> None:
    first_seen: dict[str, AnnotatedClip] = {}
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


def excluded_row(dataset: str, subject: str, clip: str, emotion: str, reason: str, source: str) -> dict:
    """A row of the excluded table (``EXCLUDED_COLUMNS``); ``subject`` is the local id."""
    return {
        "sample_id": f"{dataset}/{subject}/{clip}",
        "dataset": dataset,
        "subject": f"{dataset}/{subject}",
        "clip": clip,
        "emotion": emotion,
        "reason": reason,
        "source": source,
    }
