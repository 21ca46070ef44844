"""Configuration: load, fill defaults, validate, resolve experiments.

One implementation serves the workflow (``workflow/rules/common.smk``) and the CLI. The schema is the
package's ``config.schema.yaml`` (``workflow/schemas/config.schema.yaml`` links to it); the dataset kinds
task names it allows, and which kinds need an annotation file, come from the registries
(``localmer.datasets.registry``, ``localmer.tasks.registry``).
Every problem is reported with the dotted key that holds it and what is allowed there.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .yamlfile import read_yaml

# Keys that describe the experiment set itself; an experiment's overrides may not contain them.
EXPERIMENT_SET_KEYS = ("experiments", "run")


class ConfigError(ValueError):
    """A configuration problem; the message names the key and what is allowed."""


def schema() -> dict:
    """The config schema, its dataset ``kind`` values those of the registry (``task.name``, a registered
    task or a task table file, is checked with the other semantics).

    ``model.input`` and ``method`` keep their lists in the schema file: the input and method registries
    (``localmer.inputs``, ``localmer.methods.registry``) belong to training (h5py, TensorFlow, scikit-learn),
    which the data rules' environment has not; tests hold each list equal to its registry.
    """
    # The registries import the readers (pandas, OpenCV): loaded when a config is checked, not on import.
    from .datasets.registry import DATASET_KINDS

    return _schema(tuple(DATASET_KINDS))


@functools.cache
def _schema(kinds: tuple[str, ...]) -> dict:
    """The schema file with the registered kinds as an enum (cached per registry content)."""
    loaded = yaml.safe_load(resources.files("localmer").joinpath("config.schema.yaml").read_text())
    loaded["properties"]["datasets"]["items"]["properties"]["kind"]["enum"] = list(kinds)
    return loaded


def _key(path) -> str:
    """Dotted key for a jsonschema error path: datasets[0].kind."""
    key = ""
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key or "(top level)"


def _subschema(node: dict, root: dict) -> dict:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"unsupported $ref {ref!r} in the config schema")
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _fill_defaults(instance: Any, node: dict, root: dict) -> None:
    """Insert schema defaults into ``instance`` in place (objects only, recursively)."""
    node = _subschema(node, root)
    if not isinstance(instance, dict):
        if isinstance(instance, list) and "items" in node:
            for item in instance:
                _fill_defaults(item, node["items"], root)
        return
    for name, prop in node.get("properties", {}).items():
        prop = _subschema(prop, root)
        if name not in instance and "default" in prop:
            instance[name] = copy.deepcopy(prop["default"])
        if name in instance:
            _fill_defaults(instance[name], prop, root)


def _describe(error: jsonschema.ValidationError) -> str:
    key = _key(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"config key '{key}': unknown key(s) {', '.join(map(repr, extra))}; allowed: {', '.join(allowed)}"
    if error.validator == "enum":
        allowed = ", ".join("null" if value is None else repr(value) for value in error.validator_value)
        return f"config key '{key}': {error.instance!r} is not allowed; allowed: {allowed}"
    if error.validator == "contains" and "const" in error.validator_value:
        return f"config key '{key}': {error.instance!r} must include {error.validator_value['const']!r}"
    if error.validator == "required":
        return f"config key '{key}': {error.message}"
    return f"config key '{key}': {error.message}"


def _check_schema(cfg, where: str = "", node: dict | None = None, key: str = "") -> None:
    """Validate ``cfg`` against the schema (or against ``node``, the part of it at top-level ``key``)."""
    root = schema()
    target = root if node is None else {**node, "$defs": root["$defs"]}
    errors = sorted(
        jsonschema.Draft202012Validator(target).iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path))
    )
    for error in errors:
        if key:
            error.path.appendleft(key)
    if errors:
        prefix = f"{where}: " if where else ""
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {prefix}{_describe(e)}" for e in errors))


def validate_section(key: str, value) -> None:
    """Check one top-level section (e.g. the ``synthetic`` block built from CLI flags) on its own."""
    _check_schema(value, node=schema()["properties"][key], key=key)


def deep_merge(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` applied recursively; lists and scalars are replaced whole."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _produced_by_workflow(path: Path, cfg: dict, base_dir: Path) -> bool:
    """True for paths that rule synthesize_corpus writes (they need not exist before the run)."""
    synthetic = cfg.get("synthetic", {})
    if not synthetic.get("enabled"):
        return False
    out = (base_dir / synthetic["out"]).resolve()
    return path.resolve() == out or out in path.resolve().parents


def _check_semantics(cfg: dict, base_dir: Path, check_paths: bool, where: str) -> None:
    from .datasets.registry import DATASET_KINDS
    from .tasks.registry import TASKS, is_task_table, resolve_task

    problems = []
    prefix = f"{where}: " if where else ""
    names = [d["name"] for d in cfg["datasets"]]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"config key 'datasets': dataset name {name!r} is used twice; names must be unique")
    for i, dataset in enumerate(cfg["datasets"]):
        needs = DATASET_KINDS[dataset["kind"]].annotations  # the schema admitted registered kinds only
        if needs and not dataset.get("annotations"):
            problems.append(f"config key 'datasets[{i}].annotations': required for kind {dataset['kind']!r} ({needs})")
        if not needs and dataset.get("annotations"):
            problems.append(
                f"config key 'datasets[{i}].annotations': kind {dataset['kind']!r} reads no annotation file "
                "(its labels come from its folder layout); remove the key"
            )
    problems += _flow_input_problems(cfg)
    problems += synthetic_problems(cfg["synthetic"])
    task_name = cfg["task"]["name"]
    task = None
    if not is_task_table(task_name) and task_name not in TASKS:
        problems.append(
            f"config key 'task.name': {task_name!r} is not a registered task ({', '.join(map(repr, TASKS))}) "
            "nor a task table file (.yaml)"
        )
    elif check_paths or not is_task_table(task_name):
        try:
            task = resolve_task(cfg["task"], base_dir)
        except ValueError as err:
            problems.append(f"config key 'task.name': {err}")
    if task is not None and cfg["task"].get("ground_truth") and task.reconcile is None:
        problems.append(
            f"config key 'task.ground_truth': task {task.name!r} has no ground truth to reconcile; remove the key"
        )
    if task is not None:
        problems += _protocol_problems(cfg, task)
    if check_paths:
        paths = [
            (f"datasets[{i}].{k}", d[k])
            for i, d in enumerate(cfg["datasets"])
            for k in ("root", "annotations")
            if d.get(k)
        ]
        if cfg["task"].get("ground_truth"):
            paths.append(("task.ground_truth", cfg["task"]["ground_truth"]))
        if cfg["preprocessing"]["landmarks"]["model"]:
            paths.append(("preprocessing.landmarks.model", cfg["preprocessing"]["landmarks"]["model"]))
        problems += _region_table_problems(base_dir / cfg["preprocessing"]["regions"])
        for key, value in paths:
            path = base_dir / value
            if not path.exists() and not _produced_by_workflow(path, cfg, base_dir):
                problems.append(f"config key '{key}': path {value!r} does not exist (resolved to {path})")
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {prefix}{p}" for p in problems))


def _protocol_problems(cfg: dict, task) -> list[str]:
    """Leave-one-dataset-out needs two dataset parts in the task: one to test, at least one to train."""
    if cfg["training"]["protocol"] != "lodo":
        return []
    parts = [d["name"] for d in cfg["datasets"] if d["kind"] in task.mapping]
    if len(parts) < 2:
        return [
            f"config key 'training.protocol': lodo needs at least 2 dataset parts in task {task.name!r}, "
            f"found {parts or 'none'}"
        ]
    return []


# Keys that scale a preset's corpus; without a preset there is nothing for them to scale.
PRESET_SCALING_KEYS = ("preset_subjects", "preset_frame_scale", "preset_max_frames")
PRESET_KEYS = ("preset", *PRESET_SCALING_KEYS)


def synthetic_problems(synthetic: dict) -> list[str]:
    """The synthetic block's keys that need another key: a preset scaling key needs ``synthetic.preset``."""
    if synthetic.get("preset") is not None:
        return []
    return [
        f"config key 'synthetic.{key}': applies to a preset only; set synthetic.preset or remove the key"
        for key in PRESET_SCALING_KEYS
        if synthetic.get(key) is not None
    ]


