"""Tasks: which classes the indexed clips are labelled with, and how each dataset's clips map onto them.

- ``task``      the ``Task`` interface and the table format (``load_task_table``)
- ``registry``  the tasks by name (``TASKS``, ``get_task``) and a config's task (``resolve_task``)
- ``megc2019``  the MEGC 2019 composite (negative / positive / surprise) and its ground-truth reconciliation
- ``tables/``   the other registered tasks, as tables: casme2_5class, samm_5class, smic_3class,
                objective_classes
"""

from .registry import TASKS, get_task, is_task_table, resolve_task
from .task import Task, TaskTableError, load_task_table

__all__ = ["TASKS", "Task", "TaskTableError", "get_task", "is_task_table", "load_task_table", "resolve_task"]
