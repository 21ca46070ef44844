"""What the models are fed: spatial inputs from a clip's patches, temporal inputs from its features.

Spatial input representations, by ``model.input`` (``REPRESENTATIONS``):

``onset_diff``  each frame minus the clip's onset frame (int16), clipped to +-``diff_range`` grey levels
                and mapped to [-1, 1], 0 = no change
``raw``         the grey frames (uint8) / 255, in [0, 1] (the paper's)

Training reads a region's frames of many clips from the patches files (``load_region``); ``localmer
predict`` has one clip's patches in memory. Both go through ``spatial_frames`` and ``spatial_batches``,
so a clip predicted is represented and scaled exactly as the clips trained on. The temporal model
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


def _raw_frames(patches: np.ndarray, numbers: np.ndarray, onset: int) -> np.ndarray:
    return patches


def _raw_scale(model_settings: dict) -> Callable:
    import tensorflow as tf

    def scale(x):
        return tf.cast(x, tf.float32) / 255.0

    return scale


@dataclass(frozen=True)
class Representation:
    """One spatial input: from a clip's patches to the stored frames, and their scaling in TensorFlow."""

    frames: Callable[[np.ndarray, np.ndarray, int], np.ndarray]  # (patches, frame numbers, onset) -> frames
    scale: Callable[[dict], Callable]  # model settings -> (tensor -> float32 tensor in the network's range)


REPRESENTATIONS = {
    "onset_diff": Representation(onset_difference, _onset_diff_scale),
    "raw": Representation(_raw_frames, _raw_scale),
}


def representation(name: str) -> Representation:
    if name not in REPRESENTATIONS:
        raise ValueError(f"model.input {name!r}: expected one of {', '.join(sorted(REPRESENTATIONS))}")
    return REPRESENTATIONS[name]


def spatial_frames(patches: np.ndarray, numbers: np.ndarray, onset: int, name: str) -> np.ndarray:
    """A clip's (F, m, h, w) uint8 patches of one region as representation ``name``: the frames before
    scaling (uint8 for raw, int16 for onset_diff)."""
    return representation(name).frames(patches, numbers, onset)


@dataclass(frozen=True)
class RegionFrames:
    """Every kept frame of one region for a list of clips."""

    frames: np.ndarray  # (N, m, h, w): uint8 grey (raw) or int16 frame minus onset frame (onset_diff)
    owner: np.ndarray  # (N,) the row of the samples table each frame belongs to
    phase: np.ndarray  # (N,) where the frame lies in its clip: 0 at onset, 1 at apex, 2 at offset


def temporal_phase(numbers: np.ndarray, onset: int, apex: int, offset: int) -> np.ndarray:
    """0 at the onset, rising linearly to 1 at the apex, then to 2 at the offset."""
    numbers = np.asarray(numbers, dtype=np.float64)
    rising = (numbers - onset) / max(1, apex - onset)
    falling = 1.0 + (numbers - apex) / max(1, offset - apex)
    return np.where(numbers <= apex, rising, falling)


def load_region(patch_files: dict[str, str], samples: pd.DataFrame, region: str, representation: str) -> RegionFrames:
    """Frames of ``region`` for the given samples (rows of samples.tsv), in sample order, read from the
    patches files (subject -> path) as ``representation``, before scaling."""
    blocks, owners, phases = [], [], []
    for row, sample in enumerate(samples.itertuples()):
        with h5py.File(patch_files[sample.subject], "r") as h5:
            group = h5["clips"][sample.clip]
            frames = group["patches"][region][()]
            numbers = group["frame_numbers"][()]
            frames = spatial_frames(frames, numbers, sample.onset, representation)
        blocks.append(frames)
        owners.append(np.full(len(frames), row))
        phases.append(temporal_phase(numbers, sample.onset, sample.apex, sample.offset))
    return RegionFrames(np.concatenate(blocks), np.concatenate(owners), np.concatenate(phases))


def spatial_batches(frames, targets, model_settings: dict, batch_size: int, order: np.ndarray | None = None):
    """A tf.data pipeline of (frames scaled per ``model_settings['input']`` with a channel axis, targets)
    batches, the frames in ``order`` (indices into ``frames``: one training epoch's shuffle) or, with
    None, as stored. ``frames`` and ``targets`` may be tensors already: a training job converts them once
    and builds one pipeline per epoch over them, taking each batch by index (no copy of the data per
    epoch, no shuffle buffer)."""
    import tensorflow as tf

    frames, targets = tf.convert_to_tensor(frames), tf.convert_to_tensor(targets)
    indices = np.arange(len(targets)) if order is None else np.asarray(order)
    scale = representation(model_settings["input"]).scale(model_settings)
    return (
        tf.data.Dataset.from_tensor_slices(indices)
        .batch(batch_size)
        .map(
            lambda index: (scale(tf.gather(frames, index))[..., None], tf.gather(targets, index)), num_parallel_calls=1
        )
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
