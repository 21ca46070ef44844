# Peer methods (localmer.methods): per-clip inputs cached once per subject, then one job per LOSO fold
# that fits the method on the fold's training subjects and predicts its test subject. The folds, the
# predictions format and everything after (evaluate, tables, report) are the seed's method's.


rule method_inputs:
    input:
        get_method_input_source,  # the flow or aligned file, as the method's source says
    output:
        f"{PREPROCESS}/{{method}}-{{stage_key}}/{{subject}}.h5",
    params:
        settings=get_method_input_settings,
    log:
        "logs/preprocess/{method}-{stage_key}/{subject}.log",
    benchmark:
        "logs/benchmarks/preprocess/{method}-{stage_key}/{subject}.tsv"
    conda:
        ENV_TRAINING
    script:
        "../scripts/method_inputs.py"


# Methods trained by epochs (a Keras model and its history); checkpoints outside the declared outputs
# for an exact resume after SIGTERM (localmer.training.fit_epochs).
rule train_deep_peer:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        report=f"{RESULTS}/{{experiment}}/landmark_report.tsv",
        inputs=get_experiment_method_inputs,
    output:
        model=f"{RESULTS}/{{experiment}}/folds/{{fold}}/{{method}}/model.keras",
        history=f"{RESULTS}/{{experiment}}/folds/{{fold}}/{{method}}/history.tsv",
        predictions=f"{RESULTS}/{{experiment}}/folds/{{fold}}/{{method}}/predictions.tsv",
        provenance=f"{RESULTS}/{{experiment}}/folds/{{fold}}/{{method}}/provenance.json",
    wildcard_constraints:
        method="|".join(DEEP_PEERS),
    params:
        settings=get_peer_fold_settings,
        checkpoints=f"{RESULTS}/{{experiment}}/checkpoints/{{fold}}/{{method}}",
    log:
        "logs/{experiment}/folds/{fold}/train_{method}.log",
    benchmark:
        "logs/benchmarks/{experiment}/folds/{fold}/train_{method}.tsv"
    conda:
        ENV_TRAINING
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,
    script:
        "../scripts/train_peer.py"


# Methods fitted in closed form (a linear SVM on handcrafted features): arrays in an .npz, no history.
rule train_shallow_peer:
    input:
        samples=f"{RESULTS}/{{experiment}}/samples.tsv",
        report=f"{RESULTS}/{{experiment}}/landmark_report.tsv",
        inputs=get_experiment_method_inputs,
    output:
        model=f"{RESULTS}/{{experiment}}/folds/{{fold}}/{{method}}/model.npz",
        predictions=f"{RESULTS}/{{experiment}}/folds/{{fold}}/{{method}}/predictions.tsv",
        provenance=f"{RESULTS}/{{experiment}}/folds/{{fold}}/{{method}}/provenance.json",
    wildcard_constraints:
        method="|".join(SHALLOW_PEERS),
    params:
        settings=get_peer_fold_settings,
        checkpoints=f"{RESULTS}/{{experiment}}/checkpoints/{{fold}}/{{method}}",
    log:
        "logs/{experiment}/folds/{fold}/train_{method}.log",
    benchmark:
        "logs/benchmarks/{experiment}/folds/{fold}/train_{method}.tsv"
    conda:
        ENV_TRAINING
    script:
        "../scripts/train_peer.py"
