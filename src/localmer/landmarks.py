"""Frames in, 68 facial landmarks out: dlib's HOG face detector and 68-point shape predictor.

Conventions (shared by every module): dlib's 68 points, 0-based — jaw 0-16, brows 17-21 and 22-26,
nose 27-35, eyes 36-41 and 42-47, mouth 48-67. The camera faces the subject and nothing is mirrored,
so the subject's RIGHT eye (36-41) and brow (17-21) are on the IMAGE-LEFT; "left"/"right" in region
names and FACS laterality (L12, R14) always mean the subject's side.

The predictor file comes from the PyPI package ``face-recognition-models`` (located with importlib);
it was trained on iBUG 300-W, whose licence excludes commercial use. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .regions import inter_ocular_distance

PLAUSIBLE_EYE_SPACING = 0.25  # minimum inter-ocular distance, in detector box widths
FACE_CHOICE = "largest"  # of several faces, the subject in front of the camera


def default_model() -> Path:
    """The 68-point model shipped in face-recognition-models."""
    return Path(
        str(importlib.resources.files("face_recognition_models") / "models" / "shape_predictor_68_face_landmarks.dat")
    )


@functools.cache
def _models(model: str):
    import dlib

    if not Path(model).is_file():
        raise FileNotFoundError(f"landmark model {model!r} does not exist")
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(model)


@dataclass(frozen=True)
class Detection:
    landmarks: np.ndarray  # (68, 2) float32, image px
    box: tuple[int, int, int, int]  # left, top, right, bottom
    score: float
    faces: int  # faces the detector found; the chosen one is `box`
    upsample: int


def detection_widths(width: int, detect_width: int | None, upsample: int) -> list[int | None]:
    """Frame widths the detector runs at, in order (None = full resolution): from ``detect_width``,
    doubling, up to the full width; full resolution only when upsampling (the fallback for small faces)."""
    if upsample or not detect_width or width <= detect_width:
        return [None]
    widths, current = [], int(detect_width)
    while current < width:
        widths.append(current)
        current *= 2
    return [*widths, None]


def detect(
    image: np.ndarray,
    *,
    upsample: int = 1,
    choose: str = FACE_CHOICE,
    model: str | Path | None = None,
    detect_width: int | None = None,
):
    """Landmarks of one face in a grey or BGR uint8 image, or None when the detector finds no face.

    choose: ``largest`` face (the subject in front of the camera) or best detector ``score``.
    detect_width: run the HOG detector on a copy this wide first (its cost grows with the pixels; a
    640 px frame at 320 px takes a quarter), then at double that width and so on up to the full frame
    (a face too small for the copy is still found); the 68 points are always fitted at full resolution.
    None = full resolution only. Applies at ``upsample`` 0 only.
    """
    detector, predictor = _models(str(model or default_model()))
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    if choose not in ("largest", "score"):
        raise ValueError(f"choose must be 'largest' or 'score', not {choose!r}")
    for working in detection_widths(width, detect_width, upsample):
        if working is None:
            rects, scores, _ = detector.run(image, upsample, 0)
        else:
            scale = working / width
            small = cv2.resize(image, (working, max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
            found, scores, _ = detector.run(small, upsample, 0)
            rects = [_scaled_rect(rect, 1 / scale) for rect in found]
        if rects:
            break
    if not rects:
        return None
    if choose == "largest":
        best = max(range(len(rects)), key=lambda i: rects[i].width() * rects[i].height())
    else:
        best = int(np.argmax(scores))
    rect = rects[best]
    shape = predictor(image, rect)
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    # A real face's eyes lie about 0.4 box widths apart; a fit with eyes much closer is a false detection
    # (seen at high upsampling on faces cropped by the frame edge).
    if inter_ocular_distance(points) < PLAUSIBLE_EYE_SPACING * rect.width():
        return None
    return Detection(
        points, (rect.left(), rect.top(), rect.right(), rect.bottom()), float(scores[best]), len(rects), upsample
    )


def _scaled_rect(rect, factor: float):
    """A dlib rectangle of a resized copy, in the full frame's px."""
    import dlib

    return dlib.rectangle(
        round(rect.left() * factor),
        round(rect.top() * factor),
        round((rect.right() + 1) * factor) - 1,
        round((rect.bottom() + 1) * factor) - 1,
    )


def smooth(track: np.ndarray, window: int) -> np.ndarray:
    """Moving average of a (frames, 68, 2) landmark track over ``window`` frames (edges replicated)."""
    if window <= 1 or len(track) < 2:
        return track.astype(np.float32)
    half = window // 2
    padded = np.concatenate([np.repeat(track[:1], half, 0), track, np.repeat(track[-1:], half, 0)])
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    smoothed = np.apply_along_axis(lambda series: np.convolve(series, kernel, mode="valid"), 0, padded)
    return smoothed.astype(np.float32)
