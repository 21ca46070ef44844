# Rule build_index: all logic is in localmer.datasets.
from pathlib import Path

from localmer import datasets, runlog

with runlog.to_file(snakemake.log[0]):  # noqa: F821 (snakemake is injected by the script directive)
    index = datasets.build_index(snakemake.params.datasets, snakemake.params.task)  # noqa: F821
    index.write(Path(snakemake.output.samples).parent)  # noqa: F821
