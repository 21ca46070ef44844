# Rule synthesize_corpus: all logic is in localmer.synth.
from localmer import runlog, synth

with runlog.to_file(snakemake.log[0]):  # noqa: F821 (snakemake is injected by the script directive)
    synth.write_corpus(snakemake.params.out_dir, snakemake.params.synthetic, workers=snakemake.threads)  # noqa: F821
