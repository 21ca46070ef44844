"""What a task is: its classes, each dataset kind's emotions mapped onto them, an optional ground truth."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

# (samples, excluded, dataset specs, ground-truth file, *, strict, gt_path as configured)
#   -> (samples kept, excluded with the dropped ones added, reconciliation report)
Reconcile = Callable[..., tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]


@dataclass(frozen=True)
class Task:
    """A classification task over the indexed clips.

    ``mapping`` gives, per dataset kind, each emotion (lower case) that belongs to the task and its
    class: several emotions may share a class, a kind may rename or leave out emotions, and a kind the
    mapping lacks takes no part. Clips outside the task are excluded with the reason
    ``exclusion_reason`` gives. ``reconcile`` checks the index against the task's ground truth
    (``task.ground_truth`` in the config); None: the task has none.
    """

    name: str
    classes: tuple[str, ...]  # in label_index order
    mapping: Mapping[str, Mapping[str, str]]
    reconcile: Reconcile | None = None

    def __post_init__(self):
        for kind, emotions in self.mapping.items():
            unknown = sorted(set(emotions.values()) - set(self.classes))
            if unknown:
                raise ValueError(
                    f"task {self.name!r}: kind {kind!r} maps to {unknown}, which are not among its classes "
                    f"{list(self.classes)}"
                )

    def label(self, kind: str, emotion: str) -> str | None:
        """The class of a clip of dataset kind ``kind`` with ``emotion``; None: outside the task."""
        return self.mapping.get(kind, {}).get(emotion.lower())

    def exclusion_reason(self, kind: str, emotion: str) -> str:
        if kind not in self.mapping:
            return f"dataset kind {kind!r} is not part of the {self.name} task"
        return f"emotion {emotion!r} is outside the {self.name} classes"