def check_synthetic(synthetic: dict) -> None:
    """Raise ConfigError for the problems ``synthetic_problems`` finds (the generator's own check)."""
    problems = synthetic_problems(synthetic)
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))


def _flow_input_problems(cfg: dict) -> list[str]:
    """``model.input: flow`` feeds the flow from the onset to every kept frame (a sequence for the temporal
    model): the flow stage must compute that pair."""
    pairs = cfg["preprocessing"]["flow"]["pairs"]
    if cfg["model"]["input"] == "flow" and "onset_frames" not in pairs:
        return [
            f"config key 'preprocessing.flow.pairs': model.input flow needs 'onset_frames' (the flow from the "
            f"onset to every kept frame), found {pairs}"
        ]
    return []


def _region_table_problems(path: Path) -> list[str]:
    from .regions import RegionTableError, load_region_table

    try:
        load_region_table(path)
    except RegionTableError as err:
        return [f"config key 'preprocessing.regions': {err}"]
    return []


def validate(cfg: dict, *, base_dir: str | Path = ".", check_paths: bool = True) -> dict:
    """Return ``cfg`` with defaults filled, after checking it and every experiment it defines.

    Raises ConfigError naming each offending key. ``base_dir`` is where relative paths start.
    """
    cfg = copy.deepcopy(cfg)
    base_dir = Path(base_dir)
    _fill_defaults(cfg, schema(), schema())
    _check_schema(cfg)
    for name in cfg["run"]:
        if name not in cfg["experiments"]:
            raise ConfigError(
                f"invalid configuration:\n  config key 'run': experiment {name!r} is not defined; "
                f"defined: {', '.join(cfg['experiments'])}"
            )
    _check_semantics(cfg, base_dir, check_paths, "")
    for name in cfg["experiments"]:
        experiment(cfg, name, base_dir=base_dir, check_paths=check_paths)
    return cfg


