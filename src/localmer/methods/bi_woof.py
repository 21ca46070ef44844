"""Bi-WOOF + linear SVM: bi-weighted oriented optical flow (Liong et al. 2018, "Less is more").

The input is the onset->apex flow on the aligned face (source ``flow``: ``onset_apex`` (H, W, 4) u, v,
strain, magnitude; u right, v down, px). Per block of a grid over the face, a histogram of the flow's
orientations weighted by its magnitude ("locally"), normalised, then weighted by the block's optical
strain ("globally"); the blocks' histograms concatenated and L2-normalised. A fold then fits a
standardisation and a linear SVM on them (``localmer.methods.svm``; the paper's classifier, which its
code, christy1206/biwoof ``biwoof.m``, leaves out).

Choices (where the paper and its code are silent or disagree, or this departs from the code):

- Orientation atan2(v, u) in image coordinates (v down), in [-pi, pi]: 0 is rightward, +pi/2
  downward, -pi/2 upward (the convention of ``localmer.flow``'s pictures); magnitude is the flow file's
  sqrt(u^2 + v^2) and strain its textbook optical strain. The code reads orientation from files whose
  convention it does not state.
- ``bins`` (default 8) equal bins over [-pi, pi), the first starting at -pi; an angle of exactly pi
  (leftward motion, v = +0) goes to the first bin with -pi, the same direction. The code's
  ``weightedhistc`` with edges -180:45:179 ends at 135 deg, so its last bin counts only angles of
  exactly 135 deg and motion between 135 and 180 deg is lost; here it is counted.
- Blocks: ``grid`` = [rows, cols] (default 5 x 5), an even split that does not overlap
  (``svm.block_index``); the code's blocks share their boundary rows and columns with their neighbours.
- Block weight: the block's summed optical strain, as the code does (``sum(osRow)``).
- A block without motion (all magnitudes 0) gets a zero histogram (the code divides 0 by 0); a field
  without motion or strain gives the zero vector, not NaN (the code divides by a zero norm).
- Output: float32 (rows x cols x bins,), block by block from the top-left: 200 values for the defaults.
"""

from __future__ import annotations

import numpy as np

from . import svm
from .method import Method, Published


def clip_input(clip: dict, settings: dict) -> np.ndarray:
    """The clip's Bi-WOOF vector, (rows x cols x bins,) float32 (see the module docstring)."""
    name = clip.get("sample_id", "?")
    fields = np.asarray(clip["onset_apex"])
    if fields.ndim != 3 or fields.shape[2] != 4:
        raise ValueError(f"{name}: onset_apex: expected (H, W, 4) u, v, strain, magnitude, got shape {fields.shape}")
    bins = settings["bins"]
    if not (isinstance(bins, int) and bins >= 1):
        raise ValueError(f"bins: expected a positive integer, got {bins!r}")
    fields = fields.astype(np.float64)
    u, v, strain, magnitude = (fields[..., channel] for channel in range(4))
    if not np.isfinite(fields).all():
        raise ValueError(f"{name}: onset_apex: the flow fields hold NaN or infinite values")
    blocks = svm.block_index(u.shape, settings["grid"])
    n_blocks = int(blocks.max()) + 1
    # bin of [-pi, pi) in this order of operations, so that the axes and diagonals fall exactly on edges
    orientation_bin = np.floor(np.arctan2(v, u) * bins / (2 * np.pi) + bins / 2).astype(np.int64) % bins
    histograms = np.bincount(
        (blocks * bins + orientation_bin).ravel(), weights=magnitude.ravel(), minlength=n_blocks * bins
    ).reshape(n_blocks, bins)
    totals = histograms.sum(axis=1, keepdims=True)
    histograms = np.divide(histograms, totals, out=np.zeros_like(histograms), where=totals > 0)
    vector = (histograms * np.bincount(blocks.ravel(), weights=strain.ravel(), minlength=n_blocks)[:, None]).ravel()
    norm = np.linalg.norm(vector)
    return (vector / norm if norm > 0 else vector).astype(np.float32)


METHOD = Method(
    name="bi_woof",
    summary="Bi-WOOF: strain-weighted, magnitude-weighted orientation histograms of the onset->apex flow + linear SVM",
    source="flow",
    clip_input=clip_input,
    input_keys=("grid", "bins"),
    fit=svm.fit,
    model_suffix=".npz",
    deep=False,
    published=(
        Published(
            source="Liong et al. 2018",
            protocol="as reported in the MEGC 2019 papers' tables; LOSO, SVM settings unpublished",
            parts={
                "FULL": (0.6296, 0.6227),
                "smic": (0.5727, 0.5829),
                "casme2": (0.7805, 0.8026),
                "samm": (0.5211, 0.5139),
            },
        ),
    ),
)
