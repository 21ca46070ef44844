"""Which frame of a clip is its apex, and where that answer came from.

Sources (``preprocessing.apex.source``; ``fallback`` when the source has no answer for a clip):

``annotated``  the sheet's apex (CASME II, SAMM), when it is a number within onset..offset
``middle``     onset + (offset - onset) // 2 (what SMIC, which has no apex, gets by default)
``spotted``    label-free: the kept frame whose aligned face, within the face regions, differs most from
               the onset frame's (``spot_apex``); uses nothing but the clip's own frames

Every output that uses an apex records ``apex_source`` per clip: ``annotated``, ``middle`` or ``spotted``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

SOURCES = ("annotated", "middle", "spotted")
FALLBACKS = ("middle", "spotted")


def middle_apex(onset: int, offset: int) -> int:
    return onset + (offset - onset) // 2


def spot_apex(faces: np.ndarray, numbers: np.ndarray, onset: int, mask: np.ndarray | None = None) -> int:
    """The frame number (of ``numbers``) whose face in ``faces`` (F, H, W) differs most from the onset
    frame's (the first kept frame when the onset was not kept), as the mean absolute difference of the
    lightly blurred faces within ``mask`` (H, W) bool (default: everywhere)."""
    import cv2

    numbers = np.asarray(numbers)
    found = np.flatnonzero(numbers == onset)
    reference = found[0] if len(found) else 0
    blurred = np.stack([cv2.GaussianBlur(face, (5, 5), 1.0) for face in faces]).astype(np.float32)
    change = np.abs(blurred - blurred[reference])
    inside = np.ones(faces.shape[1:], dtype=bool) if mask is None else mask
    scores = change[:, inside].mean(axis=1)
    return int(numbers[int(np.argmax(scores))])


def choose_apex(
    sample: Mapping,
    settings: Mapping,
    faces: np.ndarray | None = None,
    numbers: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> tuple[int, str]:
    """(apex frame, apex_source) of a clip. ``sample`` has onset, offset, apex and apex_source (the
    index's: ``annotated`` when the sheet's apex is valid); ``settings`` is ``preprocessing.apex``
    ({source, fallback}); spotting needs the clip's aligned ``faces`` and their frame ``numbers``."""
    source = settings["source"]
    if source == "annotated":
        if sample.get("apex_source") == "annotated":
            return int(sample["apex"]), "annotated"
        source = settings["fallback"]
    if source == "middle":
        return middle_apex(int(sample["onset"]), int(sample["offset"])), "middle"
    if source == "spotted":
        if faces is None or numbers is None:
            raise ValueError("apex source 'spotted' needs the clip's aligned faces and frame numbers")
        return spot_apex(faces, numbers, int(sample["onset"]), mask), "spotted"
    raise ValueError(f"preprocessing.apex.source {source!r}: expected one of {', '.join(SOURCES)}")
