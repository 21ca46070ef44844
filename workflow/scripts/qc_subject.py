# Rule qc_subject: a contact sheet of a subject's clips and their onset->apex flow; logic in localmer.qc.
from localmer import qc, runlog

with runlog.to_file(snakemake.log[0]):
    qc.contact_sheet(snakemake.input.aligned, snakemake.input.patches, snakemake.input.flow, snakemake.output[0])
