# Rule build_index: all logic is in localmer.datasets.
from pathlib import Path

from localmer import datasets, runlog

with runlog.to_file(snakemake.log[0]):
    index = datasets.build_index(snakemake.params.datasets, snakemake.params.task)
    index.write(Path(snakemake.output.samples).parent)
