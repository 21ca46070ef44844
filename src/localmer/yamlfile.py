"""Reading YAML files (config files, task tables) with one-line errors that name the file.

Its own module so that what reads a task table in a job does not import the config validator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: str | Path, what: str, error: type[Exception]) -> Any:
    """A YAML file's content; a missing or unparsable file raises ``error`` naming ``what`` and the path."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{what} {str(path)!r} does not exist") from None
    except yaml.YAMLError as err:
        raise error(f"{what} {str(path)!r} is not valid YAML: {err}") from None
