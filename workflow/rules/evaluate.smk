# Stage 8: pool every fold's test predictions, MEGC 2019 metrics, the ablation table. An experiment
# with repeats pools its repeats' predictions instead: per seed, their mean and spread.


rule evaluate:
    input:
        predictions=get_fold_predictions,
        report=f"{RESULTS}/{{experiment}}/landmark_report.tsv",  # the clips skipped, noted in the metrics
    output:
        predictions=f"{RESULTS}/{{experiment}}/predictions.tsv",
        metrics=f"{RESULTS}/{{experiment}}/metrics.json",
        table=report(
            f"{RESULTS}/{{experiment}}/metrics.tsv",
            caption="../report/metrics.rst",
            category="Results",
            labels={"experiment": "{experiment}", "figure": "metrics"},
        ),
        markdown=f"{RESULTS}/{{experiment}}/metrics.md",
        confusion=report(
            directory(f"{RESULTS}/{{experiment}}/confusion"),
            patterns=["{part}.png"],
            caption="../report/confusion.rst",
            category="Results",
            subcategory="{experiment}",
            labels={"experiment": "{experiment}", "part": "{part}"},
        ),
    params:
        bootstrap=experiment_setting("evaluation", "bootstrap"),
        seed=experiment_setting("training", "seed"),
        classes=get_task_classes,
        repeat_seeds=get_repeat_seeds,
    log:
        "logs/{experiment}/evaluate.log",
    conda:
        ENV_REPORTING
    script:
        "../scripts/evaluate.py"


rule ablation_table:
    input:
        expand(f"{RESULTS}/{{experiment}}/metrics.json", experiment=config["run"]),
    output:
        table=report(
            f"{RESULTS}/ablation.tsv",
            caption="../report/ablation.rst",
            category="Results",
            labels={"figure": "ablation table"},
        ),
        markdown=f"{RESULTS}/ablation.md",
    params:
        experiments=config["run"],
    log:
        "logs/ablation_table.log",
    conda:
        ENV_REPORTING
    script:
        "../scripts/ablation_table.py"


rule training_curves:
    input:
        unpack(get_training_histories),
    output:
        report(
            f"{RESULTS}/{{experiment}}/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            labels={"experiment": "{experiment}", "figure": "training curves"},
        ),
    log:
        "logs/{experiment}/training_curves.log",
    conda:
        ENV_REPORTING
    script:
        "../scripts/training_curves.py"


rule record_config:
    output:
        report(
            f"{RESULTS}/{{experiment}}/config.yaml",
            caption="../report/record_config.rst",
            category="Configuration",
            labels={"experiment": "{experiment}"},
        ),
    params:
        config=get_experiment_config,
    log:
        "logs/{experiment}/record_config.log",
    conda:
        ENV_DATA
    script:
        "../scripts/record_config.py"


# The methods' comparison over the experiments in `run`, beside their publications' figures.
rule comparison_table:
    input:
        expand(f"{RESULTS}/{{experiment}}/metrics.json", experiment=config["run"]),
    output:
        table=report(
            f"{RESULTS}/comparison.tsv",
            caption="../report/comparison.rst",
            category="Results",
            labels={"figure": "comparison table"},
        ),
        markdown=f"{RESULTS}/comparison.md",
        figure=report(
            f"{RESULTS}/comparison.png",
            caption="../report/comparison.rst",
            category="Results",
            labels={"figure": "comparison figure"},
        ),
    params:
        experiments=config["run"],
        methods=[EXPERIMENTS[name]["method"] for name in config["run"]],
        published=localmer_methods.published_figures(EXPERIMENTS[name]["method"] for name in config["run"]),
        protocols=[run_protocol(name) for name in config["run"]],
        data=corpus_description(),
    log:
        "logs/comparison_table.log",
    conda:
        ENV_REPORTING
    script:
        "../scripts/comparison_table.py"
