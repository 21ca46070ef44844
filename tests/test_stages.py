"""Which settings each training stage depends on: every model/training key of the schema is classified,
temporal-only keys stay out of the spatial settings, spatial keys change them."""

from __future__ import annotations

import copy

import pytest
from conftest import REPO

from localmer import config, stages


def schema_keys(node: dict, prefix: str) -> dict[str, dict]:
    """Dotted key -> schema node of every leaf key under an object node (sub-blocks recursed into)."""
    keys = {}
    for key, child in node["properties"].items():
        path = f"{prefix}.{key}"
        if child.get("type") == "object" and "properties" in child:
            keys.update(schema_keys(child, path))
        else:
            keys[path] = child
    return keys


SCHEMA_KEYS = {
    key: node
    for section in stages.CLASSIFIED_SECTIONS
    for key, node in schema_keys(config.schema()["properties"][section], section).items()
}


@pytest.fixture(scope="module")
def experiment() -> dict:
    cfg = config.load(REPO / "config" / "config.yaml", base_dir=REPO, check_paths=False)
    return config.experiment(cfg, "full", base_dir=REPO, check_paths=False)


def set_key(settings: dict, key: str, value) -> None:
    *parents, last = key.split(".")
    for part in parents:
        settings = settings[part]
    settings[last] = value


def get_key(settings: dict, key: str):
    for part in key.split("."):
        settings = settings[part]
    return settings


def another_value(node: dict, value):
    """A valid value of a schema node other than ``value``."""
    if "enum" in node:
        return next(option for option in node["enum"] if option != value)
    if value is None:
        return 0.5
    if isinstance(value, bool):
        return not value
    if node.get("type") == "number" or isinstance(value, float):
        return value / 2 if value else 1.0  # inside (0, maximum]
    if isinstance(value, int):
        return value + 1  # integers have minima only
    if isinstance(value, str):
        return value + ".other"
    raise AssertionError(f"no other value for {node}")


def test_every_model_and_training_key_of_the_schema_is_classified():
    unclassified = sorted(set(SCHEMA_KEYS) - set(stages.STAGE_OF_KEY))
    stale = sorted(set(stages.STAGE_OF_KEY) - set(SCHEMA_KEYS))
    assert not unclassified, f"add to localmer.stages.STAGE_OF_KEY (spatial or temporal): {unclassified}"
    assert not stale, f"no longer in the schema, remove from localmer.stages.STAGE_OF_KEY: {stale}"
    assert set(stages.STAGE_OF_KEY.values()) <= {stages.SPATIAL, stages.TEMPORAL, stages.NO_MODEL}


@pytest.mark.parametrize("key", sorted(stages.STAGE_OF_KEY))
def test_a_temporal_only_key_leaves_the_spatial_settings_alone_and_a_spatial_key_changes_them(experiment, key):
    changed = copy.deepcopy(experiment)
    set_key(changed, key, another_value(SCHEMA_KEYS[key], get_key(experiment, key)))
    spatial_equal = stages.stage_settings(changed, "spatial") == stages.stage_settings(experiment, "spatial")
    temporal_equal = stages.stage_settings(changed, "temporal") == stages.stage_settings(experiment, "temporal")
    assert spatial_equal == (stages.STAGE_OF_KEY[key] != stages.SPATIAL)
    assert temporal_equal == (stages.STAGE_OF_KEY[key] == stages.NO_MODEL)


def test_the_spatial_settings_are_the_config_without_its_temporal_only_keys(experiment):
    """What the spatial models' config hash and rule params were made of so far: keep it."""
    spatial = stages.stage_settings(experiment, "spatial")
    assert list(spatial) == ["datasets", "task", "preprocessing", "model", "training"]
    assert spatial["model"] == {k: v for k, v in experiment["model"].items() if k != "temporal_se"}
    assert spatial["training"] == {k: v for k, v in experiment["training"].items() if k not in ("temporal", "repeats")}
    # The flow stage's settings left out (the model's input is not flow): as before the flow stage existed.
    whole = {key: experiment[key] for key in stages.SECTIONS}
    whole["training"] = {k: v for k, v in experiment["training"].items() if k != "repeats"}  # no model's
    whole["preprocessing"] = {k: v for k, v in experiment["preprocessing"].items() if k not in ("flow", "apex")}
    assert stages.stage_settings(experiment, "temporal") == whole and spatial["preprocessing"] == whole["preprocessing"]


def test_a_flow_setting_reaches_the_models_only_when_they_take_flow(experiment):
    changed = copy.deepcopy(experiment)
    changed["preprocessing"]["flow"]["method"] = "dis"
    changed["preprocessing"]["apex"]["source"] = "spotted"
    for stage in ("spatial", "temporal"):
        assert stages.stage_settings(changed, stage) == stages.stage_settings(experiment, stage)
    # Control: a model on flow depends on it (and a bundle of it records the method).
    on_flow, changed_on_flow = (copy.deepcopy(e) for e in (experiment, changed))
    for e in (on_flow, changed_on_flow):
        e["model"]["input"] = "flow"
    for stage in ("spatial", "temporal"):
        assert stages.stage_settings(changed_on_flow, stage) != stages.stage_settings(on_flow, stage)
        assert stages.stage_settings(changed_on_flow, stage)["preprocessing"]["flow"]["method"] == "dis"


def test_an_unclassified_key_is_an_error_in_either_stage(experiment):
    changed = copy.deepcopy(experiment)
    changed["training"]["spatial"]["new_key"] = 1
    for stage in ("spatial", "temporal"):
        with pytest.raises(ValueError, match=r"'training\.spatial\.new_key' is not classified"):
            stages.stage_settings(changed, stage)
    with pytest.raises(ValueError, match="unknown stage 'final'"):
        stages.stage_settings(experiment, "final")
