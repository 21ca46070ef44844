"""Frames of a clip: frame folders and videos, frame numbering, natural order, decoding.

The one place that knows which file suffixes are frames or videos, how a frame file name carries its
number (``img46.jpg`` -> 46, ``006_05562.jpg`` -> 5562; videos are numbered 0, 1, ... in decoding
order) and in which order numbered names sort (``img2`` before ``img10``). Dataset readers, the
preprocessing stages, ``localmer predict`` and ``localmer inspect`` all open clips through it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv"})

_TRAILING_NUMBER = re.compile(r"(\d+)(?=\D*$)")
_DIGITS = re.compile(r"(\d+)")

log = logging.getLogger(__name__)


class FrameError(ValueError):
    """A frame or video that cannot be read; the message names the file (and frame number for a video)."""


def natural_key(text: str) -> list:
    """Sort key of numbered names in numeric order, case-insensitive: s2 before s10, img9 before img10."""
    return [int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(text)]


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def frame_number(name: str) -> int:
    """The frame number written in a frame file name: img46.jpg -> 46, 006_05562.jpg -> 5562."""
    match = _TRAILING_NUMBER.search(Path(name).stem + "x")
    if match is None:
        raise FrameError(f"frame file name {name!r} has no frame number")
    return int(match.group(1))


def list_frames(folder: str | Path) -> list[str]:
    """Image files of a frame folder in natural numeric order (img2 before img10).

    FrameError naming the file when a frame's name carries no number (its place would be a guess).
    """
    folder = Path(folder)
    numbered = []
    for path in folder.iterdir():
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        try:
            numbered.append((frame_number(path.name), path.name))
        except FrameError:
            raise FrameError(f"frame file {str(path)!r}: the name has no frame number") from None
    return [name for _, name in sorted(numbered)]


def count_video_frames(path: str | Path) -> tuple[int, str]:
    """Frames of a video that decode, and a note ('' when none) when the container header gives another
    count. Headers can over-state it (a truncated or re-muxed file), and trusting them fails later at the
    first missing frame, so every frame is grabbed (decoded, not converted) and counted; a mismatch is
    logged as a warning naming the file. FrameError when OpenCV cannot open the video or decodes no frame."""
    path = Path(path)
    if not path.is_file():
        raise FrameError(f"video {str(path)!r} does not exist")
    capture = cv2.VideoCapture(str(path))
    try:
        header = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        decoded = 0
        while capture.isOpened() and capture.grab():
            decoded += 1
    finally:
        capture.release()
    if not decoded:
        raise FrameError(f"video {str(path)!r} cannot be read by OpenCV (corrupt or unsupported codec)")
    note = ""
    if header > 0 and header != decoded:  # 0 or less: the container gives no count
        note = f"header says {header} frames, {decoded} decode: using {decoded}"
        log.warning("video %s: %s", path, note)
    return decoded, note


def video_frame_count(path: str | Path) -> int:
    """Frames of a video that decode (see ``count_video_frames``)."""
    return count_video_frames(path)[0]


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

    def __init__(
        self, source: str | Path, files: Sequence[str] | None, numbers: Sequence[int], notes: Sequence[str] = ()
    ):
        self.source = Path(source)
        self.files = dict(zip(numbers, files, strict=True)) if files else None
        self.numbers = list(numbers)
        self.notes = list(notes)  # what opening found and worked around (a video header's wrong frame count)

    @classmethod
    def from_sample(cls, sample: Mapping) -> ClipFrames:
        """From a row of samples.tsv (a mapping with frame_dir, frames, n_frames)."""
        files = sample["frames"] if isinstance(sample["frames"], str) and sample["frames"] else ""
        if files:
            names = files.split("|")
            return cls(sample["frame_dir"], names, [frame_number(n) for n in names])
        return cls(sample["frame_dir"], None, range(int(sample["n_frames"])))  # a video: 0-based numbers

    @classmethod
    def open(cls, source: str | Path) -> ClipFrames:
        """A frame folder, a video file or a single image file (frame 0)."""
        source = Path(source)
        if source.is_dir():
            names = list_frames(source)
            if not names:
                raise FrameError(f"{str(source)!r} holds no image frames")
            return cls(source, names, [frame_number(name) for name in names])
        if is_video(source):
            count, note = count_video_frames(source)
            return cls(source, None, range(count), [note] if note else [])
        if source.suffix.lower() in IMAGE_SUFFIXES:
            read_image(source)  # a clear error now rather than at the first use
            return cls(source.parent, [source.name], [0])
        raise FrameError(
            f"{str(source)!r}: expected a frame folder, a video ({'/'.join(sorted(s[1:] for s in VIDEO_SUFFIXES))}) "
            "or an image file"
        )

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
