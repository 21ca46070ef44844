"""``localmer predict``: a model bundle applied to new clips (frame folders, videos, manifest CSVs).

Each clip is preprocessed in memory by the steps the workflow's preprocessing stages run
(``localmer.clip_pipeline``), with the bundle's settings: frames selected, landmarks on the reference
(onset) frame, alignment, six regions resized to the bundle's sizes and cut into m patches (for a bundle
trained on flow, the flow from the onset to every kept face, by the bundle's flow method and parameters,
cut into the same patches); then represented and scaled as in training (``localmer.inputs``: the onset
difference, raw frames or flow). The spatial models' 256-d features per frame and region, standardised
with the bundle's training statistics, go through the temporal model: one probability per class. With
``window`` a long clip is cut into windows of that many frames every ``stride`` frames, each predicted
as a clip.

A clip (or window) without a face, or whose face is not on every kept frame the face check looks at
(``clip_pipeline.check_face_presence``), is not predicted: its row has status ``skipped`` and the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from . import apex, clip_pipeline, config, regions
from .atomic import atomic_output
from .bundle import Bundle
from .frames import ClipFrames, FrameError, is_video
from .inputs import FLOW_PATCHES, PATCHES, batch_sequences, representation, spatial_batches, spatial_frames, standardise

log = logging.getLogger(__name__)

MIN_FRAME_SIDE = 32  # px; smaller frames cannot hold a detectable face
BATCH_SIZE = 256  # frames per spatial model call (as in training's feature export)
OUTPUT_SUFFIXES = (".csv", ".json")  # --out: a CSV table or JSON records


class PredictError(ValueError):
    """An input that cannot be predicted: unreadable video, wrong size, bad manifest or arguments."""


class SkippedClip(PredictError):
    """A clip (or window) whose face was not found, or not on every frame checked: a row, not a result."""

    def __init__(self, source: str, reason: str, frames: int, reference_frame: int | None = None):
        super().__init__(f"{source}: {reason}")
        self.reason, self.frames, self.reference_frame = reason, frames, reference_frame


@dataclass(frozen=True)
class ClipSpan:
    """What to predict: a source's frames (folder or video) and the onset..offset span of them."""

    source: str
    frames: ClipFrames
    onset: int
    offset: int


def open_frames(source: str | Path) -> ClipFrames:
    """A frame folder or a video file as ClipFrames (frame numbers from the file names; 0-based in videos)."""
    source = Path(source)
    if not source.is_dir() and not is_video(source):
        raise PredictError(f"{str(source)!r}: expected a frame folder, a video (mp4/avi/mov/mkv) or a manifest .csv")
    try:
        return ClipFrames.open(source)
    except FrameError as err:
        raise PredictError(str(err)) from None


def clips_of(inputs: list[str], onset: int | None = None, offset: int | None = None) -> list[ClipSpan]:
    """The clips to predict: each INPUT, or every row of a manifest CSV (path, optional onset/offset,
    relative paths from the manifest's folder). Without onset/offset the whole clip is used."""
    clips = []
    for item in inputs:
        if str(item).lower().endswith(".csv") and Path(item).is_file():
            table = pd.read_csv(item, keep_default_na=False)
            if "path" not in table.columns:
                raise PredictError(f"manifest {item!r}: needs a column 'path' (optional: onset, offset)")
            for row in table.to_dict("records"):
                path = Path(row["path"])
                path = path if path.is_absolute() else Path(item).parent / path
                clips.append(_clip(path, _optional_int(row.get("onset"), item), _optional_int(row.get("offset"), item)))
        else:
            clips.append(_clip(Path(item), onset, offset))
    return clips


def _optional_int(value, manifest) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PredictError(f"manifest {manifest!r}: onset/offset {value!r} is not a frame number") from None


def _clip(path: Path, onset: int | None, offset: int | None) -> ClipSpan:
    frames = open_frames(path)
    first, last = frames.numbers[0], frames.numbers[-1]
    onset = first if onset is None else onset
    offset = last if offset is None else offset
    if not first <= onset < offset <= last:
        raise PredictError(
            f"{path}: onset {onset} and offset {offset} must satisfy {first} <= onset < offset <= {last}"
        )
    return ClipSpan(str(path), frames, onset, offset)


def check_windowing(window: int | None, stride: int | None) -> None:
    """PredictError unless the window is at least 2 frames (an onset and an offset) and the stride 1."""
    if window is not None and window < 2:
        raise PredictError(f"--window must be at least 2 frames (an onset and an offset frame), not {window}")
    if stride is not None and stride < 1:
        raise PredictError(f"--stride must be at least 1 frame, not {stride}")


