# Rule evaluate: pool the folds' predictions and compute the MEGC 2019 metrics; logic in localmer.evaluation.
from pathlib import Path

import pandas as pd

from localmer import evaluation, runlog

with runlog.to_file(snakemake.log[0]):
    predictions = pd.concat([pd.read_csv(path, sep="\t") for path in snakemake.input.predictions], ignore_index=True)
    predictions.to_csv(snakemake.output.predictions, sep="\t", index=False)
    evaluation.write_report(
        evaluation.read_predictions(snakemake.output.predictions),
        Path(snakemake.output.metrics).parent,
        n_boot=snakemake.params.bootstrap,
        seed=snakemake.params.seed,
        preprocessing_report=pd.read_csv(snakemake.input.report, sep="\t", keep_default_na=False),
    )
