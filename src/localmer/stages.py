"""Which settings each training stage depends on.

A fold's spatial models, its feature export and everything after them depend on the *spatial* settings;
the temporal model depends on all settings. The workflow hands each stage only its settings (rule
params), so that changing a temporal-only key re-runs temporal training and not the spatial models.

Every key of the config's ``model`` and ``training`` sections is classified in ``STAGE_OF_KEY``;
``tests/test_stages.py`` holds the table to the schema. A key the table lacks is an error here, not a
silent retraining of every spatial model.
"""

from __future__ import annotations

SPATIAL = "spatial"
TEMPORAL = "temporal"
NO_MODEL = "no model"  # keys no model depends on (they shape the run, e.g. how many repeats)

# The config sections a stage's settings are taken from; datasets, task and preprocessing reach the
# spatial models whole.
SECTIONS = ("datasets", "task", "preprocessing", "model", "training")
CLASSIFIED_SECTIONS = ("model", "training")

# Dotted key -> the first stage that depends on it: spatial (the spatial models, feature export and
# everything after, the temporal model included) or temporal (the temporal model only).
STAGE_OF_KEY = {
    "model.input": SPATIAL,
    "model.diff_range": SPATIAL,
    "model.flow_range": SPATIAL,
    "model.strain_range": SPATIAL,
    "model.region_labels": SPATIAL,
    "model.au_regions": SPATIAL,
    "model.spatial_se": SPATIAL,
    "model.temporal_se": TEMPORAL,
    "model.se_ratio": SPATIAL,  # both models' SE bottleneck
    "model.share_patch_cnn": SPATIAL,
    "training.seed": SPATIAL,
    "training.protocol": SPATIAL,  # the folds
    "training.repeats": NO_MODEL,  # each repeat is an experiment of its own, with its seed
    "training.validation_subjects": SPATIAL,  # the folds
    "training.focal_gamma": SPATIAL,  # both models' loss
    "training.spatial.epochs": SPATIAL,
    "training.spatial.batch_size": SPATIAL,
    "training.spatial.learning_rate": SPATIAL,
    "training.spatial.patience": SPATIAL,
    "training.spatial.apex_window": SPATIAL,
    "training.spatial.precision": SPATIAL,
    "training.temporal.epochs": TEMPORAL,
    "training.temporal.batch_size": TEMPORAL,
    "training.temporal.learning_rate": TEMPORAL,
    "training.temporal.patience": TEMPORAL,
    "training.temporal.steps": TEMPORAL,
}


def _stage_part(block: dict, prefix: str, stages: tuple[str, ...]) -> dict:
    """``block`` with only the keys of ``stages``; a sub-block none of whose keys is kept goes whole."""
    kept = {}
    for key, value in block.items():
        path = f"{prefix}.{key}"
        if path in STAGE_OF_KEY:
            if STAGE_OF_KEY[path] in stages:
                kept[key] = value
        elif isinstance(value, dict):
            part = _stage_part(value, path, stages)
            if part:
                kept[key] = part
        else:
            raise ValueError(
                f"config key '{path}' is not classified in localmer.stages.STAGE_OF_KEY: add it as spatial "
                "(the spatial models depend on it) or temporal (only the temporal model does)"
            )
    return kept


# Preprocessing keys that only the flow stage reads (training's apex stays the index's): models on another
# input than flow do not depend on them (a flow input depends on them through its flow-patch files, whose
# folder key digests them, and keeps them: localmer predict computes the flow from the bundle's settings).
FLOW_STAGE_KEYS = ("flow", "apex")


def stage_settings(experiment: dict, stage: str) -> dict:
    """The part of an experiment's config a stage depends on: the spatial stage (spatial models and
    feature export) leaves out the temporal-only keys; the temporal stage sees everything (it depends on
    the features too) but, as the spatial stage, the flow stage's settings only when the model's input
    is flow."""
    if stage not in (SPATIAL, TEMPORAL):
        raise ValueError(f"unknown stage {stage!r}; expected {SPATIAL!r} or {TEMPORAL!r}")
    from .inputs import FLOW_PATCHES, representation

    settings = {section: experiment[section] for section in SECTIONS}
    if representation(experiment["model"]["input"]).source != FLOW_PATCHES:
        preprocessing = settings["preprocessing"]
        settings["preprocessing"] = {key: value for key, value in preprocessing.items() if key not in FLOW_STAGE_KEYS}
    stages = (SPATIAL, TEMPORAL) if stage == TEMPORAL else (SPATIAL,)
    return {**settings, **{section: _stage_part(settings[section], section, stages) for section in CLASSIFIED_SECTIONS}}
