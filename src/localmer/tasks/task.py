"""What a task is: its classes, each dataset kind's clips mapped onto them, an optional ground truth.

A task is a table, not code: per dataset kind, which value of a clip (its emotion, or another
annotated field such as SAMM's objective class) gives which class. The registered tasks other than
megc2019 are YAML tables in ``tables/``; a user's own task is a file of the same format named by
``task.table`` in the config (``load_task_table`` reads and checks both)::

    name: casme2_5class
    description: CASME II, the five emotion classes of the literature
    classes: [happiness, disgust, repression, surprise, others]
    label_field: {}            # kind -> clip field the mapping reads; default emotion
    mapping:                   # kind -> value -> class; a kind left out takes no part
      casme2: {happiness: happiness, disgust: disgust, repression: repression, surprise: surprise,
               others: others}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..yamlfile import read_yaml

# (samples, excluded, dataset specs, ground-truth file, *, strict, gt_path as configured)
#   -> (samples kept, excluded with the dropped ones added, reconciliation report)
Reconcile = Callable[..., tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]

# The clip fields a task may label from: the emotion every kind has, and SAMM's Objective Classes cell.
LABEL_FIELDS = ("emotion", "objective_class")
TASK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class TaskTableError(ValueError):
    """A task table that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Task:
    """A classification task over the indexed clips.

    ``mapping`` gives, per dataset kind, each value (lower case) of the clip field ``label_field``
    names for that kind (default ``emotion``) that belongs to the task, and its class: several values
    may share a class, and a kind the mapping lacks takes no part. Clips outside the task are excluded
    with the reason ``exclusion_reason`` gives. ``reconcile`` checks the index against the task's
    ground truth (``task.ground_truth`` in the config); None: the task has none.
    """

    name: str
    classes: tuple[str, ...]  # in label_index order
    mapping: Mapping[str, Mapping[str, str]]
    reconcile: Reconcile | None = None
    label_field: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self):
        for kind, values in self.mapping.items():
            unknown = sorted(set(values.values()) - set(self.classes))
            if unknown:
                raise ValueError(
                    f"task {self.name!r}: kind {kind!r} maps to {unknown}, which are not among its classes "
                    f"{list(self.classes)}"
                )

    def field_of(self, kind: str) -> str:
        """The clip field this task labels ``kind``'s clips from."""
        return self.label_field.get(kind, "emotion")

    def label(self, kind: str, value: str) -> str | None:
        """The class of a clip of dataset kind ``kind`` whose ``field_of(kind)`` is ``value``; None: outside."""
        return self.mapping.get(kind, {}).get(str(value).strip().lower())

    def exclusion_reason(self, kind: str, value: str) -> str:
        if kind not in self.mapping:
            return f"dataset kind {kind!r} is not part of the {self.name} task"
        what = self.field_of(kind).replace("_", " ")
        if not str(value).strip():
            return f"no {what} annotated: outside the {self.name} classes"
        return f"{what} {value!r} is outside the {self.name} classes"


def load_task_table(path: str | Path) -> Task:
    """A task from a YAML table (the format in this module's docstring), every field checked.

    Raises TaskTableError naming the file and field: unknown keys, a kind that is not registered, a
    value the kind's annotations never take, a class nothing maps to.
    """
    from ..datasets.registry import DATASET_KINDS

    path = Path(path)
    where = f"task table {str(path)!r}"
    table = read_yaml(path, "task table", TaskTableError)
    if not isinstance(table, dict):
        raise TaskTableError(f"{where}: expected a mapping with name, classes and mapping")
    unknown = sorted(set(table) - {"name", "description", "classes", "label_field", "mapping"})
    if unknown:
        raise TaskTableError(
            f"{where}: unknown key(s) {unknown}; allowed: name, description, classes, label_field, mapping"
        )
    name = table.get("name")
    if not isinstance(name, str) or not TASK_NAME.fullmatch(name):
        raise TaskTableError(f"{where}, field 'name': expected a name of letters, digits and _, got {name!r}")
    classes = table.get("classes")
    if (
        not isinstance(classes, list)
        or len(classes) < 2
        or not all(isinstance(c, str) and c.strip() for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise TaskTableError(f"{where}, field 'classes': expected a list of at least 2 distinct names, got {classes!r}")
    label_field = table.get("label_field") or {}
    mapping = table.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise TaskTableError(f"{where}, field 'mapping': expected dataset kind -> {{value: class}}, got {mapping!r}")
    if not isinstance(label_field, dict):
        raise TaskTableError(f"{where}, field 'label_field': expected dataset kind -> field, got {label_field!r}")
    for kind, chosen in label_field.items():
        if kind not in mapping:
            raise TaskTableError(f"{where}, field 'label_field.{kind}': kind {kind!r} is not in 'mapping'")
        if chosen not in LABEL_FIELDS:
            raise TaskTableError(
                f"{where}, field 'label_field.{kind}': expected one of {list(LABEL_FIELDS)}, got {chosen!r}"
            )
    resolved: dict[str, dict[str, str]] = {}
    for kind, values in mapping.items():
        key = f"mapping.{kind}"
        if kind not in DATASET_KINDS:
            raise TaskTableError(
                f"{where}, field '{key}': unknown dataset kind; registered kinds: {', '.join(DATASET_KINDS)}"
            )
        if not isinstance(values, dict) or not values:
            raise TaskTableError(f"{where}, field '{key}': expected value -> class, got {values!r}")
        resolved[kind] = {}
        for value, chosen in values.items():
            value_text = str(value).strip().lower()
            if label_field.get(kind, "emotion") == "emotion" and value_text not in DATASET_KINDS[kind].emotions:
                raise TaskTableError(
                    f"{where}, field '{key}.{value}': {kind} annotates no emotion {value!r}; its emotions: "
                    f"{sorted(DATASET_KINDS[kind].emotions)}"
                )
            if chosen not in classes:
                raise TaskTableError(
                    f"{where}, field '{key}.{value}': class {chosen!r} is not among the classes {classes}"
                )
            resolved[kind][value_text] = chosen
    reached = {c for values in resolved.values() for c in values.values()}
    unreached = [c for c in classes if c not in reached]
    if unreached:
        raise TaskTableError(f"{where}, field 'classes': nothing maps to {unreached}")
    return Task(
        name=name,
        classes=tuple(classes),
        mapping=resolved,
        label_field=dict(label_field),
        description=str(table.get("description") or ""),
    )
