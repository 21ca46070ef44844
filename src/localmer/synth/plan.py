"""Planning the corpus: every random draw of every subject and clip, before any pixel is made.

Randomness: every subject and clip has its own generator keyed by (seed, part, subject, stream, clip),
so a corpus is the same whatever the worker count, and `null` mode (action amplitude times 0) makes the
very same draws in the same order.

Classes and emotions: each subject has `clips_per_class` clips of each MEGC 2019 class and
`extra_clips_per_subject` clips of EXTRA_CLASS, in a random order. A positive, surprise or extra clip shows
its class's one emotion (CLASS_EMOTIONS). Negative clips take the part's NEGATIVE_EMOTIONS in turn, not by
a random draw that could leave an emotion out: the k-th negative clip (in clip order) of subject i shows
emotion (i * clips_per_class + k) mod (number of the part's negative emotions), so the rotation runs on
across subjects and every emotion appears once the part has that many negative clips. The AU pattern is
then drawn at random among the emotion's own (EMOTION_PATTERNS).

A preset (`synthetic.preset`, `presets`) gives each subject its own clips per class, its real name and
its part's frame size, and each clip an onset..offset length drawn from the part's real ones instead of
`duration_s`. The rotation then starts at the negatives of the part's earlier subjects, and a subject's
random key is its place among all the preset's subjects of its part, so that a subject of a scaled
preset (`preset_subjects`) is planned as in the full one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import config
from ..tasks.megc2019 import MEGC2019_CLASSES
from . import presets
from .classes import CLASS_EMOTIONS, EMOTION_PATTERNS, EXTRA_CLASS, NEGATIVE_EMOTIONS, SAMM_EMOTIONS, SMIC_CLASS_CODES

PART_DEFAULTS = {
    "casme2": {"fps": 200, "image_format": "jpg", "color": True},
    "samm": {"fps": 200, "image_format": "jpg", "color": False},
    "smic": {"fps": 100, "image_format": "bmp", "color": True},
}
# Part order fixes the random key of each part and the order of parts in every output.
PART_KEYS = {"casme2": 1, "samm": 2, "smic": 3}
BASE_PHOTOS = ("astronaut", "grace_hopper")

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


@dataclass(frozen=True)
class _SubjectSpec:
    """What one subject's plan takes besides the params: who it is, its clips per label, its frames."""

    part: str
    index: int  # the subject's random key within its part
    name: str  # folder name
    counts: dict[str, int]  # clips per label: the MEGC 2019 classes, then EXTRA_CLASS
    negative_turn: int  # place in the negative-emotion rotation of the subject's first negative clip
    image_size: tuple[int, int]
    iod_fraction: float
    spans: tuple[int, ...] | None = None  # preset: onset..offset lengths to draw from, frames at span_fps
    span_fps: float = 0.0
    max_frames: int | None = None  # preset: the most frames of a clip folder


def resolve_params(params: dict) -> dict:
    """The `synthetic` block with defaults filled, per-part defaults included; enabled/out dropped."""
    # The schema holds the defaults; the per-part ones follow the real dataset (PART_DEFAULTS).
    resolved = config.with_defaults(params, "#/properties/synthetic")
    config.check_synthetic(resolved)
    resolved.pop("enabled", None)
    resolved.pop("out", None)
    if resolved["preset"] is None:  # all null (checked): dropped, so corpus.json without a preset is as before
        for key in config.PRESET_KEYS:
            del resolved[key]
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


def _folder_name(part: str, subject: str) -> str:
    """A subject's folder from its canonical id (sub01, 006, s01): SMIC-HS's folders are not zero-padded."""
    return f"s{int(subject[1:])}" if part == "smic" else subject


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


def _emotions(part: str, turn: int, labels: list[str]) -> list[str]:
    """Each clip's emotion: its class's own, negatives in rotation over the part's from place ``turn``
    (module docstring)."""
    negatives = NEGATIVE_EMOTIONS[part]
    emotions = []
    for label in labels:
        if label == "negative":
            emotions.append(negatives[turn % len(negatives)])
            turn += 1
        else:
            emotions.append(CLASS_EMOTIONS[label])
    return emotions


def _written_emotion(part: str, label: str, emotion: str) -> str:
    """The emotion as the part's sheet writes it; SMIC's folders name the class only."""
    if part == "smic":
        return "non_micro" if label == EXTRA_CLASS else label
    return SAMM_EMOTIONS[emotion] if part == "samm" else emotion


