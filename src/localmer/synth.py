"""Synthetic micro-expression corpus in the on-disk layouts of CASME II, SAMM and SMIC-HS.

Every frame is made from one of two real public-domain face photographs that installed packages carry
(scikit-image's astronaut, matplotlib's Grace Hopper): each synthetic subject is one photo under a fixed
random identity transform (face-shape warp, colour, lighting, scale, roll), and each clip is a local,
landmark-driven warp of that face that rises from the onset frame to the apex and decays to the offset,
written down as FACS action units. Nuisances (sensor noise, head drift and roll, blinks, flicker, slow
lighting change, JPEG compression) are drawn from the same distributions for every class.

Geometry conventions, used throughout:
- dlib's 68 landmarks, 0-based: jaw 0-16, brows 17-21 and 22-26, nose 27-35, eyes 36-41 and 42-47,
  mouth 48-67 (48 and 54 the lip corners).
- The camera faces the subject and nothing is mirrored, so the subject's RIGHT side is IMAGE-LEFT
  (smaller x): brow 17-21, eye 36-41 and lip corner 48 are the subject's right. FACS prefixes follow
  the subject: R12 moves lip corner 48, L12 moves lip corner 54 (image-right).
- Facial actions are written in a face frame (u, v): u points from the subject's right eye to the left
  eye (image-right for an upright face), v is u turned 90 degrees towards the chin. Lengths in tables
  are px at an inter-ocular distance (IOD, between the eye centres) of 100 px.
- Warps are backward maps: an output pixel x shows the source at x - d(x), so a feature at p appears at
  about p + d(p); d is the forward displacement of the face.

Randomness: every subject and clip has its own generator keyed by (seed, part, subject, stream, clip),
so a corpus is the same whatever the worker count, and `null` mode (action amplitude times 0) makes the
very same draws in the same order.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import itertools
import json
import logging
import math
import multiprocessing
import os
import re
import shutil
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import openpyxl
import skimage.data
from openpyxl.writer.excel import ExcelWriter

from . import config, datasets
from .landmarks import detect
from .regions import alignment_matrix, eye_centres
from .runlog import progress

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

PART_DEFAULTS = {
    "casme2": {"fps": 200, "image_format": "jpg", "color": True},
    "samm": {"fps": 200, "image_format": "jpg", "color": False},
    "smic": {"fps": 100, "image_format": "bmp", "color": True},
}
# Part order fixes the random key of each part and the order of parts in every output.
PART_KEYS = {"casme2": 1, "samm": 2, "smic": 3}
MEGC_CLASSES = ("negative", "positive", "surprise")  # MEGC 2019 labels 0, 1, 2
EXTRA_CLASS = "other"  # clips outside the MEGC classes: CASME II "others", SAMM "Other", SMIC non_micro
BASE_PHOTOS = ("astronaut", "grace_hopper")
BASE_TIMESTAMP = datetime(2019, 1, 1)  # fixed workbook dates, so that sheets are byte-identical
PART_MARKER = ".localmer-synthetic"  # marks a part folder as ours, so that a rerun may replace it

# Within-class variety: which AUs, on which side, in which mix. L/R = the subject's left/right.
CLASS_PATTERNS = {
    "positive": ("12", "L12", "R12", "6+12", "R6+R12", "L6+L12", "6A+12", "6+12A"),
    "surprise": ("1+2", "1+2+5", "1+2+26", "R1+R2", "L1+L2", "5+26", "1+L2", "1+2+5A"),
    "negative": ("4", "4+7", "9", "4+9", "L14", "R14", "15", "15+17", "10", "4+L10", "17", "R20", "1+4+15"),
    EXTRA_CLASS: ("7", "18", "24", "14", "L2", "R7", "25A+26A"),
}
# Emotion of a negative pattern as each sheet writes it (CASME II negative = disgust or repression).
NEGATIVE_EMOTIONS = {
    "4": ("disgust", "Anger"),
    "4+7": ("disgust", "Anger"),
    "9": ("disgust", "Disgust"),
    "4+9": ("disgust", "Disgust"),
    "L14": ("repression", "Contempt"),
    "R14": ("repression", "Contempt"),
    "15": ("repression", "Sadness"),
    "15+17": ("repression", "Sadness"),
    "10": ("disgust", "Disgust"),
    "4+L10": ("disgust", "Disgust"),
    "17": ("repression", "Sadness"),
    "R20": ("repression", "Fear"),
    "1+4+15": ("repression", "Sadness"),
}
CLASS_EMOTIONS = {
    "positive": ("happiness", "Happiness"),
    "surprise": ("surprise", "Surprise"),
    EXTRA_CLASS: ("others", "Other"),
}
SAMM_OBJECTIVE_CLASSES = {
    "Happiness": 1,
    "Surprise": 2,
    "Anger": 3,
    "Disgust": 4,
    "Sadness": 5,
    "Fear": 6,
    "Contempt": 7,
    "Other": 7,
}
SMIC_CLASS_CODES = {"negative": "ne", "positive": "po", "surprise": "sur", EXTRA_CLASS: "nm"}
INTENSITY_WEIGHTS = {"": 1.0, "A": 0.35, "B": 0.55, "C": 0.75, "D": 0.9, "E": 1.0}

# Control points: the 68 landmarks, then virtual points built from them (see _control_points).
CHEEK_R, CHEEK_L, DIMPLE_R, DIMPLE_L, CHIN = 68, 69, 70, 71, 72
N_CONTROLS = 73
# Left-right mirror of every control point; centre points map to themselves.
MIRROR = np.array(
    [16 - i for i in range(17)]
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
    + [CHEEK_L, CHEEK_R, DIMPLE_L, DIMPLE_R, CHIN]
)
CENTRE_POINTS = frozenset(int(i) for i in np.flatnonzero(np.arange(N_CONTROLS) == MIRROR))
# Control points on the subject's right side (image-left), the side that the tables below describe.
RIGHT_SIDE = frozenset(
    [*range(0, 8), *range(17, 22), 31, 32, *range(36, 42), 48, 49, 50, 58, 59, 60, 61, 67, CHEEK_R, DIMPLE_R]
)
# Reach of each control point's Gaussian, in IOD: small at the eyelids so that an eye action stays on
# its lid, wide on the cheeks.
CONTROL_SIGMA = np.array(
    [0.11] * 17 + [0.08] * 10 + [0.07] * 9 + [0.045] * 12 + [0.06] * 20 + [0.13, 0.13, 0.05, 0.05, 0.09]
)

# Action units as displacements (du, dv) of control points on the subject's RIGHT side (image-left;
# "outward" is -u there) plus centre points (du = 0), px at IOD 100, directions as FACS describes them.
AU_VECTORS = {
    1: {21: (0.1, -1.0), 20: (0.05, -0.75), 19: (0.0, -0.35)},  # inner brow raiser
    2: {17: (0.0, -0.8), 18: (0.0, -1.0), 19: (0.0, -0.7), 20: (0.0, -0.3)},  # outer brow raiser
    4: {21: (0.5, 0.9), 20: (0.4, 1.0), 19: (0.25, 0.8), 18: (0.1, 0.5), 17: (0.0, 0.25)},  # brows down, together
    5: {37: (0.0, -1.0), 38: (0.0, -1.0)},  # upper lid raiser
    6: {CHEEK_R: (0.1, -1.0), 41: (0.0, -0.6), 40: (0.0, -0.5)},  # cheek raiser: cheek and lower lid up
    7: {41: (0.0, -1.0), 40: (0.0, -0.9), 37: (0.0, 0.3), 38: (0.0, 0.3)},  # lid tightener
    9: {  # nose wrinkler: nose wings and upper lip up, inner brow slightly down
        31: (0.1, -1.0),
        32: (0.0, -0.7),
        33: (0.0, -0.4),
        50: (0.0, -0.5),
        49: (0.0, -0.4),
        51: (0.0, -0.45),
        21: (0.15, 0.4),
    },
    10: {50: (0.0, -1.0), 49: (-0.05, -0.8), 51: (0.0, -0.8), 61: (0.0, -0.7), 62: (0.0, -0.6), 31: (0.0, -0.25)},
    12: {  # lip corner puller: corners up and out
        48: (-0.6, -0.8),
        60: (-0.45, -0.6),
        49: (-0.2, -0.35),
        59: (-0.25, -0.45),
        67: (-0.1, -0.3),
        61: (-0.1, -0.2),
        CHEEK_R: (0.0, -0.2),
    },
    14: {48: (0.7, -0.2), 60: (0.5, -0.1), DIMPLE_R: (0.6, 0.0)},  # dimpler: corners in/back
    15: {48: (0.0, 1.0), 60: (0.0, 0.6), 59: (0.0, 0.5), 49: (0.0, 0.3), 67: (0.0, 0.3)},  # lip corner depressor
    17: {57: (0.0, -0.9), 58: (0.0, -0.8), 66: (0.0, -0.4), CHIN: (0.0, -1.0), 8: (0.0, -0.6), 7: (0.0, -0.4)},
    18: {48: (1.0, 0.0), 60: (0.7, 0.0), 49: (0.5, 0.1), 59: (0.5, -0.1)},  # lip pucker
    20: {48: (-1.0, 0.2), 60: (-0.7, 0.1), 59: (-0.35, 0.1), 49: (-0.3, 0.0)},  # lip stretcher
    24: {  # lip pressor: lips pressed together
        50: (0.0, 0.8),
        51: (0.0, 0.9),
        61: (0.0, 0.5),
        62: (0.0, 0.5),
        58: (0.0, -0.8),
        57: (0.0, -0.9),
        67: (0.0, -0.5),
        66: (0.0, -0.5),
    },
    25: {57: (0.0, 0.7), 58: (0.0, 0.6), 66: (0.0, 0.8), 67: (0.0, 0.7), 62: (0.0, -0.3), 61: (0.0, -0.25)},
    26: {  # jaw drop: lower lip and jaw down
        57: (0.0, 1.0),
        58: (0.0, 0.95),
        59: (0.0, 0.8),
        66: (0.0, 1.0),
        67: (0.0, 0.9),
        8: (0.0, 1.0),
        7: (0.0, 0.95),
        6: (0.0, 0.75),
        5: (0.0, 0.45),
        4: (0.0, 0.2),
        CHIN: (0.0, 1.0),
    },
}

# Identity (face-shape) warp, per subject: uniform ranges in px at IOD 100.
SHAPE_RANGES = {
    "eye_spacing": 2.5,  # each eye and brow outward (+) or inward (-)
    "eye_level": 3.0,
    "brow_level": 3.0,
    "nose_length": 4.0,
    "nose_width": 2.5,
    "mouth_width": 4.0,
    "mouth_level": 4.0,  # whole mouth down (+) or up (-)
    "lip_thickness": 2.0,
    "jaw_width": 6.0,
    "chin_length": 5.0,
}
LOW_FREQUENCY_WARP_PX = 4.0  # smooth random warp on a coarse grid, px at IOD 100
LOW_FREQUENCY_GRID = 4


@dataclass
class ClipPlan:
    """One clip: every random draw that its frames, sheet row and truth row need."""

    part: str
    subject: str  # folder name: sub01, 006, s1
    name: str  # clip folder name: EP02_01f, 006_1_2, s1_ne_01
    frame_dir: str  # relative to the corpus folder
    label: str  # negative, positive, surprise or EXTRA_CLASS
    emotion: str  # as the part's sheet or folder writes it
    aus: str  # FACS code, e.g. 4+L10
    first_frame: int  # absolute frame numbers
    onset: int
    apex: int
    offset: int
    last_frame: int
    amplitude_px: float  # drawn peak displacement, px at IOD 100 (before the null factor)
    action_gain: float  # 1, or 0 in null mode
    blink_start: int  # frame index (0 = first frame of the folder) where a blink starts; may be < 0
    blink_length: int  # frames; 0 = no blink
    drift: np.ndarray  # (3, 2, 3): x, y, roll; two sinusoids each; amplitude, period (frames), phase
    drift_px: float  # bound of the head translation, px at IOD 100
    roll_deg: float
    light_ramp: float  # slow lighting change over the clip, relative
    flicker: np.ndarray  # per-frame relative illumination flicker
    noise_key: tuple[int, ...]
    inducement: int = 0  # SAMM inducement code

    @property
    def n_frames(self) -> int:
        return self.last_frame - self.first_frame + 1

    def profile(self) -> np.ndarray:
        """Action intensity per frame of the folder: 0 at onset, 1 at apex, 0 at offset (raised cosines)."""
        frames = np.arange(self.first_frame, self.last_frame + 1, dtype=np.float64)
        rise = np.clip((frames - self.onset) / (self.apex - self.onset), 0.0, 1.0)
        fall = np.clip((frames - self.apex) / (self.offset - self.apex), 0.0, 1.0)
        return np.where(frames <= self.apex, 0.5 - 0.5 * np.cos(np.pi * rise), 0.5 + 0.5 * np.cos(np.pi * fall))

    def closure(self) -> np.ndarray:
        """Eyelid closure per frame of the folder (0 open, 1 shut): fast close, slower reopening."""
        closure = np.zeros(self.n_frames)
        if self.blink_length:
            tau = (np.arange(self.n_frames) - self.blink_start + 1) / (self.blink_length + 1)
            inside = (tau > 0) & (tau < 1)
            close = 0.5 - 0.5 * np.cos(np.pi * tau / 0.4)
            reopen = 0.5 + 0.5 * np.cos(np.pi * (tau - 0.4) / 0.6)
            # The 1.3 gain holds the lid fully shut for a few frames around the peak.
            closure[inside] = np.minimum(1.0, 1.3 * np.where(tau < 0.4, close, reopen))[inside]
        return closure

    def blink_frames(self) -> tuple[int, int] | None:
        """First and last absolute frame numbers with the eyelids moving, or None."""
        moving = np.flatnonzero(self.closure() > 0)
        if moving.size == 0:
            return None
        return self.first_frame + int(moving[0]), self.first_frame + int(moving[-1])

    def head_motion(self) -> np.ndarray:
        """(n_frames, 3): head translation x, y (px at IOD 100) and roll (degrees) per frame.

        Smooth (two slow sinusoids per axis), starting at 0, the largest excursion in the clip scaled
        to the drawn drift and roll.
        """
        t = np.arange(self.n_frames, dtype=np.float64)[:, None, None]
        amplitude, period, phase = self.drift[..., 0], self.drift[..., 1], self.drift[..., 2]
        waves = (amplitude * np.sin(2 * np.pi * t / period + phase)).sum(-1)
        waves -= waves[0]
        translation = waves[:, :2] * self.drift_px / max(np.linalg.norm(waves[:, :2], axis=1).max(), 1e-9)
        roll = waves[:, 2:] * self.roll_deg / max(np.abs(waves[:, 2]).max(), 1e-9)
        return np.hstack([translation, roll])

    def illumination(self) -> np.ndarray:
        """Global illumination gain per frame: slow raised-cosine change times per-frame flicker."""
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.linspace(0.0, 1.0, self.n_frames))
        return (1.0 + self.light_ramp * ramp) * (1.0 + self.flicker)


@dataclass
class SubjectPlan:
    """One synthetic subject: the identity draws and the clips."""

    part: str
    name: str
    photo: str
    image_size: tuple[int, int]  # width, height
    iod_fraction: float  # inter-ocular distance at scale 1, as a fraction of the frame width
    color: bool
    image_format: str
    fps: float
    noise_sigma: float
    scale: float
    roll_deg: float
    shift: np.ndarray  # face offset in the frame, px
    shape: dict[str, float]
    low_frequency: np.ndarray  # (2, G, G) px at IOD 100
    channel_gain: np.ndarray  # B, G, R
    gamma: float
    contrast: float
    light_gradient: np.ndarray  # relative gain change across the width and the height
    jpeg_quality: int
    clips: list[ClipPlan] = field(default_factory=list)


@dataclass
class SubjectGeometry:
    """Where a subject's face lies in the frame, and the fields that do not change per frame."""

    landmarks: np.ndarray  # (68, 2) neutral landmarks, frame px
    controls: np.ndarray  # (N_CONTROLS, 2)
    u_axis: np.ndarray  # face frame, see module docstring
    v_axis: np.ndarray
    iod: float  # frame px
    to_source: np.ndarray  # (2, 3) affine: neutral frame position -> canonical photo position
    identity_offset: np.ndarray  # (2, H, W) backward offset of the identity warp, neutral frame px
    head_centre: np.ndarray  # centre of the head rotation


