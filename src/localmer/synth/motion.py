"""What moves in a clip: the facial action as a dense field and at the landmarks, and the eyelids of a blink.

Warps are backward maps: an output pixel x shows the source at x - d(x), so a feature at p appears at
about p + d(p); d is the forward displacement of the face. The action keeps one shape over the clip
and its size follows the clip's intensity profile (onset 0, apex 1, offset 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .controls import CONTROL_SIGMA, action_face_vectors, rbf_field, to_frame
from .identity import SubjectGeometry, subject_geometry
from .plan import ClipPlan, SubjectPlan


@dataclass
class ClipMotion:
    """The facial action of one clip, as the generator applies it (no nuisances)."""

    profile: np.ndarray  # (n_frames,) 0..1
    peak_px: float  # largest displacement of the dense action field at the apex, frame px
    landmarks: np.ndarray  # (n_frames, 68, 2) displacement of each landmark, frame px
    iod: float  # frame px


def action_field(geometry: SubjectGeometry, code: str, image_size: tuple[int, int]) -> tuple:
    """A FACS code's action scaled to a peak displacement of 1 px.

    Returns the dense field (2, h, w) inside its box, the box (y0, y1, x0, x1), and the control
    vectors and sigmas that give the same field anywhere (for sampling at landmarks).
    """
    vectors = to_frame(action_face_vectors(code), geometry.u_axis, geometry.v_axis)
    sigmas = CONTROL_SIGMA * geometry.iod
    moving = np.any(vectors != 0, axis=1)
    reach = 3.5 * sigmas[moving].max()
    lo = np.floor(geometry.controls[moving].min(0) - reach).astype(int)
    hi = np.ceil(geometry.controls[moving].max(0) + reach).astype(int)
    width, height = image_size
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], width), min(hi[1], height)
    qx, qy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    field2 = rbf_field(geometry.controls, vectors, sigmas, qx, qy)
    peak = float(np.sqrt((field2**2).sum(0)).max())
    return field2 / peak, (y0, y1, x0, x1), vectors / peak, sigmas


def clip_motion(subject: SubjectPlan, clip: ClipPlan, geometry: SubjectGeometry | None = None) -> ClipMotion:
    """The clip's facial action in frame px: per-frame landmark displacements and the field's peak."""
    geometry = geometry or subject_geometry(subject)
    _, _, vectors, sigmas = action_field(geometry, clip.aus, subject.image_size)
    amplitude = clip.amplitude_px * clip.action_gain * geometry.iod / 100
    at_landmarks = rbf_field(geometry.controls, vectors, sigmas, *geometry.landmarks.T.astype(np.float32)).T
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


def blink_offset(
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
