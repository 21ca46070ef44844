"""Configuration: defaults, validation messages that name the key, experiments as overrides."""

from __future__ import annotations

import copy
import shutil

import pytest
import yaml
from conftest import REPO

from localmer import config, regions, tasks
from localmer.cli import main as cli
from localmer.datasets.registry import DATASET_KINDS, DatasetKind

DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def errors_of(cfg, **kwargs) -> str:
    with pytest.raises(config.ConfigError) as err:
        config.validate(cfg, base_dir=REPO, **kwargs)
    return str(err.value)


def test_default_config_is_valid_and_defaults_are_filled():
    cfg = config.validate(DEFAULT, base_dir=REPO)
    assert cfg["synthetic"]["seed"] == 2019
    assert cfg["task"] == {"name": "megc2019", "ground_truth": "results/synthetic/megc2019_gt.csv", "strict": True}
    minimal = {
        "datasets": [{"name": "smic", "kind": "smic", "root": "results/synthetic/smic/HS"}],
        "task": {"name": "megc2019"},
        "experiments": {"full": {}},
        "run": ["full"],
    }
    filled = config.validate(minimal, base_dir=REPO)
    assert filled["results"] == "results"
    assert filled["synthetic"]["image_size"] == [256, 288] and filled["synthetic"]["null"] is False
    assert filled["task"]["strict"] is True and filled["task"]["ground_truth"] is None


def test_unknown_key_is_named_with_the_allowed_keys():
    cfg = copy.deepcopy(DEFAULT)
    cfg["synthetic"]["seeed"] = 3
    message = errors_of(cfg)
    assert "config key 'synthetic': unknown key(s) 'seeed'" in message
    assert "allowed: amplitude_px, blink_probability" in message


def test_wrong_type_and_value_are_named():
    cfg = copy.deepcopy(DEFAULT)
    cfg["synthetic"]["parts"]["samm"]["subjects"] = "four"
    cfg["synthetic"]["image_size"] = [256]
    message = errors_of(cfg)
    assert "config key 'synthetic.parts.samm.subjects': 'four' is not of type 'integer'" in message
    assert "config key 'synthetic.image_size'" in message


def test_unknown_dataset_kind_lists_the_kinds():
    cfg = copy.deepcopy(DEFAULT)
    cfg["datasets"][1]["kind"] = "samm2"
    assert "config key 'datasets[1].kind': 'samm2' is not allowed; allowed: 'casme2', 'samm', 'smic', 'manifest'" in (
        errors_of(cfg)
    )


def test_the_kind_registry_drives_the_kind_values_and_the_annotations_check(monkeypatch):
    assert config.schema()["properties"]["datasets"]["items"]["properties"]["kind"]["enum"] == list(DATASET_KINDS)
    cfg = copy.deepcopy(DEFAULT)
    cfg["datasets"].append({"name": "mine", "kind": "casme3", "root": "x"})
    assert "'casme3' is not allowed; allowed: 'casme2', 'samm', 'smic', 'manifest'" in errors_of(cfg, check_paths=False)

    def read_nothing(dataset, root, annotations):
        return [], []

    # A kind that needs an annotation file: the check names the file as the registry entry does.
    monkeypatch.setitem(
        DATASET_KINDS, "casme3", DatasetKind("casme3", read_nothing, frozenset(), 200.0, "the casme3 sheet", "Filename")
    )
    message = errors_of(cfg, check_paths=False)
    assert message.count("config key") == 1
    assert "config key 'datasets[3].annotations': required for kind 'casme3' (the casme3 sheet)" in message
    # A kind that takes none: accepted without the key, an error with it.
    monkeypatch.setitem(DATASET_KINDS, "casme3", DatasetKind("casme3", read_nothing, frozenset(), 200.0, None, "path"))
    config.validate(cfg, base_dir=REPO, check_paths=False)
    cfg["datasets"][3]["annotations"] = "x.xlsx"
    assert "config key 'datasets[3].annotations': kind 'casme3' reads no annotation file" in errors_of(
        cfg, check_paths=False
    )
    assert "allowed: 'casme2', 'samm', 'smic', 'manifest', 'casme3'" in errors_of(
        {**cfg, "datasets": [{**cfg["datasets"][0], "kind": "casme4"}]}, check_paths=False
    )


