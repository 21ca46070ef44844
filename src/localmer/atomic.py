"""Outputs that appear whole or not at all.

A command that fails half-way (a corrupt frame, a full disk, Ctrl-C) must not leave a file that looks
finished: the next step, or a user, would read the clips before the failure as if they were all.
Snakemake deletes a failed job's outputs, but ``localmer`` commands run without it too, so every writer
they reach writes to a partial name beside its target and renames it when complete.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def partial_path(path: str | Path) -> Path:
    """The name ``path`` is written under until complete: hidden, marked partial and by this process,
    in the same folder (a rename within a file system is atomic); the extension is kept, since writers
    such as OpenCV and matplotlib choose the format by it."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield the partial path to write ``path``'s content to (a file, or a folder the caller creates);
    on success rename it to ``path``, replacing what was there; on any exception, KeyboardInterrupt
    included, remove it and leave ``path`` as it was. Creates ``path``'s parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    _remove(partial)  # left by an earlier process that had the same id and was killed
    try:
        yield partial
        if partial.is_dir() and path.is_dir() and any(path.iterdir()):
            # os.replace cannot replace a non-empty folder: move the old one aside first.
            previous = path.with_name(f".{path.name}.previous-{os.getpid()}")
            os.replace(path, previous)
            os.replace(partial, path)
            shutil.rmtree(previous)
        else:
            os.replace(partial, path)
    except BaseException:
        _remove(partial)
        raise
