"""Model bundles: a trained experiment's final models and everything ``localmer predict`` needs to use
them on new clips, in one self-describing folder.

Layout::

    bundle.json            format, versions, classes, settings, region table and sizes, sha256 per file,
                           and the sha256 of its own content (``digest``)
    spatial/<region>.keras the six spatial models (their 256-d feature layer is what predict uses)
    temporal.keras         the temporal model
    normalisation.npz      feature mean and std (regions, 256) of the training frames (no pickle)

``check_bundle`` checks, before anything is loaded, the format and its version, bundle.json's own digest
(an edited description, say classes reordered, would relabel every prediction), the description's
fields and every file's sha256; ``read_bundle`` then loads the Keras files with ``safe_mode=True`` and
the statistics with ``allow_pickle=False``, and checks the models against the description (class
count, input shapes, statistics shape).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .atomic import atomic_output
from .flow import METHODS as FLOW_METHODS
from .regions import N_LANDMARKS, PATCH_COUNTS, REGION_NAMES, grid_side

FORMAT = "localmer-bundle"
FORMAT_VERSION = 2  # 2: bundle.json carries the digest of its own content
DESCRIPTION = "bundle.json"  # the bundle description
NORMALISATION = "normalisation.npz"
TEMPORAL = "temporal.keras"


class BundleError(ValueError):
    """A bundle that is missing, corrupted, or from an incompatible version."""


def spatial_file(region: str) -> str:
    return f"spatial/{region}.keras"


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def description_digest(description: dict) -> str:
    """sha256 of the description's canonical JSON (sorted keys, no spaces), its ``digest`` field left out:
    any edit of the content changes it, reformatting the file does not."""
    content = {key: value for key, value in description.items() if key != "digest"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_bundle(
    out_dir: str | Path,
    spatial_models: dict[str, str | Path],
    temporal_model: str | Path,
    normalisation: str | Path,
    settings: dict,
    region_table: dict,
    region_sizes: dict[str, list[int]],
    classes: list[str],
    region_classes: list[str],
    config_hash: str,
    subjects: list[str],
    experiment: str = "",
) -> dict:
    """Copy the final models into ``out_dir`` and write ``bundle.json``. ``settings`` is the temporal
    stage settings (``localmer.stages.stage_settings``). Returns the bundle description (its content).
    The bundle is written into a partial folder renamed to ``out_dir`` when complete."""
    missing = sorted(set(REGION_NAMES) - set(spatial_models))
    if missing:
        raise BundleError(f"spatial models missing for regions {missing}")
    sources = {spatial_file(region): spatial_models[region] for region in REGION_NAMES}
    sources.update({TEMPORAL: temporal_model, NORMALISATION: normalisation})
    preprocessing = {key: value for key, value in settings["preprocessing"].items() if key != "regions"}
    with atomic_output(out_dir) as out:
        (out / "spatial").mkdir(parents=True)
        for name, source in sources.items():
            shutil.copyfile(source, out / name)
        with np.load(out / NORMALISATION, allow_pickle=False) as stats:
            if set(stats.files) != {"mean", "std"}:
                raise BundleError(f"{normalisation}: expected arrays mean and std, found {stats.files}")
        description = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "localmer_version": __version__,
            "experiment": experiment,
            "config_hash": config_hash,
            "classes": list(classes),
            "region_classes": list(region_classes),
            "regions": list(REGION_NAMES),
            "model": settings["model"],
            "preprocessing": preprocessing,
            "region_table": region_table,
            "region_sizes": {name: list(region_sizes[name]) for name in REGION_NAMES},
            "steps": int(settings["training"]["temporal"]["steps"]),
            "trained_on_subjects": sorted(subjects),
            "files": {name: sha256(out / name) for name in sorted(sources)},
        }
        description["digest"] = description_digest(description)
        check_description(description, Path(out_dir) / DESCRIPTION)  # what predict will check, found now
        (out / DESCRIPTION).write_text(json.dumps(description, indent=2, sort_keys=True))
    return description


def region_sizes_of(patch_files) -> dict[str, list[int]]:
    """The region sizes (width, height) the models were trained on, from the patches files; one set,
    or BundleError when datasets were cropped to different sizes (one model cannot take both)."""
    import h5py

    found = {}
    for path in patch_files:
        with h5py.File(path, "r") as h5:
            sizes = json.dumps(json.loads(h5.attrs["region_sizes"]), sort_keys=True)
        found.setdefault(sizes, []).append(str(path))
    if len(found) != 1:
        raise BundleError(f"patches files hold {len(found)} different region size sets: {sorted(found)}")
    return json.loads(next(iter(found)))


@dataclass
class Bundle:
    path: Path
    description: dict  # the content of bundle.json
    spatial: dict  # region -> Keras feature extractor (input -> 256-d feature layer)
    temporal: object  # Keras model
    mean: np.ndarray
    std: np.ndarray

    @property
    def classes(self) -> list[str]:
        return self.description["classes"]


HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _names(value) -> bool:
    """A non-empty list of distinct non-empty strings."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, str) and v for v in value)
        and len(set(value)) == len(value)
    )


