# localmer: micro-expression recognition from local facial regions.
# Stages live in workflow/rules/*.smk; every rule calls the localmer package (src/localmer).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synthesize.smk"
include: "workflow/rules/index.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/flow.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/methods.smk"
include: "workflow/rules/evaluate.smk"


# Rules of seconds (the index, tables, reports) run where snakemake runs, with a cluster profile too:
# submitted, their queue wait and status polling would take longer than they do.
localrules:
    build_index,
    region_labels,
    landmark_report,
    preprocessing_report,
    record_config,
    evaluate,
    training_curves,
    ablation_table,
    comparison_table,


rule all:
    input:
        final_outputs(),
    default_target: True


# Local runs schedule without Snakemake's job rate limiter (src/localmer/scheduling.py says why).
onstart:
    localmer_scheduling.lift_local_job_rate_limit(workflow)


onsuccess:
    print_results()
