# Rule build_index: all logic is in localmer.datasets.
import sys
from pathlib import Path

from localmer import datasets, runlog

with runlog.to_file(snakemake.log[0]):
    index = datasets.build_index(snakemake.params.datasets, snakemake.params.task)
    index.write(Path(snakemake.output.samples).parent)
    differences = index.differences_line(snakemake.output.reconciliation)
    if differences:  # on the console too: the log above is a file
        print(f"localmer index {snakemake.wildcards.experiment}: task.strict is false: {differences}", file=sys.stderr)
