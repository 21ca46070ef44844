# Rule region_labels: per-region labels from the AUs; logic in localmer.labels.
from localmer import datasets, labels, runlog

with runlog.to_file(snakemake.log[0]):
    table = labels.load_au_regions(snakemake.input.au_table)
    samples = datasets.read_table(snakemake.input.samples)
    labels.region_labels(samples, table, snakemake.params.mode).to_csv(snakemake.output[0], sep="\t", index=False)
