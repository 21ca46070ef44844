"""One LOSO fold of a peer method: fit on the fold's training subjects' cached inputs, predict its test
subject's, write the same predictions table as the seed's method (``localmer.training.train_temporal``).

Leak-free as the seed's pipeline: the folds are ``localmer.training``'s (validation subjects carved from
the training subjects, for early stopping only), the method's ``fit`` receives the training subjects'
inputs and labels and nothing else, so everything it fits (weights, mean image, feature scaling, class
weights) comes from them; the test subject's inputs reach only ``predict``. The provenance file records
the clips of each role; tests/test_methods_leakage.py proves the property by perturbation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import __version__
from ..atomic import atomic_output
from ..training import Fold, predictions_table, remove_checkpoints, write_json
from .inputs import load_inputs
from .method import Fitted
from .registry import get_method


def _targets(table: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    return np.array([list(classes).index(label) for label in table.label], dtype=np.int64)


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def train_fold(
    samples: pd.DataFrame,
    input_files: dict[str, str],
    fold: Fold,
    settings: dict,
    classes: Sequence[str],
    out: dict[str, str],
) -> tuple[pd.DataFrame, Fitted]:
    """Fit experiment ``settings``' method on ``fold`` and predict its test subject.

    ``out`` holds paths: model (the method's ``model_suffix``), predictions (TSV), provenance (JSON),
    checkpoints (a folder outside the workflow's outputs, for an exact resume), and for deep methods
    history (TSV). Returns the predictions (empty when every test clip was skipped by preprocessing) and
    the fitted method.
    The probability columns of a method whose scores are not probabilities (an SVM's decision values)
    hold their softmax: they rank the classes as the scores do; they are not calibrated.
    """
    name = settings["method"]
    method = get_method(name)
    if method.fit is None:
        raise ValueError(f"method {name!r} is not fitted per fold on cached inputs (its stages are the workflow's)")
    method_settings = settings["methods"][name]
    train = samples[samples.subject.isin(fold.train_subjects)].reset_index(drop=True)
    validation = samples[samples.subject.isin(fold.validation_subjects)].reset_index(drop=True)
    test = samples[samples.subject.isin(fold.test_subjects)].reset_index(drop=True)
    fold.check(train, validation)
    if train.empty:
        raise ValueError(f"fold {fold.name}: no training clip")

    x_train, y_train = load_inputs(input_files, train, name), _targets(train, classes)
    validation_data = None
    if len(validation):
        validation_data = (load_inputs(input_files, validation, name), _targets(validation, classes))
    fitted = method.fit(
        x_train,
        y_train,
        len(classes),
        method_settings,
        seed=settings["training"]["seed"],
        validation=validation_data,
        checkpoint_dir=out["checkpoints"],
        label=f"fold {fold.name} {name}",
    )
    with atomic_output(out["model"]) as partial:
        fitted.save(str(partial))
    if out.get("history"):
        with atomic_output(out["history"]) as partial:
            fitted.history.to_csv(partial, sep="\t", index=False)

    scores = fitted.predict(load_inputs(input_files, test, name)) if len(test) else np.zeros((0, len(classes)))
    # The softmax keeps the scores' order, so the predicted class is the scores' argmax either way.
    probabilities = scores if fitted.scores_are_probabilities else _softmax(scores)
    predictions = predictions_table(test, probabilities, classes)
    with atomic_output(out["predictions"]) as partial:
        predictions.to_csv(partial, sep="\t", index=False)
    provenance = {
        "stage": "method",
        "method": name,
        "fold": fold.name,
        "test_subjects": list(fold.test_subjects),
        "fit_sample_ids": sorted(train.sample_id),
        "validation_sample_ids": sorted(validation.sample_id),
        "predicted_sample_ids": sorted(test.sample_id),
        "fitted": sorted(fitted.arrays()),  # every parameter and statistic fitted, from fit_sample_ids only
        "classes": list(classes),
        "settings": method_settings,
        "localmer_version": __version__,
    }
    write_json(out["provenance"], provenance)
    remove_checkpoints(out["checkpoints"])
    return predictions, fitted


def fold_settings(experiment: dict) -> dict:
    """The part of an experiment's config a peer method's fold depends on: the method and its settings,
    the folds (training seed, protocol and validation subjects), the task and the datasets. The seed's
    model and training sections are not in it, so changing them does not refit the peers."""
    name = experiment["method"]
    training = experiment["training"]
    return {
        "method": name,
        "methods": {name: experiment["methods"][name]},
        "training": {key: training[key] for key in ("seed", "protocol", "validation_subjects")},
        "task": experiment["task"],
        "datasets": experiment["datasets"],
    }
