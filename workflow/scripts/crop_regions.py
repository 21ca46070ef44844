# Rule crop_regions: all logic is in localmer.preprocess.
import pandas as pd

from localmer import preprocess, runlog

with runlog.to_file(snakemake.log[0]):
    samples = pd.read_csv(snakemake.input.samples, sep="\t", keep_default_na=False)
    sizes = snakemake.input.sizes[0] if snakemake.input.sizes else None
    preprocess.crop_subject(
        snakemake.input.aligned, snakemake.output[0], samples, snakemake.params.preprocessing, sizes
    )
