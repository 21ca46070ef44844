# Stage 1: dataset adapters -> one sample table per experiment (its task's clips), and the clip table of
# every annotated clip, whatever the task: what preprocessing covers.


checkpoint build_index:
    input:
        get_dataset_inputs,
    output:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        clips=f"{RESULTS}/{{experiment}}/clips.tsv",
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

