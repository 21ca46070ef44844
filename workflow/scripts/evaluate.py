# Rule evaluate: pool the folds' predictions (or the repeats') and compute the metrics; logic in
# localmer.evaluation.
from pathlib import Path

import pandas as pd

from localmer import evaluation, runlog

with runlog.to_file(snakemake.log[0]):
    classes, seeds = snakemake.params.classes, snakemake.params.repeat_seeds
    tables = [pd.read_csv(path, sep="\t") for path in snakemake.input.predictions]
    if seeds:  # one pooled table per repeat, in seed order
        tables = [table.assign(seed=seed) for table, seed in zip(tables, seeds, strict=True)]
    pd.concat(tables, ignore_index=True).to_csv(snakemake.output.predictions, sep="\t", index=False)
    predictions = evaluation.read_predictions(snakemake.output.predictions, classes)
    evaluation.write_report(
        predictions,
        Path(snakemake.output.metrics).parent,
        classes=classes,
        n_boot=snakemake.params.bootstrap,
        seed=snakemake.params.seed,
        preprocessing_report=pd.read_csv(snakemake.input.report, sep="\t", keep_default_na=False),
    )
