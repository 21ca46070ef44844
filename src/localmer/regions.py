"""Face alignment, the six facial regions and their patches.

Alignment is one similarity transform per clip (rotation that levels the eye line, scale to a fixed
inter-ocular distance, translation that puts the eye midpoint at a fixed place in the face crop).
Regions are boxes around landmark groups of the aligned face, plus margins given as fractions of the
inter-ocular distance; each is resized to its region size and cut into an m = g x g grid of equal
patches, row by row from the top-left. Region names use the subject's side (``left_eye`` is the
subject's left eye, on the image-right), as FACS laterality does.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import yaml

# The iBUG 300-W 68-point scheme (dlib's model): the eye landmarks, by the subject's side.
N_LANDMARKS = 68
SUBJECT_RIGHT_EYE = tuple(range(36, 42))  # image-left
SUBJECT_LEFT_EYE = tuple(range(42, 48))  # image-right

REGION_NAMES = ("left_eye", "right_eye", "nose", "left_cheek", "right_cheek", "mouth")
PATCH_COUNTS = (1, 4, 9, 16)
# Region sizes are kept divisible by every grid side (1, 2, 3, 4) so that any m cuts equal patches.
SIZE_MULTIPLE = 12


class RegionTableError(ValueError):
    """A region table that cannot be used; the message names the file and the key."""


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(subject's right eye centre, subject's left eye centre) = (image-left, image-right)."""
    return landmarks[list(SUBJECT_RIGHT_EYE)].mean(axis=0), landmarks[list(SUBJECT_LEFT_EYE)].mean(axis=0)


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    right, left = eye_centres(landmarks)
    return float(np.linalg.norm(left - right))


def grid_side(patches: int) -> int:
    side = math.isqrt(patches)
    if side * side != patches or patches not in PATCH_COUNTS:
        raise ValueError(f"patches must be one of {PATCH_COUNTS} (a square grid), not {patches}")
    return side


def load_region_table(path: str | Path) -> dict:
    """Read and check a region table (config/regions.yaml): name -> {landmarks, margin, size}."""
    path = Path(path)
    try:
        # libyaml's loader when present: the crop stage reads this table once per subject
        table = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        raise RegionTableError(f"region table {str(path)!r} does not exist") from None
    problems = []
    if not isinstance(table, dict):
        raise RegionTableError(f"region table {str(path)!r}: expected a mapping of region names")
    missing = [name for name in REGION_NAMES if name not in table]
    unknown = [name for name in table if name not in REGION_NAMES]
    if missing or unknown:
        problems.append(f"regions must be exactly {', '.join(REGION_NAMES)} (missing {missing}, unknown {unknown})")
    for name, spec in table.items():
        if name not in REGION_NAMES:
            continue
        where = f"{name}"
        if not isinstance(spec, dict) or set(spec) - {"landmarks", "margin", "size"}:
            problems.append(f"'{where}': expected keys landmarks, margin, size")
            continue
        points = spec.get("landmarks")
        if not (
            isinstance(points, list) and points and all(isinstance(p, int) and 0 <= p < N_LANDMARKS for p in points)
        ):
            problems.append(f"'{where}.landmarks': expected a list of landmark indices 0..{N_LANDMARKS - 1}")
        margin = spec.get("margin", [0, 0])
        if not (
            isinstance(margin, list) and len(margin) == 2 and all(isinstance(v, int | float) and v >= 0 for v in margin)
        ):
            problems.append(f"'{where}.margin': expected [x, y], fractions of the inter-ocular distance, >= 0")
        size = spec.get("size", "auto")
        if size != "auto" and not (
            isinstance(size, list)
            and len(size) == 2
            and all(isinstance(v, int) and v > 0 and v % SIZE_MULTIPLE == 0 for v in size)
        ):
            problems.append(
                f"'{where}.size': expected auto or [width, height] in px, each a multiple of {SIZE_MULTIPLE}"
            )
    if problems:
        raise RegionTableError(f"region table {str(path)!r}:\n" + "\n".join(f"  {p}" for p in problems))
    return {
        name: {
            "landmarks": table[name]["landmarks"],
            "margin": table[name].get("margin", [0, 0]),
            "size": table[name].get("size", "auto"),
        }
        for name in REGION_NAMES
    }


# --------------------------------------------------------------------------------------------- alignment


