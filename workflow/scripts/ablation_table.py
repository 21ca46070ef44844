# Rule ablation_table: FULL and per-dataset UF1/UAR of every experiment run; logic in localmer.evaluation.
from localmer import evaluation, runlog

with runlog.to_file(snakemake.log[0]):
    table = evaluation.ablation_table(dict(zip(snakemake.params.experiments, snakemake.input, strict=True)))
    table.to_csv(snakemake.output.table, sep="\t", index=False)
    with open(snakemake.output.markdown, "w") as handle:
        handle.write(evaluation.ablation_markdown(table))
