"""One clip, in memory, from its frames to the patches the models see.

The steps, in order (each a function of arrays and settings; nothing here reads or writes HDF5)::

    select_frames        frame numbers the clip keeps (onset..offset, all, or n_frames resampled)
    find_face            landmarks on the reference frame: the onset, else the next frames, else upsampling
    check_face_presence  the same face on a few kept frames (first, middle, last), else the clip is skipped
    alignment_matrices   one similarity transform per kept frame, and the aligned landmarks
    align_clip           the kept frames warped to aligned grey faces (F, H, W) uint8
    regions.region_boxes the six region boxes, from the reference frame's aligned landmarks
    clip_regions         each region of every face resized to its region size
    clip_patches         ... and cut into m patches (F, m, h, w) uint8
    unkept_faces         aligned faces of frames the selection dropped (an apex between resampled frames)
    clip_flow            optical flow fields from the onset face (onset->apex, onset->every kept frame, ...)
    clip_flow_patches    the six regions of those fields (u, v, strain) cut into m patches (F, m, h, w, 3)

The workflow's stages (``localmer.preprocess``) run them subject by subject with HDF5 files between
them; ``localmer predict`` and ``localmer inspect`` run them on one clip in memory. One code path, so a
clip predicted is preprocessed exactly as a clip trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import flow, landmarks, regions
from .frames import ClipFrames, FrameError


def select_frames(numbers: list[int], onset: int, offset: int, mode: str, n_frames: int) -> list[int]:
    """Frame numbers a clip keeps: onset..offset (default), all frames, or n_frames evenly spaced over
    onset..offset (nearest existing frame; frames may repeat when the clip is shorter than n_frames)."""
    if mode == "all":
        return list(numbers)
    inside = [n for n in numbers if onset <= n <= offset]
    if mode == "onset_offset":
        return inside
    if mode == "resample":
        positions = np.linspace(0, len(inside) - 1, n_frames)
        return [inside[int(round(p))] for p in positions]
    raise ValueError(f"unknown frame selection {mode!r}")


def _search_order(selected: list[int], onset: int, search_frames: int) -> list[int]:
    """The reference (onset) frame first, then the next frames of the clip."""
    start = next((i for i, n in enumerate(selected) if n >= onset), 0)
    return selected[start : start + search_frames]


def find_face(frames: ClipFrames, selected: list[int], onset: int, params: dict) -> dict:
    """Landmarks of one clip (``params``: the ``preprocessing.landmarks`` settings).

    The onset frame is searched first, then the ``search_frames`` kept frames after it, at each detector
    upsampling in turn. Returns status ``ok`` with reference_frame, faces, upsample, score, box, roll_deg,
    iod_px and ``landmarks``: (1, 68, 2) the reference geometry (strategy ``reference``) or (F, 68, 2) a
    smoothed track of every kept frame (``per_frame``); or status ``skipped`` and the reason.
    """
    model, detect_width = params["model"], params["detect_width"]
    candidates = _search_order(selected, onset, params["search_frames"])
    images: dict[int, np.ndarray] = {}  # decoded lazily: usually the first candidate has the face
    for upsample in params["upsample"]:
        for number in candidates:
            if number not in images:
                images.update(frames.read([number]))
            detection = landmarks.detect(images[number], upsample=upsample, model=model, detect_width=detect_width)
            if detection is not None:
                break
        if detection is not None:
            break
    if detection is None:
        reason = (
            f"no face on frames {candidates[0]}..{candidates[-1]} ({len(candidates)} tried) "
            f"at detector upsampling {params['upsample']}"
        )
        return {"status": "skipped", "reason": reason}
    result = {
        "status": "ok",
        "reason": "",
        "reference_frame": number,
        "faces": detection.faces,
        "upsample": detection.upsample,
        "score": detection.score,
        "box": detection.box,
        "roll_deg": regions.roll_degrees(detection.landmarks),
        "iod_px": regions.inter_ocular_distance(detection.landmarks),
    }
    if params["strategy"] == "reference":
        result["landmarks"] = detection.landmarks[None]
        return result
    # per_frame: fit every kept frame (from the reference box when the detector misses), then smooth.
    track, previous = [], detection
    for _, image in frames.read(selected):
        found = landmarks.detect(image, upsample=detection.upsample, model=model, detect_width=detect_width) or previous
        track.append(found.landmarks)
        previous = found
    result["landmarks"] = landmarks.smooth(np.stack(track), params["smoothing_frames"])
    return result


def presence_frames(selected: list[int], count: int) -> list[int]:
    """The kept frames the face check looks at: ``count`` evenly spaced from the first kept frame to
    the last (first, middle, last for 3)."""
    unique = sorted(set(selected))
    if count <= 0:
        return []
    return sorted({unique[int(round(p))] for p in np.linspace(0, len(unique) - 1, count)})


def check_face_presence(frames: ClipFrames, selected: list[int], reference: dict, params: dict) -> str:
    """'' when the face of ``reference`` (``find_face``'s ok result) is on the kept frames the models
    use, else the reason, naming the frames. A single geometry (strategy ``reference``) warps every kept
    frame; a face absent from some of them, or gone elsewhere, would be cut into regions of background.

    ``params`` (``preprocessing.landmarks``): ``presence_frames`` kept frames are checked (0 = no check),
    not the reference frame again. On each, the detector runs as it ran for the reference
    (``detect_width``; upsampling from the level that found the reference on) and the face it finds must
    lie within ``max_shift`` inter-ocular distances of the reference face's box centre, with a box width
    within a factor ``max_scale`` of the reference's. The cost: a few detections per clip.
    """
    iod = reference["iod_px"]
    ref_box = np.asarray(reference["box"], dtype=float)
    ref_centre, ref_width = (ref_box[:2] + ref_box[2:]) / 2, ref_box[2] - ref_box[0]
    levels = [u for u in params["upsample"] if u >= reference["upsample"]]
    checked = [n for n in presence_frames(selected, params["presence_frames"]) if n != reference["reference_frame"]]
    missing, moved = [], []
    for number, image in frames.read(checked):
        for upsample in levels:
            found = landmarks.detect(
                image, upsample=upsample, model=params["model"], detect_width=params["detect_width"]
            )
            if found is not None:
                break
        if found is None:
            missing.append(number)
            continue
        box = np.asarray(found.box, dtype=float)
        shift = float(np.linalg.norm((box[:2] + box[2:]) / 2 - ref_centre)) / iod
        scale = (box[2] - box[0]) / ref_width
        if shift > params["max_shift"]:
            moved.append(
                f"frame {number}: the face is {shift:.2f} inter-ocular distances away (max_shift {params['max_shift']})"
            )
        elif not 1 / params["max_scale"] <= scale <= params["max_scale"]:
            moved.append(f"frame {number}: the face is {scale:.2f} times as wide (max_scale {params['max_scale']})")
    if not missing and not moved:
        return ""
    found_problems = [f"no face on frames {', '.join(map(str, missing))}"] if missing else []
    return (
        f"the face of reference frame {reference['reference_frame']} is not on every kept frame checked "
        f"({', '.join(map(str, checked))}): " + "; ".join(found_problems + moved)
    )


def alignment_matrices(track: np.ndarray, n_frames: int, alignment: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per kept frame, the (2, 3) float32 transform frame -> aligned face and the (68, 2) float32 aligned
    landmarks, from ``find_face``'s landmarks: one geometry (computed once, repeated for the ``n_frames``
    frames) or one per frame. ``alignment``: the ``preprocessing.alignment`` settings."""
    face_size = tuple(alignment["face_size"])
    matrices = np.stack(
        [regions.alignment_matrix(points, alignment["iod"], face_size, alignment["eye_position"]) for points in track]
    )
    aligned_points = np.stack([regions.transform_points(m, p) for m, p in zip(matrices, track, strict=True)])
    if len(track) == 1:
        matrices = np.repeat(matrices, n_frames, axis=0)
        aligned_points = np.repeat(aligned_points, n_frames, axis=0)
    return matrices, aligned_points


def align_clip(
    frames: ClipFrames, numbers: Sequence[int], matrices: np.ndarray, face_size: Sequence[int]
) -> np.ndarray:
    """The kept frames warped to aligned grey faces, (F, height, width) uint8 for ``face_size`` (width,
    height). One source frame in memory at a time (SAMM frames are 2040x1088), each decoded once though
    resampling may keep it more than once. FrameError when a frame's size differs from the first's."""
    face_size = tuple(face_size)
    faces = np.empty((len(numbers), face_size[1], face_size[0]), dtype=np.uint8)
    positions: dict[int, list[int]] = {}
    for i, number in enumerate(numbers):
        positions.setdefault(number, []).append(i)
    first_shape = None
    for number, image in frames.read(sorted(positions)):
        first_shape = image.shape if first_shape is None else first_shape
        if image.shape != first_shape:
            raise FrameError(
                f"{frames.source}: frame {number} is {image.shape[1]}x{image.shape[0]} px, the clip's first "
                f"frame {first_shape[1]}x{first_shape[0]}: every frame of a clip must have the same size"
            )
        for i in positions[number]:
            faces[i] = regions.align(image, matrices[i], face_size)
    return faces


def clip_regions(faces: np.ndarray, boxes: dict, sizes: dict) -> dict[str, np.ndarray]:
    """Each region's box of every aligned face (F, H, W), or of every field (F, H, W, C), resized to its
    size (width, height): {region: (F, h, w[, C])}."""
    return {name: regions.crop_frames(faces, boxes[name], sizes[name]) for name in regions.REGION_NAMES}


def clip_patches(faces: np.ndarray, boxes: dict, sizes: dict, patches: int) -> dict[str, np.ndarray]:
    """The six regions of every aligned face cut into ``patches`` patches: {region: (F, m, h, w)}, of the
    faces' dtype; fields (F, H, W, C) give (F, m, h, w, C)."""
    cut = {}
    for name, crops in clip_regions(faces, boxes, sizes).items():
        if crops.ndim == 4:  # channels last: cut each channel's plane, then put the channels back last
            cut[name] = np.ascontiguousarray(
                np.moveaxis(regions.cut_patches(np.moveaxis(crops, -1, 1), patches), 1, -1)
            )
        else:
            cut[name] = regions.cut_patches(crops, patches)
    return cut


FLOW_PAIRS = ("onset_apex", "onset_frames", "apex_offset")  # preprocessing.flow.pairs
FLOW_PATCH_CHANNELS = ("u", "v", "strain")  # the flow fields the region patches keep


def unkept_faces(
    frames: ClipFrames,
    wanted: Sequence[int],
    numbers: Sequence[int],
    matrices: np.ndarray,
    face_size: Sequence[int],
) -> dict[int, np.ndarray]:
    """{frame: aligned grey face} for the frames of ``wanted`` that are not among the kept ``numbers``
    (with ``frames: resample`` the apex may fall between kept frames), each read from ``frames`` and
    warped with the transform (``matrices``, one per kept frame) of the nearest kept frame: the clip's
    own alignment (with strategy ``reference`` every transform is the same)."""
    kept = np.asarray(numbers)
    missing = sorted(set(int(n) for n in wanted) - set(kept.tolist()))
    if not missing:
        return {}
    nearest = [int(np.argmin(np.abs(kept - number))) for number in missing]
    return dict(zip(missing, align_clip(frames, missing, matrices[nearest], face_size), strict=True))


def clip_flow(
    faces: np.ndarray,
    numbers: Sequence[int],
    onset: int,
    apex: int,
    flow_settings: dict,
    *,
    offset: int | None = None,
    other_faces: dict[int, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The flow fields (``flow.CHANNELS``: u, v, strain, magnitude; float32) of one clip's aligned grey
    ``faces`` (F, H, W) of the kept frames ``numbers``, for each pair of ``flow_settings["pairs"]``
    (``preprocessing.flow``; ``method`` and its parameter block):

    ``onset_apex``    (H, W, 4) onset face -> apex face
    ``onset_frames``  (F, H, W, 4) onset face -> every kept face; the onset's own row is zeros
    ``apex_offset``   (H, W, 4) apex face -> ``offset`` face

    Faces of the onset, apex and offset that were not kept come from ``other_faces``
    (``unkept_faces``); a frame found in neither is a FlowError naming it."""
    method = flow_settings["method"]
    params = flow_settings.get(method, {})
    position = {int(n): i for i, n in enumerate(numbers)}
    other_faces = other_faces or {}
    computed: dict[tuple[int, int], np.ndarray] = {}  # resampled clips repeat frames: each pair once

    def face(number: int) -> np.ndarray:
        if number in position:
            return faces[position[number]]
        if number in other_faces:
            return other_faces[number]
        raise flow.FlowError(f"frame {number} is neither a kept frame nor among the other faces given")

    def fields(first: int, second: int) -> np.ndarray:
        if (first, second) not in computed:
            if first == second:  # no motion by definition, not a solver's near-zero
                computed[first, second] = np.zeros((*faces.shape[1:3], len(flow.CHANNELS)), np.float32)
            else:
                computed[first, second] = flow.flow_fields(face(first), face(second), method, params)
        return computed[first, second]

    result = {}
    for pair in flow_settings["pairs"]:
        if pair == "onset_apex":
            result[pair] = fields(onset, apex)
        elif pair == "onset_frames":
            result[pair] = np.stack([fields(onset, int(n)) for n in numbers])
        elif pair == "apex_offset":
            if offset is None:
                raise flow.FlowError("flow pair apex_offset needs the clip's offset frame")
            result[pair] = fields(apex, offset)
        else:
            raise flow.FlowError(f"flow pair {pair!r}: expected one of {', '.join(FLOW_PAIRS)}")
    return result


def clip_flow_patches(fields: np.ndarray, boxes: dict, sizes: dict, patches: int) -> dict[str, np.ndarray]:
    """Flow fields (F, H, W, >= 3 channels: u, v, strain first) cut like the faces (``clip_patches``):
    {region: (F, m, h, w, 3)} float32 of u, v, strain. u and v are rescaled from pixels of the aligned
    face to pixels of the resized region (times its width / box width, height / box height), so that
    the flow matches the region image it sits on; strain, a ratio of lengths, is left as computed (its
    normal terms do not change under resizing; the shear term does only when a region is resized
    unevenly)."""
    cut = clip_patches(np.asarray(fields[..., : len(FLOW_PATCH_CHANNELS)], dtype=np.float32), boxes, sizes, patches)
    for name, region in cut.items():
        x0, y0, x1, y1 = boxes[name]
        width, height = sizes[name]
        region[..., 0] *= width / (x1 - x0)
        region[..., 1] *= height / (y1 - y0)
    return cut
