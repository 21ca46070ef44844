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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .regions import inter_ocular_distance

PLAUSIBLE_EYE_SPACING = 0.25  # minimum inter-ocular distance, in detector box widths


class FrameError(ValueError):
    """A frame that cannot be read; the message names the file (and frame number for a video)."""


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
    choose: str = "largest",
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


# --------------------------------------------------------------------------------------------- frames


def read_image(path: str | Path) -> np.ndarray:
    """A frame file as grey uint8; FrameError naming the file when it cannot be decoded."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise FrameError(f"frame file {str(path)!r} does not exist")
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        raise FrameError(f"frame file {str(path)!r} cannot be decoded as an image (corrupt or not an image)")
    return image


class ClipFrames:
    """The frames of one clip, from a frame folder or a video file, addressed by frame number."""

    def __init__(self, frame_dir: str | Path, frames: Sequence[str] | None, numbers: Sequence[int]):
        self.source = Path(frame_dir)
        self.files = dict(zip(numbers, frames, strict=True)) if frames else None
        self.numbers = list(numbers)

    @classmethod
    def from_sample(cls, sample) -> ClipFrames:
        """From a row of samples.tsv (a mapping with frame_dir, frames, n_frames)."""
        from .datasets import frame_number

        frames = sample["frames"] if isinstance(sample["frames"], str) and sample["frames"] else ""
        if frames:
            names = frames.split("|")
            return cls(sample["frame_dir"], names, [frame_number(n) for n in names])
        return cls(sample["frame_dir"], None, range(int(sample["n_frames"])))  # a video: 0-based numbers

    def path(self, number: int) -> str:
        return str(self.source / self.files[number]) if self.files else f"{self.source}#frame{number}"

    def read(self, numbers: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(number, grey uint8 frame) for each requested number, in the given (ascending) order."""
        if self.files is not None:
            for number in numbers:
                if number not in self.files:
                    raise FrameError(f"frame {number} is not in {str(self.source)!r}")
                yield number, read_image(self.source / self.files[number])
            return
        yield from self._read_video(numbers)

    def _read_video(self, numbers: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        capture = cv2.VideoCapture(str(self.source))
        if not capture.isOpened():
            raise FrameError(f"video {str(self.source)!r} cannot be opened")
        try:
            wanted = sorted(set(numbers))
            wanted_set = set(wanted)
            frames = {}
            position = wanted[0] if wanted else 0
            capture.set(cv2.CAP_PROP_POS_FRAMES, position)
            for number in range(position, (wanted[-1] + 1) if wanted else 0):
                ok, frame = capture.read()
                if not ok:
                    raise FrameError(f"video {str(self.source)!r}: frame {number} cannot be read")
                if number in wanted_set:
                    frames[number] = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            for number in numbers:
                yield number, frames[number]
        finally:
            capture.release()
