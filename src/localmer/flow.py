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

Pictures (``flow_colour``, ``flow_picture``, ``strain_picture``; RGB uint8 arrays, OpenCV only, cheap
enough for QC sheets): hue is the direction of motion, the angle of (u, v) in image coordinates, 0 deg
right (red), 90 deg down (yellow-green), 180 deg left (cyan), 270 deg up (violet); value is the magnitude,
full at ``limit`` px and above (default: the 99th percentile of the magnitudes shown).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

CHANNELS = ("u", "v", "strain", "magnitude")
MIN_SIDE = 16  # px; DIS needs 12, and a smaller face carries no usable motion
COLOUR_PERCENTILE = 99  # the magnitude (or strain) shown at full value unless a limit is given


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


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(low: int) -> tuple[Callable[[object], bool], str]:
    return (
        lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= low
    ), f"an integer >= {low}"


POSITIVE = (lambda value: _is_number(value) and value > 0), "a number > 0"
DIS_PRESETS = ("ultrafast", "fast", "medium")


@dataclass(frozen=True)
class FlowMethod:
    compute: Callable[[np.ndarray, np.ndarray, dict], np.ndarray]  # (first, second, params) -> (H, W, 2)
    defaults: dict  # the config schema's defaults for this method's parameters
    # parameter -> (test of a value, what the test expects, for the error message); one per defaults key
    checks: dict = field(default_factory=dict)


METHODS = {
    # OpenCV's defaults (tau 0.25, lambda 0.15, theta 0.3, 5 scales, 5 warps, epsilon 0.01).
    "tvl1": FlowMethod(
        _tvl1,
        {"tau": 0.25, "lambda": 0.15, "theta": 0.3, "scales": 5, "warps": 5, "epsilon": 0.01},
        {
            "tau": POSITIVE,
            "lambda": POSITIVE,
            "theta": POSITIVE,
            "scales": _whole(1),
            "warps": _whole(1),
            "epsilon": POSITIVE,
        },
    ),
    "dis": FlowMethod(
        _dis,
        {"preset": "medium"},
        {"preset": ((lambda value: value in DIS_PRESETS), f"one of {', '.join(DIS_PRESETS)}")},
    ),
    "farneback": FlowMethod(
        _farneback,
        {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2},
        {
            "pyr_scale": ((lambda value: _is_number(value) and 0 < value < 1), "a number between 0 and 1 (exclusive)"),
            "levels": _whole(1),
            "winsize": _whole(1),
            "iterations": _whole(1),
            "poly_n": _whole(1),
            "poly_sigma": POSITIVE,
        },
    ),
}


def method(name: str) -> FlowMethod:
    if name not in METHODS:
        raise FlowError(f"flow method {name!r}: expected one of {', '.join(sorted(METHODS))}")
    return METHODS[name]


def method_settings(name: str, params: dict | None = None) -> dict:
    """Method ``name``'s parameters: ``params`` (a config's ``preprocessing.flow.<name>`` block, or part
    of it) over its defaults. FlowError naming ``<name>.<key>`` for an unknown key or a bad value."""
    chosen = method(name)
    settings = {**chosen.defaults, **(params or {})}
    for key, value in settings.items():
        if key not in chosen.checks:
            raise FlowError(f"flow parameter {name}.{key}: unknown (expected {', '.join(chosen.defaults)})")
        test, expected = chosen.checks[key]
        if not test(value):
            raise FlowError(f"flow parameter {name}.{key}: expected {expected}, got {value!r}")
    return settings


