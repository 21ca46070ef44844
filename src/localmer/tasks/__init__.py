"""Tasks: which classes the indexed clips are labelled with, and how each dataset's emotions map onto them.

- ``task``      the ``Task`` interface (classes, per-kind emotion mapping, optional ground-truth step)
- ``registry``  the tasks by name (``TASKS``, ``get_task``)
- ``megc2019``  the MEGC 2019 composite (negative / positive / surprise) and its ground-truth reconciliation
"""

from .registry import TASKS, get_task
from .task import Task

__all__ = ["TASKS", "Task", "get_task"]