def windows(clip: ClipSpan, window: int, stride: int) -> list[ClipSpan]:
    """Sub-clips of ``window`` frames every ``stride`` frames over onset..offset. When the strides do
    not end on the last frame, a last window of ``window`` frames ends there (overlapping the one before
    more), so no frame is left out and every window is as long. PredictError when the clip is shorter."""
    check_windowing(window, stride)
    inside = [n for n in clip.frames.numbers if clip.onset <= n <= clip.offset]
    if len(inside) < window:
        raise PredictError(
            f"{clip.source}: --window {window} is longer than the clip's {len(inside)} frames "
            f"({clip.onset}..{clip.offset})"
        )
    starts = list(range(0, len(inside) - window + 1, stride))
    if starts[-1] + window < len(inside):
        starts.append(len(inside) - window)
    return [ClipSpan(clip.source, clip.frames, inside[s], inside[s + window - 1]) for s in starts]


def preprocess_clip(clip: ClipSpan, description: dict) -> dict:
    """In memory, what the preprocessing stages write for a training clip, with the settings of the
    bundle ``description``: patches per region (F, m, h, w) uint8 (key ``patches``), for a flow bundle
    flow patches per region (F, m, h, w, 3) float32 (key ``flowpatches``), frame numbers, the aligned
    reference face, its landmarks and region boxes. SkippedClip when the face is not found, or not on
    every frame the face check looks at."""
    params = description["preprocessing"]
    selected = clip_pipeline.select_frames(
        clip.frames.numbers, clip.onset, clip.offset, params["frames"], params["n_frames"]
    )
    ((_, first),) = clip.frames.read([selected[0]])
    if min(first.shape[:2]) < MIN_FRAME_SIDE:
        raise PredictError(
            f"{clip.source}: frames of {first.shape[1]}x{first.shape[0]} px are too small "
            f"(at least {MIN_FRAME_SIDE} px a side, with a face filling a good part of the frame)"
        )
    # Bundles written before the face check have no presence_* settings: they get its defaults.
    landmark_params = config.with_defaults(params["landmarks"], "#/properties/preprocessing/properties/landmarks")
    face = clip_pipeline.find_face(clip.frames, selected, clip.onset, landmark_params)
    if face["status"] != "ok":
        raise SkippedClip(clip.source, face["reason"], len(selected))
    face_problem = clip_pipeline.check_face_presence(clip.frames, selected, face, landmark_params)
    if face_problem:
        raise SkippedClip(clip.source, face_problem, len(selected), int(face["reference_frame"]))
    alignment = params["alignment"]
    matrices, points = clip_pipeline.alignment_matrices(face["landmarks"], len(selected), alignment)
    faces = clip_pipeline.align_clip(clip.frames, selected, matrices, alignment["face_size"])
    boxes = regions.region_boxes(points[0], description["region_table"], alignment["iod"])
    prepared = {
        PATCHES: clip_pipeline.clip_patches(faces, boxes, description["region_sizes"], params["patches"]),
        "frame_numbers": np.asarray(selected),
        "face": faces[0],
        "landmarks": points[0],
        "boxes": boxes,
        "reference_frame": int(face["reference_frame"]),
    }
    if representation(description["model"]["input"]).source == FLOW_PATCHES:
        prepared[FLOW_PATCHES] = flow_patches(clip, description, faces, selected, matrices, boxes)
    return prepared


def flow_patches(
    clip: ClipSpan, description: dict, faces: np.ndarray, numbers: list[int], matrices: np.ndarray, boxes: dict
) -> dict:
    """The clip's flow patches {region: (F, m, h, w, 3)} as the workflow's flow stages make them
    (``clip_pipeline.clip_flow`` and ``clip_flow_patches``, the bundle's flow method and parameters; an
    onset frame the selection did not keep is aligned as ``preprocess.flow_subject`` aligns it). Only
    the pair the model reads, onset to every kept frame, is computed: it does not depend on the apex, so
    the middle frame stands in for the apex a new clip has no annotation of."""
    params = description["preprocessing"]
    settings = {**params["flow"], "pairs": ["onset_frames"]}
    onset_face = clip_pipeline.unkept_faces(
        clip.frames, [clip.onset], numbers, matrices, params["alignment"]["face_size"]
    )
    middle = apex.middle_apex(clip.onset, clip.offset)
    fields = clip_pipeline.clip_flow(faces, numbers, clip.onset, middle, settings, other_faces=onset_face)
    return clip_pipeline.clip_flow_patches(
        fields["onset_frames"], boxes, description["region_sizes"], params["patches"]
    )


def spatial_inputs(description: dict, clip: ClipSpan, prepared: dict, region: str):
    """The tf.data batches of a region's frames as its spatial model takes them: the bundle's input
    representation, from its source (grey or flow patches), scaled and batched as training's feature
    export does."""
    model_settings = description["model"]
    patches = prepared[representation(model_settings["input"]).source][region]
    frames = spatial_frames(patches, prepared["frame_numbers"], clip.onset, model_settings["input"])
    return spatial_batches(frames, np.zeros(len(frames)), model_settings, BATCH_SIZE).map(lambda x, y: x)


