# Rule train_spatial: one region's spatial model for one LOSO fold; logic in localmer.training.
from localmer import datasets, runlog, training

with runlog.to_file(snakemake.log[0]):
    settings = snakemake.params.settings
    samples, fold = training.prepare_fold_job(
        snakemake.input.samples, snakemake.input.report, snakemake.wildcards.fold, settings, snakemake.threads
    )
    training.train_spatial(
        samples,
        datasets.read_table(snakemake.input.labels),
        training.patch_files_of(snakemake.input.patches),
        fold,
        snakemake.wildcards.region,
        settings,
        training.task_classes(settings),
        {**snakemake.output, "checkpoints": snakemake.params.checkpoints},
    )
