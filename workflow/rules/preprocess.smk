# Stages 2-4: landmarks -> aligned faces -> six regions x m patches, one HDF5 file per subject.
# Folders are named by stage keys (see common.smk); rules run per subject.


rule detect_landmarks:
    input:
        samples=get_stage_samples,
        frames=get_subject_frames,
    output:
        f"{PREPROCESS}/landmarks-{{stage_key}}/{{subject}}.h5",
    params:
        preprocessing=stage_preprocessing("landmarks"),
    log:
        "logs/preprocess/landmarks-{stage_key}/{subject}.log",
    benchmark:
        "logs/benchmarks/preprocess/landmarks-{stage_key}/{subject}.tsv"
    conda:
        ENV_PREPROCESSING
    script:
        "../scripts/detect_landmarks.py"


rule align_faces:
    input:
        samples=get_stage_samples,
        frames=get_subject_frames,
        landmarks=get_subject_landmarks,
    output:
        f"{PREPROCESS}/aligned-{{stage_key}}/{{subject}}.h5",
    params:
        preprocessing=stage_preprocessing("aligned"),
    log:
        "logs/preprocess/aligned-{stage_key}/{subject}.log",
    benchmark:
        "logs/benchmarks/preprocess/aligned-{stage_key}/{subject}.tsv"
    conda:
        ENV_PREPROCESSING
    resources:
        runtime=60,
    script:
        "../scripts/align_faces.py"


rule measure_regions:
    input:
        samples=get_stage_samples,
        aligned=get_stage_aligned,
    output:
        f"{PREPROCESS}/patches-{{stage_key}}/region_sizes.json",
    params:
        preprocessing=stage_preprocessing("region_sizes"),
    log:
        "logs/preprocess/patches-{stage_key}/measure_regions.log",
    conda:
        ENV_PREPROCESSING
    script:
        "../scripts/measure_regions.py"


rule crop_regions:
    input:
        samples=get_stage_samples,
        aligned=get_subject_aligned,
        sizes=get_region_sizes,
    output:
        f"{PREPROCESS}/patches-{{stage_key}}/{{subject}}.h5",
    params:
        preprocessing=stage_preprocessing("patches"),
    log:
        "logs/preprocess/patches-{stage_key}/{subject}.log",
    benchmark:
        "logs/benchmarks/preprocess/patches-{stage_key}/{subject}.tsv"
    conda:
        ENV_PREPROCESSING
    script:
        "../scripts/crop_regions.py"


rule qc_subject:
    input:
        unpack(get_qc_inputs),
    output:
        report(
            f"{PREPROCESS}/qc-{{stage_key}}/{{subject}}.png",
            caption="../report/qc_subject.rst",
            category="Preprocessing QC",
            subcategory="preprocessing {stage_key}",
            labels={"preprocessing": "{stage_key}", "subject": "{subject}"},
        ),
    log:
        "logs/preprocess/qc-{stage_key}/{subject}.log",
    conda:
        ENV_PREPROCESSING
    script:
        "../scripts/qc_subject.py"


rule landmark_report:
    # What training and evaluation read (which clips were skipped, and why): the landmark stage's alone, so
    # that a flow or QC change, which the preprocessing report below shows, does not retrain any model.
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        landmarks=get_experiment_landmarks,
    output:
        f"{RESULTS}/{{experiment}}/landmark_report.tsv",
    log:
        "logs/{experiment}/landmark_report.log",
    conda:
        ENV_PREPROCESSING
    script:
        "../scripts/landmark_report.py"


rule preprocessing_report:
    input:
        unpack(get_preprocessing_outputs),
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
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
    script:
        "../scripts/preprocessing_report.py"
