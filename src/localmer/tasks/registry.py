"""The tasks by name, and the task a config's ``task`` block names.

A new task is one YAML table in ``tables/`` plus its name in ``TABLE_TASKS`` (``task.load_task_table``
reads it; its format is in ``task``'s docstring); a task that needs code (a ground-truth
reconciliation, as megc2019) is one module defining a ``Task`` plus one entry below. A user's own task
is a table file whose path is the config's ``task.name``: no code at all.
"""

from __future__ import annotations

from pathlib import Path

from .megc2019 import MEGC2019
from .task import Task, load_task_table

TABLES = Path(__file__).with_name("tables")
TABLE_TASKS = ("casme2_5class", "samm_5class", "smic_3class", "objective_classes")

TASKS: dict[str, Task] = {
    task.name: task for task in (MEGC2019, *(load_task_table(TABLES / f"{name}.yaml") for name in TABLE_TASKS))
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; registered tasks: {', '.join(map(repr, TASKS))}")
    return TASKS[name]


def is_task_table(name: str) -> bool:
    """Whether a ``task.name`` is the path of a task table file rather than a registered name."""
    return Path(name).suffix in (".yaml", ".yml")


def resolve_task(block: dict, base_dir: str | Path = ".") -> Task:
    """The task of a config's ``task`` block: ``task.name`` is a registered task, or the path of a task
    table file (.yaml; relative paths start at ``base_dir``)."""
    name = block["name"]
    return load_task_table(Path(base_dir) / name) if is_task_table(name) else get_task(name)
