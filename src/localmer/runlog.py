"""Logging set-up shared by the CLI and the workflow's scripts."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
Item = TypeVar("Item")


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


def progress(items: Iterable[Item], total: int, what: str, every_s: float = 10.0) -> Iterator[Item]:
    """Yield ``items`` and log 'what: done/total (percent), elapsed, remaining' at most every ``every_s``
    seconds and at the end: progress that reads well in a log file (a bar's carriage returns do not)."""
    logger = logging.getLogger("localmer.progress")
    start = last = time.monotonic()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= every_s or done == total:
            last = now
            elapsed = now - start
            remaining = elapsed / done * (total - done) if total > done else 0.0
            logger.info(
                "%s: %d/%d (%.0f%%), %.0f s elapsed, ~%.0f s to go",
                what,
                done,
                total,
                100 * done / max(total, 1),
                elapsed,
                remaining,
            )
