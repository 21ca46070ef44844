"""Quality-control pictures: landmarks, eye line, region boxes and patch grids on the aligned face,
the onset->apex flow and strain beside them, per-subject contact sheets, and ``localmer inspect`` for
one input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import h5py
import numpy as np

from . import apex, clip_pipeline, flow, landmarks, preprocess, regions
from .atomic import atomic_output
from .frames import ClipFrames

log = logging.getLogger(__name__)

# BGR colours per region, fixed so that every picture reads the same way.
REGION_COLOURS = {
    "left_eye": (60, 180, 255),
    "right_eye": (255, 160, 40),
    "nose": (80, 220, 80),
    "left_cheek": (200, 80, 255),
    "right_cheek": (255, 80, 200),
    "mouth": (60, 60, 255),
}


def overlay(face: np.ndarray, points: np.ndarray, boxes: dict, patches: int, scale: int = 3) -> np.ndarray:
    """The aligned face (grey), enlarged, with landmarks, the eye line, region boxes and patch grids."""
    image = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR) if face.ndim == 2 else face.copy()
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    side = regions.grid_side(patches)
    for name, (x0, y0, x1, y1) in boxes.items():
        colour = REGION_COLOURS[name]
        cv2.rectangle(image, (x0 * scale, y0 * scale), (x1 * scale - 1, y1 * scale - 1), colour, 2)
        for k in range(1, side):
            x = int(round((x0 + (x1 - x0) * k / side) * scale))
            y = int(round((y0 + (y1 - y0) * k / side) * scale))
            cv2.line(image, (x, y0 * scale), (x, y1 * scale), colour, 1)
            cv2.line(image, (x0 * scale, y), (x1 * scale, y), colour, 1)
        cv2.putText(image, name, (x0 * scale + 3, y0 * scale + 12), cv2.FONT_HERSHEY_PLAIN, 0.9, colour, 1, cv2.LINE_AA)
    right, left = regions.eye_centres(points)
    cv2.line(
        image, tuple((right * scale).astype(int)), tuple((left * scale).astype(int)), (0, 255, 255), 1, cv2.LINE_AA
    )
    for x, y in points * scale:
        cv2.circle(image, (int(round(x)), int(round(y))), 2, (0, 255, 0), -1, cv2.LINE_AA)
    return image


def flow_panel(fields: np.ndarray, boxes: dict, scale: int = 3) -> tuple[np.ndarray, str]:
    """BGR: the flow colour-coded (``flow.flow_colour``, with its colour key in the corner) and the
    optical strain (``flow.strain_colour``) of one (H, W, 4) field, side by side, enlarged by ``scale``,
    the region boxes drawn on both; and a caption line giving what full brightness means."""
    u, v, strain, magnitude = (fields[..., i] for i in range(4))
    flow_limit, strain_limit = flow.colour_limit(magnitude), flow.colour_limit(strain)
    pictures = [
        flow.flow_colour(u, v, flow_limit or None),
        flow.strain_colour(strain, strain_limit or None),
    ]
    tiles = []
    for picture in pictures:
        tile = cv2.resize(
            cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST
        )
        for name, (x0, y0, x1, y1) in boxes.items():
            cv2.rectangle(tile, (x0 * scale, y0 * scale), (x1 * scale - 1, y1 * scale - 1), REGION_COLOURS[name], 1)
        tiles.append(tile)
    side = max(24, tiles[0].shape[0] // 5)
    tiles[0][:side, :side] = cv2.cvtColor(flow.colour_key(side, flow_limit or 1.0), cv2.COLOR_RGB2BGR)
    caption = f"flow full at {flow_limit:.2g} px, strain at {strain_limit:.2g}"
    return np.concatenate([tiles[0], np.zeros((tiles[0].shape[0], 4, 3), np.uint8), tiles[1]], axis=1), caption


def _captioned(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """``image`` with a black band below holding the lines of text."""
    band = np.zeros((16 * len(lines) + 6, image.shape[1], 3), np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(band, line, (4, 16 * i + 14), cv2.FONT_HERSHEY_PLAIN, 1.0, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([image, band], axis=0)


def region_strip(crops: dict[str, np.ndarray], height: int = 96) -> np.ndarray:
    """The six region crops side by side, each scaled to ``height``, labelled."""
    tiles = []
    for name in regions.REGION_NAMES:
        crop = crops[name]
        width = max(1, int(round(crop.shape[1] * height / crop.shape[0])))
        tile = cv2.cvtColor(cv2.resize(crop, (width, height), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
        cv2.putText(tile, name, (2, height - 4), cv2.FONT_HERSHEY_PLAIN, 0.8, REGION_COLOURS[name], 1, cv2.LINE_AA)
        tiles.append(np.pad(tile, ((0, 0), (0, 4), (0, 0))))
    return np.concatenate(tiles, axis=1)


def _stack(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    width = max(top.shape[1], bottom.shape[1])
    pad = lambda image: np.pad(image, ((0, 0), (0, width - image.shape[1]), (0, 0)))  # noqa: E731
    return np.concatenate([pad(top), pad(bottom)], axis=0)


def contact_sheet(
    aligned_path: str | Path,
    patches_path: str | Path,
    flow_path: str | Path,
    out_png: str | Path,
    columns: int = 2,
    scale: int = 2,
) -> int:
    """A subject's clips in a grid: each clip's reference aligned face with its overlay, beside it the
    clip's onset->apex flow and strain (``flow_panel``), the apex frame and its source in the caption.
    Returns clips drawn."""
    tiles = []
    with (
        h5py.File(aligned_path, "r") as aligned,
        h5py.File(patches_path, "r") as h5,
        h5py.File(flow_path, "r") as flows,
    ):
        count = int(h5.attrs["patches"])
        for clip, group in h5["clips"].items():
            face = aligned["clips"][clip]["faces"][0]
            boxes = json.loads(group.attrs["boxes"])
            clip_flow = flows["clips"][clip]
            panel, flow_caption = flow_panel(clip_flow["onset_apex"][()], boxes, scale)
            tile = np.concatenate([overlay(face, group["landmarks"][0], boxes, count, scale), panel], axis=1)
            where = (
                f"onset {clip_flow.attrs['onset']} -> apex {clip_flow.attrs['apex']} ({clip_flow.attrs['apex_source']})"
            )
            tiles.append(_captioned(tile, [f"{clip}: {where}", flow_caption]))
    if not tiles:
        sheet = np.zeros((60, 400, 3), np.uint8)
        cv2.putText(
            sheet, "no clip of this subject was preprocessed", (6, 34), cv2.FONT_HERSHEY_PLAIN, 1.0, (255, 255, 255), 1
        )
    else:
        height = max(t.shape[0] for t in tiles)
        width = max(t.shape[1] for t in tiles)
        tiles = [np.pad(t, ((0, height - t.shape[0]), (0, width - t.shape[1]), (0, 0))) for t in tiles]
        tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
        rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
        sheet = np.concatenate(rows, axis=0)
    with atomic_output(out_png) as partial:
        cv2.imwrite(str(partial), sheet)
    return len([t for t in tiles if t.any()])


def _inspect_flow(
    frames: ClipFrames,
    reference: list[int],
    faces: np.ndarray,
    matrices: np.ndarray,
    boxes: dict,
    points: np.ndarray,
    params: dict,
) -> tuple[dict, np.ndarray | None]:
    """``inspect``'s flow: the input's frames as one clip, first = onset, last = offset. Returns what
    ``inspect.json`` records and the onset->apex fields (None for a single frame)."""
    numbers = frames.numbers
    if len(numbers) < 2:
        return {"computed": False, "reason": "a single frame has no onset->apex pair"}, None
    onset, offset = numbers[0], numbers[-1]
    alignment = params["alignment"]
    settings = params["apex"]
    clip = {"onset": onset, "offset": offset, "apex": "", "apex_source": ""}  # no annotated apex
    if "spotted" in (settings["source"], settings["fallback"]):
        every = clip_pipeline.align_clip(
            frames, numbers, np.repeat(matrices[:1], len(numbers), 0), alignment["face_size"]
        )
        masks = apex.spotting_masks(boxes, points, faces.shape[1:])
        chosen = apex.choose_apex(clip, settings, every, np.asarray(numbers), masks)
    else:
        chosen = apex.choose_apex(clip, settings)
    apex_frame, apex_source = chosen
    others = clip_pipeline.unkept_faces(frames, [onset, apex_frame], reference, matrices, alignment["face_size"])
    flow_settings = {**params["flow"], "pairs": ["onset_apex"]}
    fields = clip_pipeline.clip_flow(faces, reference, onset, apex_frame, flow_settings, other_faces=others)
    info = {
        "computed": True,
        "onset": int(onset),
        "apex": int(apex_frame),
        "apex_source": apex_source,
        "offset": int(offset),
        "method": flow_settings["method"],
    }
    return info, fields["onset_apex"]


def _box_size(box: tuple[int, int, int, int]) -> tuple[int, int]:
    x0, y0, x1, y1 = box
    return x1 - x0, y1 - y0


def inspect(source: str | Path, out_dir: str | Path, params: dict, table: dict) -> dict:
    """Landmarks, aligned face, the six region crops, the onset->apex flow and a QC overlay of one image,
    video or frame folder.

    Writes into out_dir: ``landmarks.csv`` (68 points, input px), ``aligned.png``, ``<region>.png`` for
    the six regions, ``overlay.png`` (aligned face with landmarks, eye line, boxes and patch grids,
    beside it the flow and strain of ``flow_panel``, above the region crops) and ``inspect.json`` (input,
    frame used, faces seen there and the one used, the detection, transform, boxes, and ``flow``: the
    onset, apex, apex_source and method). A video or folder of several frames is taken as one clip: its
    first frame is the onset, its last the offset, the apex the ``preprocessing.apex`` fallback (there
    is no annotation) or, configured, spotted; its onset->apex flow (``preprocessing.flow.method``) is
    drawn in ``flow.png`` and ``strain.png``. A single image has no flow: ``flow`` says so.
    Raises preprocess.PreprocessError when no face is found.
    """
    source = Path(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = ClipFrames.open(source)
    detection_params = {**params["landmarks"], "strategy": "reference"}
    result = clip_pipeline.find_face(frames, frames.numbers, frames.numbers[0], detection_params)
    if result["status"] != "ok":
        raise preprocess.PreprocessError(f"{source}: {result['reason']}")
    alignment = params["alignment"]
    reference = [result["reference_frame"]]
    matrices, aligned_points = clip_pipeline.alignment_matrices(result["landmarks"], len(reference), alignment)
    faces = clip_pipeline.align_clip(frames, reference, matrices, alignment["face_size"])
    face = faces[0]
    boxes = regions.region_boxes(aligned_points[0], table, alignment["iod"])
    # Region sizes measured on this face alone where the table says auto (the workflow measures a dataset).
    sizes = {
        name: spec["size"] if spec["size"] != "auto" else regions.auto_size([_box_size(boxes[name])])
        for name, spec in table.items()
    }
    crops = {name: crop[0] for name, crop in clip_pipeline.clip_regions(faces, boxes, sizes).items()}
    pictures = {f"{name}.png": crop for name, crop in crops.items()}
    pictures["aligned.png"] = face
    top = overlay(face, aligned_points[0], boxes, params["patches"])
    flow_info, fields = _inspect_flow(frames, reference, faces, matrices, boxes, aligned_points[0], params)
    if fields is not None:
        panel, flow_caption = flow_panel(fields, boxes)
        caption = f"onset {flow_info['onset']} -> apex {flow_info['apex']} ({flow_info['apex_source']}); {flow_caption}"
        top = _captioned(np.concatenate([top, panel], axis=1), [caption])
        u, v, strain = fields[..., 0], fields[..., 1], fields[..., 2]
        pictures["flow.png"] = cv2.cvtColor(flow.flow_picture(u, v, caption=caption.split(";")[0]), cv2.COLOR_RGB2BGR)
        pictures["strain.png"] = cv2.cvtColor(flow.strain_picture(strain, caption="optical strain"), cv2.COLOR_RGB2BGR)
    pictures["overlay.png"] = _stack(top, region_strip(crops))
    for name, picture in pictures.items():
        with atomic_output(out / name) as partial:
            cv2.imwrite(str(partial), picture)
    with atomic_output(out / "landmarks.csv") as partial:
        np.savetxt(partial, result["landmarks"][0], delimiter=",", fmt="%.2f", header="x,y", comments="")
    info = {
        "input": str(source),
        "frame": int(result["reference_frame"]),
        "faces": int(result["faces"]),  # faces the detector saw on that frame
        "face_used": {"choice": landmarks.FACE_CHOICE, "box": [int(v) for v in result["box"]]},
        "upsample": int(result["upsample"]),
        "score": float(result["score"]),
        "roll_deg": float(result["roll_deg"]),
        "iod_px": float(result["iod_px"]),
        "transform": matrices[0].tolist(),
        "boxes": boxes,
        "flow": flow_info,
    }
    with atomic_output(out / "inspect.json") as partial:
        partial.write_text(json.dumps(info, indent=2))
    return info