@dataclass
class ClipMotion:
    """The facial action of one clip, as the generator applies it (no nuisances)."""

    profile: np.ndarray  # (n_frames,) 0..1
    peak_px: float  # largest displacement of the dense action field at the apex, frame px
    landmarks: np.ndarray  # (n_frames, 68, 2) displacement of each landmark, frame px
    iod: float  # frame px


# ----------------------------------------------------------------------------------------------------
# Base photos and their landmarks


def _photo_bgr(name: str) -> np.ndarray:
    if name == "astronaut":
        return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return image


@functools.cache
def base_landmarks(photo: str) -> np.ndarray:
    """Landmarks (68, 2) of a base photo, in photo px (cached: detection costs about a second)."""
    # The astronaut photo has a second, weaker detection that is not a face: keep the best score.
    detection = detect(_photo_bgr(photo), upsample=1, choose="score")
    if detection is None:
        raise RuntimeError(f"dlib found no face in base photo {photo}")
    landmarks = detection.landmarks.astype(np.float64)
    right_eye, left_eye = eye_centres(landmarks)
    if not 20 < np.linalg.norm(left_eye - right_eye) < 400 or left_eye[0] <= right_eye[0]:
        raise RuntimeError(f"implausible landmarks in base photo {photo}")
    return landmarks


