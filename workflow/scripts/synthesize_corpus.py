# Rule synthesize_corpus: all logic is in localmer.synth.
from localmer import runlog, synth

with runlog.to_file(snakemake.log[0]):
    synth.write_corpus(snakemake.params.out_dir, snakemake.params.synthetic, workers=snakemake.threads)
