# Rule train_temporal: the fold's temporal model and its test predictions; logic in localmer.training.
from localmer import runlog, training

with runlog.to_file(snakemake.log[0]):
    settings = snakemake.params.settings
    samples, fold = training.prepare_fold_job(
        snakemake.input.samples, snakemake.input.report, snakemake.params.fold, settings, snakemake.threads
    )
    training.train_temporal(
        samples,
        snakemake.input.features,
        fold,
        settings,
        training.task_classes(settings),
        {**snakemake.output, "checkpoints": snakemake.params.checkpoints},
    )
