"""Which frame of a clip is its apex, and where that answer came from.

Sources (``preprocessing.apex.source``; ``fallback`` when the source has no answer for a clip):

``annotated``  the sheet's apex (CASME II, SAMM), when it is a number within onset..offset (the index's
               ``apex_source`` is then ``annotated``)
``middle``     onset + (offset - onset) // 2 (what SMIC, which has no apex, gets by default)
``spotted``    label-free: ``spot_apex`` on the clip's own aligned faces, within the face regions

Every output that uses an apex records ``apex_source`` per clip: ``annotated``, ``middle`` or ``spotted``.

The spotter (``spot_apex``). A facial action starts at the onset and is gone again at the offset, so it
looks for the kept frame that departs most from the straight line between the onset and offset faces.
What changes smoothly over the clip (head drift, which the per-clip alignment does not follow, and slow
lighting change) lies close to that line; per-frame brightness flicker is taken out by scaling each face
to the onset face's mean brightness in the regions. Per region, the squared departure less what sensor
noise alone gives (the noise variance estimated from neighbouring frames, so no setting depends on the
camera), in units of that variance; the frame with the largest value in any region is the apex. A blink
is a larger change than most micro-expressions and lasts as long: ``spotting_masks`` leave the eyelids
out of the regions (the brows, where the eye regions' actions are, stay in). Measured on the synthetic
corpus in benchmarks/RESULTS.md and docs/preprocessing.md ("Apex"). A clip without any motion has no
apex to find: its spotted frame is wherever noise and drift happen to peak (its onset when its frames do
not change at all); nothing here decides that a clip has no motion.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import regions

SOURCES = ("annotated", "middle", "spotted")
FALLBACKS = ("middle", "spotted")
# The faces are blurred this much (px, Gaussian sigma) before they are compared: sensor noise is per
# pixel, a facial action moves the skin over several pixels.
SPOT_BLUR_SIGMA = 1.5
# The eyelid box a blink moves, around each eye's six landmarks, in inter-ocular distances: above the
# eye (the skin over the upper lid follows it) and on the other sides.
EYELID_ABOVE = 0.18
EYELID_AROUND = 0.06


def middle_apex(onset: int, offset: int) -> int:
    return onset + (offset - onset) // 2


def region_mask(boxes: Mapping[str, tuple[int, int, int, int]], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool, True within any of the region ``boxes`` ((x0, y0, x1, y1), exclusive ends, as
    ``regions.region_boxes`` gives them; the parts outside the face are left out)."""
    mask = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in boxes.values():
        mask[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
    return mask


def spotting_masks(
    boxes: Mapping[str, tuple[int, int, int, int]], landmarks: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """(R, H, W) bool: each region box without the eyelids (``EYELID_ABOVE``, ``EYELID_AROUND``), the masks
    ``spot_apex`` takes. ``landmarks`` (68, 2): the aligned face's, those the boxes were placed around."""
    iod = regions.inter_ocular_distance(landmarks)
    lids = {}
    for name, eye in (("right", regions.SUBJECT_RIGHT_EYE), ("left", regions.SUBJECT_LEFT_EYE)):
        points = landmarks[list(eye)]
        x0, y0 = np.floor(points.min(axis=0) - [EYELID_AROUND * iod, EYELID_ABOVE * iod]).astype(int)
        x1, y1 = np.ceil(points.max(axis=0) + EYELID_AROUND * iod).astype(int) + 1
        lids[name] = (int(x0), int(y0), int(x1), int(y1))
    eyelids = region_mask(lids, shape)
    return np.stack([region_mask({name: box}, shape) & ~eyelids for name, box in boxes.items()])


def spot_apex(
    faces: np.ndarray,
    numbers: np.ndarray,
    onset: int,
    mask: np.ndarray | None = None,
    offset: int | None = None,
) -> int:
    """The frame number (of ``numbers``, within onset..offset) that departs most from the straight line
    between the first and the last kept frame of onset..offset (see the module's docstring).

    ``faces`` (F, H, W) the clip's aligned grey faces, ``numbers`` (F,) their frame numbers; ``mask``
    (H, W) bool, or (R, H, W) one per region (``spotting_masks``; the default: the whole face);
    ``offset`` defaults to the last kept frame. Ties go to the earliest frame."""
    import cv2

    numbers = np.asarray(numbers)
    inside = (numbers >= onset) & (numbers <= (numbers.max() if offset is None else offset))
    if not inside.any():
        raise ValueError(
            f"no kept frame within onset {onset}..offset {offset} (kept: {numbers.min()}..{numbers.max()})"
        )
    masks = np.ones((1, *faces.shape[1:]), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    masks = masks[None] if masks.ndim == 2 else masks
    masks = masks[masks.any(axis=(1, 2))]
    if not len(masks):
        raise ValueError("spot_apex: every region mask is empty")
    first, last = np.flatnonzero(inside)[[0, -1]]
    blurred = np.stack([cv2.GaussianBlur(face, (0, 0), SPOT_BLUR_SIGMA) for face in faces.astype(np.float32)])
    brightness = blurred[:, masks.any(axis=0)].mean(axis=1)
    blurred *= (brightness[first] / np.maximum(brightness, 1e-6))[:, None, None]
    along = np.clip((numbers - numbers[first]) / max(int(numbers[last] - numbers[first]), 1), 0.0, 1.0)
    line = blurred[first] + along[:, None, None] * (blurred[last] - blurred[first])
    departure = (blurred - line) ** 2
    # Noise variance of a departure, in units of one frame's: its own frame, and the line's two ends
    # weighted (none at the ends themselves, which are the line).
    noise_weight = 1 + along**2 + (1 - along) ** 2
    noise_weight[(numbers == numbers[first]) | (numbers == numbers[last])] = 0.0
    steps = np.flatnonzero(np.diff(numbers) > 0)  # neighbouring distinct frames (resampling may repeat one)
    step_change = (blurred[steps + 1] - blurred[steps]) ** 2
    scores = []
    for region in masks:
        noise = float(np.median(step_change[:, region].mean(axis=1))) / 2 if len(steps) else 0.0
        scores.append((departure[:, region].mean(axis=1) - noise * noise_weight) / max(noise, 1e-6))
    score = np.where(inside, np.max(scores, axis=0), -np.inf)
    return int(numbers[int(np.argmax(score))])


def choose_apex(
    sample: Mapping,
    settings: Mapping,
    faces: np.ndarray | None = None,
    numbers: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> tuple[int, str]:
    """(apex frame, apex_source) of a clip. ``sample`` has onset, offset, apex and apex_source (the
    index's: ``annotated`` when the sheet's apex is valid); ``settings`` is ``preprocessing.apex``
    ({source, fallback}); spotting needs the clip's aligned ``faces`` and their frame ``numbers``, and
    ``mask`` should be its ``spotting_masks`` (the default, the whole face, leaves blinks in)."""
    source, fallback = settings["source"], settings["fallback"]
    if source not in SOURCES:
        raise ValueError(f"preprocessing.apex.source {source!r}: expected one of {', '.join(SOURCES)}")
    if fallback not in FALLBACKS:
        raise ValueError(f"preprocessing.apex.fallback {fallback!r}: expected one of {', '.join(FALLBACKS)}")
    if source == "annotated":
        if sample.get("apex_source") == "annotated":
            return int(sample["apex"]), "annotated"
        source = fallback
    if source == "middle":
        return middle_apex(int(sample["onset"]), int(sample["offset"])), "middle"
    if faces is None or numbers is None:
        raise ValueError(
            f"{sample.get('sample_id', 'a clip')}: apex source 'spotted' needs the clip's aligned faces and numbers"
        )
    return spot_apex(faces, numbers, int(sample["onset"]), mask, int(sample["offset"])), "spotted"
