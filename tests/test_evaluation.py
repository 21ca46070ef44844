"""Evaluation under the MEGC 2019 protocol: pooled metrics, the absent-class rule, intervals, reports."""

from __future__ import annotations

import json
import math

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from localmer import evaluation
from localmer.tasks.megc2019 import MEGC2019_CLASSES as MEGC

PUBLISHED = [[231, 12, 7], [11, 97, 1], [8, 1, 74]]  # the 2019 FULL matrix, rows true, cols predicted


def rows_from(pairs, dataset="casme2", subject="s1", start=0) -> list[dict]:
    """Prediction rows for (true, predicted) class-name pairs."""
    return [
        {
            "sample_id": f"{dataset}/{subject}/clip{start + i}",
            "dataset": dataset,
            "subject": f"{dataset}/{subject}",
            "true": t,
            "predicted": p,
        }
        for i, (t, p) in enumerate(pairs)
    ]


def table_from_matrix(matrix, subjects=10, dataset="casme2") -> pd.DataFrame:
    """A predictions table realising a confusion matrix, samples dealt round-robin over subjects."""
    pairs = [(MEGC[t], MEGC[p]) for t, row in enumerate(matrix) for p, count in enumerate(row) for _ in range(count)]
    rows = []
    for i, pair in enumerate(pairs):
        rows += rows_from([pair], dataset=dataset, subject=f"sub{i % subjects:02d}", start=i)
    return pd.DataFrame(rows)


def write_tsv(path, rows, sep="\t") -> None:
    pd.DataFrame(rows).to_csv(path, sep=sep, index=False)


def four_decimals(value: float) -> float:
    """Truncated to 4 decimals, as the paper reports: its UF1 0.9022 is 0.902272... (rounding gives 0.9023)."""
    return math.floor(value * 10_000) / 10_000


def test_published_matrix_from_scores_and_from_predictions():
    direct = evaluation.scores(np.array(PUBLISHED), MEGC)
    published = (0.9095, 0.9018, 0.9022)
    assert (four_decimals(direct["accuracy"]), four_decimals(direct["uar"]), four_decimals(direct["uf1"])) == published
    # Exact values: F1 = 2 TP / (support + predicted) per class, then the plain mean.
    assert direct["accuracy"] == pytest.approx(402 / 442)
    assert direct["uar"] == pytest.approx((231 / 250 + 97 / 109 + 74 / 83) / 3)
    assert direct["uf1"] == pytest.approx((462 / 500 + 194 / 219 + 148 / 165) / 3)
    assert direct["n"] == 442 and direct["classes_present"] == list(MEGC)
    assert [direct["per_class"][c]["support"] for c in MEGC] == [250, 109, 83]

    table = table_from_matrix(PUBLISHED)
    assert evaluation.confusion(table["true"], table["predicted"], MEGC).tolist() == PUBLISHED
    full = evaluation.evaluate(table, n_boot=50)["FULL"]
    assert (four_decimals(full["accuracy"]), four_decimals(full["uar"]), four_decimals(full["uf1"])) == published
    assert full["confusion"] == PUBLISHED


def test_uf1_and_uar_are_pooled_over_folds_not_averaged_per_fold():
    # Subject A is all correct (fold UF1 = UAR = 1); subject B gets F1 0, 0.5, 1 (fold UF1 = UAR = 0.5).
    fold_a = rows_from([("negative",) * 2, ("negative",) * 2, ("positive",) * 2, ("surprise",) * 2], subject="a")
    fold_b = rows_from(
        [("negative", "positive"), ("positive", "positive"), ("positive", "negative"), ("surprise", "surprise")],
        subject="b",
    )
    table = pd.DataFrame(fold_a + fold_b)
    per_fold = [
        evaluation.scores(evaluation.confusion(rows["true"], rows["predicted"], MEGC), MEGC)
        for _, rows in table.groupby("subject")
    ]
    assert np.mean([s["uf1"] for s in per_fold]) == pytest.approx(0.75)
    assert np.mean([s["uar"] for s in per_fold]) == pytest.approx(0.75)

    full = evaluation.evaluate(table, n_boot=20)["FULL"]
    # Pooled: TP/FP/FN = neg 2/1/1, pos 2/1/1, sur 2/0/0 -> F1 = recall = 2/3, 2/3, 1.
    assert full["uf1"] == pytest.approx(7 / 9)
    assert full["uar"] == pytest.approx(7 / 9)


