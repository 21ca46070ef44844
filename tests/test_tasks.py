"""Tasks beyond the MEGC 2019 composite: their class counts on the real sheets, task tables of one's own,
the sheet check (`localmer index --sheets-only`), leave-one-dataset-out folds and repeats' metrics."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from localmer import cli, config, datasets, evaluation, tasks, training

# Per task, dataset part and class the clips of the real sheets (the SMIC-HS tree of the real layout is
# built from the MEGC 2019 ground truth's rows). The literature's counts are in docs/tasks-and-protocols.md.
REAL_COUNTS = {
    "casme2_5class": {"casme2": {"happiness": 32, "disgust": 63, "repression": 27, "surprise": 25, "others": 99}},
    "samm_5class": {"samm": {"anger": 57, "contempt": 12, "happiness": 26, "surprise": 15, "other": 26}},
    "smic_3class": {"smic": {"negative": 70, "positive": 51, "surprise": 43}},
    "objective_classes": {"samm": {"I": 24, "II": 13, "III": 20, "IV": 8, "V": 3}},
}


def counts_of(samples: pd.DataFrame) -> dict:
    return {dataset: rows.label.value_counts().to_dict() for dataset, rows in samples.groupby("dataset", sort=True)}


def test_the_task_index_and_every_clip_come_from_one_reading_of_the_datasets(real_layout, monkeypatch):
    """Rule build_index writes the task's index and every annotated clip (clips.tsv, what preprocessing
    covers): build_index_and_clips gives what the two calls give, reading each dataset once."""
    from localmer.datasets import index as index_module

    task = {"name": "casme2_5class"}
    task_index = datasets.build_index(real_layout["datasets"], task)
    every_clip = datasets.build_index(real_layout["datasets"], None).samples
    reads = []
    read_dataset = index_module.read_dataset
    monkeypatch.setattr(
        index_module, "read_dataset", lambda spec, base: reads.append(spec["name"]) or read_dataset(spec, base)
    )
    both, clips = datasets.build_index_and_clips(real_layout["datasets"], task)
    assert reads == [spec["name"] for spec in real_layout["datasets"]]
    pd.testing.assert_frame_equal(both.samples, task_index.samples)
    pd.testing.assert_frame_equal(both.excluded, task_index.excluded)
    pd.testing.assert_frame_equal(clips, every_clip)
    assert len(clips) > len(both.samples) and set(both.samples.sample_id) < set(clips.sample_id)


@pytest.mark.parametrize("name", sorted(REAL_COUNTS))
def test_each_task_counts_the_real_sheets_clips_per_part_and_class(real_layout, name):
    index = datasets.build_index(real_layout["datasets"], {"name": name})
    assert counts_of(index.samples) == REAL_COUNTS[name]
    task = tasks.get_task(name)
    assert list(index.summary().columns[1 : 1 + len(task.classes)]) == list(task.classes)
    assert set(index.samples.label_index) == set(range(len(task.classes)))
    # Nothing dropped silently: every clip read is in the task or excluded with its reason.
    assert len(index.samples) + len(index.excluded) == 255 + 159 + 164 + 1  # + SMIC's non_micro clip


def test_the_exclusions_say_why_clip_by_clip(real_layout):
    casme = datasets.build_index(real_layout["datasets"], {"name": "casme2_5class"}).excluded
    reasons = casme.reason.value_counts()
    assert reasons["emotion 'sadness' is outside the casme2_5class classes"] == 7
    assert reasons["emotion 'fear' is outside the casme2_5class classes"] == 2
    assert reasons["dataset kind 'samm' is not part of the casme2_5class task"] == 159
    objective = datasets.build_index(real_layout["datasets"], {"name": "objective_classes"}).excluded
    reasons = objective.reason.value_counts()
    assert reasons["objective class '6' is outside the objective_classes classes"] == 7
    assert reasons["objective class '7' is outside the objective_classes classes"] == 84
    assert reasons["dataset kind 'casme2' is not part of the objective_classes task"] == 255


def test_the_objective_class_column_is_read_and_checked(real_layout, tmp_path):
    from test_datasets import copy_layout_dataset, edit_cells

    index = datasets.build_index(real_layout["datasets"][1:2], {"name": "objective_classes"})
    assert set(index.samples.objective_class) == {"1", "2", "3", "4", "5"}
    spec = copy_layout_dataset(real_layout, "samm", tmp_path)
    edit_cells(spec["annotations"], "MICRO_ONLY", {(15, "Objective Classes"): "VIII"})  # the first clip
    with pytest.raises(datasets.AnnotationError, match=r"row 15, field 'Objective Classes': expected an objective"):
        datasets.build_index([spec], {"name": "objective_classes"})


# ------------------------------------------------------------------------------------------ task tables


def write_table(path, **changes):
    table = {
        "name": "casme2_pos_neg",
        "description": "CASME II, positive against negative",
        "classes": ["positive", "negative"],
        "mapping": {"casme2": {"happiness": "positive", "disgust": "negative", "repression": "negative"}},
    }
    table.update(changes)
    path.write_text(yaml.safe_dump(table))
    return path


def test_a_task_table_of_ones_own_is_configuration(real_layout, tmp_path):
    table = write_table(tmp_path / "pos_neg.yaml")
    index = datasets.build_index(real_layout["datasets"], {"name": str(table)})
    assert counts_of(index.samples) == {"casme2": {"negative": 90, "positive": 32}}
    assert index.classes == ("positive", "negative")
    # In a config: the path is the task's name; the workflow's classes come from it.
    cfg = config.load(REPO / "config" / "config.yaml", check_paths=False)
    cfg["task"] = {"name": str(table), "ground_truth": None}
    assert config.experiment(cfg, "full", check_paths=True)["task"]["name"] == str(table)
    assert training.task_classes({"task": {"name": str(table)}}) == ["positive", "negative"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, None),  # the control: the table as written loads
        ({"mapping": {"casme3": {"happiness": "positive"}}}, r"field 'mapping.casme3': unknown dataset kind"),
        (
            {"mapping": {"casme2": {"happines": "positive", "disgust": "negative"}}},
            r"field 'mapping.casme2.happines': casme2 annotates no emotion 'happines'",
        ),
        (
            {"mapping": {"casme2": {"happiness": "positive", "disgust": "bad"}}},
            r"field 'mapping.casme2.disgust': class 'bad' is not among the classes",
        ),
        ({"classes": ["positive", "negative", "surprise"]}, r"field 'classes': nothing maps to \['surprise'\]"),
        ({"classes": ["positive"]}, r"field 'classes': expected a list of at least 2 distinct names"),
        ({"name": "my task"}, r"field 'name': expected a name of letters"),
        ({"label_field": {"casme2": "aus"}}, r"field 'label_field.casme2': expected one of \['emotion'"),
        ({"colours": 3}, r"unknown key\(s\) \['colours'\]"),
    ],
)
def test_a_bad_task_table_is_a_one_line_error_naming_file_and_field(tmp_path, changes, message):
    path = write_table(tmp_path / "task.yaml", **changes)
    if message is None:
        assert tasks.load_task_table(path).classes == ("positive", "negative")
        return
    with pytest.raises(tasks.TaskTableError, match=message) as err:
        tasks.load_task_table(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_task_table_that_is_not_a_mapping_or_not_there(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(tasks.TaskTableError, match="expected a mapping with name, classes and mapping"):
        tasks.load_task_table(tmp_path / "list.yaml")
    with pytest.raises(tasks.TaskTableError, match="does not exist"):
        tasks.load_task_table(tmp_path / "absent.yaml")


def test_the_config_checks_the_task_and_the_protocol(tmp_path):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(experiments={"full": {}}, run=["full"])
    cfg["task"] = {"name": str(tmp_path / "absent.yaml")}
    with pytest.raises(config.ConfigError, match=r"config key 'task.name': task table .*does not exist"):
        config.validate(cfg, check_paths=True)
    cfg["task"] = {"name": "smic_3class", "ground_truth": None}
    cfg["training"] = {"protocol": "lodo"}
    with pytest.raises(config.ConfigError, match=r"lodo needs at least 2 dataset parts in task 'smic_3class'"):
        config.validate(cfg, check_paths=False)
    cfg["task"] = {"name": "megc2019"}
    assert config.validate(cfg, check_paths=False)["training"]["protocol"] == "lodo"


# ------------------------------------------------------------------------------------------ sheet check


def sheets_config(real_layout, tmp_path, task: dict) -> str:
    cfg = copy.deepcopy(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    cfg.update(synthetic={"enabled": False}, datasets=real_layout["datasets"], task=task)
    cfg.update(experiments={"full": {}}, run=["full"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_the_sheet_check_reads_no_frame_and_prints_counts_exclusions_and_the_ground_truth(
    real_layout, tmp_path, capsys
):
    # The sheets without any frame folder: the CASME II and SAMM roots are empty folders.
    frameless = [dict(spec) for spec in real_layout["datasets"]]
    for spec in frameless[:2]:
        spec["root"] = str(tmp_path / spec["name"])
        (tmp_path / spec["name"]).mkdir()
    with pytest.raises(datasets.AnnotationError, match="frame folder"):
        datasets.build_index(frameless, {"name": "casme2_5class"})  # the control: frames are needed otherwise
    index = datasets.build_index(frameless, {"name": "casme2_5class"}, attach_frames=False)
    assert counts_of(index.samples) == REAL_COUNTS["casme2_5class"] and set(index.samples.n_frames) == {0}

    task = {"name": "megc2019", "ground_truth": str(real_layout["gt"]), "strict": True}
    layout = {**real_layout, "datasets": frameless}
    assert cli.main(["index", "--config", sheets_config(layout, tmp_path, task), "--sheets-only"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert out.startswith("task megc2019: clips per dataset part and class (from the annotations, no frame read)")
    assert ["casme2", "88", "32", "25", "145", "24"] in lines and ["samm", "92", "26", "15", "133", "28"] in lines
    assert ["FULL", "250", "109", "83", "442", "68"] in lines
    assert "excluded: 137 clip(s)" in out
    assert "  casme2: 99 x emotion 'others' is outside the megc2019 classes" in out
    assert "  casme2: 1 x not in the MEGC 2019 ground truth (notes: apex equals onset)" in out
    assert f"ground truth {real_layout['gt']}: 2 excluded_not_in_gt, 442 match" in out

    # A ground truth that disagrees (task.strict false): every difference, clip by clip.
    gt = tmp_path / "gt.csv"
    gt.write_bytes(real_layout["gt"].read_bytes().replace(b"casme2,sub01,EP02_01f,1", b"casme2,sub01,EP02_01f,2"))
    task.update(ground_truth=str(gt), strict=False)
    assert cli.main(["index", "--config", sheets_config(layout, tmp_path, task), "--sheets-only"]) == 0
    out = capsys.readouterr().out
    assert "1 label_mismatch" in out
    assert "  label_mismatch: casme2/sub01/EP02_01f (GT surprise, ours positive)" in out


def test_a_sheet_that_does_not_parse_exits_with_status_2(real_layout, tmp_path, capsys):
    broken = tmp_path / "CASME2-coding-20140508.xlsx"
    broken.write_bytes(real_layout["casme_sheet"].read_bytes()[:2000])  # a truncated workbook
    layout = {**real_layout, "datasets": [{**real_layout["datasets"][0], "annotations": str(broken)}]}
    task = {"name": "casme2_5class", "ground_truth": None}
    assert cli.main(["index", "--config", sheets_config(layout, tmp_path, task), "--sheets-only"]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "not a readable .xlsx workbook" in err


# ------------------------------------------------------------------------------------------ protocols


SUBJECTS = ["casme2/sub01", "casme2/sub02", "samm/006", "samm/007", "samm/008", "smic/s01", "smic/s02"]


def test_leave_one_dataset_out_holds_out_a_whole_part_and_draws_validation_from_the_others():
    folds = training.make_folds(SUBJECTS, validation_subjects=1, seed=3, protocol="lodo")
    assert [f.name for f in folds] == ["casme2", "samm", "smic"] == training.fold_names(SUBJECTS, "lodo")
    for fold in folds:
        assert fold.test_subjects == tuple(s for s in SUBJECTS if s.startswith(f"{fold.name}/"))
        training_side = set(fold.train_subjects) | set(fold.validation_subjects)
        assert not training_side & set(fold.test_subjects)
        assert training_side | set(fold.test_subjects) == set(SUBJECTS) and len(fold.validation_subjects) == 1
    # The guard every fit runs: a test subject's clip among the training clips is refused.
    samples = pd.DataFrame({"subject": SUBJECTS})
    folds[0].check(samples[samples.subject.str.startswith("samm")], samples.iloc[:0])
    with pytest.raises(AssertionError, match=r"test subject\(s\) \['casme2/sub02'\] reached the training data"):
        folds[0].check(samples[samples.subject != "casme2/sub01"], samples.iloc[:0])
    loso = training.make_folds(SUBJECTS, protocol="loso")
    assert [f.name for f in loso] == SUBJECTS and all(f.test_subjects == (f.name,) for f in loso)
    with pytest.raises(ValueError, match="lodo needs at least 2 dataset parts, got 1"):
        training.make_folds(SUBJECTS[:2], protocol="lodo")


def test_a_lodo_fold_is_found_by_its_dataset_name():
    samples = pd.DataFrame({"subject": SUBJECTS})
    settings = {"training": {"protocol": "lodo", "validation_subjects": 0, "seed": 1}}
    fold = training.fold_by_name(samples, "samm", settings)
    assert fold.test_subjects == ("samm/006", "samm/007", "samm/008") and len(fold.train_subjects) == 4
    with pytest.raises(ValueError, match=r"no lodo fold 'samm/006': folds are \['casme2', 'samm', 'smic'\]"):
        training.fold_by_name(samples, "samm/006", settings)


def repeat_predictions(seeds, rng) -> pd.DataFrame:
    classes = evaluation.MEGC2019_CLASSES
    rows = []
    for seed in seeds:
        for subject in range(8):
            for clip in range(3):
                rows.append(
                    {
                        "sample_id": f"casme2/s{subject}/c{clip}",
                        "dataset": "casme2",
                        "subject": f"casme2/s{subject}",
                        "true": classes[clip],
                        "predicted": classes[clip] if rng.random() < 0.6 else classes[(clip + 1) % 3],
                        "seed": seed,
                    }
                )
    return pd.DataFrame(rows)


def test_repeats_report_each_seeds_pooled_figure_their_mean_spread_and_an_interval_of_the_mean(tmp_path):
    table = repeat_predictions([2019, 2020, 2021], np.random.default_rng(0))
    path = tmp_path / "predictions.tsv"
    table.to_csv(path, sep="\t", index=False)
    predictions = evaluation.read_predictions(path)  # a clip once per seed is not a duplicate
    document = evaluation.write_report(predictions, tmp_path / "out", n_boot=200, seed=0)
    full = document["parts"]["FULL"]
    # Each seed's figure is the pooled score of that seed's predictions alone, computed independently.
    expected = {}
    for seed, rows in table.groupby("seed"):
        alone = evaluation.evaluate(rows.drop(columns="seed"), n_boot=10)["FULL"]
        expected[str(seed)] = (alone["uf1"], alone["uar"])
    assert {seed: (f["uf1"], f["uar"]) for seed, f in full["per_seed"].items()} == expected
    uf1 = np.array([value[0] for value in expected.values()])
    assert full["uf1"] == pytest.approx(uf1.mean()) and full["uf1_sd"] == pytest.approx(uf1.std(ddof=1))
    assert full["n"] == 24 and full["repeats"] == 3 and full["uf1_sd"] > 0
    low, high = full["ci"]["uf1"]
    assert low < full["uf1"] < high
    # The interval of a mean over seeds is narrower than one seed's alone (a control that it is that mean's).
    one = evaluation.evaluate(table[table.seed == 2019].drop(columns="seed"), n_boot=200, seed=0)["FULL"]["ci"]
    assert high - low < one["uf1"][1] - one["uf1"][0]
    assert " ± " in (tmp_path / "out" / "metrics.md").read_text()
    # The tables show the spread.
    ablation = evaluation.ablation_table({"full_3seeds": tmp_path / "out" / "metrics.json"})
    assert ablation["FULL_uf1_sd"].iloc[0] == pytest.approx(full["uf1_sd"])
    assert " ± " in evaluation.ablation_markdown(ablation)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["parts"]["FULL"]["per_seed"]


def test_repeats_of_an_experiment_are_experiments_with_their_seeds():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg = config.validate(cfg, check_paths=False)
    experiment = config.experiment(cfg, "full_3seeds", check_paths=False)
    runs = config.repeats(experiment, "full_3seeds")
    assert list(runs) == ["full_3seeds.seed2019", "full_3seeds.seed2020", "full_3seeds.seed2021"]
    assert [run["training"]["seed"] for run in runs.values()] == [2019, 2020, 2021]
    assert all(run["training"]["repeats"] == 1 for run in runs.values())
    assert config.repeats(config.experiment(cfg, "full", check_paths=False), "full") == {}


def test_localmer_metrics_scores_the_classes_of_the_task_it_is_given(tmp_path, capsys):
    rows = [
        {"sample_id": f"casme2/s{i}/c{j}", "dataset": "casme2", "subject": f"casme2/s{i}", "true": c, "predicted": c}
        for i in range(3)
        for j, c in enumerate(["happiness", "disgust", "others"])
    ]
    path = tmp_path / "predictions.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    assert cli.main(["metrics", str(path), "--task", "casme2_5class", "--bootstrap", "10"]) == 0
    assert "| FULL | 9 | 1.0000 | 1.0000 |" in capsys.readouterr().out
    # The control: the default task (megc2019) has no class 'happiness'.
    assert cli.main(["metrics", str(path), "--bootstrap", "10"]) == 2
    assert "unknown label 'happiness'" in capsys.readouterr().err
