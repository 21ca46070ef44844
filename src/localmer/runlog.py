"""Logging set-up shared by the CLI and the workflow's scripts."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
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

# What TensorFlow's C++ code prints while it loads, before absl's log is set up, whatever
# TF_CPP_MIN_LOG_LEVEL says (on CPUs with AVX-512: "oneDNN custom operations are on"): INFO and WARNING
# lines, and absl's note that they go to stderr. ERROR and FATAL lines, and anything else, pass.
_LOAD_NOTICE = re.compile(r"(WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} \d\d:\d\d:\d\d)")


class _QuietLoad(importlib.abc.Loader):
    """A loader that runs another with file descriptor 2 captured, then passes on what is not a notice."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def __getattr__(self, name: str):  # the wrapped loader's resource readers and the like
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self.loader.exec_module(module)
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                lines = captured.read().decode(errors="replace").splitlines(keepends=True)
                sys.stderr.write("".join(line for line in lines if not _LOAD_NOTICE.match(line)))


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds tensorflow, the first time it is imported, with a loader that drops its load notices."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once; and the search below does not come back here
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoad(spec.loader)
        return spec


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
    - What TensorFlow prints while it loads, before that log is set up (on CPUs with AVX-512, oneDNN's
      notice), which no variable silences: the first ``import tensorflow`` runs with stderr captured,
      and only its INFO and WARNING lines are dropped (``_LOAD_NOTICE``).
    - tf.function's retracing warning (predicting with six models in one process traces six predict
      functions, as it must): that message only. (Keras's "shuffle is ignored" warning has no cause
      left: training passes each epoch's own order and ``shuffle=False``.)
    """
    tensorflow_logger = logging.getLogger("tensorflow")
    quiet_import = [finder for finder in sys.meta_path if isinstance(finder, _QuietTensorFlowImport)]
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        tensorflow_logger.removeFilter(_TENSORFLOW_NOTICES)
        for finder in quiet_import:
            sys.meta_path.remove(finder)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
    tensorflow_logger.addFilter(_TENSORFLOW_NOTICES)
    if "tensorflow" not in sys.modules and not quiet_import:
        sys.meta_path.insert(0, _QuietTensorFlowImport())


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
