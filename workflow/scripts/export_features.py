# Rule export_features: the fold's 256-d spatial features of every frame; logic in localmer.training.
from localmer import regions, runlog, training

with runlog.to_file(snakemake.log[0]):
    settings = snakemake.params.settings
    training.configure_tensorflow(snakemake.threads, settings["training"]["seed"])
    samples = training.usable_samples(
        training.read_table(snakemake.input.samples), training.read_table(snakemake.input.report)
    )
    training.export_features(
        samples,
        training.patch_files_of(snakemake.input.patches),
        training.fold_by_name(samples, snakemake.wildcards.fold, settings),
        dict(zip(regions.REGION_NAMES, snakemake.input.models, strict=True)),
        settings,
        snakemake.output[0],
        training.config_hash(settings),
    )
