"""Evaluation under the MEGC 2019 protocol: pooled predictions -> metrics, intervals, confusion matrices.

The predictions of all LOSO folds are pooled into one table (``read_predictions``): one row per test
clip with ``sample_id``, ``dataset``, ``true``, ``predicted`` and optionally ``subject`` and
``prob_<class>`` columns. Every part — ``FULL`` (all rows) and each ``dataset`` value — is scored from a
single confusion matrix over all of that part's predictions:

- accuracy = trace / n
- UAR = mean per-class recall
- UF1 = mean per-class F1, with F1 = 2 TP / (2 TP + FP + FN) and TP/FP/FN summed over all folds.
  Averaging UF1 per fold, or dropping classes a fold lacks, gives a different (wrong) number.
- per-class precision, recall, F1 and support
- 95 % percentile bootstrap intervals for UF1 and UAR, resampling whole subjects with replacement and
  scoring each resample's pooled confusion matrix. Without a ``subject`` column the resampling unit is
  the sample, and the output says so. A part with one subject has no interval (``ci.uf1``/``ci.uar``
  null, "n/a (one subject)" in tables, a note): every resample of one subject is that subject, so the
  percentiles would be a zero-width interval that looks like certainty.

Clips not predicted. Given the preprocessing report (``unpredicted_clips``), every indexed clip missing from
the predictions is listed in the output (``not_predicted``, with preprocessing's reason) and counted in
each part's notes: the metrics are over the predicted clips only. A clip preprocessing kept that no fold
predicted is an error, not a note.

Absent-class rule. A class with no true samples in a part has no defined recall, so:

- UAR and UF1 of that part are the mean over the classes present in that part's truth
  (``classes_present`` in the output);
- the absent class's recall and F1 are null (JSON null, "n/a" in tables); its precision is 0 if it was
  predicted (each such prediction is a false positive, which also lowers the recall of the true class of
  that sample) and null if it was never predicted;
- a present class that is never predicted has precision 0 and F1 0.

The same rule applies inside every bootstrap resample. No metric is ever NaN, and nothing crashes.

Published 2019 numbers are truncated, not rounded, to 4 decimals: their FULL matrix
[[231, 12, 7], [11, 97, 1], [8, 1, 74]] gives UF1 0.902272..., reported as 0.9022 (tables here round: 0.9023).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from localmer.atomic import atomic_output
from localmer.tasks.megc2019 import MEGC2019_CLASSES

REQUIRED_COLUMNS = ("sample_id", "dataset", "true", "predicted")
REPEAT_COLUMN = "seed"  # in the repeats' pooled predictions: the training seed of the repeat
FULL = "FULL"
CI_LEVEL = 0.95
TSV_COLUMNS = ["part", "n", "accuracy", "uf1", "uf1_lo", "uf1_hi", "uar", "uar_lo", "uar_hi"]

ABSENT_CLASS_RULE = (
    "A class with no true samples in a part has undefined recall: UAR and UF1 of that part are the mean over "
    "the classes present in its truth (classes_present); the absent class's recall and F1 are null, its "
    "precision is 0 if it was predicted (those predictions are false positives) and null if it was never "
    "predicted. A present class that is never predicted has precision 0 and F1 0. The same rule holds in "
    "every bootstrap resample."
)
POOLING_NOTE = (
    "UF1 and UAR are computed from one confusion matrix per part, with TP/FP/FN summed over all folds "
    "(MEGC 2019 protocol), not averaged per fold."
)
_INTEGER = re.compile(r"[+-]?\d+")


NO_INTERVAL_MARK = " (no interval)"


def no_interval_note(unit: str) -> str:
    return f"one {unit}: no interval over {unit}s (every resample of one {unit} is the same table)"


# --------------------------------------------------------------------------------------------- reading


def read_predictions(path, classes=MEGC2019_CLASSES) -> pd.DataFrame:
    """Pooled predictions from a TSV (or ``.csv``) file, labels normalised to class names.

    Labels may be class names (any case) or integers indexing ``classes``. Bad input raises ValueError
    naming the file, the 1-based data row (and its line number) and the column.
    """
    path = Path(path)
    classes = tuple(classes)
    separator = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        table = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"file '{path}': empty file (expected a header with {list(REQUIRED_COLUMNS)})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"file '{path}', line 1 (header), column {missing[0]!r}: missing column(s) {missing}; "
            f"header has {list(table.columns)}"
        )
    if table.empty:
        raise ValueError(f"file '{path}': no data rows below the header")

    def where(index: int, column: str) -> str:
        # Data row r (1-based) sits on line r + 1, below the header.
        return f"file '{path}', row {index + 1} (line {index + 2}), column {column!r}"

    text_columns = [c for c in ("sample_id", "dataset", "subject") if c in table.columns]
    for column in text_columns:
        table[column] = table[column].str.strip()
        blank = table.index[table[column] == ""]
        if len(blank):
            raise ValueError(f"{where(blank[0], column)}: empty cell")
    # A clip is predicted once, or once per repeat (a seed column: the repeats' pooled table).
    duplicated = table.index[table.duplicated([c for c in ("sample_id", REPEAT_COLUMN) if c in table.columns])]
    if len(duplicated):
        first = duplicated[0]
        raise ValueError(f"{where(first, 'sample_id')}: duplicate sample id {table.at[first, 'sample_id']!r}")
    if FULL in set(table["dataset"]):
        raise ValueError(f"file '{path}', column 'dataset': {FULL!r} is reserved for the pooled part")

    by_name = {c.lower(): c for c in classes}
    for column in ("true", "predicted"):
        names = []
        for index, raw in table[column].items():
            label = raw.strip()
            if _INTEGER.fullmatch(label):
                number = int(label)
                if not 0 <= number < len(classes):
                    raise ValueError(
                        f"{where(index, column)}: class index {number} out of range 0..{len(classes) - 1} "
                        f"for classes {list(classes)}"
                    )
                names.append(classes[number])
            elif label.lower() in by_name:
                names.append(by_name[label.lower()])
            else:
                shown = "an empty cell" if not label else repr(label)
                raise ValueError(f"{where(index, column)}: unknown label {shown}; expected one of {list(classes)}")
        table[column] = names

    for column in (c for c in table.columns if c.startswith("prob_")):
        values = pd.to_numeric(table[column].str.strip(), errors="coerce")
        bad = table.index[values.isna()]
        if len(bad):
            raise ValueError(f"{where(bad[0], column)}: expected a probability, got {table.at[bad[0], column]!r}")
        table[column] = values
    return table


# --------------------------------------------------------------------------------------------- metrics


def confusion(true, predicted, classes) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class, in the order of ``classes``."""
    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    true, predicted = list(true), list(predicted)
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} true labels but {len(predicted)} predictions")
    unknown = sorted({str(x) for x in true + predicted if x not in index})
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes {classes}")
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(matrix, ([index[t] for t in true], [index[p] for p in predicted]), 1)
    return matrix


