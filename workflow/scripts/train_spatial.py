# Rule train_spatial: a LOSO fold's spatial models, every region in this one job, and the fold's 256-d
# features of every frame from them; logic in localmer.training.
from localmer import datasets, regions, runlog, training

with runlog.to_file(snakemake.log[0]):
    settings = snakemake.params.settings
    samples, fold = training.prepare_fold_job(
        snakemake.input.samples, snakemake.input.report, snakemake.wildcards.fold, settings, snakemake.threads
    )
    outputs = zip(snakemake.output.models, snakemake.output.histories, snakemake.output.provenances, strict=True)
    training.train_spatial_regions(
        samples,
        datasets.read_table(snakemake.input.labels),
        training.patch_files_of(snakemake.input.patches),
        fold,
        settings,
        training.task_classes(settings),
        {
            region: {
                "model": model,
                "history": history,
                "provenance": provenance,
                "checkpoints": f"{snakemake.params.checkpoints}/{region}",
            }
            for region, (model, history, provenance) in zip(regions.REGION_NAMES, outputs, strict=True)
        },
        features_path=snakemake.output.features,
    )
