# Rule method_inputs: a peer method's per-clip inputs for one subject; logic in localmer.methods.inputs.
from localmer import runlog
from localmer.methods import inputs

with runlog.to_file(snakemake.log[0]):
    inputs.compute_subject_inputs(
        snakemake.wildcards.method, snakemake.params.settings, snakemake.input[0], snakemake.output[0]
    )
