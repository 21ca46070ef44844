"""Synthetic micro-expression corpus in the on-disk layouts of CASME II, SAMM and SMIC-HS.

Every frame is made from one of two real public-domain face photographs that installed packages carry
(scikit-image's astronaut, matplotlib's Grace Hopper): each synthetic subject is one photo under a fixed
random identity transform (face-shape warp, colour, lighting, scale, roll), and each clip is a local,
landmark-driven warp of that face that rises from the onset frame to the apex and decays to the offset,
written down as FACS action units. A clip shows an emotion (its MEGC 2019 class's, negatives in rotation
over the part's negative emotions) through one of that emotion's own AU patterns. Nuisances (sensor
noise, head drift and roll, blinks, flicker, slow lighting change, JPEG compression) are drawn from the
same distributions for every class.

The corpus is byte-deterministic: every random draw is keyed by the seed (see `plan`), so the same
parameters write the same bytes for any worker count.

Modules, in the order a corpus is made:
- `classes`: the emotions of each class, each emotion's action units, each dataset's names for them.
- `presets`: real corpora's shapes (`PRESETS`; `synthetic.preset`): subjects, clips per subject and class,
  frame sizes, clip lengths, derived from the real annotation files.
- `plan`: every random draw of every subject and clip (`plan_corpus`), parameters (`resolve_params`).
- `controls`: control points of the face, action units and face shapes as their displacements; the
  geometry conventions (landmarks, sides, face frame, IOD units).
- `identity`: base photos and each subject's neutral face in the frame (`subject_geometry`).
- `motion`: the facial action of a clip (`clip_motion`) and the eyelids of a blink.
- `render`: frames (`render_clip`), their file names (`frame_name`) and files (`render_subject`).
- `sheets`: CASME II and SAMM workbooks, the MEGC 2019 ground truth, the truth table synth_clips.tsv.
- `corpus`: all of it into one folder (`write_corpus`).
"""

from .classes import EXTRA_CLASS
from .controls import AU_VECTORS, CENTRE_POINTS, CONTROL_SIGMA, INTENSITY_WEIGHTS, MIRROR, N_CONTROLS, RIGHT_SIDE
from .corpus import FORMAT_VERSION, PART_MARKER, write_corpus
from .identity import SubjectGeometry, base_landmarks, subject_geometry
from .motion import ClipMotion, clip_motion
from .plan import BASE_PHOTOS, PART_DEFAULTS, PART_KEYS, ClipPlan, SubjectPlan, plan_corpus, resolve_params
from .presets import PRESETS, get_preset
from .render import frame_name, render_clip, render_subject
from .sheets import TRUTH_COLUMNS, write_casme2_sheet, write_megc_ground_truth, write_samm_sheet, write_truth

__all__ = [
    "AU_VECTORS",
    "BASE_PHOTOS",
    "CENTRE_POINTS",
    "CONTROL_SIGMA",
    "EXTRA_CLASS",
    "FORMAT_VERSION",
    "INTENSITY_WEIGHTS",
    "MIRROR",
    "N_CONTROLS",
    "PART_DEFAULTS",
    "PART_KEYS",
    "PART_MARKER",
    "PRESETS",
    "RIGHT_SIDE",
    "TRUTH_COLUMNS",
    "ClipMotion",
    "ClipPlan",
    "SubjectGeometry",
    "SubjectPlan",
    "base_landmarks",
    "clip_motion",
    "frame_name",
    "get_preset",
    "plan_corpus",
    "render_clip",
    "render_subject",
    "resolve_params",
    "subject_geometry",
    "write_casme2_sheet",
    "write_corpus",
    "write_megc_ground_truth",
    "write_samm_sheet",
    "write_truth",
]