def _class_rates(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recall, F1 and the present-class mask of a stack of confusion matrices (..., K, K).

    Recall and F1 are NaN where a class has no true samples; callers apply the absent-class rule.
    """
    tp = np.diagonal(matrices, axis1=-2, axis2=-1).astype(float)
    support = matrices.sum(axis=-1)
    predicted = matrices.sum(axis=-2)
    present = support > 0
    # 2 TP + FP + FN == support + predicted, which is > 0 for every present class.
    recall = np.divide(tp, support, out=np.full(tp.shape, np.nan), where=present)
    f1 = np.divide(2 * tp, support + predicted, out=np.full(tp.shape, np.nan), where=present)
    return recall, f1, present


def _macro(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UF1 and UAR of a stack of confusion matrices, averaged over the classes present in each."""
    recall, f1, present = _class_rates(matrices)
    n_present = present.sum(axis=-1)
    uf1 = np.where(present, f1, 0.0).sum(axis=-1) / n_present
    uar = np.where(present, recall, 0.0).sum(axis=-1) / n_present
    return uf1, uar


def _or_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def scores(matrix: np.ndarray, classes) -> dict:
    """Accuracy, UAR, UF1 and per-class precision/recall/F1/support of one pooled confusion matrix."""
    classes = list(classes)
    matrix = np.asarray(matrix)
    if matrix.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix of shape {matrix.shape} does not match {len(classes)} classes")
    n = int(matrix.sum())
    if n == 0:
        raise ValueError("confusion matrix is empty: nothing to score")
    recall, f1, present = _class_rates(matrix)
    uf1, uar = _macro(matrix)
    predicted = matrix.sum(axis=0)
    precision = np.divide(np.diagonal(matrix), predicted, out=np.full(len(classes), np.nan), where=predicted > 0)
    # A present class never predicted has precision 0; an absent class never predicted keeps null.
    precision[present & (predicted == 0)] = 0.0
    per_class = {}
    for i, name in enumerate(classes):
        per_class[name] = {
            "precision": _or_none(precision[i]),
            "recall": _or_none(recall[i]),
            "f1": _or_none(f1[i]),
            "support": int(matrix[i].sum()),
        }
    return {
        "accuracy": float(np.trace(matrix) / n),
        "uar": float(uar),
        "uf1": float(uf1),
        "per_class": per_class,
        "n": n,
        "classes_present": [c for c, is_present in zip(classes, present, strict=True) if is_present],
    }


def bootstrap(table: pd.DataFrame, classes, n_boot=1000, seed=0, unit="subject", level=CI_LEVEL) -> dict:
    """Percentile intervals (95 % unless ``level`` says) of UF1 and UAR, resampling whole units (subjects
    or samples).

    Each resample draws as many units as there are, with replacement, and is scored from the pooled
    confusion matrix of all its rows. Units are ordered by id, so the result depends only on the rows and
    the seed, not on row order. With one unit, ``uf1`` and ``uar`` are None (no interval) and ``note`` says
    why. A table of repeats (a ``seed`` column) is the interval of the mean over the repeats: each
    resample of units scores every repeat on those units and averages the scores.
    """
    if unit not in ("subject", "sample"):
        raise ValueError(f"bootstrap unit must be 'subject' or 'sample', got {unit!r}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    classes = list(classes)
    unit_column = "subject" if unit == "subject" else "sample_id"
    if unit_column not in table.columns:
        raise ValueError(f"bootstrap over {unit}s needs a {unit_column!r} column")
    unit_ids = np.array(sorted(table[unit_column].unique()))
    repeats = [table] if REPEAT_COLUMN not in table.columns else [r for _, r in table.groupby(REPEAT_COLUMN)]
    per_unit = [_unit_confusions(rows, classes, unit_column, unit_ids) for rows in repeats]
    interval = {"n_boot": int(n_boot), "seed": int(seed), "unit": unit, "n_units": len(unit_ids), "level": level}
    if len(unit_ids) < 2:
        return {"uf1": None, "uar": None, **interval, "note": no_interval_note(unit)}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(unit_ids), size=(n_boot, len(unit_ids)))
    weights = np.zeros((n_boot, len(unit_ids)), dtype=np.int64)
    np.add.at(weights, (np.arange(n_boot)[:, None], draws), 1)
    # Every repeat scored on the same resampled units, the scores averaged over the repeats.
    macros = [_macro((weights @ matrices).reshape(n_boot, len(classes), len(classes))) for matrices in per_unit]
    uf1 = np.mean([m[0] for m in macros], axis=0)
    uar = np.mean([m[1] for m in macros], axis=0)
    tail = 100 * (1 - level) / 2
    return {
        "uf1": [float(v) for v in np.percentile(uf1, [tail, 100 - tail])],
        "uar": [float(v) for v in np.percentile(uar, [tail, 100 - tail])],
        **interval,
    }


def _unit_confusions(table: pd.DataFrame, classes, unit_column: str, unit_ids: np.ndarray) -> np.ndarray:
    """One flattened confusion matrix per unit (in ``unit_ids`` order): a resample's matrix is their
    count-weighted sum."""
    k = len(classes)
    index = {c: i for i, c in enumerate(classes)}
    true, predicted = table["true"].map(index), table["predicted"].map(index)
    if true.isna().any() or predicted.isna().any():
        raise ValueError(f"labels outside the classes {classes}; read the table with read_predictions")
    cells = true.to_numpy(dtype=int) * k + predicted.to_numpy(dtype=int)
    per_unit = np.zeros((len(unit_ids), k * k), dtype=np.int64)
    np.add.at(per_unit, (np.searchsorted(unit_ids, table[unit_column].to_numpy()), cells), 1)
    return per_unit


def unpredicted_clips(predictions: pd.DataFrame, report: pd.DataFrame) -> pd.DataFrame:
    """The clips of the preprocessing report (one row per indexed clip: sample_id, status, reason) that
    the predictions lack: sample_id, dataset, subject, status, reason. Only skipped clips may be missing; a
    clip preprocessing kept (status ok) without a prediction means a fold's predictions are missing:
    ValueError."""
    missing = report[~report["sample_id"].isin(set(predictions["sample_id"]))]
    kept = missing[missing["status"] == "ok"]
    if len(kept):
        raise ValueError(
            f"{len(kept)} clip(s) that preprocessing kept have no prediction (first {kept['sample_id'].iloc[0]!r}): "
            "the predictions lack a fold's clips"
        )
    return pd.DataFrame(
        {
            "sample_id": missing["sample_id"],
            "dataset": missing["sample_id"].str.split("/").str[0],
            "subject": missing["sample_id"].str.rsplit("/", n=1).str[0],  # sample ids are dataset/subject/clip
            "status": missing["status"],
            "reason": missing["reason"],
        }
    ).reset_index(drop=True)


def _unpredicted_note(missing: pd.DataFrame, predicted: pd.DataFrame) -> str:
    absent = sorted(set(missing["subject"]) - set(predicted.get("subject", ())))
    whole = f", every clip of subject(s) {absent}" if absent else ""
    return (
        f"{len(missing)} indexed clip(s) have no prediction (preprocessing skipped them{whole}; reasons under "
        f"not_predicted in metrics.json): the metrics are over the {len(predicted)} predicted clips"
    )


def evaluate(
    predictions: pd.DataFrame,
    classes=MEGC2019_CLASSES,
    n_boot=1000,
    seed=0,
    unpredicted: pd.DataFrame | None = None,
) -> dict:
    """Scores, confusion matrix and bootstrap intervals for FULL and for each dataset, in that order.

    ``predictions`` holds class names in ``true``/``predicted`` (as ``read_predictions`` returns them);
    ``unpredicted`` (from ``unpredicted_clips``), the indexed clips without a prediction, counted in notes.
    """
    classes = list(classes)
    unit = "subject" if "subject" in predictions.columns else "sample"
    parts = {FULL: predictions}
    for dataset in sorted(predictions["dataset"].unique()):
        parts[dataset] = predictions[predictions["dataset"] == dataset]
    metrics = {}
    for part, rows in parts.items():
        matrix = confusion(rows["true"], rows["predicted"], classes)
        result = scores(matrix, classes)
        result["confusion"] = matrix.tolist()
        result["ci"] = bootstrap(rows, classes, n_boot=n_boot, seed=seed, unit=unit)
        notes = [POOLING_NOTE]
        if REPEAT_COLUMN in rows.columns:
            result.update(_repeat_scores(rows, classes))
            notes.append(REPEATS_NOTE)
        absent = [c for c in classes if c not in result["classes_present"]]
        if absent:
            notes.append(f"classes absent from the truth: {absent}. {ABSENT_CLASS_RULE}")
        if unit == "sample":
            notes.append("no subject column: bootstrap intervals resample samples, not subjects")
        if result["ci"]["uf1"] is None:
            notes.append(f"{part}: {result['ci']['note']}")
        if unpredicted is not None:
            missing = unpredicted if part == FULL else unpredicted[unpredicted["dataset"] == part]
            result["not_predicted"] = len(missing)
            if len(missing):
                notes.append(f"{part}: {_unpredicted_note(missing, rows)}")
        result["notes"] = notes
        metrics[part] = result
    return metrics


REPEATS_NOTE = (
    "repeats: uf1, uar and accuracy are the mean over the repeats (seeds) of each repeat's pooled figure, "
    "with their standard deviation (uf1_sd, uar_sd, accuracy_sd) and per_seed; the interval is the bootstrap "
    "interval of that mean (subjects resampled, every repeat scored on the resample); per_class and the "
    "confusion matrix are summed over the repeats"
)


def _repeat_scores(rows: pd.DataFrame, classes) -> dict:
    """Per repeat (seed) its pooled UF1, UAR and accuracy; their mean, standard deviation (ddof 1) and n."""
    per_seed = {}
    for seed, repeat in rows.groupby(REPEAT_COLUMN):
        result = scores(confusion(repeat["true"], repeat["predicted"], classes), classes)
        per_seed[str(seed)] = {key: result[key] for key in ("uf1", "uar", "accuracy", "n")}
    summary = {"per_seed": per_seed, "repeats": len(per_seed), "n": next(iter(per_seed.values()))["n"]}
    for key in ("uf1", "uar", "accuracy"):
        values = np.array([figures[key] for figures in per_seed.values()])
        summary[key] = float(values.mean())
        summary[f"{key}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return summary


# --------------------------------------------------------------------------------------------- reporting


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _figure(part: dict, metric: str) -> str:
    """A part's figure; with repeats, mean +- standard deviation over them."""
    value = _number(part[metric])
    return f"{value} ± {_number(part[f'{metric}_sd'])}" if f"{metric}_sd" in part else value


def _interval(ci: dict, metric: str) -> str:
    if ci[metric] is None:
        return f"n/a (one {ci['unit']})"
    low, high = ci[metric]
    return f"[{_number(low)}, {_number(high)}]"


def format_table(metrics: dict) -> str:
    """Markdown tables: one row per part (accuracy, UF1, UAR with intervals), then per-class P/R/F1.

    Accepts the ``evaluate`` result or the ``metrics.json`` document (which holds it under ``parts``).
    """
    parts = metrics["parts"] if {"classes", "parts"} <= metrics.keys() else metrics
    units = sorted({part["ci"]["unit"] for part in parts.values()})
    lines = [
        "| part | n | accuracy | UF1 | UF1 95 % CI | UAR | UAR 95 % CI |",
        "| --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for name, part in parts.items():
        ci = part["ci"]
        lines.append(
            f"| {name} | {part['n']} | {_figure(part, 'accuracy')} | {_figure(part, 'uf1')} | "
            f"{_interval(ci, 'uf1')} | {_figure(part, 'uar')} | {_interval(ci, 'uar')} |"
        )
    lines += [
        "",
        "| part | class | support | precision | recall | F1 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, part in parts.items():
        for cls, values in part["per_class"].items():
            lines.append(
                f"| {name} | {cls} | {values['support']} | {_number(values['precision'])} | "
                f"{_number(values['recall'])} | {_number(values['f1'])} |"
            )
    n_boot = next(iter(parts.values()))["ci"]["n_boot"]
    lines += ["", f"Intervals: {n_boot} bootstrap resamples of whole {' / '.join(units)}s (percentile method)."]
    notes = dict.fromkeys(note for part in parts.values() for note in part["notes"])
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _file_stem(part: str) -> str:
    """A part name usable in a file name (dataset names are user configuration)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", part)


def _plot_confusion(matrix: np.ndarray, classes: list[str], title: str, path: Path) -> None:
    # The Figure API draws with Agg without touching pyplot's global state.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1.2 * len(classes) + 2.5, 1.1 * len(classes) + 2))
    axes = figure.add_subplot()
    support = matrix.sum(axis=1, keepdims=True)
    # Colour by row share (recall) so that parts and classes of different sizes compare.
    shares = np.divide(matrix, support, out=np.zeros(matrix.shape), where=support > 0)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if shares[row, column] > 0.5 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    axes.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    with atomic_output(path) as partial:
        figure.savefig(partial, dpi=120)


def write_report(
    predictions, out_dir, classes=MEGC2019_CLASSES, n_boot=1000, seed=0, preprocessing_report=None
) -> dict:
    """Evaluate and write metrics.json, metrics.tsv, metrics.md and confusion/<part>.tsv/.png.

    Returns the ``metrics.json`` document: ``classes``, ``notes`` and the ``evaluate`` result under ``parts``;
    given the ``preprocessing_report`` table, also ``not_predicted``: the indexed clips without a prediction
    (sample_id, status, reason).
    """
    classes = list(classes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = None if preprocessing_report is None else unpredicted_clips(predictions, preprocessing_report)
    parts = evaluate(predictions, classes, n_boot=n_boot, seed=seed, unpredicted=missing)
    unit = parts[FULL]["ci"]["unit"]
    notes = [POOLING_NOTE, ABSENT_CLASS_RULE]
    if unit == "sample":
        notes.append("no subject column: bootstrap intervals resample samples, not subjects")
    document = {"classes": classes, "notes": notes, "parts": parts}
    if missing is not None:
        document["not_predicted"] = missing[["sample_id", "status", "reason"]].to_dict("records")
    metrics_json = json.dumps(document, indent=2, allow_nan=False) + "\n"  # a NaN fails here, before any file

    rows = [
        [
            name,
            part["n"],
            part["accuracy"],
            part["uf1"],
            *_bounds(part["ci"], "uf1"),
            part["uar"],
            *_bounds(part["ci"], "uar"),
        ]
        for name, part in parts.items()
    ]
    with atomic_output(out_dir / "metrics.tsv") as partial:
        pd.DataFrame(rows, columns=TSV_COLUMNS).to_csv(
            partial, sep="\t", index=False, float_format="%.6f", na_rep="n/a"
        )
    with atomic_output(out_dir / "metrics.md") as partial:
        partial.write_text("# Evaluation metrics\n\n" + format_table(document))

    confusion_dir = out_dir / "confusion"
    confusion_dir.mkdir(exist_ok=True)
    for name, part in parts.items():
        matrix = np.array(part["confusion"])
        stem = _file_stem(name)
        frame = pd.DataFrame(matrix, index=pd.Index(classes, name="true\\predicted"), columns=classes)
        with atomic_output(confusion_dir / f"{stem}.tsv") as partial:
            frame.to_csv(partial, sep="\t")
        title = f"{name} (n={part['n']}): UF1 {part['uf1']:.4f}, UAR {part['uar']:.4f}"
        _plot_confusion(matrix, classes, title, confusion_dir / f"{stem}.png")
    # Last: the workflow's target, and what says the report is complete.
    with atomic_output(out_dir / "metrics.json") as partial:
        partial.write_text(metrics_json)
    return document


def _bounds(ci: dict, metric: str) -> tuple[float | None, float | None]:
    """(low, high) of an interval; (None, None) for a part without one."""
    return (None, None) if ci[metric] is None else tuple(ci[metric])


def run_summary(metrics_files: dict[str, str | Path], run_started: float) -> list[str]:
    """One line per experiment for the end of a workflow run: FULL UF1, UAR and n from its metrics.json,
    and whether this run computed them (the file is newer than ``run_started``, a ``time.time()``) or
    they are unchanged since an earlier run, and when that was."""
    lines = []
    for name, path in metrics_files.items():
        path = Path(path)
        if not path.exists():
            lines.append(f"localmer {name}: no metrics ({path} not written yet)")
            continue
        full = json.loads(path.read_text())["parts"][FULL]
        modified = path.stat().st_mtime
        origin = (
            "computed by this run"
            if modified >= run_started
            else f"unchanged since {datetime.fromtimestamp(modified):%Y-%m-%d %H:%M}, from an earlier run"
        )
        lines.append(
            f"localmer {name} ({origin}): FULL UF1 {_number(full['uf1'])}  UAR {_number(full['uar'])}  "
            f"(n = {full['n']}; {path.parent}/metrics.md)"
        )
    return lines


def ablation_table(metrics_files: dict[str, str | Path]) -> pd.DataFrame:
    """One row per experiment: UF1 and UAR (with 95 % intervals) for FULL and each dataset part, and with
    repeats their standard deviations over the repeats (``<part>_uf1_sd``)."""
    rows = []
    for experiment, path in metrics_files.items():
        parts = json.loads(Path(path).read_text())["parts"]
        row = {"experiment": experiment}
        for name, part in parts.items():
            row.update(
                {
                    f"{name}_uf1": part["uf1"],
                    f"{name}_uf1_lo": _bounds(part["ci"], "uf1")[0],
                    f"{name}_uf1_hi": _bounds(part["ci"], "uf1")[1],
                    f"{name}_uar": part["uar"],
                    f"{name}_uar_lo": _bounds(part["ci"], "uar")[0],
                    f"{name}_uar_hi": _bounds(part["ci"], "uar")[1],
                    f"{name}_n": part["n"],
                    **{f"{name}_{key}_sd": part[f"{key}_sd"] for key in ("uf1", "uar") if f"{key}_sd" in part},
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def ablation_markdown(table: pd.DataFrame) -> str:
    """The ablation table as markdown: UF1 / UAR per part, FULL first; a part without an interval (one
    subject) is marked."""
    parts = [c[: -len("_uf1")] for c in table.columns if c.endswith("_uf1")]
    parts = [FULL, *sorted(p for p in parts if p != FULL)] if FULL in parts else sorted(parts)

    def cell(row: dict, part: str) -> str:
        if pd.isna(row.get(f"{part}_uf1")):
            return "n/a"
        figures = [
            _number(row[f"{part}_{key}"])
            + ("" if pd.isna(row.get(f"{part}_{key}_sd")) else f" ± {_number(row[f'{part}_{key}_sd'])}")
            for key in ("uf1", "uar")
        ]
        text = " / ".join(figures)
        return text + NO_INTERVAL_MARK if pd.isna(row[f"{part}_uf1_lo"]) else text

    rows = [[row["experiment"], *(cell(row, p) for p in parts)] for row in table.to_dict("records")]
    lines = ["| experiment | " + " | ".join(f"{p} UF1 / UAR" for p in parts) + " |", "|---" * (len(parts) + 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if any(cell.endswith(NO_INTERVAL_MARK) for row in rows for cell in row):
        lines += ["", f"{NO_INTERVAL_MARK.strip()}: {no_interval_note('subject')}."]
    if any(" ± " in cell for row in rows for cell in row):
        lines += ["", "± : standard deviation over the experiment's repeats (training seeds)."]
    return "# Ablations\n\n" + "\n".join(lines) + "\n"


def training_curves(histories: dict[str, list[str | Path]], png: str | Path) -> None:
    """Loss and accuracy per epoch of every model of an experiment (the training history TSVs), a column
    per kind of model (the seed's spatial models, one thin line per fold x region, and temporal models,
    one per fold; a deep peer's model, one per fold), with the mean in bold."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5 * len(histories), 6))
    grid = figure.subplots(2, len(histories), sharex="col", squeeze=False)
    for column, (stage, paths) in enumerate(histories.items()):
        histories = [pd.read_csv(path, sep="\t") for path in paths]
        for row, metric in enumerate(("loss", "accuracy")):
            axes = grid[row, column]
            curves = [history[metric].to_numpy() for history in histories if metric in history]
            for curve in curves:
                axes.plot(np.arange(1, len(curve) + 1), curve, color="tab:blue", alpha=0.15, linewidth=0.8)
            if curves:
                # Folds stop at the same epoch unless early stopping ends some sooner: mean where all ran.
                shortest = min(len(curve) for curve in curves)
                mean = np.mean([curve[:shortest] for curve in curves], axis=0)
                axes.plot(np.arange(1, shortest + 1), mean, color="tab:blue", linewidth=2, label="mean")
                axes.legend(loc="best", fontsize=8)
            axes.set_title(f"{stage} models: training {metric} ({len(curves)} models)", fontsize=10)
            axes.set_xlabel("epoch")
    figure.tight_layout()
    figure.savefig(png, dpi=110)