@functools.cache
def _canonical_photo(photo: str, iod: float, half_size: int) -> tuple[np.ndarray, np.ndarray]:
    """A base photo levelled (eye line horizontal), scaled to `iod` and centred on the eye midpoint.

    Resampled once with Lanczos so that every frame then samples it at a scale near 1.
    Returns the (2*half_size)^2 float32 BGR image and its landmarks.
    """
    landmarks = base_landmarks(photo)
    size = 2 * half_size
    matrix = alignment_matrix(landmarks, iod, (size, size), (0.5, 0.5)).astype(np.float64)
    image = cv2.warpAffine(
        _photo_bgr(photo), matrix, (size, size), flags=cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT101
    )
    canonical = landmarks @ matrix[:, :2].T + matrix[:, 2]
    return image.astype(np.float32), canonical


# ----------------------------------------------------------------------------------------------------
# Fields


def _rbf_field(
    points: np.ndarray, vectors: np.ndarray, sigmas: np.ndarray, qx: np.ndarray, qy: np.ndarray
) -> np.ndarray:
    """Normalised Gaussian RBF displacement at query positions (qx, qy): shape (2, *qx.shape).

    d(x) = sum_i g_i(x) v_i / max(1, sum_i g_i(x)): a weighted mean where the points crowd (so it never
    exceeds the largest control vector) and a decay to 0 away from them (so it stays local). Points
    with a zero vector act as anchors that hold their neighbourhood still.
    """
    weight_sum = np.zeros(qx.shape, np.float32)
    vector_sum = np.zeros((2, *qx.shape), np.float32)
    for (px, py), (vx, vy), sigma in zip(points, vectors, sigmas, strict=True):
        weight = np.exp(-((qx - px) ** 2 + (qy - py) ** 2) / np.float32(2 * sigma**2))
        weight_sum += weight
        if vx or vy:
            vector_sum[0] += weight * np.float32(vx)
            vector_sum[1] += weight * np.float32(vy)
    return vector_sum / np.maximum(weight_sum, 1.0)


