# Stages 5-6: optical flow on the aligned faces (per subject, after align_faces) and its region patches
# (cut with the patches file's boxes). Folders are named by the flow and flowpatches stage keys.


rule compute_flow:
    input:
        samples=get_stage_samples,
        frames=get_subject_frames,  # an apex the frame selection dropped is read from the frames
        aligned=get_subject_aligned,
    output:
        f"{PREPROCESS}/flow-{{stage_key}}/{{subject}}.h5",
    params:
        preprocessing=stage_preprocessing("flow"),
    log:
        "logs/preprocess/flow-{stage_key}/{subject}.log",
    benchmark:
        "logs/benchmarks/preprocess/flow-{stage_key}/{subject}.tsv"
    conda:
        ENV_PREPROCESSING
    resources:
        runtime=60,
    script:
        "../scripts/compute_flow.py"


rule crop_flow:
    input:
        flow=get_subject_flow,
        patches=get_subject_patches,
    output:
        f"{PREPROCESS}/flowpatches-{{stage_key}}/{{subject}}.h5",
    params:
        preprocessing=stage_preprocessing("flowpatches"),
    log:
        "logs/preprocess/flowpatches-{stage_key}/{subject}.log",
    benchmark:
        "logs/benchmarks/preprocess/flowpatches-{stage_key}/{subject}.tsv"
    conda:
        ENV_PREPROCESSING
    script:
        "../scripts/crop_flow.py"
