# Stage 1: dataset adapters -> one sample table per experiment.


checkpoint build_index:
    input:
        dataset_inputs,
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
        datasets=lambda wildcards: experiment_config(wildcards.experiment)["datasets"],
        task=lambda wildcards: experiment_config(wildcards.experiment)["task"],
    log:
        "logs/{experiment}/build_index.log",
    conda:
        ENV_DATA
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/build_index.py"
