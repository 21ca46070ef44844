"""Synthetic subjects' faces: the base photos, their landmarks, and each subject's neutral face in the frame.

A subject is a base photo under a fixed identity transform: a face-shape warp (`plan.SHAPE_RANGES`, drawn
per subject) plus a smooth low-frequency warp, then scale, roll and offset in the frame, and its own
colours (gamma, contrast, skin tone, colour balance).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import cv2
import matplotlib
import numpy as np
import skimage.data

from ..landmarks import detect
from ..regions import alignment_matrix, eye_centres
from .controls import N_CONTROLS, control_points, rbf_field, shape_face_vectors, to_frame
from .plan import SubjectPlan


@dataclass
class SubjectGeometry:
    """Where a subject's face lies in the frame, and the fields that do not change per frame."""

    landmarks: np.ndarray  # (68, 2) neutral landmarks, frame px
    controls: np.ndarray  # (N_CONTROLS, 2)
    u_axis: np.ndarray  # face frame, see synth.controls
    v_axis: np.ndarray
    iod: float  # frame px
    to_source: np.ndarray  # (2, 3) affine: neutral frame position -> canonical photo position
    identity_offset: np.ndarray  # (2, H, W) backward offset of the identity warp, neutral frame px
    head_centre: np.ndarray  # centre of the head rotation


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


def _canonical_size(image_size: tuple[int, int], iod_fraction: float) -> tuple[float, int]:
    """IOD and half-size of the canonical photo canvas that covers any subject's frame."""
    width, height = image_size
    iod = iod_fraction * width
    # Farthest frame corner from the eyes (placed at W/2, 0.4 H, shifted up to 3 %) at the smallest
    # subject scale, plus a margin for warps and drift; anything beyond is reflected.
    reach = math.hypot(0.5 * width + 0.03 * width, 0.6 * height + 0.03 * height) / 0.92
    return iod, int(math.ceil(reach)) + 8


def pixel_grid(image_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every pixel of a (width, height) frame, float32 (H, W) each."""
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
    qx, qy = pixel_grid(subject.image_size)
    controls = control_points(landmarks, u_axis, iod)
    shape_vectors = to_frame(shape_face_vectors(subject.shape), u_axis, v_axis) * iod / 100
    displacement = rbf_field(controls, shape_vectors, 0.12 * iod * np.ones(N_CONTROLS), qx, qy)
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
        controls=control_points(moved, moved_u, moved_iod),
        u_axis=moved_u,
        v_axis=moved_v,
        iod=moved_iod,
        to_source=to_source,
        identity_offset=-displacement,
        head_centre=0.5 * ((right_eye + left_eye) / 2 + moved[8]),  # about the middle of the head
    )


def subject_source(subject: SubjectPlan) -> np.ndarray:
    """The canonical photo in the subject's colours: gamma, contrast, skin tone and colour balance."""
    canon_iod, half = _canonical_size(subject.image_size, subject.iod_fraction)
    image, _ = _canonical_photo(subject.photo, canon_iod, half)
    image = (image / 255.0) ** subject.gamma
    image = (image - image.mean()) * subject.contrast + image.mean()
    image = image * subject.channel_gain.astype(np.float32) * 255.0
    if not subject.color:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(image, dtype=np.float32)
