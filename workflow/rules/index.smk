# Stage 1: dataset adapters -> one sample table per experiment.


checkpoint build_index:
    input:
        get_dataset_inputs,
    output:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        excluded=f"{RESULTS}/{{experiment}}/excluded.tsv",
        reconciliation=f"{RESULTS}/{{experiment}}/reconciliation.tsv",
        summary=report(
            f"{RESULTS}/{{experiment}}/index_summary.tsv",
            caption="../report/index_summary.rst",
            category="Sample index",
            labels={"experiment": "{experiment}"},
        ),
    params:
        datasets=experiment_setting("datasets"),
        task=experiment_setting("task"),
    log:
        "logs/{experiment}/build_index.log",
    conda:
        ENV_DATA
    script:
        "../scripts/build_index.py"


# Every annotated clip of the datasets, unlabelled: what preprocessing covers, whatever task an
# experiment picks among the clips (folders are named by localmer.preprocess.clips_key).
checkpoint index_clips:
    input:
        get_clips_inputs,
    output:
        clips=f"{PREPROCESS}/clips-{{clips_key}}.tsv",
    params:
        datasets=get_clips_datasets,
    log:
        "logs/preprocess/index_clips-{clips_key}.log",
    conda:
        ENV_DATA
    script:
        "../scripts/index_clips.py"
