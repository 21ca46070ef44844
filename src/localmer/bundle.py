"""Model bundles: a trained experiment's final models and everything ``localmer predict`` needs to use
them on new clips, in one self-describing folder.

Layout::

    bundle.json            format, versions, classes, settings, region table and sizes, sha256 per file
    spatial/<region>.keras the six spatial models (their 256-d feature layer is what predict uses)
    temporal.keras         the temporal model
    normalisation.npz      feature mean and std (regions, 256) of the training frames (no pickle)

``read_bundle`` checks the format, its version and every file's sha256 before it loads anything; Keras
files load with ``safe_mode=True`` and the statistics with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .regions import REGION_NAMES

FORMAT = "localmer-bundle"
FORMAT_VERSION = 1
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
    stage settings (``localmer.stages.stage_settings``). Returns the bundle description (its content)."""
    out = Path(out_dir)
    missing = sorted(set(REGION_NAMES) - set(spatial_models))
    if missing:
        raise BundleError(f"spatial models missing for regions {missing}")
    (out / "spatial").mkdir(parents=True, exist_ok=True)
    sources = {spatial_file(region): spatial_models[region] for region in REGION_NAMES}
    sources.update({TEMPORAL: temporal_model, NORMALISATION: normalisation})
    for name, source in sources.items():
        shutil.copyfile(source, out / name)
    with np.load(out / NORMALISATION, allow_pickle=False) as stats:
        if set(stats.files) != {"mean", "std"}:
            raise BundleError(f"{normalisation}: expected arrays mean and std, found {stats.files}")
    preprocessing = {key: value for key, value in settings["preprocessing"].items() if key != "regions"}
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


def check_bundle(path: str | Path) -> dict:
    """The description (bundle.json) of a bundle whose format, version and file digests are right;
    BundleError otherwise. Reads bytes only: nothing is deserialised but bundle.json."""
    path = Path(path)
    description_path = path / DESCRIPTION if path.is_dir() else path
    if not description_path.is_file():
        raise BundleError(f"{str(path)!r} is not a model bundle: {DESCRIPTION} not found")
    try:
        description = json.loads(description_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{description_path}: corrupted ({err})") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise BundleError(f"{description_path}: not a {FORMAT} description (format {description.get('format')!r})")
    if description.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{description_path}: bundle format version {description.get('format_version')!r} (written by "
            f"localmer {description.get('localmer_version')}); this localmer ({__version__}) reads version "
            f"{FORMAT_VERSION}"
        )
    expected = {spatial_file(region) for region in REGION_NAMES} | {TEMPORAL, NORMALISATION}
    files = description.get("files", {})
    if set(files) != expected:
        raise BundleError(f"{description_path}: files should be {sorted(expected)}, it lists {sorted(files)}")
    root = description_path.parent
    for name, digest in sorted(files.items()):
        if not (root / name).is_file():
            raise BundleError(f"bundle file {str(root / name)!r} is missing")
        found = sha256(root / name)
        if found != digest:
            raise BundleError(
                f"bundle file {str(root / name)!r} is corrupted: sha256 {found}, {DESCRIPTION} expects {digest}"
            )
    return description


def read_bundle(path: str | Path) -> Bundle:
    """Check (``check_bundle``), then load: Keras files in safe mode, statistics without pickle."""
    description = check_bundle(path)
    root = (Path(path) if Path(path).is_dir() else Path(path).parent).resolve()
    import keras

    from . import models  # noqa: F401  (registers FocalLoss for deserialisation)

    spatial = {
        region: models.feature_extractor(keras.saving.load_model(root / spatial_file(region), safe_mode=True))
        for region in REGION_NAMES
    }
    temporal = keras.saving.load_model(root / TEMPORAL, safe_mode=True)
    with np.load(root / NORMALISATION, allow_pickle=False) as stats:
        mean, std = stats["mean"], stats["std"]
    if mean.shape != (len(REGION_NAMES), temporal.input[0].shape[-1]) or std.shape != mean.shape:
        raise BundleError(
            f"{root / NORMALISATION}: statistics of shape {mean.shape}, the temporal model wants "
            f"({len(REGION_NAMES)}, {temporal.input[0].shape[-1]})"
        )
    return Bundle(root, description, spatial, temporal, mean, std)
