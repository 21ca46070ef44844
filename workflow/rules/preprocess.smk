# Stages 2-4: landmarks -> aligned faces -> six regions x m patches, one HDF5 file per subject.
# Folders are named by stage keys (see common.smk); rules run per subject.


rule detect_landmarks:
    input:
        samples=key_samples,
        frames=subject_frames,
    output:
        f"{PREPROCESS}/landmarks-{{key}}/{{subject}}.h5",
    params:
        preprocessing=key_preprocessing,
    log:
        "logs/preprocess/landmarks-{key}/{subject}.log",
    benchmark:
        "benchmarks/out/preprocess/landmarks-{key}/{subject}.tsv"
    conda:
        ENV_PREPROCESSING
    threads: 1
    resources:
        mem_mb=1500,
        runtime=30,
    script:
        "../scripts/detect_landmarks.py"


rule align_faces:
    input:
        samples=key_samples,
        frames=subject_frames,
        landmarks=lambda wildcards: f"{PREPROCESS}/landmarks-{STAGE_KEYS[key_experiment(wildcards)]['landmarks']}/{wildcards.subject}.h5",
    output:
        f"{PREPROCESS}/aligned-{{key}}/{{subject}}.h5",
    params:
        preprocessing=key_preprocessing,
    log:
        "logs/preprocess/aligned-{key}/{subject}.log",
    benchmark:
        "benchmarks/out/preprocess/aligned-{key}/{subject}.tsv"
    conda:
        ENV_PREPROCESSING
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    script:
        "../scripts/align_faces.py"


rule measure_regions:
    input:
        samples=key_samples,
        aligned=lambda wildcards: [
            f"{PREPROCESS}/aligned-{STAGE_KEYS[key_experiment(wildcards)]['aligned']}/{subject}.h5"
            for subject in subjects_of(key_experiment(wildcards))
        ],
    output:
        f"{PREPROCESS}/patches-{{key}}/region_sizes.json",
    params:
        preprocessing=key_preprocessing,
    log:
        "logs/preprocess/patches-{key}/measure_regions.log",
    conda:
        ENV_PREPROCESSING
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/measure_regions.py"


rule crop_regions:
    input:
        samples=key_samples,
        aligned=lambda wildcards: f"{PREPROCESS}/aligned-{STAGE_KEYS[key_experiment(wildcards)]['aligned']}/{wildcards.subject}.h5",
        sizes=region_sizes_input,
    output:
        f"{PREPROCESS}/patches-{{key}}/{{subject}}.h5",
    params:
        preprocessing=key_preprocessing,
    log:
        "logs/preprocess/patches-{key}/{subject}.log",
    benchmark:
        "benchmarks/out/preprocess/patches-{key}/{subject}.tsv"
    conda:
        ENV_PREPROCESSING
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/crop_regions.py"


rule qc_subject:
    input:
        aligned=lambda wildcards: f"{PREPROCESS}/aligned-{STAGE_KEYS[wildcards.experiment]['aligned']}/{wildcards.subject}.h5",
        patches=lambda wildcards: f"{PREPROCESS}/patches-{STAGE_KEYS[wildcards.experiment]['patches']}/{wildcards.subject}.h5",
    output:
        report(
            f"{RESULTS}/{{experiment}}/qc/{{subject}}.png",
            caption="../report/qc_subject.rst",
            category="Preprocessing QC",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "subject": "{subject}"},
        ),
    log:
        "logs/{experiment}/qc/{subject}.log",
    conda:
        ENV_PREPROCESSING
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/qc_subject.py"


rule preprocessing_report:
    input:
        unpack(experiment_patches),
    output:
        report(
            f"{RESULTS}/{{experiment}}/preprocessing_report.tsv",
            caption="../report/preprocessing_report.rst",
            category="Preprocessing QC",
            labels={"experiment": "{experiment}", "table": "clips (ok / skipped)"},
        ),
    log:
        "logs/{experiment}/preprocessing_report.log",
    conda:
        ENV_PREPROCESSING
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/preprocessing_report.py"
