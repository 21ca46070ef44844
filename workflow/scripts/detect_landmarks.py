# Rule detect_landmarks: all logic is in localmer.preprocess.
import pandas as pd

from localmer import preprocess, runlog

with runlog.to_file(snakemake.log[0]):
    samples = pd.read_csv(snakemake.input.samples, sep="\t", keep_default_na=False)
    preprocess.detect_subject(samples, snakemake.wildcards.subject, snakemake.output[0], snakemake.params.preprocessing)
