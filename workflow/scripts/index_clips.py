# Rule index_clips: every annotated clip of the datasets, whatever the task; logic in localmer.datasets.
from localmer import datasets, runlog
from localmer.atomic import atomic_output

with runlog.to_file(snakemake.log[0]):
    clips = datasets.build_index(snakemake.params.datasets, None).samples
    with atomic_output(snakemake.output.clips) as partial:
        clips.to_csv(partial, sep="\t", index=False)
