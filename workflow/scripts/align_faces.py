# Rule align_faces: all logic is in localmer.preprocess.
import pandas as pd

from localmer import datasets, preprocess, runlog

with runlog.to_file(snakemake.log[0]):
    samples = pd.DataFrame(snakemake.params.clips, columns=datasets.SAMPLE_COLUMNS)  # the subject's clips
    preprocess.align_subject(
        samples,
        snakemake.wildcards.subject,
        snakemake.input.landmarks,
        snakemake.output[0],
        snakemake.params.preprocessing,
    )