def dense_flow(first: np.ndarray, second: np.ndarray, name: str = "tvl1", params: dict | None = None) -> np.ndarray:
    """(H, W, 2) float32 flow from ``first`` to ``second`` (grey uint8 images of one size, at least
    ``MIN_SIDE`` px a side): [..., 0] = u, [..., 1] = v. ``params`` over the method's ``defaults``."""
    settings = method_settings(name, params)
    for label, image in (("first", first), ("second", second)):
        if image.ndim != 2 or image.dtype != np.uint8:
            raise FlowError(f"{label} image: expected a grey uint8 image, got {image.dtype} of shape {image.shape}")
    if first.shape != second.shape:
        raise FlowError(f"images of different sizes: {first.shape[::-1]} and {second.shape[::-1]} (width, height)")
    if min(first.shape) < MIN_SIDE:
        raise FlowError(f"images of {first.shape[1]}x{first.shape[0]} px: flow needs at least {MIN_SIDE} px a side")
    return np.asarray(METHODS[name].compute(first, second, settings), dtype=np.float32)


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


# ------------------------------------------------------------------------------------------- pictures

PICTURE_HEIGHT = 320  # px; fields are enlarged by a whole factor (pixels stay square blocks) to about this
BACKGROUND = (40, 40, 40)
TEXT = (255, 255, 255)


def colour_limit(values: np.ndarray) -> float:
    """What the pictures show at full value by default: the ``COLOUR_PERCENTILE``-th percentile of
    ``values`` (so that a few outliers do not darken the rest); 0 when everything is 0."""
    return float(np.percentile(values, COLOUR_PERCENTILE)) if np.size(values) else 0.0


def _limit(limit: float | None, values: np.ndarray, what: str) -> float:
    if limit is None:
        return colour_limit(values)
    if not (_is_number(limit) and limit > 0):
        raise FlowError(f"{what} limit: expected a number > 0, got {limit!r}")
    return float(limit)


