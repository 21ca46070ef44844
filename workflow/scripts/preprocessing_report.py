# Rule preprocessing_report: every clip with status ok or skipped (and why), and the apex its flow used;
# logic in localmer.preprocess.
from localmer import preprocess, runlog

with runlog.to_file(snakemake.log[0]):
    report = preprocess.preprocessing_report(snakemake.input.landmarks, snakemake.input.flow)
    report.to_csv(snakemake.output[0], sep="\t", index=False)