def _sample_field(field2: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples (N, 2) of a (2, H, W) field at points (N, 2)."""
    map_x = points[None, :, 0].astype(np.float32)
    map_y = points[None, :, 1].astype(np.float32)
    return np.stack(
        [
            cv2.remap(np.ascontiguousarray(c), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
            for c in field2
        ],
        axis=1,
    )


def _control_points(landmarks: np.ndarray, u_axis: np.ndarray, iod: float) -> np.ndarray:
    """The 68 landmarks plus virtual points: cheek centres, dimples beside the lip corners, chin boss."""
    cheek_r = 0.5 * landmarks[41] + 0.2 * landmarks[48] + 0.3 * landmarks[2]
    cheek_l = 0.5 * landmarks[46] + 0.2 * landmarks[54] + 0.3 * landmarks[14]
    dimple_r = landmarks[48] - 0.08 * iod * u_axis  # outward of the subject's right lip corner
    dimple_l = landmarks[54] + 0.08 * iod * u_axis
    chin = 0.5 * (landmarks[57] + landmarks[8])
    return np.vstack([landmarks, cheek_r, cheek_l, dimple_r, dimple_l, chin])


def _face_vectors(right_side: dict[int, tuple[float, float]], sides: str, weight: float = 1.0) -> np.ndarray:
    """(N_CONTROLS, 2) face-frame vectors from a right-side table: sides 'R', 'L' or 'RL' (bilateral).

    The left side is the mirror image (du negated); a centre point moves fully with both sides and
    half with one side.
    """
    vectors = np.zeros((N_CONTROLS, 2))
    for index, (du, dv) in right_side.items():
        if index not in RIGHT_SIDE | CENTRE_POINTS:
            raise ValueError(f"control point {index} is on the subject's left; tables list the right side")
        if index in CENTRE_POINTS:
            vectors[index] += weight * (1.0 if sides == "RL" else 0.5) * np.array([du, dv])
            continue
        if "R" in sides:
            vectors[index] += weight * np.array([du, dv])
        if "L" in sides:
            vectors[MIRROR[index]] += weight * np.array([-du, dv])
    return vectors


def parse_aus(code: str) -> list[tuple[str, int, str]]:
    """'4+L10' -> [('', 4, ''), ('L', 10, '')]; items are (side, AU number, intensity letter)."""
    items = []
    for token in code.split("+"):
        side = token[0] if token[0] in "LR" else ""
        body = token[len(side) :]
        letter = body[-1] if body[-1].isalpha() else ""
        items.append((side, int(body[: len(body) - len(letter)]), letter))
    return items


def _action_face_vectors(code: str) -> np.ndarray:
    """Face-frame control vectors (N_CONTROLS, 2) of a FACS code, px at IOD 100 (before scaling)."""
    vectors = np.zeros((N_CONTROLS, 2))
    for side, au, letter in parse_aus(code):
        vectors += _face_vectors(AU_VECTORS[au], side or "RL", INTENSITY_WEIGHTS[letter])
    return vectors


def _to_frame(face_vectors: np.ndarray, u_axis: np.ndarray, v_axis: np.ndarray) -> np.ndarray:
    return face_vectors[:, :1] * u_axis + face_vectors[:, 1:] * v_axis


def _shape_face_vectors(shape: dict[str, float]) -> np.ndarray:
    """Face-frame control vectors of a subject's face-shape draws (px at IOD 100)."""
    right = {}

    def add(indices, du, dv):
        for i in indices:
            old = right.get(i, (0.0, 0.0))
            right[i] = (old[0] + du, old[1] + dv)

    add(range(36, 42), -shape["eye_spacing"], shape["eye_level"])
    add(range(17, 22), -shape["eye_spacing"], shape["eye_level"] + shape["brow_level"])
    add([30, 31, 32, 33], 0.0, shape["nose_length"])
    add([29], 0.0, 0.66 * shape["nose_length"])
    add([28], 0.0, 0.33 * shape["nose_length"])
    add([31], -shape["nose_width"], 0.0)
    add([32], -0.5 * shape["nose_width"], 0.0)
    add([48, 49, 50, 51, 57, 58, 59, 60, 61, 62, 66, 67], 0.0, shape["mouth_level"])
    add([48, 60], -shape["mouth_width"], 0.0)
    add([49, 59, 61, 67], -0.5 * shape["mouth_width"], 0.0)
    add([49, 50, 51], 0.0, -shape["lip_thickness"])
    add([57, 58, 59], 0.0, shape["lip_thickness"])
    for i, weight in zip(range(1, 8), (0.4, 0.7, 0.9, 1.0, 0.9, 0.6, 0.3), strict=True):
        add([i], -weight * shape["jaw_width"], 0.0)
    for i, weight in zip((5, 6, 7, 8), (0.3, 0.6, 0.9, 1.0), strict=True):
        add([i], 0.0, weight * shape["chin_length"])
    return _face_vectors(right, "RL")


# ----------------------------------------------------------------------------------------------------
# Subject geometry and source image


def _canonical_size(image_size: tuple[int, int], iod_fraction: float) -> tuple[float, int]:
    """IOD and half-size of the canonical photo canvas that covers any subject's frame."""
    width, height = image_size
    iod = iod_fraction * width
    # Farthest frame corner from the eyes (placed at W/2, 0.4 H, shifted up to 3 %) at the smallest
    # subject scale, plus a margin for warps and drift; anything beyond is reflected.
    reach = math.hypot(0.5 * width + 0.03 * width, 0.6 * height + 0.03 * height) / 0.92
    return iod, int(math.ceil(reach)) + 8


def _grid(image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    width, height = image_size
    return np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))


def subject_geometry(subject: SubjectPlan) -> SubjectGeometry:
    """The subject's neutral face in the frame: landmarks, face axes and the identity warp."""
    width, height = subject.image_size
    canon_iod, half = _canonical_size(subject.image_size, subject.iod_fraction)
    _, canon_landmarks = _canonical_photo(subject.photo, canon_iod, half)
    # Similarity canonical -> frame: eye midpoint to (W/2, 0.4 H) plus a small offset, scale and roll.
    eyes_at = np.array([0.5 * width, 0.4 * height]) + subject.shift
    angle = math.radians(subject.roll_deg)
    rotation = subject.scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    landmarks = (canon_landmarks - half) @ rotation.T + eyes_at
    inverse = np.linalg.inv(rotation)
    to_source = np.hstack([inverse, (half - inverse @ eyes_at)[:, None]])

    iod = subject.scale * canon_iod
    u_axis = np.array([math.cos(angle), math.sin(angle)])
    v_axis = np.array([-u_axis[1], u_axis[0]])
    qx, qy = _grid(subject.image_size)
    controls = _control_points(landmarks, u_axis, iod)
    shape_vectors = _to_frame(_shape_face_vectors(subject.shape), u_axis, v_axis) * iod / 100
    displacement = _rbf_field(controls, shape_vectors, 0.12 * iod * np.ones(N_CONTROLS), qx, qy)
    low = subject.low_frequency * (iod / 100)
    displacement += np.stack([cv2.resize(c, (width, height), interpolation=cv2.INTER_CUBIC) for c in low])
    # A feature at p appears at x with x - d(x) = p: solve by fixed-point iteration.
    moved = landmarks.copy()
    for _ in range(4):
        moved = landmarks + _sample_field(displacement, moved)
    # The face frame and IOD of the face as it appears, i.e. after the identity warp.
    right_eye, left_eye = eye_centres(moved)
    moved_iod = float(np.linalg.norm(left_eye - right_eye))
    moved_u = (left_eye - right_eye) / moved_iod
    moved_v = np.array([-moved_u[1], moved_u[0]])
    return SubjectGeometry(
        landmarks=moved,
        controls=_control_points(moved, moved_u, moved_iod),
        u_axis=moved_u,
        v_axis=moved_v,
        iod=moved_iod,
        to_source=to_source,
        identity_offset=-displacement,
        head_centre=0.5 * ((right_eye + left_eye) / 2 + moved[8]),  # about the middle of the head
    )


def _subject_source(subject: SubjectPlan) -> np.ndarray:
    """The canonical photo in the subject's colours: gamma, contrast, skin tone and colour balance."""
    canon_iod, half = _canonical_size(subject.image_size, subject.iod_fraction)
    image, _ = _canonical_photo(subject.photo, canon_iod, half)
    image = (image / 255.0) ** subject.gamma
    image = (image - image.mean()) * subject.contrast + image.mean()
    image = image * subject.channel_gain.astype(np.float32) * 255.0
    if not subject.color:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(image, dtype=np.float32)