def test_the_task_registry_drives_the_task_names(monkeypatch):
    cfg = copy.deepcopy(DEFAULT)
    cfg.update(task={"name": "casme2_surprise"}, experiments={"full": {}}, run=["full"])
    assert (
        "config key 'task.name': 'casme2_surprise' is not a registered task ('megc2019', 'casme2_5class', "
        "'samm_5class', 'smic_3class', 'objective_classes') nor a task table file (.yaml)"
    ) in errors_of(cfg)
    task = tasks.Task("casme2_surprise", ("surprise",), {"casme2": {"surprise": "surprise"}})
    monkeypatch.setitem(tasks.TASKS, task.name, task)
    assert config.validate(cfg, base_dir=REPO)["task"]["name"] == "casme2_surprise"
    cfg["task"]["ground_truth"] = "results/synthetic/megc2019_gt.csv"
    assert "config key 'task.ground_truth': task 'casme2_surprise' has no ground truth to reconcile" in errors_of(
        cfg, check_paths=False
    )
    assert tasks.get_task("megc2019").classes == ("negative", "positive", "surprise")
    with pytest.raises(ValueError, match=r"unknown task 'megc2020'; registered tasks: 'megc2019', .*'casme2_surprise'"):
        tasks.get_task("megc2020")


def test_the_schemas_model_inputs_are_the_input_registrys():
    from localmer import inputs

    assert config.schema()["properties"]["model"]["properties"]["input"]["enum"] == list(inputs.REPRESENTATIONS)
    cfg = copy.deepcopy(DEFAULT)
    cfg["model"]["input"] = "optical"
    assert "config key 'model.input': 'optical' is not allowed; allowed: 'onset_diff', 'raw', 'flow'" in errors_of(cfg)


def test_flow_input_needs_the_flow_from_the_onset_to_every_frame():
    cfg = copy.deepcopy(DEFAULT)
    cfg["experiments"]["flow_only_apex"] = {
        "model": {"input": "flow"},
        "preprocessing": {"flow": {"pairs": ["onset_apex"]}},
    }
    expected = (
        "experiments.flow_only_apex: config key 'preprocessing.flow.pairs': model.input flow needs 'onset_frames' "
        "(the flow from the onset to every kept frame), found ['onset_apex']"
    )
    assert expected in errors_of(cfg)
    # Control: with the pair, the same experiment is valid; and the pair is needed by flow input only.
    cfg["experiments"]["flow_only_apex"]["preprocessing"]["flow"]["pairs"].append("onset_frames")
    config.validate(cfg, base_dir=REPO)
    cfg["experiments"]["flow_only_apex"]["model"]["input"] = "raw"
    cfg["experiments"]["flow_only_apex"]["preprocessing"]["flow"]["pairs"] = ["onset_apex"]
    config.validate(cfg, base_dir=REPO)


def test_the_workflow_schema_is_the_package_schema():
    link = REPO / "workflow" / "schemas" / "config.schema.yaml"
    assert link.is_symlink() and link.resolve() == (REPO / "src" / "localmer" / "config.schema.yaml").resolve()


def test_missing_paths_are_named_unless_the_workflow_makes_them(tmp_path):
    cfg = copy.deepcopy(DEFAULT)
    cfg["datasets"].append(
        {"name": "mine", "kind": "casme2", "root": str(tmp_path / "nowhere"), "annotations": "x.xlsx"}
    )
    message = errors_of(cfg)
    assert "config key 'datasets[3].root': path" in message and "does not exist" in message
    assert "config key 'datasets[3].annotations': path 'x.xlsx' does not exist" in message
    # The corpus paths are fine while synthesize_corpus will write them, an error once it will not.
    cfg = copy.deepcopy(DEFAULT)
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "regions.yaml", tmp_path / "config")
    config.validate(cfg, base_dir=tmp_path)
    cfg["synthetic"]["enabled"] = False
    with pytest.raises(config.ConfigError, match=r"config key 'datasets\[0\].root': path 'results/synthetic/casme2'"):
        config.validate(cfg, base_dir=tmp_path)


def test_sheet_required_for_coded_datasets_and_names_unique():
    cfg = copy.deepcopy(DEFAULT)
    del cfg["datasets"][0]["annotations"]
    cfg["datasets"][2]["name"] = "samm"
    message = errors_of(cfg, check_paths=False)
    assert "config key 'datasets[0].annotations': required for kind 'casme2'" in message
    assert "dataset name 'samm' is used twice" in message


