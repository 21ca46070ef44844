"""Logging set-up shared by the CLI and the workflow's scripts."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
Item = TypeVar("Item")


def to_stderr(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=FORMAT, stream=sys.stderr)


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(fragment in record.getMessage() for fragment in self.fragments)


# Predicting with six models, one after another, is what tf.function's retracing warning is about.
_TENSORFLOW_NOTICES = _DropMessages("triggered tf.function retracing")


def quiet_libraries(verbose: bool = False) -> None:
    """Keep the libraries' notices about themselves out of the console and the logs; with ``verbose``,
    leave everything on. Call before TensorFlow is imported and before OpenCV opens a video. Variables
    already set in the environment win.

    - TensorFlow's C++ log (TF_CPP_MIN_LOG_LEVEL=3): its notices (oneDNN, CPU instructions, absl's
      "log messages before absl::InitializeLog()") and ERROR lines that are not errors of the run, such
      as tf.data's "E0000 ... use_unbounded_threadpool" (printed when op determinism is on and Keras is
      given arrays). A TensorFlow failure still raises, and the exception's message is shown.
    - ffmpeg's messages through OpenCV (OPENCV_FFMPEG_LOGLEVEL=8, fatal only): "moov atom not found" comes
      before localmer's own error for an unreadable video, which names the file.
    - tf.function's retracing warning (predicting with six models in one process traces six predict
      functions, as it must): that message only. (Keras's "shuffle is ignored" warning has no cause
      left: training passes each epoch's own order and ``shuffle=False``.)
    """
    tensorflow_logger = logging.getLogger("tensorflow")
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        tensorflow_logger.removeFilter(_TENSORFLOW_NOTICES)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
    tensorflow_logger.addFilter(_TENSORFLOW_NOTICES)


@contextlib.contextmanager
def to_file(path: str | Path):
    """Send log records, and the traceback of a failure, to ``path`` (a rule's ``log:`` file); keep the
    libraries' notices out (``quiet_libraries``)."""
    quiet_libraries()
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
