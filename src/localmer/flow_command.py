"""``localmer flow``: the optical flow from an onset to an apex frame, computed as the workflow computes it.

INPUT is two image files (onset, apex), a frame folder or a video. The face is found and aligned by the
steps the preprocessing stages run (``localmer.clip_pipeline``, with the experiment's landmark and
alignment settings: landmarks from the onset frame, the face checked on the frames used, the frames
warped to the aligned face size), or, with ``align`` off, the frames are used as they are. The flow
(``localmer.flow``) runs on the grey faces, from the onset to the apex.

The apex: the second image of a pair, the frame given (source ``annotated``), or, in a frame folder or
video without one, the frame after the onset whose aligned face changes most from the onset's within the
face regions (``apex.spot_apex``; the whole image when not aligned; source ``spotted``).

Writes ``flow.npz`` (u, v, strain, magnitude float32 (H, W) in px of the faces the flow was computed on;
onset, apex, apex_source, method, aligned, input), ``flow.png`` and ``strain.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import apex as apexes
from . import clip_pipeline, flow, regions
from .atomic import atomic_output
from .frames import IMAGE_SUFFIXES, ClipFrames, read_image

OUTPUTS = ("flow.npz", "flow.png", "strain.png")


class FlowInputError(ValueError):
    """An input the flow cannot be computed on; the message names the file (and frame)."""


@dataclass(frozen=True)
class FlowPair:
    """The two grey faces the flow runs on, and where they came from."""

    source: str  # the INPUT as given (both files of an image pair)
    onset: int
    apex: int
    apex_source: str  # annotated (given) or spotted
    first: np.ndarray  # the onset's face, (H, W) uint8
    second: np.ndarray  # the apex's face
    aligned: bool


def _size(image: np.ndarray) -> str:
    return f"{image.shape[1]}x{image.shape[0]} px"


def _faces(frames: ClipFrames, selected: list[int], onset: int, settings: dict, align: bool, label: str):
    """(faces (F, H, W) uint8 of the ``selected`` frames, the spotter's masks of the face regions or None):
    aligned as the workflow aligns a clip, or the frames as they are."""
    if not align:
        images = [image for _, image in frames.read(selected)]
        for number, image in zip(selected[1:], images[1:], strict=True):
            if image.shape != images[0].shape:
                raise FlowInputError(
                    f"{frames.path(number)} is {_size(image)}, {frames.path(selected[0])} {_size(images[0])}: "
                    "the frames must have the same size"
                )
        return np.stack(images), None
    landmark_settings = settings["landmarks"]
    face = clip_pipeline.find_face(frames, selected, onset, landmark_settings)
    if face["status"] != "ok":
        raise FlowInputError(f"{label}: {face['reason']}")
    problem = clip_pipeline.check_face_presence(frames, selected, face, landmark_settings)
    if problem:
        raise FlowInputError(f"{label}: {problem}")
    alignment = settings["alignment"]
    matrices, points = clip_pipeline.alignment_matrices(face["landmarks"], len(selected), alignment)
    faces = clip_pipeline.align_clip(frames, selected, matrices, alignment["face_size"])
    boxes = regions.region_boxes(points[0], regions.load_region_table(settings["regions"]), alignment["iod"])
    return faces, apexes.spotting_masks(boxes, points[0], faces.shape[1:])


def _image_pair(paths: Sequence[str], settings: dict, align: bool) -> FlowPair:
    images = [read_image(path) for path in paths]  # FrameError naming an unreadable file
    if images[0].shape != images[1].shape:
        raise FlowInputError(
            f"{paths[0]} is {_size(images[0])}, {paths[1]} {_size(images[1])}: the onset and apex images must "
            "have the same size"
        )
    frames = ClipFrames(".", list(paths), [0, 1])  # the paths as given, wherever each lies
    faces, _ = _faces(frames, [0, 1], 0, settings, align, f"{paths[0]} (frame 0) and {paths[1]} (frame 1)")
    return FlowPair(" ".join(paths), 0, 1, "annotated", faces[0], faces[1], align)


def _clip(source: str, onset: int | None, apex: int | None, settings: dict, align: bool) -> FlowPair:
    frames = ClipFrames.open(source)  # FrameError naming the folder, video or frame
    numbers = frames.numbers
    span = f"frames {numbers[0]}..{numbers[-1]}"
    onset = numbers[0] if onset is None else onset
    if onset not in numbers:
        raise FlowInputError(f"{source}: --onset {onset} is not a frame of the clip ({span})")
    if apex is not None:
        if apex not in numbers:
            raise FlowInputError(f"{source}: --apex {apex} is outside the clip ({span})")
        if apex <= onset:
            raise FlowInputError(f"{source}: --apex {apex} must come after the onset frame {onset}")
        selected = [onset, apex]
    else:
        selected = [n for n in numbers if n >= onset]
        if len(selected) < 2:
            raise FlowInputError(f"{source}: no frame after the onset frame {onset} to find the apex in ({span})")
    faces, mask = _faces(frames, selected, onset, settings, align, source)
    if apex is None:
        apex, apex_source = apexes.spot_apex(faces, np.asarray(selected), onset, mask), "spotted"
    else:
        apex_source = "annotated"
    return FlowPair(source, onset, apex, apex_source, faces[0], faces[selected.index(apex)], align)


def flow_pair(
    inputs: Sequence[str],
    settings: dict,
    onset: int | None = None,
    apex: int | None = None,
    spot: bool = False,
    align: bool = True,
) -> FlowPair:
    """The onset and apex faces of ``inputs``: two image files, or one frame folder or video.
    ``settings``: the experiment's ``preprocessing`` block (landmarks, alignment, regions)."""
    inputs = [str(path) for path in inputs]
    if apex is not None and spot:
        raise FlowInputError("--apex and --spot: give one (--apex N uses frame N; --spot finds the apex)")
    if len(inputs) == 2:
        not_images = [path for path in inputs if Path(path).suffix.lower() not in IMAGE_SUFFIXES]
        if not_images:
            raise FlowInputError(f"{not_images[0]}: two inputs are an onset and an apex image file")
        if onset is not None or apex is not None or spot:
            raise FlowInputError("--onset, --apex and --spot are for a frame folder or a video, not an image pair")
        return _image_pair(inputs, settings, align)
    if len(inputs) != 1:
        raise FlowInputError(
            f"expected two image files (onset, apex), a frame folder or a video, got {len(inputs)} inputs"
        )
    if not Path(inputs[0]).is_dir() and Path(inputs[0]).suffix.lower() in IMAGE_SUFFIXES:
        raise FlowInputError(f"{inputs[0]}: one image has no apex; give the onset and the apex image")
    return _clip(inputs[0], onset, apex, settings, align)


def _write_picture(path: Path, picture: np.ndarray) -> None:
    with atomic_output(path) as partial:
        if not cv2.imwrite(str(partial), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise FlowInputError(f"{path}: the picture could not be written")


def write_flow(out: str | Path, pair: FlowPair, fields: np.ndarray, method: str) -> list[Path]:
    """``flow.npz``, ``flow.png`` and ``strain.png`` of ``fields`` ((H, W, 4), ``flow.CHANNELS``) in ``out``."""
    out = Path(out)
    channels = {name: fields[..., i] for i, name in enumerate(flow.CHANNELS)}
    with atomic_output(out / "flow.npz") as partial:
        np.savez(
            partial,
            **channels,
            onset=pair.onset,
            apex=pair.apex,
            apex_source=pair.apex_source,
            method=method,
            aligned=pair.aligned,
            input=pair.source,
        )
    caption = f"onset {pair.onset} -> apex {pair.apex} ({pair.apex_source}), {method}"
    _write_picture(out / "flow.png", flow.flow_picture(channels["u"], channels["v"], caption=caption))
    _write_picture(out / "strain.png", flow.strain_picture(channels["strain"], caption=caption))
    return [out / name for name in OUTPUTS]


def run(
    inputs: Sequence[str],
    out: str | Path,
    settings: dict,
    onset: int | None = None,
    apex: int | None = None,
    spot: bool = False,
    method: str | None = None,
    align: bool = True,
) -> dict:
    """Find the pair, compute its flow, write the outputs; returns what was done (pair, method, files).
    The method and its parameters: ``method``, else the settings' ``flow.method`` (default tvl1), with
    the settings' ``flow.<method>`` parameters when there are any."""
    flow_settings = settings.get("flow") or {}
    method = method or flow_settings.get("method", "tvl1")
    params = flow.method_settings(method, flow_settings.get(method))  # bad settings fail before any work
    pair = flow_pair(inputs, settings, onset, apex, spot, align)
    fields = flow.flow_fields(pair.first, pair.second, method, params)
    return {"pair": pair, "method": method, "files": write_flow(out, pair, fields, method)}
