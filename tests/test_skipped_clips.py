"""Clips that preprocessing skipped, through training and evaluation: one skipped clip, and a subject whose
every clip was skipped. Neither reaches a fit or a prediction; the all-skipped subject's fold still runs
(the workflow makes a fold of every indexed subject) and predicts nothing; the metrics list every clip
without a prediction, and a clip that was kept but not predicted is an error."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import CLASSES, tiny_training_settings

from localmer import evaluation, training

REGION = "mouth"
REASON = "no face on frames 1..5 (5 tried) at detector upsampling [0, 1]"


@pytest.fixture(scope="module")
def skipped_run(tiny_preprocessed, tmp_path_factory) -> dict:
    """Every fold's temporal job (as the workflow's jobs start: ``prepare_fold_job`` on samples.tsv and a
    preprocessing report), its predictions pooled and evaluated as rule evaluate does. The features are
    random and hold only the usable clips, so a skipped clip reaching a job would fail it; one region's
    track keeps the temporal fits cheap (the model's region loop is the same for any number)."""
    out = tmp_path_factory.mktemp("skipped")
    samples = tiny_preprocessed["samples"]
    subjects = sorted(samples.subject.unique())
    all_skipped, partly_skipped = subjects[0], subjects[1]
    skipped_ids = [
        *samples.sample_id[samples.subject == all_skipped],
        samples.sample_id[samples.subject == partly_skipped].iloc[0],
    ]
    report = tiny_preprocessed["report"].copy()
    report.loc[report.sample_id.isin(skipped_ids), ["status", "reason"]] = ["skipped", REASON]
    samples.to_csv(out / "samples.tsv", sep="\t", index=False)
    report.to_csv(out / "report.tsv", sep="\t", index=False)
    usable_ids = sorted(set(samples.sample_id) - set(skipped_ids))
    rng = np.random.default_rng(0)
    with h5py.File(out / "features.h5", "w") as h5:
        for sample_id in usable_ids:
            h5.create_dataset(f"clips/{sample_id}/{REGION}", data=rng.random((6, 256), dtype=np.float32))

    cfg = tiny_training_settings(tiny_preprocessed)
    folds, provenance = {}, {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "REGION_NAMES", (REGION,))
        for subject in subjects:
            usable, fold = training.prepare_fold_job(
                str(out / "samples.tsv"), str(out / "report.tsv"), subject, cfg, threads=1
            )
            folder = out / subject.replace("/", "_")
            paths = {key: str(folder / f"temporal.{key}") for key in ("history", "provenance")}
            paths.update(
                model=str(folder / "temporal.keras"),
                checkpoints=str(folder / "checkpoints"),
                predictions=str(folder / "predictions.tsv"),
            )
            training.train_temporal(usable, out / "features.h5", fold, cfg, CLASSES, paths)
            folds[subject] = pd.read_csv(paths["predictions"], sep="\t")
            provenance[subject] = json.loads((folder / "temporal.provenance").read_text())
    pooled = pd.concat(folds.values(), ignore_index=True)  # as workflow/scripts/evaluate.py pools them
    pooled.to_csv(out / "predictions.tsv", sep="\t", index=False)
    predictions = evaluation.read_predictions(out / "predictions.tsv")
    document = evaluation.write_report(predictions, out / "metrics", n_boot=100, preprocessing_report=report)
    return {
        "all_skipped": all_skipped,
        "partly_skipped": partly_skipped,
        "skipped_ids": skipped_ids,
        "usable_ids": usable_ids,
        "folds": folds,
        "provenance": provenance,
        "predictions": predictions,
        "report": report,
        "document": document,
        "markdown": (out / "metrics" / "metrics.md").read_text(),
    }


def test_skipped_clips_reach_no_fit_and_no_prediction(skipped_run):
    assert sorted(skipped_run["predictions"].sample_id) == skipped_run["usable_ids"]
    for record in skipped_run["provenance"].values():
        for key in ("fit_sample_ids", "normalisation_sample_ids", "class_weight_sample_ids", "predicted_sample_ids"):
            assert not set(record[key]) & set(skipped_run["skipped_ids"]), key


def test_a_subject_whose_every_clip_was_skipped_keeps_its_fold_and_predicts_nothing(skipped_run):
    subject = skipped_run["all_skipped"]
    empty = skipped_run["folds"][subject]
    assert empty.empty and list(empty.columns) == list(skipped_run["folds"][skipped_run["partly_skipped"]].columns)
    record = skipped_run["provenance"][subject]
    assert record["test_subjects"] == [subject] and record["predicted_sample_ids"] == []
    assert set(record["fit_sample_ids"]) == set(skipped_run["usable_ids"])  # trained as if it had clips


def test_the_metrics_list_every_clip_without_a_prediction(skipped_run):
    document = skipped_run["document"]
    assert [row["sample_id"] for row in document["not_predicted"]] == skipped_run["skipped_ids"]
    assert {row["reason"] for row in document["not_predicted"]} == {REASON}
    full = document["parts"][evaluation.FULL]
    assert full["n"] == len(skipped_run["usable_ids"]) and full["not_predicted"] == len(skipped_run["skipped_ids"])
    (note,) = [note for note in full["notes"] if "no prediction" in note]
    assert skipped_run["all_skipped"] in note and f"over the {full['n']} predicted clips" in note
    dataset = skipped_run["partly_skipped"].split("/")[0]
    assert document["parts"][dataset]["not_predicted"] == 1
    assert skipped_run["all_skipped"].split("/")[0] not in document["parts"]  # nothing predicted: no part
    assert note in skipped_run["markdown"]


def test_control_a_kept_clip_without_a_prediction_is_an_error(skipped_run):
    lost = skipped_run["predictions"].iloc[1:]
    with pytest.raises(ValueError, match=f"1 clip.*kept.*{skipped_run['predictions'].sample_id.iloc[0]}"):
        evaluation.unpredicted_clips(lost, skipped_run["report"])
