# Rule crop_flow: all logic is in localmer.preprocess.
from localmer import preprocess, runlog

with runlog.to_file(snakemake.log[0]):
    preprocess.crop_flow_subject(
        snakemake.input.flow, snakemake.input.patches, snakemake.output[0], snakemake.params.preprocessing
    )
