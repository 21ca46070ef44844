"""The comparison table: every experiment run (each a method on the same leak-free folds) beside the
figures its method's publications report, each publication labelled with its protocol caveat.

A row is one (entry, part): an experiment of this run with its pooled UF1 and UAR and their 95 %
bootstrap intervals (``localmer.evaluation``), or a published figure (``Method.published``), which has
no interval and was measured on other data (the real MEGC 2019 composite) under the publication's
protocol: it is context, never a score of this run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .evaluation import FULL, NO_INTERVAL_MARK, _bounds, _number

THIS_RUN = "this run"
PUBLISHED = "published"
PUBLISHED_DATA = "MEGC 2019 composite (real data)"
COLUMNS = [
    "entry",
    "origin",
    "method",
    "experiment",
    "data",
    "protocol",
    "part",
    "uf1",
    "uf1_lo",
    "uf1_hi",
    "uar",
    "uar_lo",
    "uar_hi",
    "n",
]
# How this run evaluates every method (docs/training-and-evaluation.md, docs/tasks-and-protocols.md).
PROTOCOL_NAMES = {"loso": "LOSO", "lodo": "leave one dataset out"}
LEAK_FREE = "no test subject in any fit, statistic or epoch choice; predictions pooled over folds"


def run_protocol(task: str = "megc2019", protocol: str = "loso", repeats: int = 1) -> str:
    """How an experiment of this run was evaluated, for its rows: task, protocol, repeats, leak-free."""
    repeated = f", mean of {repeats} seeds" if repeats > 1 else ""
    return f"{task}, {PROTOCOL_NAMES[protocol]}{repeated}; {LEAK_FREE}"


def _part_order(parts) -> list[str]:
    return [FULL, *sorted(p for p in set(parts) if p != FULL)]


def comparison_table(
    metrics_files: dict[str, str | Path],
    methods: dict[str, str],
    data: str,
    published: dict[str, list[dict]],
    protocols: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Rows for each experiment (name -> metrics.json) and each part it scored, then the published figures
    (``published``: method name -> its entries of ``methods.registry.published_figures``) of every method
    the experiments ran (``methods``: experiment -> method name), in run order. ``data`` names the corpus
    this run used; ``protocols`` how each experiment was evaluated (``run_protocol``; default the MEGC
    2019 task under LOSO)."""
    protocols = protocols or {}
    rows = []
    for experiment, path in metrics_files.items():
        metrics = json.loads(Path(path).read_text())
        for part in _part_order(metrics["parts"]):
            scored = metrics["parts"][part]
            rows.append(
                {
                    "entry": experiment,
                    "origin": THIS_RUN,
                    "method": methods[experiment],
                    "experiment": experiment,
                    "data": data,
                    "protocol": protocols.get(experiment, run_protocol()),
                    "part": part,
                    "uf1": scored["uf1"],
                    "uf1_lo": _bounds(scored["ci"], "uf1")[0],
                    "uf1_hi": _bounds(scored["ci"], "uf1")[1],
                    "uar": scored["uar"],
                    "uar_lo": _bounds(scored["ci"], "uar")[0],
                    "uar_hi": _bounds(scored["ci"], "uar")[1],
                    "n": scored["n"],
                }
            )
    for name in dict.fromkeys(methods.values()):
        for figures in published.get(name, ()):
            for part in _part_order(figures["parts"]):
                uf1, uar = figures["parts"][part]
                rows.append(
                    {
                        "entry": f"{name} ({figures['source']})",
                        "origin": PUBLISHED,
                        "method": name,
                        "experiment": "",
                        "data": PUBLISHED_DATA,
                        "protocol": figures["protocol"],
                        "part": part,
                        "uf1": uf1,
                        "uf1_lo": None,
                        "uf1_hi": None,
                        "uar": uar,
                        "uar_lo": None,
                        "uar_hi": None,
                        "n": None,
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def _cell(row: dict) -> str:
    if row is None or pd.isna(row["uf1"]) and pd.isna(row["uar"]):
        return "n/a"

    def figure(metric: str) -> str:
        value = row[metric]
        if pd.isna(value):
            return "n/a"
        if pd.isna(row[f"{metric}_lo"]):
            # A published figure has no interval; a part of this run with one subject has none either.
            return _number(value) + (NO_INTERVAL_MARK if row["origin"] == THIS_RUN else "")
        return f"{_number(value)} [{_number(row[f'{metric}_lo'])}, {_number(row[f'{metric}_hi'])}]"

    return f"{figure('uf1')} / {figure('uar')}"


def comparison_markdown(table: pd.DataFrame) -> str:
    """The table as markdown: one line per entry, UF1 / UAR [95 % interval] per part; published entries
    below this run's, with their protocol and data, so that nobody reads them as this run's scores."""
    parts = _part_order(table.part)
    header = ["entry", "method", *(f"{part} UF1 / UAR" for part in parts)]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    caveats = []
    for origin in (THIS_RUN, PUBLISHED):
        chosen = table[table.origin == origin]
        for entry in dict.fromkeys(chosen.entry):
            rows = chosen[chosen.entry == entry].set_index("part")
            cells = [_cell(rows.loc[part].to_dict() if part in rows.index else None) for part in parts]
            label = entry if origin == THIS_RUN else f"{entry} *published*"
            lines.append("| " + " | ".join([label, rows.method.iloc[0], *cells]) + " |")
            if origin == PUBLISHED:
                caveats.append(f"- {entry}: {rows.protocol.iloc[0]}.")
    this_run = table[table.origin == THIS_RUN]
    text = ["# Comparison of methods", ""]
    if len(this_run):
        protocols = dict(zip(this_run.entry, this_run.protocol, strict=True))
        if len(set(protocols.values())) == 1:
            text += [
                f"This run ({this_run.data.iloc[0]}): {this_run.protocol.iloc[0]}; 95 % bootstrap intervals "
                "over subjects."
            ]
        else:
            text += [f"This run ({this_run.data.iloc[0]}); 95 % bootstrap intervals over subjects:", ""]
            text += [f"- {entry}: {protocol}." for entry, protocol in protocols.items()]
    text += ["", *lines, ""]
    if caveats:
        text += [
            f"*Published* rows are the publications' figures on the {PUBLISHED_DATA}, under their own protocols; "
            "they are context, not this run's scores, and not comparable with each other where the protocols differ:",
            "",
            *caveats,
            "",
        ]
    return "\n".join(text)


def comparison_figure(table: pd.DataFrame, png: str | Path, chance: float | None = None) -> None:
    """Dot-and-whisker plot: per part (rows) and metric (UF1, UAR: columns), each entry's figure, this
    run's with its 95 % interval (filled dots), published ones as open diamonds labelled as published."""
    from matplotlib.figure import Figure

    parts = _part_order(table.part)
    entries = list(dict.fromkeys(table.entry))
    labels = [
        entry if table[table.entry == entry].origin.iloc[0] == THIS_RUN else f"{entry} [published]" for entry in entries
    ]
    figure = Figure(figsize=(12, 1.4 + 0.25 * len(entries) * len(parts)))
    grid = figure.subplots(len(parts), 2, sharex=True, squeeze=False)
    positions = np.arange(len(entries))[::-1]
    for row, part in enumerate(parts):
        for column, metric in enumerate(("uf1", "uar")):
            axes = grid[row, column]
            for position, entry in zip(positions, entries, strict=True):
                found = table[(table.entry == entry) & (table.part == part)]
                if found.empty or pd.isna(found[metric].iloc[0]):
                    continue
                value = float(found[metric].iloc[0])
                if found.origin.iloc[0] == THIS_RUN:
                    low, high = found[f"{metric}_lo"].iloc[0], found[f"{metric}_hi"].iloc[0]
                    if not pd.isna(low):
                        axes.plot([low, high], [position, position], color="tab:blue", linewidth=2)
                    axes.plot(value, position, "o", color="tab:blue")
                else:
                    axes.plot(value, position, "D", markerfacecolor="none", color="tab:grey")
            if chance is not None:
                axes.axvline(chance, color="tab:red", linestyle=":", linewidth=1)
            axes.set_ylim(-0.6, len(entries) - 0.4)
            axes.set_yticks(positions)
            axes.set_yticklabels(labels if column == 0 else [], fontsize=7)
            axes.set_xlim(0, 1)
            axes.set_title(f"{part} {metric.upper()}", fontsize=9)
            axes.grid(axis="x", alpha=0.3)
    for axes in grid[-1]:
        axes.set_xlabel("score")
    legend = "dots: this run, with its 95 % interval; open diamonds: published (other data, other protocols)"
    if chance is not None:
        legend += f"; dotted: chance ({chance:.2f})"
    figure.suptitle(legend, fontsize=9)
    figure.tight_layout()
    figure.savefig(png, dpi=110)
