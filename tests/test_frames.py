"""Videos whose container header over-states the frame count: the frames that decode are counted, the
mismatch is a note (and a warning naming the file), and every counted frame can be read."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import write_video

from localmer import frames


def overstate_avi_frame_count(path: Path, count: int) -> None:
    """Write ``count`` into an AVI's frame counts: the main header's dwTotalFrames ('avih' + 8 + 16)
    and the video stream header's dwLength ('strh' + 8 + 32), as a truncated or badly re-muxed file has."""
    data = bytearray(path.read_bytes())
    for chunk, field in ((b"avih", 16), (b"strh", 32)):
        at = data.index(chunk) + 8 + field
        data[at : at + 4] = struct.pack("<I", count)
    path.write_bytes(bytes(data))


def header_frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def test_a_video_header_that_overstates_the_frame_count(tmp_path, caplog):
    images = [np.full((48, 64), 20 * i, np.uint8) for i in range(8)]
    honest, lying = tmp_path / "honest.avi", tmp_path / "lying.avi"
    write_video(images, honest)
    write_video(images, lying)
    overstate_avi_frame_count(lying, 11)
    # What OpenCV takes from the headers: the true count, and the patched one.
    assert header_frame_count(honest) == 8 and header_frame_count(lying) == 11
    # Trusting the header, the last frame is asked for and cannot be read.
    with pytest.raises(frames.FrameError, match="frame 10 cannot be read"):
        list(frames.ClipFrames(lying, None, range(11)).read([10]))

    assert frames.count_video_frames(honest) == (8, "")  # control: no note
    with caplog.at_level(logging.WARNING, logger="localmer.frames"):
        count, note = frames.count_video_frames(lying)
    assert (count, note) == (8, "header says 11 frames, 8 decode: using 8")
    assert str(lying) in caplog.text and note in caplog.text
    clip = frames.ClipFrames.open(lying)
    assert clip.numbers == list(range(8)) and clip.notes == [note]
    ((number, last),) = clip.read([7])
    assert number == 7 and last.shape == (48, 64)
    assert frames.ClipFrames.open(honest).notes == []