def _size(value) -> bool:
    """[width, height], positive integers."""
    return isinstance(value, list) and len(value) == 2 and all(_is_int(v) and v > 0 for v in value)


def _per_region(value, check) -> bool:
    return isinstance(value, dict) and set(value) == set(REGION_NAMES) and all(check(value[r]) for r in REGION_NAMES)


def _region_spec(spec) -> bool:
    return (
        isinstance(spec, dict)
        and isinstance(spec.get("landmarks"), list)
        and bool(spec["landmarks"])
        and all(_is_int(p) and 0 <= p < N_LANDMARKS for p in spec["landmarks"])
        and isinstance(spec.get("margin"), list)
        and len(spec["margin"]) == 2
        and all(_is_number(v) and v >= 0 for v in spec["margin"])
    )


def _file_digests(value) -> bool:
    expected = {spatial_file(region) for region in REGION_NAMES} | {TEMPORAL, NORMALISATION}
    return (
        isinstance(value, dict)
        and set(value) == expected
        and all(isinstance(v, str) and HEX_DIGEST.fullmatch(v) for v in value.values())
    )


def _positive(value) -> bool:
    return _is_number(value) and value > 0


def _model_settings(value) -> bool:
    from .inputs import REPRESENTATIONS

    return (
        isinstance(value, dict)
        and value.get("input") in REPRESENTATIONS
        and (value["input"] != "onset_diff" or _positive(value.get("diff_range")))
        and (value["input"] != "flow" or (_positive(value.get("flow_range")) and _positive(value.get("strain_range"))))
    )


def _flow_settings(value) -> bool:
    """What predict needs to compute a clip's flow as the workflow did: the method, its parameters and
    the onset-to-every-frame pair."""
    return (
        isinstance(value, dict)
        and value.get("method") in FLOW_METHODS
        and isinstance(value.get(value["method"]), dict)
        and isinstance(value.get("pairs"), list)
        and "onset_frames" in value["pairs"]
    )


def _preprocessing_settings(value) -> bool:
    alignment = value.get("alignment") if isinstance(value, dict) else None
    return (
        isinstance(value, dict)
        and isinstance(value.get("frames"), str)
        and _is_int(value.get("n_frames"))
        and value["n_frames"] > 0
        and isinstance(value.get("landmarks"), dict)
        and isinstance(alignment, dict)
        and _size(alignment.get("face_size"))
        and _is_number(alignment.get("iod"))
        and alignment["iod"] > 0
        and value.get("patches") in PATCH_COUNTS
    )


# Field -> (check, what is expected): what predict reads, so that a malformed description is a message
# naming the field, not a KeyError half-way through a prediction.
DESCRIPTION_FIELDS = {
    "localmer_version": (lambda v: isinstance(v, str), "a version string"),
    "experiment": (lambda v: isinstance(v, str), "a string"),
    "config_hash": (lambda v: isinstance(v, str), "a string"),
    "classes": (_names, "a non-empty list of distinct class names"),
    "region_classes": (_names, "a non-empty list of distinct class names"),
    "regions": (lambda v: v == list(REGION_NAMES), f"the regions {list(REGION_NAMES)}, in this order"),
    "model": (
        _model_settings,
        "the model settings: input (a representation) and its diff_range (onset_diff) or flow_range and "
        "strain_range (flow), > 0",
    ),
    "preprocessing": (
        _preprocessing_settings,
        f"the preprocessing settings: frames, n_frames > 0, landmarks, alignment (face_size [width, height], "
        f"iod > 0), patches (one of {list(PATCH_COUNTS)})",
    ),
    "region_table": (
        lambda v: _per_region(v, _region_spec),
        "per region, landmarks (indices 0..67) and margin [x, y] >= 0",
    ),
    "region_sizes": (lambda v: _per_region(v, _size), "per region, [width, height] in px, positive integers"),
    "steps": (lambda v: _is_int(v) and v > 0, "a positive integer (temporal steps)"),
    "trained_on_subjects": (lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "a list of subjects"),
    "files": (_file_digests, "a sha256 (64 hex digits) for each of the bundle's files, and only those"),
}


def check_description(description: dict, where: str | Path) -> None:
    """BundleError naming the first field of the description (read from ``where``) that is missing or
    not what predict expects."""
    for field, (check, expected) in DESCRIPTION_FIELDS.items():
        if field not in description:
            raise BundleError(f"{where}: field {field!r} is missing (expected {expected})")
        if not check(description[field]):
            raise BundleError(f"{where}: field {field!r} should be {expected}, found {description[field]!r}")
    flow_settings = description["preprocessing"].get("flow")
    if description["model"]["input"] == "flow" and not _flow_settings(flow_settings):
        raise BundleError(
            f"{where}: field 'preprocessing' should hold, for model.input flow, flow: a method (one of "
            f"{sorted(FLOW_METHODS)}), its parameter block and pairs including 'onset_frames'; found "
            f"{flow_settings!r}"
        )
    side = grid_side(description["preprocessing"]["patches"])
    for region, (width, height) in description["region_sizes"].items():
        if width % side or height % side:
            raise BundleError(
                f"{where}: field 'region_sizes': {region} {width}x{height} cannot be cut into the "
                f"{side}x{side} patches of preprocessing.patches"
            )