def _action_field(geometry: SubjectGeometry, code: str, image_size: tuple[int, int]) -> tuple:
    """A FACS code's action scaled to a peak displacement of 1 px.

    Returns the dense field (2, h, w) inside its box, the box (y0, y1, x0, x1), and the control
    vectors and sigmas that give the same field anywhere (for sampling at landmarks).
    """
    vectors = _to_frame(_action_face_vectors(code), geometry.u_axis, geometry.v_axis)
    sigmas = CONTROL_SIGMA * geometry.iod
    moving = np.any(vectors != 0, axis=1)
    reach = 3.5 * sigmas[moving].max()
    lo = np.floor(geometry.controls[moving].min(0) - reach).astype(int)
    hi = np.ceil(geometry.controls[moving].max(0) + reach).astype(int)
    width, height = image_size
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], width), min(hi[1], height)
    qx, qy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    field2 = _rbf_field(geometry.controls, vectors, sigmas, qx, qy)
    peak = float(np.sqrt((field2**2).sum(0)).max())
    return field2 / peak, (y0, y1, x0, x1), vectors / peak, sigmas


def clip_motion(subject: SubjectPlan, clip: ClipPlan, geometry: SubjectGeometry | None = None) -> ClipMotion:
    """The clip's facial action in frame px: per-frame landmark displacements and the field's peak."""
    geometry = geometry or subject_geometry(subject)
    _, _, vectors, sigmas = _action_field(geometry, clip.aus, subject.image_size)
    amplitude = clip.amplitude_px * clip.action_gain * geometry.iod / 100
    at_landmarks = _rbf_field(geometry.controls, vectors, sigmas, *geometry.landmarks.T.astype(np.float32)).T
    profile = clip.profile()
    return ClipMotion(
        profile=profile,
        peak_px=amplitude * float(profile.max()),
        landmarks=profile[:, None, None] * amplitude * at_landmarks[None],
        iod=geometry.iod,
    )


def _lid_curve(u: np.ndarray, corners: np.ndarray, middle: np.ndarray) -> np.ndarray:
    """A lid line v(u) in the face frame: through both eye corners, a parabola fitted to the middle points.

    corners, middle: (2, 2) arrays of (u, v); a parabola keeps the lid smooth where the 68-point
    polyline has kinks.
    """
    (u0, v0), (u1, v1) = corners

    def chord(x):
        return v0 + (x - u0) * (v1 - v0) / (u1 - u0)

    basis = (middle[:, 0] - u0) * (middle[:, 0] - u1)
    bulge = np.dot(basis, middle[:, 1] - chord(middle[:, 0])) / np.dot(basis, basis)
    return chord(u) + bulge * (u - u0) * (u - u1)


def _blink_offset(
    eye: np.ndarray, geometry: SubjectGeometry, closure: float, image_size: tuple[int, int]
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Backward offset (2, h, w) of one eye's upper lid closing by `closure`, and its box (y0, y1, x0, x1).

    The lid margin slides from the upper lid line towards the lower one and covers the eye (occlusion);
    the skin up to `stretch` above the lid follows. The displacement grows as a quarter sine from the
    top of that band, so the stretch goes into the lid crease and the lash line keeps its thickness.
    eye: the 6 landmarks of one eye in dlib order (corner, 2 upper, corner, 2 lower).
    """
    stretch = 0.12 * geometry.iod
    width, height = image_size
    lo = np.floor(eye.min(0) - stretch - 2).astype(int)
    hi = np.ceil(eye.max(0) + 3).astype(int)
    x0, y0, x1, y1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], width), min(hi[1], height)
    qx, qy = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    centre = eye.mean(0)
    u = (qx - centre[0]) * geometry.u_axis[0] + (qy - centre[1]) * geometry.u_axis[1]
    v = (qx - centre[0]) * geometry.v_axis[0] + (qy - centre[1]) * geometry.v_axis[1]
    local = np.stack([(eye - centre) @ geometry.u_axis, (eye - centre) @ geometry.v_axis], axis=1)
    corners = local[[0, 3]]
    if corners[0, 0] > corners[1, 0]:
        corners = corners[::-1]
    v_upper = _lid_curve(u, corners, local[[1, 2]])
    opening = np.clip(_lid_curve(u, corners, local[[5, 4]]) - v_upper, 0.0, None)
    opening[(u <= corners[0, 0]) | (u >= corners[1, 0])] = 0.0
    v_top = v_upper - stretch
    moved = closure * opening
    covered = (v >= v_top) & (v < v_upper + moved)
    offset_v = np.where(covered, -moved * np.sin(0.5 * np.pi * (v - v_top) / (stretch + moved)), 0.0)
    offset = np.stack([offset_v * geometry.v_axis[0], offset_v * geometry.v_axis[1]]).astype(np.float32)
    return (y0, y1, x0, x1), offset


# ----------------------------------------------------------------------------------------------------
# Rendering


def render_clip(subject: SubjectPlan, clip: ClipPlan, geometry: SubjectGeometry, source: np.ndarray):
    """Yield the clip's frames (uint8, BGR or grey), first to last; one remap per frame."""
    width, height = subject.image_size
    gx, gy = _grid(subject.image_size)
    unit, (y0, y1, x0, x1), _, _ = _action_field(geometry, clip.aus, subject.image_size)
    action = unit * np.float32(clip.amplitude_px * clip.action_gain * geometry.iod / 100)
    # Everything is expressed as a backward offset in neutral-frame px, then mapped to the photo by
    # to_source: frame x -> undo head motion -> + offsets -> canonical photo.
    gradient_x, gradient_y = subject.light_gradient.tolist()
    light = 1.0 + gradient_x * (gx / width - 0.5) + gradient_y * (gy / height - 0.5)
    if subject.color:
        light = light[..., None]
    noise_rng = np.random.default_rng(list(clip.noise_key))
    channels = 3 if subject.color else 1
    eyes = (geometry.landmarks[36:42], geometry.landmarks[42:48])
    for profile, closure, (tx, ty, roll), gain in zip(
        clip.profile(), clip.closure(), clip.head_motion(), clip.illumination(), strict=True
    ):
        offset = geometry.identity_offset.copy()
        offset[:, y0:y1, x0:x1] -= np.float32(profile) * action
        if closure > 0:
            for eye in eyes:
                (by0, by1, bx0, bx1), lid = _blink_offset(eye, geometry, closure, subject.image_size)
                offset[:, by0:by1, bx0:bx1] += lid
        # Head motion H(y) = R(roll) (y - c) + c + t; a neutral-frame position is H^-1(x).
        head = cv2.getRotationMatrix2D(tuple(map(float, geometry.head_centre)), float(roll), 1.0)
        head[:, 2] += (tx * geometry.iod / 100, ty * geometry.iod / 100)
        undo_head = cv2.invertAffineTransform(head)
        affine = geometry.to_source[:, :2] @ undo_head[:, :2]
        shift = geometry.to_source[:, :2] @ undo_head[:, 2] + geometry.to_source[:, 2]
        (ax, bx), (ay, by) = geometry.to_source[:, :2].tolist()
        (cxx, cxy), (cyx, cyy) = affine.tolist()
        map_x = cxx * gx + cxy * gy + float(shift[0]) + ax * offset[0] + bx * offset[1]
        map_y = cyx * gx + cyy * gy + float(shift[1]) + ay * offset[0] + by * offset[1]
        frame = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        frame *= light * np.float32(gain)
        noise = noise_rng.standard_normal((height, width, channels), dtype=np.float32)
        frame += np.float32(subject.noise_sigma) * (noise if subject.color else noise[..., 0])
        yield np.rint(np.clip(frame, 0, 255)).astype(np.uint8)


def frame_name(part: str, subject: str, number: int, extension: str) -> str:
    """File name of frame `number`: CASME II img46 (not padded), SAMM 006_05562, SMIC image106273."""
    if part == "casme2":
        return f"img{number}.{extension}"
    if part == "samm":
        return f"{subject}_{number:05d}.{extension}"
    return f"image{number:06d}.{extension}"


def _encode(frame: np.ndarray, subject: SubjectPlan) -> bytes:
    if subject.image_format == "jpg":
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, subject.jpeg_quality])
    else:
        ok, data = cv2.imencode(".bmp", frame)
    if not ok:
        raise RuntimeError(f"could not encode a {subject.image_format} frame")
    return data.tobytes()


