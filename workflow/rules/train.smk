# Stages 5-7: leave-one-subject-out training. A fold is named by its test subject (dataset/subject).
# Checkpoints live under results/<experiment>/checkpoints/, outside the declared outputs, so that a job
# killed (SIGTERM at a SLURM walltime) and rerun resumes exactly from its last epoch (training.fit_epochs).
# Fold "final" trains on every subject (no test subject, no validation subject) for the bundle that
# `localmer predict` uses: not in rule all (it trains the models once more), run it with
# `snakemake results/<experiment>/bundle/bundle.json`.


rule region_labels:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        au_table=experiment_setting("model", "au_regions"),
    output:
        f"{RESULTS}/{{experiment}}/region_labels.tsv",
    params:
        mode=experiment_setting("model", "region_labels"),
    log:
        "logs/{experiment}/region_labels.log",
    conda:
        ENV_DATA
    script:
        "../scripts/region_labels.py"


# A fold's six regions and its feature export in one job: a job's fixed cost (interpreter, TensorFlow
# start-up, data set-up) is paid once per fold (docs/workflow.md, "Jobs and their cost"). The spatial
# jobs, the longest, start before any temporal one: the short temporal jobs then fill the cores at the end.
rule train_spatial:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        report=f"{RESULTS}/{{experiment}}/landmark_report.tsv",
        labels=f"{RESULTS}/{{experiment}}/region_labels.tsv",
        patches=get_experiment_spatial_inputs,
    output:
        models=expand(f"{RESULTS}/{{{{experiment}}}}/folds/{{{{fold}}}}/spatial/{{region}}.keras", region=REGIONS),
        histories=expand(
            f"{RESULTS}/{{{{experiment}}}}/folds/{{{{fold}}}}/spatial/{{region}}.history.tsv", region=REGIONS
        ),
        provenances=expand(
            f"{RESULTS}/{{{{experiment}}}}/folds/{{{{fold}}}}/spatial/{{region}}.provenance.json", region=REGIONS
        ),
        features=f"{RESULTS}/{{experiment}}/folds/{{fold}}/features.h5",
    params:
        settings=get_spatial_settings,
        checkpoints=f"{RESULTS}/{{experiment}}/checkpoints/{{fold}}/spatial",
    log:
        "logs/{experiment}/folds/{fold}/train_spatial.log",
    benchmark:
        "logs/benchmarks/{experiment}/folds/{fold}/train_spatial.tsv"
    conda:
        ENV_TRAINING
    resources:
        mem_mb=4000,
        runtime=420,
        gpu=1,
    priority: 1
    script:
        "../scripts/train_spatial.py"


# Every fold writes its normalisation statistics; the bundle takes the final fold's.
rule train_temporal:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        report=f"{RESULTS}/{{experiment}}/landmark_report.tsv",
        features=f"{RESULTS}/{{experiment}}/folds/{{fold}}/features.h5",
    output:
        model=f"{RESULTS}/{{experiment}}/folds/{{fold}}/temporal.keras",
        predictions=f"{RESULTS}/{{experiment}}/folds/{{fold}}/predictions.tsv",
        history=f"{RESULTS}/{{experiment}}/folds/{{fold}}/temporal.history.tsv",
        provenance=f"{RESULTS}/{{experiment}}/folds/{{fold}}/temporal.provenance.json",
        normalisation=f"{RESULTS}/{{experiment}}/folds/{{fold}}/normalisation.npz",
    params:
        fold="{fold}",
        settings=get_temporal_settings,
        checkpoints=f"{RESULTS}/{{experiment}}/checkpoints/{{fold}}/temporal",
    log:
        "logs/{experiment}/folds/{fold}/train_temporal.log",
    benchmark:
        "logs/benchmarks/{experiment}/folds/{fold}/train_temporal.tsv"
    conda:
        ENV_TRAINING
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,
    script:
        "../scripts/train_temporal.py"


rule bundle:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        report=f"{RESULTS}/{{experiment}}/landmark_report.tsv",
        spatial=expand(f"{RESULTS}/{{{{experiment}}}}/folds/final/spatial/{{region}}.keras", region=REGIONS),
        temporal=f"{RESULTS}/{{experiment}}/folds/final/temporal.keras",
        normalisation=f"{RESULTS}/{{experiment}}/folds/final/normalisation.npz",
        patches=get_experiment_patches,
    output:
        description=f"{RESULTS}/{{experiment}}/bundle/bundle.json",
        models=expand(f"{RESULTS}/{{{{experiment}}}}/bundle/spatial/{{region}}.keras", region=REGIONS),
        temporal=f"{RESULTS}/{{experiment}}/bundle/temporal.keras",
        normalisation=f"{RESULTS}/{{experiment}}/bundle/normalisation.npz",
    params:
        settings=get_bundle_settings,
        out_dir=lambda wildcards, output: os.path.dirname(output.description),
    log:
        "logs/{experiment}/bundle.log",
    conda:
        ENV_TRAINING
    script:
        "../scripts/write_bundle.py"