def check_bundle(path: str | Path) -> dict:
    """The description (bundle.json) of a bundle whose format, version, own digest, fields and file
    digests are right; BundleError otherwise. Reads bytes only: nothing is deserialised but bundle.json."""
    path = Path(path)
    description_path = path / DESCRIPTION if path.is_dir() else path
    if not description_path.is_file():
        raise BundleError(f"{str(path)!r} is not a model bundle: {DESCRIPTION} not found")
    try:
        description = json.loads(description_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{description_path}: corrupted ({err})") from None
    if not isinstance(description, dict):
        raise BundleError(f"{description_path}: expected a JSON object, found a {type(description).__name__}")
    if description.get("format") != FORMAT:
        raise BundleError(f"{description_path}: not a {FORMAT} description (format {description.get('format')!r})")
    if description.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{description_path}: bundle format version {description.get('format_version')!r} (written by "
            f"localmer {description.get('localmer_version')}); this localmer ({__version__}) reads version "
            f"{FORMAT_VERSION}"
        )
    if description.get("digest") != description_digest(description):
        raise BundleError(
            f"{description_path} has been edited or corrupted: the sha256 of its content is "
            f"{description_digest(description)}, its digest field says {description.get('digest')!r}"
        )
    check_description(description, description_path)
    root = description_path.parent
    for name, digest in sorted(description["files"].items()):
        if not (root / name).is_file():
            raise BundleError(f"bundle file {str(root / name)!r} is missing")
        found = sha256(root / name)
        if found != digest:
            raise BundleError(
                f"bundle file {str(root / name)!r} is corrupted: sha256 {found}, {DESCRIPTION} expects {digest}"
            )
    return description


def check_models(description: dict, spatial: dict, temporal, mean: np.ndarray, std: np.ndarray, root: Path) -> None:
    """BundleError where the loaded models do not fit the description: the temporal model's outputs
    against the classes, each spatial model's outputs against the region classes and its input against
    the region size and patch count, the statistics against the temporal model's input."""
    from .inputs import representation

    classes, region_classes = description["classes"], description["region_classes"]
    channels = representation(description["model"]["input"]).channels
    outputs = temporal.output.shape[-1]
    if outputs != len(classes):
        raise BundleError(f"{root / TEMPORAL}: {outputs} outputs, {DESCRIPTION} lists {len(classes)} classes {classes}")
    patches = description["preprocessing"]["patches"]
    side = grid_side(patches)
    for region, model in spatial.items():
        outputs = model.output.shape[-1]
        if outputs != len(region_classes):
            raise BundleError(
                f"{root / spatial_file(region)}: {outputs} outputs, {DESCRIPTION} lists {len(region_classes)} "
                f"region classes {region_classes}"
            )
        width, height = description["region_sizes"][region]
        expected = (patches, height // side, width // side, channels)  # as predict builds it
        found = tuple(model.input.shape[1:])
        if found != expected:
            raise BundleError(
                f"{root / spatial_file(region)}: input {found}, but {DESCRIPTION}'s region size {width}x{height} "
                f"cut into {patches} patches of model.input {description['model']['input']} gives {expected}"
            )
    features = temporal.input[0].shape[-1]
    if mean.shape != (len(REGION_NAMES), features) or std.shape != mean.shape:
        raise BundleError(
            f"{root / NORMALISATION}: statistics of shape {mean.shape} and {std.shape}, the temporal model "
            f"wants ({len(REGION_NAMES)}, {features})"
        )


def read_bundle(path: str | Path) -> Bundle:
    """Check (``check_bundle``), then load: Keras files in safe mode, statistics without pickle; then
    check the models against the description (``check_models``)."""
    description = check_bundle(path)
    root = (Path(path) if Path(path).is_dir() else Path(path).parent).resolve()
    import keras

    from . import models  # noqa: F401  (registers FocalLoss for deserialisation)

    classifiers = {
        region: keras.saving.load_model(root / spatial_file(region), safe_mode=True) for region in REGION_NAMES
    }
    temporal = keras.saving.load_model(root / TEMPORAL, safe_mode=True)
    with np.load(root / NORMALISATION, allow_pickle=False) as stats:
        mean, std = stats["mean"], stats["std"]
    check_models(description, classifiers, temporal, mean, std, root)
    spatial = {region: models.feature_extractor(model) for region, model in classifiers.items()}
    return Bundle(root, description, spatial, temporal, mean, std)
