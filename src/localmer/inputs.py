"""What the models are fed: spatial inputs from a clip's patches, temporal inputs from its features.

Spatial input representations, by ``model.input`` (``REPRESENTATIONS``):

``onset_diff``  each frame minus the clip's onset frame (int16), clipped to +-``diff_range`` grey levels
                and mapped to [-1, 1], 0 = no change; 1 channel
``raw``         the grey frames (uint8) / 255, in [0, 1] (the paper's); 1 channel
``flow``        the optical flow from the onset frame to each kept frame, 3 channels: u and v clipped to
                +-``flow_range`` px and mapped to [-1, 1], strain clipped to ``strain_range`` and mapped
                to [0, 1]; 0 = no motion

Each representation has its channel count and its source: the stage whose per-subject files hold its
frames (``PATCHES``: the grey patches files; ``FLOW_PATCHES``: the flow-patches files, the same layout
with (F, m, h, w, 3) float32 u, v, strain patches). Training reads a region's frames of many clips from
those files (``load_region``); ``localmer predict`` has one clip's patches (and flow patches) in
memory. Both go through ``spatial_frames`` and ``spatial_batch_of``, so a clip predicted is represented
and scaled exactly as the clips trained on. The temporal model
takes each clip's (F, regions, 256) feature track standardised with the training statistics and
zero-padded (or resampled) to a fixed number of steps (``batch_sequences``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import h5py
import numpy as np
import pandas as pd


def onset_difference(frames: np.ndarray, numbers: np.ndarray, onset: int) -> np.ndarray:
    """Each frame minus the clip's onset frame (its first kept frame when the onset was not kept), int16."""
    found = np.flatnonzero(numbers == onset)
    reference = frames[found[0] if len(found) else 0]
    return frames.astype(np.int16) - reference.astype(np.int16)


def _onset_diff_scale(model_settings: dict) -> Callable:
    """A micro-expression changes a frame by a few grey levels, which a +-255 scale would squeeze into
    +-0.01; and centred on 0, an unchanged pixel adds nothing to a ReLU unit (mapped to [0, 1] with 0.5 =
    no change, the spatial model stayed at chance for 8 epochs on the demo where centred it learned)."""
    import tensorflow as tf

    limit = float(model_settings["diff_range"])

    def scale(x):
        return tf.clip_by_value(tf.cast(x, tf.float32), -limit, limit) / limit

    return scale


def _stored_frames(patches: np.ndarray, numbers: np.ndarray, onset: int) -> np.ndarray:
    """The frames as the source file holds them (raw grey patches, flow patches)."""
    return patches


def _raw_scale(model_settings: dict) -> Callable:
    import tensorflow as tf

    def scale(x):
        return tf.cast(x, tf.float32) / 255.0

    return scale


def _flow_scale(model_settings: dict) -> Callable:
    """u and v are pixels of the region patch: / ``flow_range``, clipped to [-1, 1], so 0 = no motion
    stays 0 (the centring argument of ``_onset_diff_scale``) and the rare large motions (blinks, a head
    moving) cannot dominate. Strain is a gradient of the flow (px per px, >= 0), not a displacement:
    divided by a length in pixels it would change scale with ``flow_range``, so it has its own scale,
    ``strain_range``, clipped to [0, 1] (0 = no deformation stays 0)."""
    import tensorflow as tf

    flow_range, strain_range = float(model_settings["flow_range"]), float(model_settings["strain_range"])

    def scale(x):
        x = tf.cast(x, tf.float32)
        motion = tf.clip_by_value(x[..., :2] / flow_range, -1.0, 1.0)
        strain = tf.clip_by_value(x[..., 2:] / strain_range, 0.0, 1.0)
        return tf.concat([motion, strain], axis=-1)

    return scale


PATCHES = "patches"  # the grey patches files (localmer.preprocess.crop_subject)
FLOW_PATCHES = "flowpatches"  # the flow-patches files (localmer.preprocess.crop_flow_subject)
SOURCES = (PATCHES, FLOW_PATCHES)  # the values of the files' ``stage`` attribute


@dataclass(frozen=True)
class Representation:
    """One spatial input: from a clip's patches to the stored frames, and their scaling in TensorFlow."""

    frames: Callable[[np.ndarray, np.ndarray, int], np.ndarray]  # (patches, frame numbers, onset) -> frames
    scale: Callable[[dict], Callable]  # model settings -> (tensor -> float32 tensor in the network's range)
    channels: int  # the spatial model's input channels; one-channel frames are stored without a channel axis
    source: str  # which files (and which of predict's in-memory patches) hold its frames: one of SOURCES


REPRESENTATIONS = {
    "onset_diff": Representation(onset_difference, _onset_diff_scale, 1, PATCHES),
    "raw": Representation(_stored_frames, _raw_scale, 1, PATCHES),
    "flow": Representation(_stored_frames, _flow_scale, 3, FLOW_PATCHES),
}


def representation(name: str) -> Representation:
    if name not in REPRESENTATIONS:
        raise ValueError(f"model.input {name!r}: expected one of {', '.join(sorted(REPRESENTATIONS))}")
    return REPRESENTATIONS[name]


