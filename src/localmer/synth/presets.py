"""Corpus presets: a real corpus's shape for the synthetic generator (`synthetic.preset`).

A preset fixes, per part, the subjects (named as the real dataset names them), each subject's clips per
MEGC 2019 class, the frame size and face size, and the onset..offset lengths that clips draw from. The
faces, emotions, action units, clip names and everything else stay the generator's own.

The counts and lengths are data, derived from the real annotation files and kept in a YAML file beside
this module (`PRESETS` names it): ``python -m localmer.synth.presets megc2019 ANNOTATIONS_DIR`` writes it
again from a folder with combined_3class_gt.csv and the CASME II and SAMM coding sheets, and the tests
check the shipped file against tests/fixtures/annotations. Frame and face sizes are chosen here.

Scaling (`synthetic.preset_subjects`, `preset_frame_scale`, `preset_max_frames`) keeps the shape of each
kept subject; see `kept_subjects` and the planner (`plan`).
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from ..tasks.megc2019 import MEGC2019_CLASSES


@dataclass(frozen=True)
class PartLook:
    """How a part's frames look: size and face size (not in the annotation files; chosen per preset)."""

    image_size: tuple[int, int]  # width, height at preset_frame_scale 1
    iod_fraction: float  # inter-ocular distance / frame width


@dataclass(frozen=True)
class PresetSource:
    """A registered preset: its shape file (counts and lengths) and the look of each part."""

    shape_file: str
    description: str
    looks: dict[str, PartLook]


@dataclass(frozen=True)
class PresetPart:
    """One part of a preset, as the planner uses it."""

    subjects: tuple[tuple[str, tuple[int, ...]], ...]  # canonical id (sub01, 006, s01), clips per MEGC class
    spans: tuple[int, ...]  # onset..offset lengths clips draw from, frames inclusive, at span_fps
    span_fps: float
    look: PartLook


# Face sizes: CASME II's ~109 px between the eyes on 640x480 (0.17, as docs/datasets-and-tasks.md says);
# SAMM's and SMIC-HS's are estimates (a larger face on SAMM's wide frames, a smaller one on SMIC-HS's),
# kept where the face detector finds exactly one face at upsample 0 on the full-size frames.
PRESETS = {
    "megc2019": PresetSource(
        shape_file="megc2019.yaml",
        description="the MEGC 2019 composite: CASME II, SAMM and SMIC-HS as combined_3class_gt.csv has them",
        looks={
            "casme2": PartLook(image_size=(640, 480), iod_fraction=0.17),
            "samm": PartLook(image_size=(2040, 1088), iod_fraction=0.1),
            "smic": PartLook(image_size=(640, 480), iod_fraction=0.12),
        },
    ),
}


