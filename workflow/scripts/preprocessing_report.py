# Rule preprocessing_report: every clip with status ok or skipped (and why), and the apex its flow used;
# logic in localmer.preprocess.
from localmer import preprocess, runlog
from localmer.datasets import read_table

with runlog.to_file(snakemake.log[0]):
    sample_ids = set(read_table(snakemake.input.samples).sample_id)  # the experiment's task's clips
    report = preprocess.preprocessing_report(snakemake.input.landmarks, snakemake.input.flow, sample_ids)
    report.to_csv(snakemake.output[0], sep="\t", index=False)
