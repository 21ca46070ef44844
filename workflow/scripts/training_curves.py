# Rule training_curves: loss and accuracy per epoch of every fold's models; logic in localmer.evaluation.
from localmer import evaluation, runlog

with runlog.to_file(snakemake.log[0]):
    evaluation.training_curves({kind: list(paths) for kind, paths in snakemake.input.items()}, snakemake.output[0])
