# Rule comparison_table: the methods run beside their published figures; logic in localmer.comparison.
import json
from pathlib import Path

from localmer import comparison, runlog

with runlog.to_file(snakemake.log[0]):
    metrics = dict(zip(snakemake.params.experiments, snakemake.input, strict=True))
    table = comparison.comparison_table(
        metrics,
        dict(zip(snakemake.params.experiments, snakemake.params.methods, strict=True)),
        snakemake.params.data,
        snakemake.params.published,
        dict(zip(snakemake.params.experiments, snakemake.params.protocols, strict=True)),
    )
    table.to_csv(snakemake.output.table, sep="\t", index=False)
    with open(snakemake.output.markdown, "w") as handle:
        handle.write(comparison.comparison_markdown(table))
    classes = len(json.loads(Path(snakemake.input[0]).read_text())["classes"])
    comparison.comparison_figure(table, snakemake.output.figure, chance=1 / classes)