def probabilities(bundle: Bundle, clip: ClipSpan, prepared: dict) -> np.ndarray:
    """Per-class probabilities of one preprocessed clip."""
    description = bundle.description
    features = []
    for region in description["regions"]:
        extractor = bundle.spatial[region]
        batches = spatial_inputs(description, clip, prepared, region)
        given, expected = tuple(batches.element_spec.shape[1:]), tuple(extractor.input.shape[1:])
        if given != expected:
            raise PredictError(
                f"{clip.source}: region {region} gives input {given}, the bundle's model expects {expected}"
            )
        # float32 as exported in training, whatever the model's dtype policy
        features.append(extractor.predict(batches, verbose=0).astype(np.float32))
    track = np.stack(features, axis=1)
    sequences = batch_sequences(standardise([track], bundle.mean, bundle.std), description["steps"])
    return bundle.temporal.predict(sequences, verbose=0)[0]


def predict(
    bundle: Bundle,
    inputs: list[str],
    onset: int | None = None,
    offset: int | None = None,
    window: int | None = None,
    stride: int | None = None,
    qc_dir: str | Path | None = None,
) -> pd.DataFrame:
    """One row per clip (or window): input, window, onset, offset, frames, reference_frame (the frame
    whose face gave the geometry), status (``ok`` or ``skipped``), reason (why skipped), notes (what
    opening the input worked around), predicted and prob_<class> (empty when skipped).

    Every clip is opened and cut into windows before anything is predicted, so that a bad input or
    window fails at once."""
    classes = bundle.classes
    parts = []  # (window number within its clip, span)
    for clip in clips_of(inputs, onset, offset):
        parts.extend(enumerate(windows(clip, window, stride or max(1, window // 2)) if window else [clip]))
    rows = []
    for index, part in parts:
        row = {"input": part.source, "window": index, "onset": part.onset, "offset": part.offset}
        row["notes"] = "; ".join(part.frames.notes)
        try:
            prepared = preprocess_clip(part, bundle.description)
        except SkippedClip as skipped:
            log.warning("not predicted: %s", skipped)
            row.update(frames=skipped.frames, reference_frame=skipped.reference_frame, status="skipped")
            rows.append({**row, "reason": skipped.reason, "predicted": ""})
            continue
        probs = probabilities(bundle, part, prepared)
        row.update(frames=len(prepared["frame_numbers"]), reference_frame=prepared["reference_frame"], status="ok")
        row.update(reason="", predicted=classes[int(np.argmax(probs))])
        row.update({f"prob_{name}": round(float(p), 6) for name, p in zip(classes, probs, strict=True)})
        rows.append(row)
        if qc_dir:
            write_qc(Path(qc_dir), len(rows) - 1, part, prepared, row, bundle.description)
    columns = ["input", "window", "onset", "offset", "frames", "reference_frame", "status", "reason", "notes"]
    table = pd.DataFrame(rows, columns=[*columns, "predicted", *(f"prob_{name}" for name in classes)])
    return table.astype({"reference_frame": "Int64"})


def write_qc(out: Path, row: int, clip: ClipSpan, prepared: dict, result: dict, description: dict) -> Path:
    """The aligned reference face with landmarks, region boxes and patch grids, the region crops, and
    the prediction: ``<row>_<input name>.png``."""
    from . import qc

    crops = {name: _unpatch(prepared["patches"][name][0]) for name in description["regions"]}
    picture = qc._stack(
        qc.overlay(prepared["face"], prepared["landmarks"], prepared["boxes"], description["preprocessing"]["patches"]),
        qc.region_strip(crops),
    )
    label = f"{result['predicted']} " + " ".join(f"{k[5:]}={v:.2f}" for k, v in result.items() if k.startswith("prob_"))
    cv2.putText(picture, label, (4, 16), cv2.FONT_HERSHEY_PLAIN, 1.0, (255, 255, 255), 1, cv2.LINE_AA)
    path = out / f"{row:04d}_{Path(clip.source).name}_{clip.onset}-{clip.offset}.png"
    with atomic_output(path) as partial:
        cv2.imwrite(str(partial), picture)
    return path


def _unpatch(patches: np.ndarray) -> np.ndarray:
    """(m, h, w) patches row by row -> the (H, W) region (the inverse of regions.cut_patches)."""
    side = regions.grid_side(len(patches))
    rows = [np.concatenate(list(patches[r * side : (r + 1) * side]), axis=1) for r in range(side)]
    return np.concatenate(rows, axis=0)


def output_format(out: str | Path) -> str:
    """``csv`` or ``json`` from the --out name; PredictError for any other suffix (checked before any work)."""
    suffix = Path(out).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise PredictError(f"--out {str(out)!r}: expected a file name ending in {' or '.join(OUTPUT_SUFFIXES)}")
    return suffix[1:]


def write_predictions(table: pd.DataFrame, out: str | Path) -> None:
    """CSV, or JSON (a list of records; skipped rows' empty values as null) when ``out`` ends in .json."""
    out_format = output_format(out)
    out = Path(out)
    with atomic_output(out) as partial:
        if out_format == "json":
            partial.write_text(table.to_json(orient="records", indent=2))
        else:
            table.to_csv(partial, index=False)