def spatial_frames(patches: np.ndarray, numbers: np.ndarray, onset: int, name: str) -> np.ndarray:
    """A clip's patches of one region from the representation's source ((F, m, h, w) uint8 grey, or
    (F, m, h, w, 3) float32 flow) as representation ``name``: the frames before scaling (uint8 for raw,
    int16 for onset_diff, float32 for flow)."""
    return representation(name).frames(patches, numbers, onset)


@dataclass(frozen=True)
class RegionFrames:
    """Every kept frame of one region for a list of clips."""

    frames: np.ndarray  # (N, m, h, w) uint8 grey (raw), int16 minus onset (onset_diff); (N, m, h, w, 3) flow
    owner: np.ndarray  # (N,) the row of the samples table each frame belongs to
    phase: np.ndarray  # (N,) where the frame lies in its clip: 0 at onset, 1 at apex, 2 at offset


def temporal_phase(numbers: np.ndarray, onset: int, apex: int, offset: int) -> np.ndarray:
    """0 at the onset, rising linearly to 1 at the apex, then to 2 at the offset."""
    numbers = np.asarray(numbers, dtype=np.float64)
    rising = (numbers - onset) / max(1, apex - onset)
    falling = 1.0 + (numbers - apex) / max(1, offset - apex)
    return np.where(numbers <= apex, rising, falling)


def load_region(patch_files: dict[str, str], samples: pd.DataFrame, region: str, name: str) -> RegionFrames:
    """Frames of ``region`` for the given samples (rows of samples.tsv), in sample order, read from the
    source files of representation ``name`` (subject -> path: patches or flow-patches files, which share
    their layout), before scaling. ValueError naming the file when it is of another stage."""
    source = representation(name).source
    blocks, owners, phases = [], [], []
    for row, sample in enumerate(samples.itertuples()):
        path = patch_files[sample.subject]
        with h5py.File(path, "r") as h5:
            stage = h5.attrs.get("stage")
            if stage != source:
                raise ValueError(f"{path}: a {stage!r} file, but model.input {name!r} reads {source!r} files")
            group = h5["clips"][sample.clip]
            frames = group["patches"][region][()]
            numbers = group["frame_numbers"][()]
            frames = spatial_frames(frames, numbers, sample.onset, name)
        blocks.append(frames)
        owners.append(np.full(len(frames), row))
        phases.append(temporal_phase(numbers, sample.onset, sample.apex, sample.offset))
    return RegionFrames(np.concatenate(blocks), np.concatenate(owners), np.concatenate(phases))


def spatial_batch_of(frames, targets, model_settings: dict) -> Callable:
    """The function of a batch's indices into ``frames`` that gives their (frames scaled per
    ``model_settings['input']``, channels last, targets) batch, taken by index from tensors converted
    once (one-channel frames get their channel axis here). ``frames`` and ``targets`` may be tensors
    already."""
    import tensorflow as tf

    frames, targets = tf.convert_to_tensor(frames), tf.convert_to_tensor(targets)
    chosen = representation(model_settings["input"])
    scale = chosen.scale(model_settings)

    def batch_of(index):
        batch = scale(tf.gather(frames, index))
        return (batch[..., None] if chosen.channels == 1 else batch), tf.gather(targets, index)

    return batch_of


def spatial_batches(frames, targets, model_settings: dict, batch_size: int):
    """A tf.data pipeline of ``spatial_batch_of`` batches, the frames in stored order (to validate,
    predict, export). Training lays out its epochs' batches (``localmer.training.epoch_batches``)
    from the same ``spatial_batch_of``."""
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices(np.arange(len(targets)))
        .batch(batch_size)
        .map(spatial_batch_of(frames, targets, model_settings), num_parallel_calls=1)
        .prefetch(2)
    )


# --------------------------------------------------------------------------------------------- temporal


def normalisation(tracks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per region and feature mean and std over all frames of the given (training) tracks."""
    frames = np.concatenate(tracks)
    std = frames.std(axis=0)
    return frames.mean(axis=0), np.where(std > 1e-6, std, 1.0)


def standardise(tracks: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> list[np.ndarray]:
    return [(track - mean) / std for track in tracks]


def _sequence(track: np.ndarray, steps: int) -> tuple[np.ndarray, int]:
    """(F, ...) -> (steps, ...) and the number of real steps: zero-padded, or resampled evenly if longer."""
    if len(track) > steps:
        return track[np.round(np.linspace(0, len(track) - 1, steps)).astype(int)], steps
    padded = np.zeros((steps, *track.shape[1:]), dtype=np.float32)
    padded[: len(track)] = track
    return padded, len(track)


def batch_sequences(tracks: list[np.ndarray], steps: int) -> dict[str, np.ndarray]:
    """The temporal model's inputs: ``sequences`` (clips, steps, regions, 256) zero-padded (or resampled
    when longer than ``steps``) and ``lengths`` (clips,) the real steps of each."""
    sequences, lengths = zip(*(_sequence(track, steps) for track in tracks), strict=True)
    return {"sequences": np.stack(sequences).astype(np.float32), "lengths": np.asarray(lengths, dtype=np.int32)}
