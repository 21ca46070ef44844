"""Frames of the synthetic clips: rendering each frame with one remap, naming and encoding the files.

A frame is the subject's photo sampled through one backward map that composes the identity warp, the
facial action, a blink's eyelids and the head motion, then lit (light gradient, slow change, flicker),
given sensor noise and encoded (JPEG at the subject's quality, or BMP).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .identity import SubjectGeometry, pixel_grid, subject_geometry, subject_source
from .motion import action_field, blink_offset
from .plan import ClipPlan, SubjectPlan


def render_clip(subject: SubjectPlan, clip: ClipPlan, geometry: SubjectGeometry, source: np.ndarray):
    """Yield the clip's frames (uint8, BGR or grey), first to last; one remap per frame."""
    width, height = subject.image_size
    gx, gy = pixel_grid(subject.image_size)
    unit, (y0, y1, x0, x1), _, _ = action_field(geometry, clip.aus, subject.image_size)
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
                (by0, by1, bx0, bx1), lid = blink_offset(eye, geometry, closure, subject.image_size)
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
    source = subject_source(subject)
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
