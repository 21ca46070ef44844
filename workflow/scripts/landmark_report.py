# Rule landmark_report: every clip with status ok or skipped (and why); logic in localmer.preprocess.
from localmer import preprocess, runlog

with runlog.to_file(snakemake.log[0]):
    preprocess.landmark_report(snakemake.input.landmarks).to_csv(snakemake.output[0], sep="\t", index=False)
