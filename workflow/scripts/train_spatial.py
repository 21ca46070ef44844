# Rule train_spatial: one region's spatial model for one LOSO fold; logic in localmer.training.
from localmer import runlog, training

with runlog.to_file(snakemake.log[0]):
    settings = snakemake.params.settings
    training.configure_tensorflow(snakemake.threads, settings["training"]["seed"])
    samples = training.usable_samples(
        training.read_table(snakemake.input.samples), training.read_table(snakemake.input.report)
    )
    training.train_spatial(
        samples,
        training.read_table(snakemake.input.labels),
        training.patch_files_of(snakemake.input.patches),
        training.fold_by_name(samples, snakemake.wildcards.fold, settings),
        snakemake.wildcards.region,
        settings,
        training.task_classes(settings),
        {**snakemake.output, "checkpoints": snakemake.params.checkpoints},
    )
