"""The MEGC 2019 composite task: negative / positive / surprise over CASME II, SAMM and SMIC-HS.

Each dataset's emotions are mapped to the three classes as the challenge did, and, when the config
names the official ground-truth CSV (``task.ground_truth``), the index is reconciled with it clip by
clip: ``reconcile`` keeps exactly the ground truth's clips and reports every difference.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..datasets.common import (
    EXCLUDED_COLUMNS,
    RECONCILIATION_COLUMNS,
    RECONCILIATION_DIFFERENCES,
    AnnotationError,
    Problem,
    ReconciliationError,
    excluded_row,
)
from ..datasets.registry import DATASET_KINDS, DatasetKind, get_dataset_kind
from .task import Task

MEGC2019_CLASSES = ("negative", "positive", "surprise")  # ground-truth labels 0, 1, 2

# Per dataset kind, emotion -> class; emotions not listed are outside the task.
MEGC2019_MAPPING = {
    # CASME II negative is disgust + repression only (fear and sadness are dropped, as in the GT).
    "casme2": {"disgust": "negative", "repression": "negative", "happiness": "positive", "surprise": "surprise"},
    "samm": {
        "anger": "negative",
        "contempt": "negative",
        "disgust": "negative",
        "fear": "negative",
        "sadness": "negative",
        "happiness": "positive",
        "surprise": "surprise",
    },
    "smic": {"negative": "negative", "positive": "positive", "surprise": "surprise"},
}
# A manifest may give a class name or any emotion the datasets use.
MEGC2019_MAPPING["manifest"] = {
    **MEGC2019_MAPPING["samm"],
    **MEGC2019_MAPPING["casme2"],
    **MEGC2019_MAPPING["smic"],
}


def _gt_kinds() -> dict[str, DatasetKind]:
    """Ground-truth dataset name -> the dataset kind it names (the official CSV writes casme2, samm, smic)."""
    return {kind.gt_dataset: kind for kind in DATASET_KINDS.values() if kind.gt_dataset}


def read_ground_truth(path: Path) -> pd.DataFrame:
    """The MEGC 2019 ground truth: no header, rows dataset,subject,filename,label (0 neg, 1 pos, 2 sur)."""
    if not path.exists():
        raise AnnotationError([Problem(str(path), None, None, "ground-truth CSV does not exist")])
    gt_kinds = _gt_kinds()
    problems = []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            problems.append(
                Problem(str(path), number, None, f"expected 4 fields dataset,subject,filename,label, got {len(parts)}")
            )
            continue
        dataset, subject, clip, label = parts
        if dataset not in gt_kinds:
            problems.append(
                Problem(
                    str(path),
                    number,
                    "dataset",
                    f"unknown dataset {dataset!r}; expected one of {sorted(gt_kinds)}",
                )
            )
            continue
        if label not in ("0", "1", "2"):
            problems.append(
                Problem(
                    str(path), number, "label", f"expected 0 (negative), 1 (positive) or 2 (surprise), got {label!r}"
                )
            )
            continue
        canonical = _gt_subject(gt_kinds[dataset], subject)
        if canonical is None:
            problems.append(Problem(str(path), number, "subject", f"cannot read subject {subject!r} for {dataset}"))
            continue
        rows.append(
            {
                "gt_dataset": dataset,
                "subject": canonical,
                "clip": clip,
                "gt_label": MEGC2019_CLASSES[int(label)],
                "line": number,
            }
        )
    if problems:
        raise AnnotationError(problems)
    table = pd.DataFrame(rows, columns=["gt_dataset", "subject", "clip", "gt_label", "line"])
    duplicated = table[table.duplicated(["gt_dataset", "subject", "clip"], keep=False)]
    if len(duplicated):
        raise AnnotationError(
            Problem(str(path), int(r.line), "filename", f"duplicate clip {r.gt_dataset}/{r.subject}/{r.clip}")
            for r in duplicated.itertuples()
        )
    return table


def _gt_subject(kind: DatasetKind, subject: str) -> str | None:
    """GT subjects are written sub01 (CASME II), 6 (SAMM), s01 (SMIC); return our canonical ids."""
    match = re.fullmatch(r"(?:sub|s)?0*(\d+)", subject, flags=re.IGNORECASE)
    if match is None:
        return None
    return kind.subject_id(int(match.group(1)))


def reconcile(
    samples: pd.DataFrame, excluded: pd.DataFrame, datasets: list[dict], gt: pd.DataFrame, *, strict: bool, gt_path: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Keep exactly the ground truth's clips; report every difference by clip.

    - in the datasets, not in the GT: excluded with reason (e.g. CASME II sub04/EP12_01f, apex '/')
    - in the GT, not among the task's clips: 'missing' (absent, or excluded by the emotion mapping)
    - in both with different labels: 'label_mismatch'
    Strict mode raises ReconciliationError on missing clips and label mismatches.
    """
    report = []
    gt_of = {d["name"]: get_dataset_kind(d["kind"]).gt_dataset for d in datasets}
    gt_names = {name: gt_dataset for name, gt_dataset in gt_of.items() if gt_dataset}
    gt_keys = {(r.gt_dataset, r.subject, r.clip): r.gt_label for r in gt.itertuples()}
    keep = []
    new_excluded = []
    for row in samples.itertuples():
        gt_dataset = gt_names.get(row.dataset)
        if gt_dataset is None:
            keep.append(True)  # not a MEGC part (e.g. a manifest dataset): nothing to check against
            continue
        local_subject = row.subject.split("/", 1)[1]
        gt_label = gt_keys.get((gt_dataset, local_subject, row.clip))
        if gt_label is None:
            keep.append(False)
            detail = "not in the MEGC 2019 ground truth" + (f" (notes: {row.notes})" if row.notes else "")
            new_excluded.append(excluded_row(row.dataset, local_subject, row.clip, row.emotion, detail, row.source))
            report.append(
                {
                    "dataset": row.dataset,
                    "subject": row.subject,
                    "clip": row.clip,
                    "status": "excluded_not_in_gt",
                    "gt_label": "",
                    "label": row.label,
                    "detail": detail,
                }
            )
            continue
        keep.append(True)
        status = "match" if gt_label == row.label else "label_mismatch"
        detail = "" if status == "match" else f"emotion {row.emotion!r} maps to {row.label!r}; the GT says {gt_label!r}"
        report.append(
            {
                "dataset": row.dataset,
                "subject": row.subject,
                "clip": row.clip,
                "status": status,
                "gt_label": gt_label,
                "label": row.label,
                "detail": detail,
            }
        )
    samples = samples[keep]
    present = {
        (gt_names[r.dataset], r.subject.split("/", 1)[1], r.clip) for r in samples.itertuples() if r.dataset in gt_names
    }
    excluded_by_mapping = {
        (gt_names.get(r.dataset), r.subject.split("/", 1)[1], r.clip): r.reason for r in excluded.itertuples()
    }
    name_of = {gt: name for name, gt in gt_names.items()}
    for key, gt_label in gt_keys.items():
        if key[0] not in name_of or key in present:
            continue
        name = name_of[key[0]]
        detail = excluded_by_mapping.get(key, f"clip not found in dataset {name!r}")
        report.append(
            {
                "dataset": name,
                "subject": f"{name}/{key[1]}",
                "clip": key[2],
                "status": "missing",
                "gt_label": gt_label,
                "label": "",
                "detail": detail,
            }
        )
    report_table = pd.DataFrame(report, columns=RECONCILIATION_COLUMNS).sort_values(
        ["dataset", "subject", "clip"], kind="stable"
    )
    excluded = pd.concat([excluded, pd.DataFrame(new_excluded, columns=EXCLUDED_COLUMNS)], ignore_index=True)
    mismatches = report_table[report_table.status.isin(RECONCILIATION_DIFFERENCES)]
    if strict and len(mismatches):
        listed = "\n".join(
            f"  {r.status}: {r.subject}/{r.clip} (GT {r.gt_label or '-'}, ours {r.label or '-'}) {r.detail}"
            for r in mismatches.head(30).itertuples()
        )
        more = f"\n  ... and {len(mismatches) - 30} more" if len(mismatches) > 30 else ""
        raise ReconciliationError(
            f"{len(mismatches)} clip(s) differ between the datasets and the ground truth {gt_path!r}:\n{listed}{more}\n"
            "Fix the dataset paths, or set task.strict: false to record the differences and go on."
        )
    return samples, excluded, report_table.reset_index(drop=True)


def reconcile_with_ground_truth(
    samples: pd.DataFrame, excluded: pd.DataFrame, datasets: list[dict], path: Path, *, strict: bool, gt_path: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The task's ground-truth step: ``reconcile`` against the ground-truth CSV at ``path``."""
    return reconcile(samples, excluded, datasets, read_ground_truth(path), strict=strict, gt_path=gt_path)


MEGC2019 = Task(
    name="megc2019", classes=MEGC2019_CLASSES, mapping=MEGC2019_MAPPING, reconcile=reconcile_with_ground_truth
)