def test_experiments_are_overrides_validated_by_name():
    cfg = copy.deepcopy(DEFAULT)
    cfg["experiments"]["small"] = {"synthetic": {"parts": {"smic": {"subjects": 2}}}, "task": {"strict": False}}
    resolved = config.experiment(config.validate(cfg, base_dir=REPO), "small", base_dir=REPO)
    assert resolved["synthetic"]["parts"]["smic"]["subjects"] == 2
    assert resolved["synthetic"]["parts"]["casme2"]["subjects"] == 3  # untouched keys keep the base value
    assert resolved["task"] == {
        "name": "megc2019",
        "ground_truth": "results/synthetic/megc2019_gt.csv",
        "strict": False,
    }

    cfg["experiments"]["broken"] = {"synthetic": {"parts": {"smic": {"fps": -1}}}}
    assert "experiments.broken: config key 'synthetic.parts.smic.fps'" in errors_of(cfg)
    cfg["experiments"]["broken"] = {"run": ["full"]}
    assert "config key 'experiments.broken.run': not allowed inside an experiment" in errors_of(cfg)


def test_run_names_a_defined_experiment():
    cfg = copy.deepcopy(DEFAULT)
    cfg["run"] = ["full", "nope"]
    assert "config key 'run': experiment 'nope' is not defined; defined: full" in errors_of(cfg)


def test_cli_config_reports_errors_with_exit_code_2(tmp_path, capsys):
    bad = copy.deepcopy(DEFAULT)
    bad["task"]["name"] = "megc2020"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert cli(["config", str(path), "--base-dir", str(REPO)]) == 2
    assert "config key 'task.name': 'megc2020' is not a registered task ('megc2019', " in capsys.readouterr().err
    assert cli(["config", str(REPO / "config" / "config.yaml"), "--base-dir", str(REPO)]) == 0
    assert "seed: 2019" in capsys.readouterr().out
    path.write_text("datasets: [unclosed")
    assert cli(["config", str(path)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err


def test_the_paper_overlay_validates_and_sets_the_papers_settings():
    """config/paper.yaml over the default config (as --configfile merges it) validates, and its values are
    the seeds' (the schema's defaults for the peers and the spatial stage; the 2019 slides' temporal batch
    and epochs), on the real datasets, every frame onset..offset, region sizes auto; its placeholder paths
    are reported, naming the key, until they are replaced."""
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    merged = config.validate(config.deep_merge(copy.deepcopy(DEFAULT), paper), base_dir=REPO, check_paths=False)
    for method in ("ststnet", "off_apexnet", "lbptop_svm", "bi_woof"):
        assert merged["methods"][method] == config.schema_defaults("methods")[method], method
    assert merged["methods"]["ststnet"]["epochs"] == 500 and merged["methods"]["off_apexnet"]["epochs"] == 3000
    spatial, temporal = merged["training"]["spatial"], merged["training"]["temporal"]
    assert (spatial["epochs"], spatial["batch_size"], spatial["learning_rate"]) == (100, 64, 1e-4)
    assert spatial["apex_window"] is None
    assert (temporal["epochs"], temporal["batch_size"], temporal["learning_rate"]) == (60, 244, 5e-5)
    assert merged["preprocessing"]["frames"] == "onset_offset"
    table = regions.load_region_table(REPO / merged["preprocessing"]["regions"])
    assert {spec["size"] for spec in table.values()} == {"auto"}
    assert not merged["synthetic"]["enabled"] and {d["kind"] for d in merged["datasets"]} == {"casme2", "samm", "smic"}
    inputs = {name: config.experiment(merged, name, check_paths=False)["model"]["input"] for name in merged["run"]}
    assert inputs == {"full": "onset_diff", "raw_input": "raw"}
    assert "/data/CASME2/CASME2_RAW_selected" in errors_of(config.deep_merge(copy.deepcopy(DEFAULT), paper))


def test_the_auto_region_table_is_the_region_table_with_auto_sizes():
    """config/regions_auto.yaml (the paper's sizes) holds config/regions.yaml's landmarks and margins."""
    fixed = regions.load_region_table(REPO / "config" / "regions.yaml")
    auto = regions.load_region_table(REPO / "config" / "regions_auto.yaml")
    assert {name: {**spec, "size": "auto"} for name, spec in fixed.items()} == auto


def test_the_method_registry_drives_the_method_names():
    from localmer.methods.registry import METHODS

    # The schema keeps the list (the registry imports training code the data environment lacks).
    assert config.schema()["properties"]["method"]["enum"] == list(METHODS)
    cfg = copy.deepcopy(DEFAULT)
    cfg["experiments"]["htnet"] = {"method": "htnet"}
    assert "experiments.htnet: config key 'method': 'htnet' is not allowed; allowed: 'localmer'" in errors_of(
        cfg, check_paths=False
    )
    cfg = copy.deepcopy(DEFAULT)
    cfg["methods"] = {"ststnet": {"epochs": 0}}
    assert "config key 'methods.ststnet.epochs'" in errors_of(cfg, check_paths=False)