def alignment_matrix(landmarks: np.ndarray, iod: float, face_size: tuple[int, int], eye_position: tuple[float, float]):
    """(2, 3) similarity transform: eye line horizontal, inter-ocular distance ``iod``, eye midpoint at
    ``eye_position`` (fractions of the face crop's width and height)."""
    right, left = eye_centres(landmarks)
    eye_line = left - right  # image-left (subject's right) to image-right: points +x on a level face
    angle = math.degrees(math.atan2(float(eye_line[1]), float(eye_line[0])))
    scale = iod / float(np.linalg.norm(eye_line))
    middle = (right + left) / 2
    matrix = cv2.getRotationMatrix2D((float(middle[0]), float(middle[1])), angle, scale)
    width, height = face_size
    matrix[:, 2] += np.array([eye_position[0] * width, eye_position[1] * height]) - middle
    return matrix.astype(np.float32)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def align(frame: np.ndarray, matrix: np.ndarray, face_size: tuple[int, int]) -> np.ndarray:
    return cv2.warpAffine(frame, matrix, tuple(face_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def roll_degrees(landmarks: np.ndarray) -> float:
    """Angle of the eye line against the horizontal (0 on a level face)."""
    right, left = eye_centres(landmarks)
    return math.degrees(math.atan2(float(left[1] - right[1]), float(left[0] - right[0])))


# --------------------------------------------------------------------------------------------- regions


def region_boxes(aligned_landmarks: np.ndarray, table: dict, iod: float) -> dict[str, tuple[int, int, int, int]]:
    """Box (x0, y0, x1, y1), integer px, exclusive end, of every region around its landmark group."""
    boxes = {}
    for name, spec in table.items():
        group = aligned_landmarks[spec["landmarks"]]
        margin_x, margin_y = spec["margin"][0] * iod, spec["margin"][1] * iod
        x0, y0 = np.floor(group.min(axis=0) - [margin_x, margin_y]).astype(int)
        x1, y1 = np.ceil(group.max(axis=0) + [margin_x, margin_y]).astype(int) + 1
        boxes[name] = (int(x0), int(y0), int(x1), int(y1))
    return boxes


def auto_size(box_sizes: np.ndarray) -> list[int]:
    """A region size from the (n, 2) widths/heights of its boxes over a corpus: the mean, rounded to the
    nearest multiple of SIZE_MULTIPLE (the paper sizes regions by their mean over each dataset)."""
    mean = np.asarray(box_sizes, dtype=float).mean(axis=0)
    return [int(max(SIZE_MULTIPLE, SIZE_MULTIPLE * round(v / SIZE_MULTIPLE))) for v in mean]


def crop_frames(faces: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """The box of every aligned face of a (F, H, W) stack, or of a (F, H, W, C) stack of fields (C <= 4,
    e.g. flow), resized to ``size`` (width, height): (F, height, width[, C]). Outside the face, edges
    repeat."""
    x0, y0, x1, y1 = box
    height, width = faces.shape[1:3]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:  # edge padding = cv2.BORDER_REPLICATE, once for the whole stack
        faces = np.pad(faces, ((0, 0), (pad, pad), (pad, pad)) + ((0, 0),) * (faces.ndim - 3), mode="edge")
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    regions = faces[:, y0:y1, x0:x1]
    interpolation = cv2.INTER_AREA if regions.shape[2] > size[0] else cv2.INTER_LINEAR
    out = np.empty((len(faces), size[1], size[0], *faces.shape[3:]), dtype=faces.dtype)
    # One resize per frame: cv2's INTER_AREA takes at most 4 channels, and a frame-interleaved stack
    # measured no faster than this loop.
    for i, region in enumerate(regions):
        cv2.resize(region, tuple(size), dst=out[i], interpolation=interpolation)
    return out


def cut_patches(region: np.ndarray, patches: int) -> np.ndarray:
    """(..., H, W) -> (..., m, H/g, W/g): a g x g grid of equal patches, row by row from the top-left."""
    side = grid_side(patches)
    *lead, height, width = region.shape
    if height % side or width % side:
        raise ValueError(f"a {width}x{height} region cannot be cut into {side}x{side} equal patches")
    ph, pw = height // side, width // side
    grid = region.reshape(*lead, side, ph, side, pw)
    grid = np.moveaxis(grid, -3, -2)  # (..., rows, cols, ph, pw)
    return grid.reshape(*lead, patches, ph, pw)