def test_integer_and_name_labels_give_identical_results(tmp_path):
    table = table_from_matrix([[5, 2, 1], [1, 6, 0], [2, 0, 4]], subjects=4)
    names, integers, mixed = tmp_path / "names.tsv", tmp_path / "integers.tsv", tmp_path / "mixed.csv"
    table.to_csv(names, sep="\t", index=False)
    as_index = {c: i for i, c in enumerate(MEGC)}
    table.assign(true=table["true"].map(as_index), predicted=table["predicted"].map(as_index)).to_csv(
        integers, sep="\t", index=False
    )
    # Comma-separated, names in odd case and integers mixed in one column.
    table.assign(true=table["true"].str.upper(), predicted=[str(as_index[p]) for p in table["predicted"]]).to_csv(
        mixed, index=False
    )
    results = [evaluation.evaluate(evaluation.read_predictions(p), n_boot=50) for p in (names, integers, mixed)]
    assert results[0] == results[1] == results[2]
    assert evaluation.read_predictions(mixed)["true"].isin(MEGC).all()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"true": ["negative", "joy"]}, ["row 2", "'true'", "'joy'"]),
        ({"predicted": ["5", "0"]}, ["row 1", "'predicted'", "out of range"]),
        ({"predicted": ["negative", ""]}, ["row 2", "'predicted'", "empty"]),
        ({"prob_negative": ["0.5", "high"]}, ["row 2", "'prob_negative'"]),
    ],
)
def test_bad_labels_name_file_row_and_column(tmp_path, change, expected):
    rows = pd.DataFrame(rows_from([("negative", "negative"), ("positive", "positive")]))
    for column, values in change.items():
        rows[column] = values
    path = tmp_path / "predictions.tsv"
    rows.to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError) as error:
        evaluation.read_predictions(path)
    for text in [str(path), *expected]:
        assert text in str(error.value)


def test_bad_files_raise_value_error(tmp_path):
    missing = tmp_path / "missing.tsv"
    write_tsv(missing, [{k: v for k, v in row.items() if k != "predicted"} for row in rows_from([("negative",) * 2])])
    with pytest.raises(ValueError, match=r"missing\.tsv.*'predicted'"):
        evaluation.read_predictions(missing)
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.tsv.*empty file"):
        evaluation.read_predictions(empty)
    header_only = tmp_path / "header.tsv"
    header_only.write_text("sample_id\tdataset\ttrue\tpredicted\n")
    with pytest.raises(ValueError, match="no data rows"):
        evaluation.read_predictions(header_only)
    duplicate = tmp_path / "duplicate.tsv"
    write_tsv(duplicate, rows_from([("negative",) * 2]) * 2)
    with pytest.raises(ValueError, match=r"row 2 \(line 3\), column 'sample_id'.*duplicate"):
        evaluation.read_predictions(duplicate)


