# Rule landmark_report: every clip with status ok or skipped (and why); logic in localmer.preprocess.
from localmer import preprocess, runlog
from localmer.datasets import read_table

with runlog.to_file(snakemake.log[0]):
    sample_ids = set(read_table(snakemake.input.samples).sample_id)  # the experiment's task's clips
    preprocess.landmark_report(snakemake.input.landmarks, sample_ids).to_csv(snakemake.output[0], sep="\t", index=False)
