"""Per-region ("ROI") labels from FACS action units (the 2019 method's region labels).

Each region is trained on its own label: the clip's class where the clip's AUs touch that region,
else an extra ``not_concerned`` class. Clips without AUs (SMIC-HS), and clips none of whose AUs touch
any region, fall back to the clip's class in every region. ``mode="face"`` gives every region the
clip's class (the paper's ablation). The AU -> region table is ``config/au_regions.yaml``; laterality
follows FACS: ``L``/``R`` = the subject's left/right, matching the region names.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from .facs import parse_aus
from .regions import REGION_NAMES

NOT_CONCERNED = "not_concerned"
AREAS = {
    "eye": ("left_eye", "right_eye"),
    "cheek": ("left_cheek", "right_cheek"),
    "nose": ("nose",),
    "mouth": ("mouth",),
}


class AuTableError(ValueError):
    """An AU -> region table that cannot be used; the message names the file and the AU."""


def load_au_regions(path: str | Path) -> dict[int, tuple[str, ...]]:
    """AU number -> areas (eye, cheek, nose, mouth) it moves."""
    path = Path(path)
    try:
        table = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise AuTableError(f"AU region table {str(path)!r} does not exist") from None
    if not isinstance(table, dict):
        raise AuTableError(f"AU region table {str(path)!r}: expected a mapping AU number -> list of areas")
    problems = []
    for au, areas in table.items():
        if not isinstance(au, int) or au < 0:
            problems.append(f"key {au!r}: expected an AU number")
        elif not (isinstance(areas, list) and areas and all(a in AREAS for a in areas)):
            problems.append(f"AU {au}: expected a list of areas from {sorted(AREAS)}, got {areas!r}")
    if problems:
        raise AuTableError(f"AU region table {str(path)!r}:\n" + "\n".join(f"  {p}" for p in problems))
    return {au: tuple(areas) for au, areas in table.items()}


def touched_regions(code: str, table: dict[int, tuple[str, ...]]) -> set[str]:
    """The regions a clip's AUs move (empty when the code names no AU the table knows)."""
    touched: set[str] = set()
    for unit in parse_aus(code):
        for area in table.get(unit.number, ()):
            names = AREAS[area]
            if len(names) == 2 and unit.side:  # lateral area and a one-sided AU: the subject's side only
                names = (f"{'left' if unit.side == 'L' else 'right'}_{area}",)
            touched.update(names)
    return touched


def region_labels(samples: pd.DataFrame, table: dict[int, tuple[str, ...]], mode: str = "roi") -> pd.DataFrame:
    """One row per sample: sample_id and a label column per region (a class or ``not_concerned``)."""
    if mode not in ("roi", "face"):
        raise ValueError(f"region label mode must be 'roi' or 'face', not {mode!r}")
    rows = []
    for sample in samples.itertuples():
        touched = touched_regions(sample.aus, table) if mode == "roi" else set()
        fallback = not touched  # no AUs, AUs the table doesn't know, or face labels: the clip's class
        rows.append(
            {
                "sample_id": sample.sample_id,
                **{name: sample.label if fallback or name in touched else NOT_CONCERNED for name in REGION_NAMES},
            }
        )
    return pd.DataFrame(rows, columns=["sample_id", *REGION_NAMES])
