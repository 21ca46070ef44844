# Rule compute_flow: all logic is in localmer.preprocess.
import pandas as pd

from localmer import datasets, preprocess, runlog

with runlog.to_file(snakemake.log[0]):
    samples = pd.DataFrame(snakemake.params.clips, columns=datasets.SAMPLE_COLUMNS)  # the subject's clips
    preprocess.flow_subject(
        samples,
        snakemake.wildcards.subject,
        snakemake.input.aligned,
        snakemake.output[0],
        snakemake.params.preprocessing,
    )