@functools.cache
def get_preset(name: str) -> dict[str, PresetPart]:
    """The parts of preset ``name`` (casme2, samm, smic order), read once per process."""
    if name not in PRESETS:
        raise ValueError(f"config key 'synthetic.preset': unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    source = PRESETS[name]
    shape = yaml.safe_load(resources.files(__package__).joinpath(source.shape_file).read_text())
    if tuple(shape["classes"]) != MEGC2019_CLASSES:  # the counts are in this order
        raise ValueError(f"{source.shape_file}: classes {shape['classes']}, expected {list(MEGC2019_CLASSES)}")
    parts = {}
    for part, entry in shape["parts"].items():
        spans_of = shape["parts"][entry.get("spans_from", part)]
        parts[part] = PresetPart(
            subjects=tuple((subject, tuple(counts)) for subject, counts in entry["subjects"].items()),
            spans=tuple(spans_of["spans"]),
            span_fps=float(spans_of["span_fps"]),
            look=source.looks[part],
        )
    return parts


def kept_subjects(n_subjects: int, fraction: float | None) -> list[int]:
    """Indices of the subjects a preset_subjects fraction keeps: ceil(fraction x n), evenly spaced from the
    first (fraction 0.25 keeps every 4th); None keeps all."""
    if fraction is None:
        return list(range(n_subjects))
    kept = max(1, math.ceil(fraction * n_subjects - 1e-9))  # the tolerance keeps 0.1 x 30 (3.0000000000000004) at 3
    return [i * n_subjects // kept for i in range(kept)]


def scaled_size(look: PartLook, scale: float | None) -> tuple[int, int]:
    """A part's frame size at preset_frame_scale ``scale`` (None = 1)."""
    width, height = look.image_size
    if scale is None:
        return width, height
    return round(width * scale), round(height * scale)


def derive_megc2019(annotations: str | Path) -> dict:
    """The megc2019 shape from the real files in ``annotations``: the ground truth's subjects and clips per
    class, and the coding sheets' onset..offset lengths of the ground truth's clips (CASME II, SAMM).

    SMIC-HS has no coding sheet, and its folders hold only onset..offset: its clips take CASME II's
    lengths, in seconds (half as many frames at SMIC-HS's 100 fps).
    """
    from ..datasets import casme2, samm
    from ..tasks.megc2019 import read_ground_truth

    annotations = Path(annotations)
    gt = read_ground_truth(annotations / "combined_3class_gt.csv")
    sheets = {
        "casme2": casme2.read_casme2("casme2", annotations, annotations / "CASME2-coding-20140508.xlsx")[0],
        "samm": samm.read_samm("samm", annotations, annotations / "SAMM_Micro_FACS_Codes_v2.xlsx")[0],
    }
    fps = {"casme2": casme2.DEFAULT_FPS, "samm": samm.DEFAULT_FPS}
    parts = {}
    for part in ("casme2", "samm", "smic"):
        rows = gt[gt["gt_dataset"] == part]
        entry = {}
        if part in sheets:
            clips = {(clip.subject, clip.clip): clip for clip in sheets[part]}
            timing = [clips[key] for key in zip(rows["subject"], rows["clip"], strict=True)]
            entry["span_fps"] = int(fps[part])
            entry["spans"] = sorted(clip.offset - clip.onset + 1 for clip in timing)
        else:
            entry["spans_from"] = "casme2"
        counts = rows.groupby("subject", sort=False)["gt_label"].value_counts().unstack(fill_value=0)
        counts = counts.reindex(columns=list(MEGC2019_CLASSES), fill_value=0)
        entry["subjects"] = {
            subject: [int(n) for n in counts.loc[subject]] for subject in sorted(counts.index, key=_subject_number)
        }
        parts[part] = entry
    return {"name": "megc2019", "classes": list(MEGC2019_CLASSES), "parts": parts}


def _subject_number(subject: str) -> int:
    return int("".join(ch for ch in subject if ch.isdigit()))


SHAPE_HEADER = """\
# The MEGC 2019 composite's shape, written by `python -m localmer.synth.presets megc2019 ANNOTATIONS_DIR`
# from combined_3class_gt.csv and the CASME II and SAMM coding sheets (tests/fixtures/annotations; the
# tests check this file against them). Per part: subjects (as the index names them) with their clips of
# each class (negative, positive, surprise), and `spans`, the onset..offset lengths (frames, inclusive,
# at span_fps) of the ground truth's clips in the coding sheet. SMIC-HS has no coding sheet: its clips
# take CASME II's lengths, converted by duration to the part's frame rate.
"""


def dump_shape(shape: dict) -> str:
    """The shape file's text: header comment, then the shape (flow-style lists)."""
    return SHAPE_HEADER + yaml.safe_dump(shape, sort_keys=False, default_flow_style=None, width=110)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "megc2019":
        print("usage: python -m localmer.synth.presets megc2019 ANNOTATIONS_DIR", file=sys.stderr)
        return 2
    target = Path(__file__).with_name(PRESETS["megc2019"].shape_file)
    target.write_text(dump_shape(derive_megc2019(argv[1])))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