def render_subject(subject: SubjectPlan, out_dir: str | Path) -> tuple[int, float]:
    """Write all frames of one subject; returns the number of frames and the subject's IOD (frame px)."""
    out_dir = Path(out_dir)
    geometry = subject_geometry(subject)
    source = _subject_source(subject)
    count = 0
    for clip in subject.clips:
        folder = out_dir / clip.frame_dir
        folder.mkdir(parents=True, exist_ok=True)
        frames = render_clip(subject, clip, geometry, source)
        for number, frame in zip(range(clip.first_frame, clip.last_frame + 1), frames, strict=True):
            name = frame_name(subject.part, subject.name, number, subject.image_format)
            (folder / name).write_bytes(_encode(frame, subject))
            count += 1
    return count, geometry.iod


# ----------------------------------------------------------------------------------------------------
# Planning: all random draws


def resolve_params(params: dict) -> dict:
    """The `synthetic` block with defaults filled, per-part defaults included; enabled/out dropped."""
    # The schema holds the defaults; the per-part ones follow the real dataset (PART_DEFAULTS).
    resolved = config.with_defaults(params, "#/properties/synthetic")
    resolved.pop("enabled", None)
    resolved.pop("out", None)
    resolved["parts"] = {
        part: config.with_defaults({**PART_DEFAULTS[part], **(resolved["parts"][part] or {})}, "#/$defs/synthetic_part")
        for part in PART_KEYS
        if part in resolved["parts"]
    }
    return resolved


def _subject_name(part: str, index: int) -> str:
    if part == "casme2":
        return f"sub{index + 1:02d}"
    if part == "samm":
        return f"{index + 6:03d}"  # SAMM subject ids start at 006
    return f"s{index + 1}"


def _clip_names(part: str, subject: str, labels: list[str], rng: np.random.Generator) -> tuple[list, list]:
    """Clip folder names (in the part's style) and SAMM inducement codes, unique within the subject."""
    names, inducements, counters = [], [], {}
    for label in labels:
        if part == "casme2":
            episode = int(rng.integers(1, 20))
            counters[episode] = counters.get(episode, int(rng.integers(0, 3))) + 1
            names.append(f"EP{episode:02d}_{counters[episode]:02d}{'f' if rng.random() < 0.5 else ''}")
            inducements.append(0)
        elif part == "samm":
            inducement = int(rng.integers(1, 8))
            counters[inducement] = counters.get(inducement, 0) + 1
            names.append(f"{subject}_{inducement}_{counters[inducement]}")
            inducements.append(inducement)
        else:
            code = SMIC_CLASS_CODES[label]
            counters[code] = counters.get(code, 0) + 1
            names.append(f"{subject}_{code}_{counters[code]:02d}")
            inducements.append(0)
    return names, inducements


def _frame_dir(part: str, subject: str, clip: str, label: str) -> str:
    if part == "smic":
        if label == EXTRA_CLASS:
            return f"smic/HS/{subject}/non_micro/{clip}"
        return f"smic/HS/{subject}/micro/{label}/{clip}"
    return f"{part}/{subject}/{clip}"


def _emotion(part: str, label: str, aus: str) -> str:
    if part == "smic":
        return "non_micro" if label == EXTRA_CLASS else label
    casme, samm = NEGATIVE_EMOTIONS[aus] if label == "negative" else CLASS_EMOTIONS[label]
    return casme if part == "casme2" else samm


def _plan_clip(
    params: dict, part: str, subject: str, index: int, clip_index: int, label: str, name: str, inducement: int
) -> ClipPlan:
    part_params = params["parts"][part]
    fps = float(part_params["fps"])
    key = [params["seed"], PART_KEYS[part], index]
    rng = np.random.default_rng([*key, 1, clip_index])
    patterns = CLASS_PATTERNS[label]
    aus = patterns[int(rng.integers(len(patterns)))]
    amplitude = float(rng.uniform(*params["amplitude_px"]))
    duration = float(rng.uniform(*params["duration_s"]))
    apex_fraction = float(rng.uniform(0.3, 0.6))
    margins = rng.integers(2, 9, size=2)
    start_fraction = float(rng.random())
    has_blink = rng.random() < params["blink_probability"]
    blink_seconds = float(rng.uniform(0.1, 0.25))
    blink_fraction = float(rng.random())
    drift_px = float(rng.uniform(0.2, 1.0))
    roll_deg = float(rng.uniform(0.05, 0.5))
    drift = np.stack(
        [rng.uniform(0.5, 1.0, (3, 2)), rng.uniform(0.8, 3.0, (3, 2)), rng.uniform(0, 2 * np.pi, (3, 2))], axis=-1
    )
    light_ramp = float(rng.uniform(-0.03, 0.03))

    action_frames = max(3, round(duration * fps) + 1)  # onset..offset inclusive
    apex_step = min(max(round(apex_fraction * (action_frames - 1)), 1), action_frames - 2)
    before, after = (0, 0) if part == "smic" else (int(margins[0]), int(margins[1]))
    n_frames = before + action_frames + after
    low, high = {"casme2": (1, 400), "samm": (1000, 9000), "smic": (100000, 999999 - n_frames)}[part]
    first = low + int(start_fraction * (high - low))
    onset = first + before
    offset = onset + action_frames - 1
    blink_length = max(2, round(blink_seconds * fps)) if has_blink else 0
    drift[..., 1] *= n_frames  # sinusoid periods: 0.8 to 3 clip lengths, so the head drifts smoothly
    return ClipPlan(
        part=part,
        subject=subject,
        name=name,
        frame_dir=_frame_dir(part, subject, name, label),
        label=label,
        emotion=_emotion(part, label, aus),
        aus=aus,
        first_frame=first,
        onset=onset,
        apex=onset + apex_step,
        offset=offset,
        last_frame=offset + after,
        amplitude_px=amplitude,
        action_gain=0.0 if params["null"] else 1.0,
        blink_start=int(blink_fraction * (n_frames + blink_length - 1)) - blink_length + 1,
        blink_length=blink_length,
        drift=drift,
        drift_px=drift_px,
        roll_deg=roll_deg,
        light_ramp=light_ramp,
        flicker=rng.uniform(-0.01, 0.01, n_frames),
        noise_key=(*key, 2, clip_index),
        inducement=inducement,
    )


