"""The face as the generator moves it: control points, and action units and face shapes as displacements.

Geometry conventions, used throughout the generator:
- dlib's 68 landmarks, 0-based: jaw 0-16, brows 17-21 and 22-26, nose 27-35, eyes 36-41 and 42-47,
  mouth 48-67 (48 and 54 the lip corners).
- The camera faces the subject and nothing is mirrored, so the subject's RIGHT side is IMAGE-LEFT
  (smaller x): brow 17-21, eye 36-41 and lip corner 48 are the subject's right. FACS prefixes follow
  the subject: R12 moves lip corner 48, L12 moves lip corner 54 (image-right).
- Facial actions are written in a face frame (u, v): u points from the subject's right eye to the left
  eye (image-right for an upright face), v is u turned 90 degrees towards the chin. Lengths in tables
  are px at an inter-ocular distance (IOD, between the eye centres) of 100 px.

A displacement is a vector per control point; `rbf_field` spreads it into a dense field. FACS codes are
read by `localmer.facs.parse_aus`.
"""

from __future__ import annotations

import numpy as np

from .. import facs

# Share of an AU's full displacement at each FACS intensity letter ('' = none written: full).
INTENSITY_WEIGHTS = {"": 1.0, "A": 0.35, "B": 0.55, "C": 0.75, "D": 0.9, "E": 1.0}

# Control points: the 68 landmarks, then virtual points built from them (see control_points).
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


def rbf_field(
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


def control_points(landmarks: np.ndarray, u_axis: np.ndarray, iod: float) -> np.ndarray:
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


def action_face_vectors(code: str) -> np.ndarray:
    """Face-frame control vectors (N_CONTROLS, 2) of a FACS code, px at IOD 100 (before scaling)."""
    vectors = np.zeros((N_CONTROLS, 2))
    for unit in facs.parse_aus(code):
        vectors += _face_vectors(AU_VECTORS[unit.number], unit.side or "RL", INTENSITY_WEIGHTS[unit.intensity])
    return vectors


def to_frame(face_vectors: np.ndarray, u_axis: np.ndarray, v_axis: np.ndarray) -> np.ndarray:
    """Face-frame (du, dv) vectors as frame (dx, dy) vectors of a face with axes u_axis, v_axis."""
    return face_vectors[:, :1] * u_axis + face_vectors[:, 1:] * v_axis


def shape_face_vectors(shape: dict[str, float]) -> np.ndarray:
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
