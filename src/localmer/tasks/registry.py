"""The tasks by name; the config schema's ``task.name`` values are read from here.

A new task is one module defining a ``Task`` plus one entry in ``TASKS``.
"""

from __future__ import annotations

from .megc2019 import MEGC2019
from .task import Task

TASKS: dict[str, Task] = {task.name: task for task in (MEGC2019,)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; registered tasks: {', '.join(map(repr, TASKS))}")
    return TASKS[name]