def _field(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 2:
        raise FlowError(f"{what}: expected an (H, W) array, got shape {array.shape}")
    return array


def flow_colour(u: np.ndarray, v: np.ndarray, limit: float | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of the flow ``u``, ``v``: hue = direction, the angle of (u, v) with y downwards
    (0 deg right = red, 90 deg down = yellow-green, 180 deg left = cyan, 270 deg up = violet); value =
    magnitude / ``limit`` (px; full at the limit and above; default ``colour_limit`` of the magnitudes);
    saturation full. No motion is black."""
    import cv2

    u, v = _field(u, "u"), _field(v, "v")
    if u.shape != v.shape:
        raise FlowError(f"u and v of different shapes: {u.shape} and {v.shape}")
    magnitude = np.hypot(u, v)
    limit = _limit(limit, magnitude, "flow colour")
    value = np.clip(magnitude / limit, 0, 1) if limit > 0 else np.zeros_like(magnitude)
    degrees = np.degrees(np.arctan2(v, u)) % 360
    # OpenCV's 8-bit hue is degrees / 2; the modulo folds a rounded-up 360 deg back to 0.
    hue = (degrees / 2) % 180
    hsv = np.stack([hue, np.full_like(hue, 255), value * 255], axis=-1).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def strain_colour(strain: np.ndarray, limit: float | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an optical strain field: viridis from 0 (dark blue) to ``limit`` and above
    (yellow); default limit ``colour_limit`` of the strain."""
    import cv2

    strain = _field(strain, "strain")
    limit = _limit(limit, strain, "strain colour")
    level = np.clip(strain / limit, 0, 1) if limit > 0 else np.zeros_like(strain)
    return cv2.cvtColor(cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)


def colour_key(diameter: int, limit: float) -> np.ndarray:
    """(diameter, diameter, 3) RGB: the flow colour of every (u, v) up to ``limit`` px, right = +u, down
    = +v, ``BACKGROUND`` outside the disc (the legend of ``flow_colour``)."""
    offsets = (np.arange(diameter, dtype=np.float32) + 0.5) / diameter * 2 - 1  # -1..1, pixel centres
    x, y = np.meshgrid(offsets, offsets)
    key = flow_colour(x * limit, y * limit, limit if limit > 0 else 1.0)
    key[np.hypot(x, y) > 1] = BACKGROUND
    return key


def _enlarged(picture: np.ndarray) -> np.ndarray:
    import cv2

    factor = max(1, round(PICTURE_HEIGHT / picture.shape[0]))
    return cv2.resize(picture, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)


def _text(picture: np.ndarray, text: str, x: int, y: int, scale: float = 0.45) -> None:
    import cv2

    cv2.putText(picture, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT, 1, cv2.LINE_AA)


def _with_legend(field: np.ndarray, legend: np.ndarray, caption: str) -> np.ndarray:
    """The enlarged field, its legend to the right, a caption line above, on ``BACKGROUND``."""
    margin, top = 10, 28
    height = max(field.shape[0], legend.shape[0])
    canvas = np.empty((top + height + margin, margin + field.shape[1] + margin + legend.shape[1] + margin, 3), np.uint8)
    canvas[:] = BACKGROUND
    canvas[top : top + field.shape[0], margin : margin + field.shape[1]] = field
    left = 2 * margin + field.shape[1]
    canvas[top : top + legend.shape[0], left : left + legend.shape[1]] = legend
    _text(canvas, caption, margin, 19, 0.5)
    return canvas


def flow_picture(u: np.ndarray, v: np.ndarray, limit: float | None = None, caption: str = "") -> np.ndarray:
    """RGB picture of a flow: ``flow_colour`` enlarged, with a legend (the colour key, its axes, the
    magnitude at its rim in px) and ``caption`` above."""
    limit = _limit(limit, np.hypot(_field(u, "u"), _field(v, "v")), "flow colour")
    field = _enlarged(flow_colour(u, v, limit if limit > 0 else None))
    diameter, width = 140, 220
    legend = np.empty((diameter + 130, width, 3), np.uint8)
    legend[:] = BACKGROUND
    x0, y0 = 34, 22
    legend[y0 : y0 + diameter, x0 : x0 + diameter] = colour_key(diameter, limit)
    middle = x0 + diameter // 2
    _text(legend, "up (-v)", middle - 28, y0 - 7, 0.4)
    _text(legend, "down (+v)", middle - 36, y0 + diameter + 15, 0.4)
    _text(legend, "left", 0, y0 + diameter // 2 + 4, 0.4)
    _text(legend, "right", x0 + diameter + 2, y0 + diameter // 2 + 4, 0.4)
    lines = ["hue: direction of motion", "brightness: magnitude", "centre 0 px,", f"rim {limit:.3g} px and above"]
    for i, line in enumerate(lines):
        _text(legend, line, 0, y0 + diameter + 42 + 18 * i, 0.42)
    return _with_legend(field, legend, caption)


def strain_picture(strain: np.ndarray, limit: float | None = None, caption: str = "") -> np.ndarray:
    """RGB picture of an optical strain field: ``strain_colour`` enlarged, with a colour bar (0 to
    ``limit``, unitless) and ``caption`` above."""
    limit = _limit(limit, _field(strain, "strain"), "strain colour")
    field = _enlarged(strain_colour(strain, limit if limit > 0 else None))
    bar_height, bar_width = max(120, field.shape[0] - 60), 22
    ramp = np.linspace(limit, 0, bar_height, dtype=np.float32)[:, None].repeat(bar_width, axis=1)
    legend = np.empty((bar_height + 60, 120, 3), np.uint8)
    legend[:] = BACKGROUND
    y0 = 14
    legend[y0 : y0 + bar_height, :bar_width] = strain_colour(ramp, limit if limit > 0 else 1.0)
    for fraction in (1.0, 0.5, 0.0):
        y = y0 + round((1 - fraction) * (bar_height - 1))
        legend[y, bar_width : bar_width + 5] = TEXT
        _text(legend, f"{fraction * limit:.3g}", bar_width + 8, y + 5, 0.42)
    _text(legend, "optical strain", 0, y0 + bar_height + 20, 0.42)
    _text(legend, "(unitless)", 0, y0 + bar_height + 38, 0.42)
    return _with_legend(field, legend, caption)
