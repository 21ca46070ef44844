"""LBP-TOP + linear SVM, the family of the MEGC 2019 baseline (whose settings are unpublished).

The input is the aligned grey face sequence (source ``aligned``: the clip's kept frames, onset..offset,
in the aligned file's order). Local binary patterns (Ojala et al. 2002) on three orthogonal planes (Zhao &
Pietikainen 2007): for each voxel, the pattern of its neighbours in the XY plane (its frame), the XT
plane (its row across time) and the YT plane (its column across time); per block of a grid over the
face and per plane, the histogram of the patterns; the histograms concatenated. A fold then fits a
standardisation and a linear SVM on them (``localmer.methods.svm``).

Choices (where the sources are silent or this departs from them):

- Codes: scikit-image's ``local_binary_pattern`` per plane image: every frame (H, W) for XY, every row
  y's (F, W) image for XT, every column x's (F, H) image for YT. Its neighbour p of P sits at
  (row - R sin(2 pi p / P), col + R cos(2 pi p / P)), bilinearly interpolated, and counts 1 when >= the
  centre. So on XT and YT the neighbourhood is a circle in (t, x) or (t, y) with one radius, in frames
  along time and pixels along space: ``radius`` = [r_xy, r_xt, r_yt] is one radius per plane, not
  Zhao & Pietikainen's per-axis radii (R_X, R_Y, R_T), whose XT and YT neighbourhoods are ellipses.
  The two agree when R_X = R_Y = R_T (the default 1, 1, 1); an elliptic neighbourhood would need an
  own interpolation, for a setting nobody has published for this baseline.
- Patterns: ``nri_uniform`` (default): the uniform patterns (at most two 0/1 changes around the
  circle), each with its own code, all others one code: P (P - 1) + 3 = 59 for P = 8. These are the
  LBP-TOP papers' u2 patterns, which cover most patterns of natural images; rotation invariance
  (``uniform``, P + 2 codes) would merge motion directions that tell expressions apart. ``default``
  (2^P codes) is also accepted.
- Which voxels count: those whose three neighbourhoods lie wholly in the volume, i.e. a margin of
  ceil(r) along every axis of every plane the axis is in (x: r_xy, r_xt; y: r_xy, r_yt; t: r_xt, r_yt):
  the border pixels of every frame and the first and last frames are excluded, the same voxels for all
  three planes (as LBP-TOP does). A clip with fewer than 2 x margin_t + 1 frames is an error.
- Blocks: ``grid`` = [rows, cols] (default 5 x 5) over the whole aligned face, an even split
  (``svm.block_index``); a block's histogram counts its counted voxels over all counted frames,
  normalised to sum 1.
- Output: float32 (rows x cols x 3 x codes,), block by block from the top-left, planes XY, XT, YT,
  codes in scikit-image's numbering: 4,425 values for the defaults.
"""

from __future__ import annotations

import math

import numpy as np

from . import svm
from .method import Method, Published

PLANES = ("XY", "XT", "YT")
PATTERN_CODES = {"nri_uniform": lambda p: p * (p - 1) + 3, "uniform": lambda p: p + 2, "default": lambda p: 2**p}


def _settings(settings: dict) -> tuple[tuple[float, float, float], int, str, int]:
    radius = settings["radius"]
    if not (
        isinstance(radius, list | tuple)
        and len(radius) == 3
        and all(isinstance(r, int | float) and r > 0 for r in radius)
    ):
        raise ValueError(f"radius: expected [r_xy, r_xt, r_yt] of positive numbers, got {radius!r}")
    neighbours = settings["neighbours"]
    if not (isinstance(neighbours, int) and neighbours >= 1):
        raise ValueError(f"neighbours: expected a positive integer, got {neighbours!r}")
    patterns = settings["patterns"]
    if patterns not in PATTERN_CODES:
        raise ValueError(f"patterns: expected one of {', '.join(PATTERN_CODES)}, got {patterns!r}")
    return tuple(float(r) for r in radius), neighbours, patterns, PATTERN_CODES[patterns](neighbours)


def margins(radius) -> tuple[int, int, int]:
    """(t, y, x): the frames and pixels at each end of each axis whose voxels are not counted."""
    r_xy, r_xt, r_yt = (math.ceil(r) for r in radius)
    return max(r_xt, r_yt), max(r_xy, r_yt), max(r_xy, r_xt)


def clip_input(clip: dict, settings: dict) -> np.ndarray:
    """The clip's LBP-TOP histograms, (rows x cols x 3 x codes,) float32 (see the module docstring)."""
    from skimage.feature import local_binary_pattern

    name = clip.get("sample_id", "?")
    faces = np.asarray(clip["faces"])
    if faces.ndim != 3 or faces.dtype != np.uint8:
        raise ValueError(f"{name}: faces: expected (frames, H, W) uint8, got {faces.dtype} shape {faces.shape}")
    radius, neighbours, patterns, codes = _settings(settings)
    frames, height, width = faces.shape
    mt, my, mx = margins(radius)
    if frames < 2 * mt + 1:
        raise ValueError(f"{name}: LBP-TOP with radii {list(radius)} needs at least {2 * mt + 1} frames, got {frames}")
    blocks = svm.block_index((height, width), settings["grid"])
    ts, ys, xs = slice(mt, frames - mt), slice(my, height - my), slice(mx, width - mx)

    def lbp(image, r):
        return local_binary_pattern(image, neighbours, r, patterns).astype(np.int64)

    r_xy, r_xt, r_yt = radius
    xy = np.stack([lbp(faces[t], r_xy)[ys, xs] for t in range(mt, frames - mt)])  # (t, y, x)
    xt = np.stack([lbp(faces[:, y, :], r_xt)[ts, xs] for y in range(my, height - my)])  # (y, t, x)
    yt = np.stack([lbp(faces[:, :, x], r_yt)[ts, ys] for x in range(mx, width - mx)])  # (x, t, y)
    counted = blocks[ys, xs]
    n_blocks = int(blocks.max()) + 1
    histograms = np.stack(
        [
            np.bincount((counted[None] * codes + plane).ravel(), minlength=n_blocks * codes).reshape(n_blocks, codes)
            for plane in (xy, xt.transpose(1, 0, 2), yt.transpose(1, 2, 0))
        ],
        axis=1,
    )
    totals = histograms.sum(axis=2, keepdims=True)
    if not totals.all():
        raise ValueError(
            f"{name}: a block of the {settings['grid']} grid has no pixel at least {max(my, mx)} px from the "
            f"border of the {height}x{width} px face"
        )
    return (histograms / totals).astype(np.float32).ravel()


METHOD = Method(
    name="lbptop_svm",
    summary="LBP-TOP block histograms of the aligned face sequence + linear SVM (the MEGC 2019 baseline's family)",
    source="aligned",
    clip_input=clip_input,
    input_keys=("grid", "radius", "neighbours", "patterns"),
    fit=svm.fit,
    model_suffix=".npz",
    deep=False,
    published=(
        Published(
            source="MEGC 2019 baseline",
            protocol="MEGC 2019 baseline; settings unpublished",
            parts={
                "FULL": (0.5882, 0.5785),
                "smic": (0.2000, 0.5280),
                "casme2": (0.7026, 0.7429),
                "samm": (0.3954, 0.4102),
            },
        ),
    ),
)
