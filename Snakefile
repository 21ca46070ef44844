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


rule all:
    input:
        final_outputs(),
    default_target: True


onsuccess:
    print_results()