def experiment(cfg: dict, name: str, *, base_dir: str | Path = ".", check_paths: bool = True) -> dict:
    """The configuration of experiment ``name``: the base config with its overrides merged, validated."""
    if name not in cfg["experiments"]:
        raise ConfigError(f"unknown experiment {name!r}; defined: {', '.join(cfg['experiments'])}")
    overrides = cfg["experiments"][name] or {}
    where = f"experiments.{name}"
    for key in EXPERIMENT_SET_KEYS:
        if key in overrides:
            raise ConfigError(f"invalid configuration:\n  config key '{where}.{key}': not allowed inside an experiment")
    merged = deep_merge(cfg, overrides)
    _fill_defaults(merged, schema(), schema())
    _check_schema(merged, where)
    _check_semantics(merged, Path(base_dir), check_paths, where)
    return merged


def repeats(experiment: dict, name: str) -> dict[str, dict]:
    """The repeats of experiment ``name`` (its resolved config ``experiment``): with training.repeats
    N > 1, N experiments named ``<name>.seed<S>`` for the seeds S = seed, seed+1, ..., seed+N-1, each
    the experiment with that training seed and one repeat; {} for N = 1."""
    training = experiment["training"]
    runs = {}
    if training["repeats"] > 1:
        for seed in range(training["seed"], training["seed"] + training["repeats"]):
            runs[f"{name}.seed{seed}"] = {**experiment, "training": {**training, "seed": seed, "repeats": 1}}
    return runs


def load(path: str | Path, *, base_dir: str | Path | None = None, check_paths: bool = True) -> dict:
    """Read a YAML config file and validate it; relative paths start at ``base_dir`` (default: cwd)."""
    path = Path(path)
    cfg = read_yaml(path, "config file", ConfigError)
    if not isinstance(cfg, dict):
        raise ConfigError(f"config file {str(path)!r}: expected a mapping of keys, got {type(cfg).__name__}")
    return validate(cfg, base_dir=base_dir if base_dir is not None else Path.cwd(), check_paths=check_paths)


def with_defaults(value: dict, pointer: str) -> dict:
    """A copy of ``value`` with the defaults of the schema node at ``pointer`` filled in.

    ``pointer`` is a JSON pointer into the schema, e.g. ``#/properties/synthetic`` or
    ``#/$defs/synthetic_part``.
    """
    filled = copy.deepcopy(value)
    _fill_defaults(filled, {"$ref": pointer}, schema())
    return filled


def schema_defaults(key: str) -> dict:
    """The defaults of one top-level object key, e.g. ``schema_defaults("synthetic")``."""
    return with_defaults({}, f"#/properties/{key}")