def _plan_clip(
    params: dict, spec: _SubjectSpec, clip_index: int, label: str, emotion: str, name: str, inducement: int
) -> ClipPlan:
    part, subject = spec.part, spec.name
    part_params = params["parts"][part]
    fps = float(part_params["fps"])
    key = [params["seed"], PART_KEYS[part], spec.index]
    rng = np.random.default_rng([*key, 1, clip_index])
    patterns = EMOTION_PATTERNS[emotion]
    aus = patterns[int(rng.integers(len(patterns)))]
    amplitude = float(rng.uniform(*params["amplitude_px"]))
    if spec.spans is None:
        action_frames = max(3, round(float(rng.uniform(*params["duration_s"])) * fps) + 1)  # onset..offset
    else:  # a real length, kept in seconds at the part's frame rate
        span = spec.spans[int(rng.integers(len(spec.spans)))]
        action_frames = max(3, round((span - 1) * fps / spec.span_fps) + 1)
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

    before, after = (0, 0) if part == "smic" else (int(margins[0]), int(margins[1]))
    if spec.max_frames is not None and before + action_frames + after > spec.max_frames:
        action_frames = min(action_frames, spec.max_frames)
        before = min(before, (spec.max_frames - action_frames) // 2)
        after = min(after, spec.max_frames - action_frames - before)
    apex_step = min(max(round(apex_fraction * (action_frames - 1)), 1), action_frames - 2)
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
        emotion=_written_emotion(part, label, emotion),
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


def _plan_subject(params: dict, spec: _SubjectSpec) -> SubjectPlan:
    part, index, name = spec.part, spec.index, spec.name
    part_params = params["parts"][part]
    rng = np.random.default_rng([params["seed"], PART_KEYS[part], index, 0])
    labels = [label for label, count in spec.counts.items() for _ in range(count)]
    labels = [labels[i] for i in rng.permutation(len(labels))]  # clip order and names carry no class
    width, height = spec.image_size
    subject = SubjectPlan(
        part=part,
        name=name,
        photo=BASE_PHOTOS[(index + PART_KEYS[part]) % len(BASE_PHOTOS)],
        image_size=(int(width), int(height)),
        iod_fraction=float(spec.iod_fraction),
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
    emotions = _emotions(part, spec.negative_turn, labels)
    subject.clips = [
        _plan_clip(params, spec, i, label, emotion, clip_name, inducement)
        for i, (label, emotion, clip_name, inducement) in enumerate(
            zip(labels, emotions, names, inducements, strict=True)
        )
    ]
    return subject


def _subject_specs(params: dict) -> list[_SubjectSpec]:
    """The subjects of the parts' own sizes (no preset): `subjects` alike ones per part."""
    specs = []
    for part, part_params in params["parts"].items():
        per_class = part_params["clips_per_class"]
        counts = {**dict.fromkeys(MEGC2019_CLASSES, per_class), EXTRA_CLASS: part_params["extra_clips_per_subject"]}
        size = tuple(params["image_size"])
        specs += [
            _SubjectSpec(part, i, _subject_name(part, i), counts, i * per_class, size, params["iod_fraction"])
            for i in range(part_params["subjects"])
        ]
    return specs


def _preset_specs(params: dict) -> list[_SubjectSpec]:
    """The subjects of the preset's parts that the config writes, scaled as the preset_* keys say."""
    parts = presets.get_preset(params["preset"])
    specs = []
    for part, part_params in params["parts"].items():
        shape = parts[part]
        kept = set(presets.kept_subjects(len(shape.subjects), params["preset_subjects"]))
        size = presets.scaled_size(shape.look, params["preset_frame_scale"])
        turn = 0
        for index, (subject, class_counts) in enumerate(shape.subjects):
            counts = dict(zip(MEGC2019_CLASSES, class_counts, strict=True))
            counts[EXTRA_CLASS] = part_params["extra_clips_per_subject"]
            if index in kept:
                specs.append(
                    _SubjectSpec(
                        part,
                        index,
                        _folder_name(part, subject),
                        counts,
                        turn,
                        size,
                        shape.look.iod_fraction,
                        spans=shape.spans,
                        span_fps=shape.span_fps,
                        max_frames=params["preset_max_frames"],
                    )
                )
            turn += counts["negative"]
    return specs


def plan_corpus(params: dict) -> list[SubjectPlan]:
    """Every subject and clip of the corpus (no pixels), parts in casme2, samm, smic order."""
    params = resolve_params(params)
    specs = _preset_specs(params) if "preset" in params else _subject_specs(params)
    return [_plan_subject(params, spec) for spec in specs]
