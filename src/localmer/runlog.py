"""Logging set-up shared by the CLI and the workflow's scripts."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def to_stderr(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=FORMAT, stream=sys.stderr)


@contextlib.contextmanager
def to_file(path: str | Path):
    """Send log records, and the traceback of a failure, to ``path`` (a rule's ``log:`` file)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Progress that libraries print (Keras epochs) goes to the log too, not to Snakemake's terminal.
    stack = contextlib.ExitStack()
    stdout = stack.enter_context(open(path, "a", buffering=1))  # noqa: SIM115 (closed by the stack)
    stack.enter_context(contextlib.redirect_stdout(stdout))
    try:
        yield
    except BaseException:
        logging.getLogger("localmer").exception("failed")
        raise
    finally:
        stack.close()
        root.removeHandler(handler)
        handler.close()