def _plan_subject(params: dict, part: str, index: int) -> SubjectPlan:
    part_params = params["parts"][part]
    rng = np.random.default_rng([params["seed"], PART_KEYS[part], index, 0])
    name = _subject_name(part, index)
    labels = [label for label in MEGC_CLASSES for _ in range(part_params["clips_per_class"])]
    labels += [EXTRA_CLASS] * part_params["extra_clips_per_subject"]
    labels = [labels[i] for i in rng.permutation(len(labels))]  # clip order and names carry no class
    width, height = params["image_size"]
    subject = SubjectPlan(
        part=part,
        name=name,
        photo=BASE_PHOTOS[(index + PART_KEYS[part]) % len(BASE_PHOTOS)],
        image_size=(int(width), int(height)),
        iod_fraction=float(params["iod_fraction"]),
        color=bool(part_params["color"]),
        image_format=part_params["image_format"],
        fps=float(part_params["fps"]),
        noise_sigma=float(params["noise_sigma"]),
        scale=float(rng.uniform(0.92, 1.08)),
        roll_deg=float(rng.uniform(-5.0, 5.0)),
        shift=rng.uniform(-0.03, 0.03, 2) * np.array([width, height]),
        shape={key: float(rng.uniform(-limit, limit)) for key, limit in SHAPE_RANGES.items()},
        low_frequency=rng.uniform(
            -LOW_FREQUENCY_WARP_PX, LOW_FREQUENCY_WARP_PX, (2, LOW_FREQUENCY_GRID, LOW_FREQUENCY_GRID)
        ).astype(np.float32),
        # Skin tone warm (more red, less blue) or cool, a small colour cast per channel, overall brightness.
        channel_gain=(1.0 + rng.uniform(-0.1, 0.1) * np.array([-1.0, 0.0, 1.0]) + rng.uniform(-0.04, 0.04, 3))
        * rng.uniform(0.85, 1.05),
        gamma=float(rng.uniform(0.85, 1.2)),
        contrast=float(rng.uniform(0.85, 1.15)),
        light_gradient=rng.uniform(-0.25, 0.25, 2),
        jpeg_quality=int(rng.integers(85, 96)),
    )
    names, inducements = _clip_names(part, name, labels, rng)
    subject.clips = [
        _plan_clip(params, part, name, index, i, label, clip_name, inducement)
        for i, (label, clip_name, inducement) in enumerate(zip(labels, names, inducements, strict=True))
    ]
    return subject


def plan_corpus(params: dict) -> list[SubjectPlan]:
    """Every subject and clip of the corpus (no pixels), parts in casme2, samm, smic order."""
    params = resolve_params(params)
    return [
        _plan_subject(params, part, index)
        for part, part_params in params["parts"].items()
        for index in range(part_params["subjects"])
    ]


# ----------------------------------------------------------------------------------------------------
# Annotation files


def _au_cell(code: str) -> int | str:
    """A single plain AU is a number cell (12), anything else text ('4+L10'), as in the real sheets."""
    return int(code) if code.isdigit() else code


def _save_workbook(workbook: openpyxl.Workbook, path: Path) -> None:
    """Save with fixed document dates and zip entry times, so that equal sheets are equal bytes."""
    workbook.properties.creator = "localmer.synth"
    workbook.properties.created = BASE_TIMESTAMP
    workbook.properties.modified = BASE_TIMESTAMP
    buffer = io.BytesIO()
    # ExcelWriter directly: openpyxl's save() stamps `modified` with the current time.
    ExcelWriter(workbook, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED)).save()
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=BASE_TIMESTAMP.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, source.read(info.filename))
    path.write_bytes(out.getvalue())


def _natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def write_casme2_sheet(clips: list[ClipPlan], path: Path) -> None:
    """CASME2-coding-20140508.xlsx layout: Sheet1 (+ empty Sheet2, Sheet3), header row 1."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Sheet1"
    workbook.create_sheet("Sheet2")
    workbook.create_sheet("Sheet3")
    header = [
        "Subject",
        "Filename",
        None,
        "OnsetFrame",
        "ApexFrame",
        "OffsetFrame",
        None,
        "Action Units",
        "Estimated Emotion",
    ]
    sheet.append(header)
    for clip in sorted(clips, key=lambda c: (c.subject, _natural_key(c.name))):
        sheet.append(
            [
                clip.subject[3:],
                clip.name,
                None,
                clip.onset,
                clip.apex,
                clip.offset,
                None,
                _au_cell(clip.aus),
                clip.emotion,
            ]
        )
        sheet.cell(sheet.max_row, 1).number_format = "@"  # '01' is text, as in the real sheet
    _save_workbook(workbook, path)


SAMM_PREAMBLE = {
    "A1": "SAMM Dataset - Master FACS Codes (synthetic stand-in written by localmer.synth)",
    "E1": "(Note to the users: these clips are synthetic. If you use the real SAMM, please cite: Davison, A. K., "
    "Lansley, C., Costen, N., Tan, K., & Yap, M. H. (2016). SAMM: A spontaneous micro-facial movement "
    "dataset. IEEE Transactions on Affective Computing.)",
    "A3": "Emotional and Objective Classes as in the real sheet. For details please refer to: ",
    "I3": "arXiv preprint arXiv:1708.07549.",
    "E4": "(Note to the users: if you use the emotional or objective classes of the real SAMM, please cite: "
    "Davison, A. K., Merghani, W., & Yap, M. H. (2017). Objective Classes for Micro-Facial Expression "
    "Recognition. arXiv preprint arXiv:1708.07549.)",
    "A6": "Symbol Key:",
    "A7": '"/" = or',
    "A8": '"?" = some AU\'s continue for a while and have unclear offset',
    "A10": "AU Help:",
    "A11": '"L2 or R2" = Unilateral AU 2 on left side of face / right side of face',
    "A12": '"A2" = Asymmetric AU 2. Occurs on both sides of face but stronger on one side',
}


def write_samm_sheet(clips: list[ClipPlan], path: Path) -> None:
    """SAMM_Micro_FACS_Codes_v2.xlsx layout: sheet MICRO_ONLY, 13 preamble rows, header on row 14."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "MICRO_ONLY"
    for cell, text in SAMM_PREAMBLE.items():
        sheet[cell] = text
    header = [
        "Subject",
        "Filename",
        "Inducement Code",
        "Onset Frame",
        "Apex Frame",
        "Offset Frame",
        "Duration",
        "Micro",
        "Action Units",
        "Estimated Emotion",
        "Objective Classes",
        "Notes",
    ]
    for column, title in enumerate(header, start=1):
        sheet.cell(datasets.SAMM_HEADER_ROW, column, title)
    ordered = sorted(clips, key=lambda c: (c.subject, c.inducement, _natural_key(c.name)))
    for row, clip in enumerate(ordered, start=datasets.SAMM_HEADER_ROW + 1):
        blinks = clip.blink_frames()
        note = "Blinks" if blinks and blinks[0] <= clip.offset and blinks[1] >= clip.onset else None
        values = [
            clip.subject,
            clip.name,
            clip.inducement,
            clip.onset,
            clip.apex,
            clip.offset,
            f"=SUM(F{row}-D{row})+1",
            "Micro - 1/2",
            _au_cell(clip.aus),
            clip.emotion,
            SAMM_OBJECTIVE_CLASSES[clip.emotion],
            note,
        ]
        for column, value in enumerate(values, start=1):
            sheet.cell(row, column, value)
        sheet.cell(row, 1).number_format = "@"  # '006' is text, as in the real sheet
    _save_workbook(workbook, path)


