"""Dense optical flow between two grey faces, and the fields the field's methods are built on.

Conventions (every function here): ``u`` is horizontal motion, positive to the right; ``v`` is vertical
motion, positive downwards (image rows grow downwards); both in pixels of the images the flow was computed
on, from the first image to the second (a point at (x, y) in the first is at (x + u, y + v) in the second).

Fields (``CHANNELS``):

``u``, ``v``    the flow
``strain``      optical strain magnitude, the textbook form sqrt(u_x^2 + v_y^2 + 1/2 (u_y + v_x)^2), from
                central differences (zero for a rigid translation or a small rotation)
``magnitude``   sqrt(u^2 + v^2)

Methods (``METHODS``; their parameters are the config's ``preprocessing.flow.<method>`` blocks):

``tvl1``        TV-L1 (OpenCV contrib's DualTVL1): the usual method of MER papers; slowest
``dis``         DIS (OpenCV): a fast option
``farneback``   Farneback polynomial expansion (OpenCV): a fast option
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CHANNELS = ("u", "v", "strain", "magnitude")


class FlowError(ValueError):
    """Images the flow cannot be computed on (different sizes, not grey, unknown method)."""


def _tvl1(first: np.ndarray, second: np.ndarray, params: dict) -> np.ndarray:
    import cv2

    solver = cv2.optflow.DualTVL1OpticalFlow_create(
        tau=params["tau"],
        lambda_=params["lambda"],
        theta=params["theta"],
        nscales=params["scales"],
        warps=params["warps"],
        epsilon=params["epsilon"],
    )
    return solver.calc(first, second, None)


def _dis(first: np.ndarray, second: np.ndarray, params: dict) -> np.ndarray:
    import cv2

    presets = {
        "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }
    return cv2.DISOpticalFlow_create(presets[params["preset"]]).calc(first, second, None)


def _farneback(first: np.ndarray, second: np.ndarray, params: dict) -> np.ndarray:
    import cv2

    return cv2.calcOpticalFlowFarneback(
        first,
        second,
        None,
        pyr_scale=params["pyr_scale"],
        levels=params["levels"],
        winsize=params["winsize"],
        iterations=params["iterations"],
        poly_n=params["poly_n"],
        poly_sigma=params["poly_sigma"],
        flags=0,
    )


@dataclass(frozen=True)
class FlowMethod:
    compute: Callable[[np.ndarray, np.ndarray, dict], np.ndarray]  # (first, second, params) -> (H, W, 2)
    defaults: dict  # the config schema's defaults for this method's parameters


METHODS = {
    # OpenCV's defaults (tau 0.25, lambda 0.15, theta 0.3, 5 scales, 5 warps, epsilon 0.01).
    "tvl1": FlowMethod(_tvl1, {"tau": 0.25, "lambda": 0.15, "theta": 0.3, "scales": 5, "warps": 5, "epsilon": 0.01}),
    "dis": FlowMethod(_dis, {"preset": "medium"}),
    "farneback": FlowMethod(
        _farneback,
        {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2},
    ),
}


def method(name: str) -> FlowMethod:
    if name not in METHODS:
        raise FlowError(f"flow method {name!r}: expected one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


def dense_flow(first: np.ndarray, second: np.ndarray, name: str = "tvl1", params: dict | None = None) -> np.ndarray:
    """(H, W, 2) float32 flow from ``first`` to ``second`` (grey uint8 images of one size): [..., 0] = u,
    [..., 1] = v. ``params`` default to the method's ``defaults``."""
    chosen = method(name)
    for label, image in (("first", first), ("second", second)):
        if image.ndim != 2 or image.dtype != np.uint8:
            raise FlowError(f"{label} image: expected a grey uint8 image, got {image.dtype} of shape {image.shape}")
    if first.shape != second.shape:
        raise FlowError(f"images of different sizes: {first.shape[::-1]} and {second.shape[::-1]} (width, height)")
    settings = {**chosen.defaults, **(params or {})}
    return np.asarray(chosen.compute(first, second, settings), dtype=np.float32)


def optical_strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """|e| = sqrt(u_x^2 + v_y^2 + 1/2 (u_y + v_x)^2), derivatives by central differences (one-sided at
    the border). Axis 1 of the arrays is x, axis 0 is y."""
    u_y, u_x = np.gradient(u.astype(np.float64))
    v_y, v_x = np.gradient(v.astype(np.float64))
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2).astype(np.float32)


def flow_fields(first: np.ndarray, second: np.ndarray, name: str = "tvl1", params: dict | None = None) -> np.ndarray:
    """(H, W, 4) float32: the ``CHANNELS`` u, v, strain, magnitude of the flow from ``first`` to ``second``."""
    flow = dense_flow(first, second, name, params)
    u, v = flow[..., 0], flow[..., 1]
    return np.stack([u, v, optical_strain(u, v), np.hypot(u, v)], axis=-1).astype(np.float32)
