# Rule export_features: the fold's 256-d spatial features of every frame; logic in localmer.training.
from localmer import regions, runlog, training

with runlog.to_file(snakemake.log[0]):
    settings = snakemake.params.settings
    samples, fold = training.prepare_fold_job(
        snakemake.input.samples, snakemake.input.report, snakemake.wildcards.fold, settings, snakemake.threads
    )
    training.export_features(
        samples,
        training.patch_files_of(snakemake.input.patches),
        fold,
        dict(zip(regions.REGION_NAMES, snakemake.input.models, strict=True)),
        settings,
        snakemake.output[0],
        training.config_hash(settings),
    )
