# Rule build_index: all logic is in localmer.datasets.
import sys
from pathlib import Path

from localmer import datasets, runlog
from localmer.atomic import atomic_output

with runlog.to_file(snakemake.log[0]):
    # The task's index, and every annotated clip whatever the task: what preprocessing covers (shared by
    # every task); one reading of the sheets and frames.
    index, clips = datasets.build_index_and_clips(snakemake.params.datasets, snakemake.params.task)
    index.write(Path(snakemake.output.samples).parent)
    with atomic_output(snakemake.output.clips) as partial:
        clips.to_csv(partial, sep="\t", index=False)
    differences = index.differences_line(snakemake.output.reconciliation)
    if differences:  # on the console too: the log above is a file
        print(f"localmer index {snakemake.wildcards.experiment}: task.strict is false: {differences}", file=sys.stderr)
