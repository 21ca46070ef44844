# Stages 5-7: leave-one-subject-out training. A fold is named by its test subject (dataset/subject).
# Checkpoints live under results/<experiment>/checkpoints/, outside the declared outputs, so that a job
# killed (SIGTERM at a SLURM walltime) and rerun resumes from its last epoch.


rule region_labels:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        au_table=lambda wildcards: experiment_config(wildcards.experiment)["model"]["au_regions"],
    output:
        f"{RESULTS}/{{experiment}}/region_labels.tsv",
    params:
        mode=lambda wildcards: experiment_config(wildcards.experiment)["model"]["region_labels"],
    log:
        "logs/{experiment}/region_labels.log",
    conda:
        ENV_DATA
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/region_labels.py"


rule train_spatial:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        report=f"{RESULTS}/{{experiment}}/preprocessing_report.tsv",
        labels=f"{RESULTS}/{{experiment}}/region_labels.tsv",
        patches=lambda wildcards: experiment_patches(wildcards)["patches"],
    output:
        model=f"{RESULTS}/{{experiment}}/folds/{{fold}}/spatial/{{region}}.keras",
        history=f"{RESULTS}/{{experiment}}/folds/{{fold}}/spatial/{{region}}.history.tsv",
        provenance=f"{RESULTS}/{{experiment}}/folds/{{fold}}/spatial/{{region}}.provenance.json",
    params:
        settings=lambda wildcards: spatial_settings(wildcards),
        checkpoints=lambda wildcards: f"{RESULTS}/{wildcards.experiment}/checkpoints/{wildcards.fold}/spatial/{wildcards.region}",
    log:
        "logs/{experiment}/folds/{fold}/train_spatial_{region}.log",
    benchmark:
        "benchmarks/out/{experiment}/folds/{fold}/train_spatial_{region}.tsv"
    conda:
        ENV_TRAINING
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    script:
        "../scripts/train_spatial.py"


rule export_features:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        report=f"{RESULTS}/{{experiment}}/preprocessing_report.tsv",
        models=expand(f"{RESULTS}/{{{{experiment}}}}/folds/{{{{fold}}}}/spatial/{{region}}.keras", region=REGIONS),
        patches=lambda wildcards: experiment_patches(wildcards)["patches"],
    output:
        f"{RESULTS}/{{experiment}}/folds/{{fold}}/features.h5",
    params:
        settings=lambda wildcards: spatial_settings(wildcards),
    log:
        "logs/{experiment}/folds/{fold}/export_features.log",
    benchmark:
        "benchmarks/out/{experiment}/folds/{fold}/export_features.tsv"
    conda:
        ENV_TRAINING
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,
    script:
        "../scripts/export_features.py"


rule train_temporal:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        report=f"{RESULTS}/{{experiment}}/preprocessing_report.tsv",
        features=f"{RESULTS}/{{experiment}}/folds/{{fold}}/features.h5",
    output:
        model=f"{RESULTS}/{{experiment}}/folds/{{fold}}/temporal.keras",
        predictions=f"{RESULTS}/{{experiment}}/folds/{{fold}}/predictions.tsv",
        history=f"{RESULTS}/{{experiment}}/folds/{{fold}}/temporal.history.tsv",
        provenance=f"{RESULTS}/{{experiment}}/folds/{{fold}}/temporal.provenance.json",
    params:
        fold=lambda wildcards: wildcards.fold,
        settings=lambda wildcards: temporal_settings(wildcards),
        checkpoints=lambda wildcards: f"{RESULTS}/{wildcards.experiment}/checkpoints/{wildcards.fold}/temporal",
    log:
        "logs/{experiment}/folds/{fold}/train_temporal.log",
    benchmark:
        "benchmarks/out/{experiment}/folds/{fold}/train_temporal.tsv"
    conda:
        ENV_TRAINING
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,
    script:
        "../scripts/train_temporal.py"


# Final models for `localmer predict`: fold "final" trains on every subject (no test subject, no
# validation subject; train_spatial and export_features serve it unchanged), then the bundle. Not in
# rule all (it trains the models once more): `snakemake results/<experiment>/bundle/bundle.json`.


rule final_temporal:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        report=f"{RESULTS}/{{experiment}}/preprocessing_report.tsv",
        features=f"{RESULTS}/{{experiment}}/folds/final/features.h5",
    output:
        model=f"{RESULTS}/{{experiment}}/folds/final/temporal.keras",
        predictions=f"{RESULTS}/{{experiment}}/folds/final/predictions.tsv",
        history=f"{RESULTS}/{{experiment}}/folds/final/temporal.history.tsv",
        provenance=f"{RESULTS}/{{experiment}}/folds/final/temporal.provenance.json",
        normalisation=f"{RESULTS}/{{experiment}}/folds/final/normalisation.npz",
    params:
        fold="final",
        settings=lambda wildcards: temporal_settings(wildcards),
        checkpoints=lambda wildcards: f"{RESULTS}/{wildcards.experiment}/checkpoints/final/temporal",
    log:
        "logs/{experiment}/folds/final/train_temporal.log",
    benchmark:
        "benchmarks/out/{experiment}/folds/final/train_temporal.tsv"
    conda:
        ENV_TRAINING
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,
    script:
        "../scripts/train_temporal.py"


ruleorder: final_temporal > train_temporal


rule bundle:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        report=f"{RESULTS}/{{experiment}}/preprocessing_report.tsv",
        spatial=expand(f"{RESULTS}/{{{{experiment}}}}/folds/final/spatial/{{region}}.keras", region=REGIONS),
        temporal=f"{RESULTS}/{{experiment}}/folds/final/temporal.keras",
        normalisation=f"{RESULTS}/{{experiment}}/folds/final/normalisation.npz",
        patches=lambda wildcards: experiment_patches(wildcards)["patches"],
    output:
        manifest=f"{RESULTS}/{{experiment}}/bundle/bundle.json",
        models=expand(f"{RESULTS}/{{{{experiment}}}}/bundle/spatial/{{region}}.keras", region=REGIONS),
        temporal=f"{RESULTS}/{{experiment}}/bundle/temporal.keras",
        normalisation=f"{RESULTS}/{{experiment}}/bundle/normalisation.npz",
    params:
        settings=lambda wildcards: temporal_settings(wildcards),
        out_dir=lambda wildcards: f"{RESULTS}/{wildcards.experiment}/bundle",
    log:
        "logs/{experiment}/bundle.log",
    conda:
        ENV_TRAINING
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/write_bundle.py"
