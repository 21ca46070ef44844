# Rules train_deep_peer and train_shallow_peer: one LOSO fold of a peer method; logic in localmer.methods.fold.
from localmer import runlog, training
from localmer.methods import fold, inputs, registry

with runlog.to_file(snakemake.log[0]):
    settings = snakemake.params.settings
    samples, chosen = training.prepare_fold_job(
        snakemake.input.samples,
        snakemake.input.report,
        snakemake.wildcards.fold,
        settings,
        snakemake.threads,
        tensorflow=registry.get_method(settings["method"]).deep,
    )
    fold.train_fold(
        samples,
        inputs.input_files_of(snakemake.input.inputs),
        chosen,
        settings,
        training.task_classes(settings),
        {**snakemake.output, "checkpoints": snakemake.params.checkpoints},
    )
