# Stage 0: the synthetic micro-expression corpus (only when config synthetic.enabled).


if SYNTHETIC["enabled"]:

    rule synthesize_corpus:
        output:
            done=CORPUS_DONE,
            ground_truth=f"{SYNTHETIC_OUT}/megc2019_gt.csv",
            clips=report(
                f"{SYNTHETIC_OUT}/synth_clips.tsv",
                caption="../report/synth_clips.rst",
                category="Synthetic corpus",
            ),
        params:
            out_dir=lambda wildcards, output: os.path.dirname(output.done),
            # Null preset keys are left out: without a preset the params are as before (no rerun).
            synthetic={
                k: v
                for k, v in SYNTHETIC.items()
                if k not in ("enabled", "out") and not (k in localmer_config.PRESET_KEYS and v is None)
            },
        log:
            "logs/synthesize_corpus.log",
        benchmark:
            "logs/benchmarks/synthesize_corpus.tsv"
        conda:
            ENV_DATA
        threads: 2
        script:
            "../scripts/synthesize_corpus.py"
