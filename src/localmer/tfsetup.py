"""TensorFlow set-up of a process: threads, seeds and determinism, GPU memory, native bfloat16.

Kept apart from training so that ``localmer predict`` sets TensorFlow up without importing the
training code.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

# Packages that Keras imports, when they are installed, for integrations localmer does not use (its
# scikit-learn wrappers, its image-gallery plot); Keras falls back to stubs without them.
KERAS_OPTIONAL_IMPORTS = ("sklearn", "matplotlib")


@contextlib.contextmanager
def _hidden_modules(names: tuple[str, ...]):
    """Imports of ``names`` that are not imported yet fail inside the block (None in ``sys.modules``, as
    for a package not installed) and work again after it."""
    hidden = [name for name in names if name not in sys.modules]
    sys.modules.update(dict.fromkeys(hidden))
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]


def configure_tensorflow(threads: int, seed: int) -> None:
    """One-job-per-core threading, repeatable CPU runs, and GPU memory growth when a GPU is present.
    (What TensorFlow prints is set by ``localmer.runlog.quiet_libraries``, before it is imported.)

    Imported here first (a job's process), TensorFlow and Keras are imported with the garbage collector
    off and their objects then frozen (``gc.freeze``): they live as long as the process, yet every
    full collection walked them all, during the import, at each ``keras.backend.clear_session`` and at
    the process's exit. Objects made later are collected as usual. Keras is imported without its
    optional integrations (``KERAS_OPTIONAL_IMPORTS``): a job's process would import scikit-learn and
    matplotlib's pyplot for nothing (benchmarks/RESULTS.md); the process can still import them later."""
    fresh = "tensorflow" not in sys.modules
    if fresh:
        gc.disable()
    try:
        with _hidden_modules(KERAS_OPTIONAL_IMPORTS if fresh else ()):
            import keras
            import tensorflow as tf
    finally:
        if fresh:
            gc.enable()
            gc.freeze()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        log.info("TensorFlow was already initialised in this process; its threading is kept")
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def cpu_has_bfloat16(cpuinfo: str) -> bool:
    """Whether CPU flags (the text of ``/proc/cpuinfo``) include AVX512-BF16 or AMX-BF16."""
    return bool(set(cpuinfo.split()) & {"avx512_bf16", "amx_bf16"})


def native_bfloat16() -> bool:
    """Whether bfloat16 arithmetic runs natively here: an NVIDIA GPU of compute capability >= 8.0 (Ampere
    on), or a CPU with bfloat16 instructions. Elsewhere it is emulated, slower than float32."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        if tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)) >= (8, 0):
            return True
    try:
        return cpu_has_bfloat16(Path("/proc/cpuinfo").read_text())
    except OSError:  # not Linux: unknown, say so
        return False