def test_absent_class_rule(tmp_path):
    # Part "a": no surprise clips, but one clip predicted surprise.
    part_a = rows_from(
        [("negative", "negative"), ("negative", "negative"), ("negative", "surprise")] + [("positive", "positive")] * 2,
        dataset="a",
    )
    # Part "b": positive is present but never predicted.
    part_b = rows_from([("negative", "negative"), ("positive", "negative"), ("surprise", "surprise")], dataset="b")
    # Part "c": positive and surprise absent and never predicted.
    part_c = rows_from([("negative", "negative")] * 2, dataset="c")
    table = pd.DataFrame(part_a + part_b + part_c)
    # Two subjects per part, so that every part has an interval (one subject has none).
    table["subject"] = table["dataset"] + "/s" + (table.index % 2).astype(str)
    document = evaluation.write_report(table, tmp_path / "report", n_boot=100)
    metrics = document["parts"]

    a = metrics["a"]
    assert a["classes_present"] == ["negative", "positive"]
    assert a["per_class"]["surprise"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    assert a["uar"] == pytest.approx((2 / 3 + 1) / 2)  # the false surprise lowers negative's recall
    assert a["uf1"] == pytest.approx((0.8 + 1.0) / 2)
    assert any("absent" in note for note in a["notes"])

    b = metrics["b"]
    assert b["per_class"]["positive"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert b["uar"] == pytest.approx(2 / 3)

    c = metrics["c"]
    assert c["classes_present"] == ["negative"]
    assert c["per_class"]["positive"]["precision"] is None and c["per_class"]["surprise"]["precision"] is None
    assert c["uf1"] == c["uar"] == 1.0
    assert c["ci"]["uf1"] == [1.0, 1.0]

    json.dumps(document, allow_nan=False)
    on_disk = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert evaluation.ABSENT_CLASS_RULE in on_disk["notes"]
    assert "NaN" not in (tmp_path / "report" / "metrics.json").read_text()
    assert "| a | surprise | 0 | 0.0000 | n/a | n/a |" in (tmp_path / "report" / "metrics.md").read_text()
    assert not pd.read_csv(tmp_path / "report" / "metrics.tsv", sep="\t").isna().any().any()


def noisy_table(subjects=20, per_subject=12, accuracy=0.75, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(subjects):
        true = rng.integers(0, 3, per_subject)
        wrong = (true + rng.integers(1, 3, per_subject)) % 3
        predicted = np.where(rng.random(per_subject) < accuracy, true, wrong)
        pairs = [(MEGC[t], MEGC[p]) for t, p in zip(true, predicted, strict=True)]
        rows += rows_from(pairs, subject=f"sub{s:02d}")
    return pd.DataFrame(rows)


def test_bootstrap_is_deterministic_and_contains_the_estimate():
    table = noisy_table()
    first = evaluation.bootstrap(table, MEGC, n_boot=300, seed=3)
    assert first == evaluation.bootstrap(table, MEGC, n_boot=300, seed=3)
    # Row order does not matter, only the rows and the seed.
    assert first == evaluation.bootstrap(table.sample(frac=1, random_state=0), MEGC, n_boot=300, seed=3)
    assert first != evaluation.bootstrap(table, MEGC, n_boot=300, seed=4)
    assert first["unit"] == "subject" and first["n_units"] == 20 and first["n_boot"] == 300

    point = evaluation.scores(evaluation.confusion(table["true"], table["predicted"], MEGC), MEGC)
    for metric in ("uf1", "uar"):
        low, high = first[metric]
        assert low < point[metric] < high
        assert high - low < 0.3


def test_bootstrap_level_widens_the_interval_and_is_checked():
    table = noisy_table()
    usual = evaluation.bootstrap(table, MEGC, n_boot=300, seed=3)
    wider = evaluation.bootstrap(table, MEGC, n_boot=300, seed=3, level=0.99)
    assert usual["level"] == 0.95 and wider["level"] == 0.99
    for metric in ("uf1", "uar"):
        assert wider[metric][0] < usual[metric][0] and usual[metric][1] < wider[metric][1]
    with pytest.raises(ValueError, match="level must be between 0 and 1, got 95"):
        evaluation.bootstrap(table, MEGC, level=95)


def test_bootstrap_all_correct_is_one():
    table = pd.DataFrame(
        rows_from([(c, c) for c in MEGC] * 3, subject="a") + rows_from([(c, c) for c in MEGC], subject="b")
    )
    ci = evaluation.bootstrap(table, MEGC, n_boot=200)
    assert ci["uf1"] == [1.0, 1.0] and ci["uar"] == [1.0, 1.0]


def test_bootstrap_resamples_whole_subjects():
    perfect = rows_from([(c, c) for c in MEGC] * 10, subject="perfect")
    # Every prediction wrong: F1 0 for every class.
    wrong = rows_from([(c, MEGC[(i + 1) % 3]) for i, c in enumerate(MEGC)] * 10, subject="wrong", start=100)
    table = pd.DataFrame(perfect + wrong)
    by_subject = evaluation.bootstrap(table, MEGC, n_boot=500)
    by_sample = evaluation.bootstrap(table, MEGC, n_boot=500, unit="sample")
    # A quarter of the subject resamples are 'wrong' twice (UF1 0), a quarter 'perfect' twice (UF1 1).
    assert by_subject["uf1"] == [0.0, 1.0]
    assert by_subject["uar"] == [0.0, 1.0]
    assert by_sample["unit"] == "sample" and by_sample["n_units"] == 60
    assert np.diff(by_sample["uf1"])[0] < 0.5


def test_a_part_with_one_subject_has_no_interval_and_says_so(tmp_path):
    one = noisy_table(subjects=1, per_subject=30).assign(dataset="casme2")
    two = noisy_table(subjects=2, per_subject=30, seed=2).assign(dataset="samm")
    two["sample_id"] = "samm/" + two["sample_id"]
    document = evaluation.write_report(pd.concat([one, two], ignore_index=True), tmp_path / "report", n_boot=200)
    parts = document["parts"]
    assert parts["casme2"]["ci"]["uf1"] is None and parts["casme2"]["ci"]["uar"] is None
    assert parts["casme2"]["ci"]["n_units"] == 1
    assert "casme2: one subject: no interval over subjects" in " ".join(parts["casme2"]["notes"])
    # Control: two subjects give a real interval, and no such note.
    for name in ("samm", evaluation.FULL):
        low, high = parts[name]["ci"]["uf1"]
        assert low < high, name
        assert not any("no interval" in note for note in parts[name]["notes"])

    markdown = (tmp_path / "report" / "metrics.md").read_text()
    assert "| casme2 | 30 |" in markdown and "| n/a (one subject) |" in markdown
    assert "one subject: no interval over subjects" in markdown
    summary = pd.read_csv(tmp_path / "report" / "metrics.tsv", sep="\t", keep_default_na=False).set_index("part")
    assert summary.loc["casme2", ["uf1_lo", "uf1_hi", "uar_lo", "uar_hi"]].tolist() == ["n/a"] * 4
    assert "n/a" not in summary.loc["samm"].tolist()
    assert "null" in (tmp_path / "report" / "metrics.json").read_text()

    table = evaluation.ablation_table({"full": tmp_path / "report" / "metrics.json"})
    ablation = evaluation.ablation_markdown(table)
    row = next(line for line in ablation.splitlines() if line.startswith("| full |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert [cell.endswith("(no interval)") for cell in cells[1:]] == [False, True, False]  # FULL, casme2, samm
    assert "(no interval): one subject: no interval over subjects" in ablation


def test_parts_are_full_and_each_dataset():
    table = pd.concat(
        [table_from_matrix([[4, 1, 0], [0, 3, 1], [1, 0, 2]], dataset=d, subjects=3) for d in ("smic", "casme2")]
    )
    metrics = evaluation.evaluate(table, n_boot=50)
    assert list(metrics) == ["FULL", "casme2", "smic"]
    assert metrics["FULL"]["n"] == metrics["casme2"]["n"] + metrics["smic"]["n"] == 24
    assert metrics["FULL"]["confusion"] == [[8, 2, 0], [0, 6, 2], [2, 0, 4]]


def test_without_subject_column_intervals_are_over_samples(tmp_path):
    path = tmp_path / "predictions.tsv"
    table_from_matrix([[4, 1, 0], [0, 3, 1], [1, 0, 2]]).drop(columns="subject").to_csv(path, sep="\t", index=False)
    document = evaluation.write_report(evaluation.read_predictions(path), tmp_path / "out", n_boot=50)
    assert document["parts"]["FULL"]["ci"]["unit"] == "sample"
    assert any("resample samples" in note for note in document["notes"])
    assert "whole samples" in evaluation.format_table(document)


def test_write_report_files(tmp_path):
    table = pd.concat(
        [
            table_from_matrix([[6, 1, 1], [1, 5, 0], [0, 1, 4]], dataset="casme2", subjects=4),
            table_from_matrix([[5, 2, 0], [1, 3, 1], [1, 0, 3]], dataset="samm", subjects=3),
        ]
    )
    out = tmp_path / "report"
    document = evaluation.write_report(table, out, n_boot=100)
    assert json.loads((out / "metrics.json").read_text()) == document

    summary = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert list(summary.columns) == evaluation.TSV_COLUMNS
    assert list(summary["part"]) == ["FULL", "casme2", "samm"]
    assert summary.loc[0, "uf1"] == pytest.approx(document["parts"]["FULL"]["uf1"], abs=1e-6)

    markdown = (out / "metrics.md").read_text()
    for part in ("FULL", "casme2", "samm"):
        assert f"| {part} |" in markdown
        matrix = pd.read_csv(out / "confusion" / f"{part}.tsv", sep="\t", index_col=0)
        assert list(matrix.index) == list(MEGC) and list(matrix.columns) == list(MEGC)
        assert matrix.to_numpy().tolist() == document["parts"][part]["confusion"]
        image = matplotlib.image.imread(out / "confusion" / f"{part}.png")
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert evaluation.format_table(document) == evaluation.format_table(document["parts"])


def test_ablation_table_compares_experiments(tmp_path):
    rows = []
    for i, (true, predicted) in enumerate(
        [("negative", "negative"), ("positive", "positive"), ("surprise", "negative")]
    ):
        rows.append(
            {
                "sample_id": f"casme2/s{i}/c",
                "dataset": "casme2",
                "subject": f"casme2/s{i}",
                "true": true,
                "predicted": predicted,
            }
        )
    good = pd.DataFrame(rows)
    bad = good.assign(predicted=["surprise", "negative", "positive"])
    evaluation.write_report(good, tmp_path / "full", n_boot=100)
    evaluation.write_report(bad, tmp_path / "no_se", n_boot=100)
    table = evaluation.ablation_table(
        {"full": tmp_path / "full" / "metrics.json", "no_se": tmp_path / "no_se" / "metrics.json"}
    )
    assert table.experiment.tolist() == ["full", "no_se"]
    assert table.FULL_uar.round(4).tolist() == [round(2 / 3, 4), 0.0]
    markdown = evaluation.ablation_markdown(table)
    assert "| experiment | FULL UF1 / UAR | casme2 UF1 / UAR |" in markdown
    assert "| no_se | 0.0000 / 0.0000 |" in markdown


def test_run_summary_marks_metrics_this_run_did_not_compute(tmp_path):
    """The end-of-run summary: metrics written after the run started are this run's; an older file's
    figures are marked unchanged since its time, not printed as if new; a missing one is said so."""
    import os
    from datetime import datetime

    metrics = {"FULL": {"uf1": 0.5, "uar": 0.25, "n": 12}}
    for name in ("old", "new"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps({"parts": metrics}))
    started = datetime(2026, 3, 1, 12, 0).timestamp()
    os.utime(tmp_path / "old" / "metrics.json", (started - 3600, started - 3600))
    os.utime(tmp_path / "new" / "metrics.json", (started + 60, started + 60))
    files = {name: tmp_path / name / "metrics.json" for name in ("old", "new", "absent")}
    old, new, absent = evaluation.run_summary(files, started)
    assert old.startswith("localmer old (unchanged since 2026-03-01 11:00, from an earlier run): FULL UF1 0.5000")
    assert new.startswith("localmer new (computed by this run): FULL UF1 0.5000  UAR 0.2500  (n = 12;")
    assert absent == f"localmer absent: no metrics ({files['absent']} not written yet)"