def _megc_row(clip: ClipPlan) -> str:
    """A row of the MEGC 2019 ground truth: subjects sub01 / 6 / s01, SMIC names zero-padded."""
    label = MEGC_CLASSES.index(clip.label)
    if clip.part == "casme2":
        return f"casme2,{clip.subject},{clip.name},{label}"
    if clip.part == "samm":
        return f"samm,{int(clip.subject)},{clip.name},{label}"
    number = int(clip.subject[1:])
    padded = f"s{number:02d}" + clip.name[len(clip.subject) :]
    return f"smic,s{number:02d},{padded},{label}"


def write_megc_ground_truth(clips: list[ClipPlan], path: Path) -> None:
    """No header, CRLF; parts in the official file's order (casme2, smic, samm); MEGC classes only."""
    order = {"casme2": 0, "smic": 1, "samm": 2}
    ordered = sorted(clips, key=lambda c: (order[c.part], _natural_key(c.subject), _natural_key(c.name)))
    rows = [_megc_row(c) for c in ordered if c.label in MEGC_CLASSES]
    path.write_bytes("".join(f"{row}\r\n" for row in rows).encode("ascii"))


TRUTH_COLUMNS = [
    "part",
    "subject",
    "clip",
    "class",
    "emotion",
    "aus",
    "onset",
    "apex",
    "offset",
    "first_frame",
    "last_frame",
    "fps",
    "amplitude_px",
    "action_gain",
    "peak_px",
    "iod_px",
    "blink",
    "frame_dir",
    "photo",
    "image_format",
    "jpeg_quality",
    "drift_px",
    "roll_deg",
]


def write_truth(subjects: list[SubjectPlan], iods: list[float], path: Path) -> None:
    """synth_clips.tsv: the generator's own truth, one row per clip; iods: each subject's IOD, frame px."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(TRUTH_COLUMNS)
        for subject, iod in zip(subjects, iods, strict=True):
            for clip in subject.clips:
                blinks = clip.blink_frames()
                writer.writerow(
                    [
                        clip.part,
                        clip.subject,
                        clip.name,
                        clip.label,
                        clip.emotion,
                        clip.aus,
                        clip.onset,
                        clip.apex,
                        clip.offset,
                        clip.first_frame,
                        clip.last_frame,
                        f"{subject.fps:g}",
                        f"{clip.amplitude_px:.4f}",
                        f"{clip.action_gain:g}",
                        f"{clip.amplitude_px * clip.action_gain * iod / 100:.4f}",
                        f"{iod:.3f}",
                        f"{blinks[0]}-{blinks[1]}" if blinks else "",
                        clip.frame_dir,
                        subject.photo,
                        subject.image_format,
                        subject.jpeg_quality if subject.image_format == "jpg" else "",
                        f"{clip.drift_px:.3f}",
                        f"{clip.roll_deg:.3f}",
                    ]
                )


# ----------------------------------------------------------------------------------------------------
# Entry point


def _clear_previous(out_dir: Path) -> None:
    """Remove part folders of an earlier synthetic corpus (recognised by their marker), else refuse."""
    for part in PART_KEYS:
        folder = out_dir / part
        if (folder / PART_MARKER).exists():
            shutil.rmtree(folder)
        elif folder.exists() and any(folder.iterdir()):
            raise FileExistsError(f"{folder} exists and is not a synthetic corpus part; not overwriting it")


def write_corpus(out_dir: str | Path, params: dict, *, workers: int = 1) -> dict:
    """Write the synthetic corpus to out_dir and return a summary (counts per part, seed, null flag).

    params: the `synthetic` config block (schema defaults filled; `enabled` and `out` are ignored).
    workers: processes rendering subjects in parallel; the output is the same for any value.
    """
    out_dir = Path(out_dir)
    resolved = resolve_params(params)
    subjects = plan_corpus(resolved)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir)
    for part in resolved["parts"]:
        (out_dir / part).mkdir()
        (out_dir / part / PART_MARKER).write_text("written by localmer.synth; replaced on the next run\n")
    rendered = []  # (frames, IOD) per subject
    with contextlib.ExitStack() as stack:
        if workers > 1:
            # fork: spawn and forkserver would re-import the caller's __main__ (a Snakemake script).
            pool = stack.enter_context(
                ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
            )
            results = pool.map(render_subject, subjects, itertools.repeat(out_dir))
        else:
            results = map(render_subject, subjects, itertools.repeat(out_dir))
        for subject, (frames, iod) in progress(zip(subjects, results, strict=True), len(subjects), "subjects"):
            log.info(
                "%s %s: %d clips, %d frames (%s)", subject.part, subject.name, len(subject.clips), frames, subject.photo
            )
            rendered.append((frames, iod))
    frame_counts = [frames for frames, _ in rendered]

    clips = [clip for subject in subjects for clip in subject.clips]
    if "casme2" in resolved["parts"]:
        write_casme2_sheet([c for c in clips if c.part == "casme2"], out_dir / "casme2" / "CASME2-coding-20140508.xlsx")
    if "samm" in resolved["parts"]:
        write_samm_sheet([c for c in clips if c.part == "samm"], out_dir / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx")
    write_megc_ground_truth(clips, out_dir / "megc2019_gt.csv")
    write_truth(subjects, [iod for _, iod in rendered], out_dir / "synth_clips.tsv")

    counts = {
        part: {
            "subjects": sum(s.part == part for s in subjects),
            "clips": sum(c.part == part for c in clips),
            "megc_clips": sum(c.part == part and c.label in MEGC_CLASSES for c in clips),
            "frames": sum(n for s, n in zip(subjects, frame_counts, strict=True) if s.part == part),
        }
        for part in resolved["parts"]
    }
    summary = {
        "format_version": FORMAT_VERSION,
        "seed": resolved["seed"],
        "null": bool(resolved["null"]),
        "parts": counts,
        "clips": len(clips),
        "frames": int(sum(frame_counts)),
    }
    corpus = {**summary, "generator": "localmer.synth", "base_photos": list(BASE_PHOTOS), "params": resolved}
    (out_dir / "corpus.json").write_text(json.dumps(corpus, indent=2, sort_keys=True) + "\n")
    return summary
