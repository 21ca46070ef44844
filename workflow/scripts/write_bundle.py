# Rule bundle: the experiment's final models and what `localmer predict` needs; logic in localmer.bundle.
from localmer import bundle, datasets, regions, runlog, training

with runlog.to_file(snakemake.log[0]):
    settings = snakemake.params.settings
    classes = training.task_classes(settings)
    samples = datasets.read_table(snakemake.input.samples)
    fold = training.final_fold(training.usable_samples(samples, datasets.read_table(snakemake.input.report)))
    bundle.write_bundle(
        snakemake.params.out_dir,
        dict(zip(regions.REGION_NAMES, snakemake.input.spatial, strict=True)),
        snakemake.input.temporal,
        snakemake.input.normalisation,
        settings,
        regions.load_region_table(settings["preprocessing"]["regions"]),
        bundle.region_sizes_of(snakemake.input.patches),
        classes,
        training.region_classes(classes, settings["model"]["region_labels"]),
        training.config_hash(settings),
        list(fold.train_subjects),
        snakemake.wildcards.experiment,
    )
