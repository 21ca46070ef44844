# Rule train_temporal: the fold's temporal model and its test predictions; logic in localmer.training.
from localmer import runlog, training

with runlog.to_file(snakemake.log[0]):
    settings = snakemake.params.settings
    training.configure_tensorflow(snakemake.threads, settings["training"]["seed"])
    samples = training.usable_samples(
        training.read_table(snakemake.input.samples), training.read_table(snakemake.input.report)
    )
    training.train_temporal(
        samples,
        snakemake.input.features,
        training.fold_by_name(samples, snakemake.wildcards.fold, settings),
        settings,
        training.task_classes(settings),
        {**snakemake.output, "checkpoints": snakemake.params.checkpoints},
    )
