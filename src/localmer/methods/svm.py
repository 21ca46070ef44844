"""What the handcrafted methods (``lbptop_svm``, ``bi_woof``) share: their block grid, and a fold's fit,
per-feature standardisation then a linear SVM (scikit-learn's ``LinearSVC``, one-vs-rest).

Choices (the peers' papers say "linear SVM" and no more):

- Standardisation: mean and standard deviation per feature, from the training inputs only; a feature
  constant over them (max == min, tested exactly, so that float rounding of the mean cannot make a tiny
  scale) gets scale 1.
- ``C`` = ``settings["C"]``; squared hinge loss, L2 penalty (LinearSVC's defaults); solved in the dual,
  which suits the shapes here (~80 clips of 200 to ~4,400 features, more features than samples),
  ``max_iter`` 10,000 (the default 1,000 is near its end on such data; a ConvergenceWarning is logged with
  the fold's label, never silenced).
- Class weights: ``settings["class_weight"]`` ``balanced`` (default) weighs each class present by
  n / (classes present x its count), from y only: the composite's classes are unbalanced (250/109/83)
  and UF1/UAR weigh every class equally; ``none`` weighs every clip 1.
- A class absent from the training targets keeps its score column, at -inf (coefficients 0, intercept
  -inf): it is never predicted, and a softmax of the scores gives it probability exactly 0. With two
  classes present LinearSVC fits one decision function f (positive: the second); the scores are then
  -f and f for the two, so the argmax is LinearSVC's prediction and the scores stay symmetric.
- One class only in the training targets: a ValueError (no SVM can be fitted).

``validation`` is unused (a closed-form fit has no epochs to stop) and so is ``checkpoint_dir`` (the fit
takes seconds; nothing is written there, nothing to remove). ``predict`` returns SVM decision values, not
probabilities (``scores_are_probabilities`` is False).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

CLASS_WEIGHTS = ("balanced", "none")
MAX_ITER = 10_000
ARRAYS = ("mean", "scale", "coef", "intercept", "class_weight", "classes_present")


def block_index(shape: Sequence[int], grid: Sequence[int]) -> np.ndarray:
    """(H, W) int: the block of each pixel in a rows x cols grid over an (H, W) image, numbered row by
    row from the top-left. The split is even: pixel y is in block row floor(y * rows / H), so block sizes
    differ by at most one pixel and the blocks do not overlap."""
    height, width = (int(side) for side in shape)
    rows, cols = _grid(grid)
    if height < rows or width < cols:
        raise ValueError(f"grid: {rows}x{cols} blocks do not fit an image of {height}x{width} px")
    return (np.arange(height) * rows // height)[:, None] * cols + (np.arange(width) * cols // width)[None, :]


def _grid(grid) -> tuple[int, int]:
    if not (
        isinstance(grid, Sequence) and len(grid) == 2 and all(isinstance(n, int | np.integer) and n >= 1 for n in grid)
    ):
        raise ValueError(f"grid: expected [rows, cols] of positive integers, got {grid!r}")
    return int(grid[0]), int(grid[1])


class LinearFit:
    """A fold's standardisation + linear SVM: scores (x - mean) / scale @ coef.T + intercept."""

    history = None  # a closed-form fit: no epochs
    scores_are_probabilities = False  # predict gives SVM decision values; a caller may softmax them

    def __init__(self, mean, scale, coef, intercept, class_weight, classes_present):
        self._arrays = {
            "mean": np.asarray(mean, dtype=np.float64),
            "scale": np.asarray(scale, dtype=np.float64),
            "coef": np.asarray(coef, dtype=np.float64),
            "intercept": np.asarray(intercept, dtype=np.float64),
            "class_weight": np.asarray(class_weight, dtype=np.float64),
            "classes_present": np.asarray(classes_present, dtype=bool),
        }

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """(clips, classes) SVM decision values (not probabilities); -inf for a class absent in training."""
        a = self._arrays
        x = _features(inputs, "inputs", a["mean"].shape[0])
        return ((x - a["mean"]) / a["scale"]) @ a["coef"].T + a["intercept"]

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: array.copy() for name, array in self._arrays.items()}

    def save(self, path: str) -> None:
        """An .npz of ``arrays()`` (written to an open handle, so any path name works)."""
        with open(path, "wb") as handle:
            np.savez(handle, **self._arrays)


def load(path: str) -> LinearFit:
    """A fit saved by ``LinearFit.save``."""
    with np.load(path, allow_pickle=False) as saved:
        missing = [name for name in ARRAYS if name not in saved]
        if missing:
            raise ValueError(f"{path}: not a saved linear SVM fit, missing {', '.join(missing)}")
        return LinearFit(**{name: saved[name] for name in ARRAYS})


def _features(x, name: str, features: int | None = None) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or (features is not None and x.shape[1] != features):
        expected = f"(clips, {features})" if features is not None else "(clips, features)"
        raise ValueError(f"{name}: expected a 2-D array {expected}, got shape {x.shape}")
    return x.astype(np.float64)


def fit(x, y, classes, settings, *, seed, validation=None, checkpoint_dir=None, label="") -> LinearFit:
    """Standardise x on itself and fit a linear SVM to (x, y); see the module docstring for every choice.
    ``validation`` and ``checkpoint_dir`` are unused."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    x = _features(x, "x")
    y = np.asarray(y)
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y: expected {x.shape[0]} integer class indices, got {y.dtype} shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"y: class indices must lie in [0, {classes}), got {y.min()}..{y.max()}")
    weighting = settings.get("class_weight", "balanced")
    if weighting not in CLASS_WEIGHTS:
        raise ValueError(f"class_weight: expected one of {', '.join(CLASS_WEIGHTS)}, got {weighting!r}")
    counts = np.bincount(y, minlength=classes)
    present = counts > 0
    if present.sum() < 2:
        raise ValueError(f"{label}: a linear SVM needs at least 2 classes in y, got {np.flatnonzero(present).tolist()}")

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[x.max(axis=0) == x.min(axis=0)] = 1.0
    if weighting == "balanced":
        class_weight = np.where(present, y.size / (present.sum() * np.maximum(counts, 1)), 0.0)
    else:
        class_weight = present.astype(np.float64)

    svm = LinearSVC(
        C=float(settings["C"]),
        class_weight={int(c): float(class_weight[c]) for c in np.flatnonzero(present)},
        dual=True,
        max_iter=MAX_ITER,
        random_state=seed,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        svm.fit((x - mean) / scale, y)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            log.warning("%s: linear SVM did not converge in %d iterations: %s", label, MAX_ITER, warning.message)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)

    coef = np.zeros((classes, x.shape[1]))
    intercept = np.full(classes, -np.inf)
    fitted = svm.classes_
    if len(fitted) == 2:
        coef[fitted] = [-svm.coef_[0], svm.coef_[0]]
        intercept[fitted] = [-svm.intercept_[0], svm.intercept_[0]]
    else:
        coef[fitted] = svm.coef_
        intercept[fitted] = svm.intercept_
    return LinearFit(mean, scale, coef, intercept, class_weight, present)
